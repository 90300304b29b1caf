/* Graph export, membership changes: adds with members@odata.bind (20 per PATCH), removes with
 * DELETE .../members/{id}/$ref; a refused or replayed bind is settled one member at a time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "graph_internal.h"
#include "hybridsync/log.h"

#define DIR_OBJ "https://graph.microsoft.com/v1.0/directoryObjects/"

/* --- membership ------------------------------------------------------------------------------- */

/* A member without a Graph id: its MV object by source anchor, then the Graph CS object
 * joined to it. */
static int resolve_member(struct xp *x, struct xmember *m)
{
	struct store_mv_object *mv = NULL;
	struct store_cs_object *cs = NULL;
	int r;

	if (m->target)
		return 0;
	r = store_mv_get_by_source_anchor(x->s, m->anchor, &mv);
	if (r < 0)
		return r;
	r = store_cs_get_by_mv(x->s, x->conn, mv->id, &cs);
	store_mv_object_free(mv);
	if (r < 0)
		return r;
	m->target = strndup(cs->anchor, cs->anchor_len);
	store_cs_object_free(cs);
	return m->target ? 0 : -ENOMEM;
}

struct mref {
	struct xitem *it;
	size_t first, last; /* members[first..last] hold the op's members ... */
	size_t count;       /* ... this many: the adds (or the remove) not yet done among them */
};

static bool already_exists(const struct gop *op)
{
	return op->status == 400 && strstr(op->message, "already exist");
}

/* Sends the membership changes of the groups in v; fallback for a refused bind: one by one. */
static int member_round(struct xp *x, struct xitem **v, size_t n)
{
	size_t cap = 0, k = 0;
	struct gop *ops = NULL;
	struct mref *refs = NULL;
	int r = 0;

	for (size_t i = 0; i < n; i++)
		cap += v[i]->n_m;
	ops = calloc(cap + 1, sizeof(*ops));
	refs = calloc(cap + 1, sizeof(*refs));
	if (!ops || !refs) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct xitem *it = v[i];
		char *gid = http_escape(it->target_id), path[512];
		cJSON *body = NULL, *arr = NULL;
		size_t first = 0, last = 0, count = 0;
		if (!gid) {
			r = -ENOMEM;
			goto out;
		}
		for (size_t j = 0; j <= it->n_m; j++) {
			struct xmember *m = j < it->n_m ? &it->m[j] : NULL;
			bool flush = !m || (count == GRAPH_BIND_MAX);
			if (flush && count) {
				snprintf(path, sizeof(path), "/groups/%s", gid);
				r = gop_set(&ops[k], "PATCH", path, body);
				body = NULL;
				if (r < 0)
					break;
				refs[k] = (struct mref){
				    .it = it, .first = first, .last = last, .count = count};
				/* safe to resend: a replay answers "already exist", settled one by
				 * one */
				ops[k].idempotent = true;
				k++;
				count = 0;
			}
			if (!m || m->done || m->failed || !m->target)
				continue;
			if (m->op == STORE_MEMBER_REMOVE) {
				char *mid = http_escape(m->target);
				if (!mid) {
					r = -ENOMEM;
					break;
				}
				snprintf(path, sizeof(path), "/groups/%s/members/%s/$ref", gid,
				         mid);
				free(mid);
				r = gop_set(&ops[k], "DELETE", path, NULL);
				if (r < 0)
					break;
				refs[k] =
				    (struct mref){.it = it, .first = j, .last = j, .count = 1};
				k++;
				continue;
			}
			if (count == 0) {
				body = cJSON_CreateObject();
				arr = body ? cJSON_AddArrayToObject(body, "members@odata.bind")
				           : NULL;
				if (!arr) {
					r = -ENOMEM;
					break;
				}
				first = j;
			}
			char ref[512];
			snprintf(ref, sizeof(ref), DIR_OBJ "%s", m->target);
			cJSON *s = cJSON_CreateString(ref);
			if (!s || !cJSON_AddItemToArray(arr, s)) {
				cJSON_Delete(s);
				r = -ENOMEM;
				break;
			}
			last = j;
			count++;
		}
		cJSON_Delete(body);
		free(gid);
		if (r < 0)
			goto out;
		it->sent = true;
	}
	r = graph_run(x->g, ops, k, true);
	if (r < 0)
		goto out;
	for (size_t j = 0; j < k; j++) {
		struct gop *op = &ops[j];
		struct mref *mr = &refs[j];
		bool is_delete = strcmp(op->method, "DELETE") == 0;
		bool ok =
		    op->status == 204 || op->status == 200 || (is_delete && op->status == 404);
		for (size_t q = mr->first; q <= mr->last; q++) {
			struct xmember *m = &mr->it->m[q];
			if (m->done || m->failed || !m->target ||
			    (!is_delete && m->op != STORE_MEMBER_ADD))
				continue;
			if (ok) {
				m->done = true;
			} else if (graph_transient(op->status)) {
				graph_export_server_down(x, op);
			} else if (is_delete || mr->count == 1) {
				if (already_exists(op)) {
					m->done = true;
				} else {
					m->failed = true;
					if (!mr->it->finished)
						graph_export_item_error(x, mr->it, op, NULL, NULL);
				}
			}
			/* a refused bind of several: left for the one-by-one pass */
		}
	}
out:
	for (size_t j = 0; ops && j < k; j++)
		gop_clear(&ops[j]);
	free(ops);
	free(refs);
	return r;
}

/* One by one for adds a bind could not take (one already there, one missing). */
static int member_singles(struct xp *x, struct xitem **v, size_t n)
{
	size_t cap = 0, k = 0;
	struct gop *ops;
	struct xmember **ms;
	struct xitem **owners;
	int r = 0;

	for (size_t i = 0; i < n; i++)
		cap += v[i]->n_m;
	ops = calloc(cap + 1, sizeof(*ops));
	ms = calloc(cap + 1, sizeof(*ms));
	owners = calloc(cap + 1, sizeof(*owners));
	if (!ops || !ms || !owners) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct xitem *it = v[i];
		for (size_t j = 0; j < it->n_m; j++) {
			struct xmember *m = &it->m[j];
			char path[512], ref[512];
			cJSON *body;
			if (m->done || m->failed || !m->target || m->op != STORE_MEMBER_ADD)
				continue;
			char *gid = http_escape(it->target_id);
			body = cJSON_CreateObject();
			snprintf(ref, sizeof(ref), DIR_OBJ "%s", m->target);
			if (!gid || !body || !cJSON_AddStringToObject(body, "@odata.id", ref)) {
				free(gid);
				cJSON_Delete(body);
				r = -ENOMEM;
				goto out;
			}
			snprintf(path, sizeof(path), "/groups/%s/members/$ref", gid);
			free(gid);
			r = gop_set(&ops[k], "POST", path, body);
			if (r < 0)
				goto out;
			ops[k].idempotent = true; /* a replay answers "already exist" */
			ms[k] = m;
			owners[k] = it;
			k++;
		}
	}
	r = graph_run(x->g, ops, k, true);
	for (size_t j = 0; r >= 0 && j < k; j++) {
		struct gop *op = &ops[j];
		if (op->status == 204 || op->status == 200 || already_exists(op)) {
			ms[j]->done = true;
		} else if (graph_transient(op->status)) {
			graph_export_server_down(x, op);
		} else {
			ms[j]->failed = true;
			if (!owners[j]->finished)
				graph_export_item_error(x, owners[j], op, NULL, NULL);
		}
	}
out:
	for (size_t j = 0; ops && j < k; j++)
		gop_clear(&ops[j]);
	free(ops);
	free(ms);
	free(owners);
	return r;
}

static int settle_members(struct xp *x, struct xitem **v, size_t n)
{
	int r = store_begin(x->s);

	for (size_t i = 0; r >= 0 && i < n; i++) {
		struct xitem *it = v[i];
		bool all = true, unresolved = false;
		for (size_t j = 0; r >= 0 && j < it->n_m; j++) {
			struct xmember *m = &it->m[j];
			if (!m->target)
				unresolved = true;
			if (!m->done) {
				all = false;
				continue;
			}
			if (it->cs_id)
				r = store_cs_set_export_member(x->s, it->cs_id, m->target, m->op);
		}
		if (r < 0 || it->finished || x->stop)
			continue;
		if (all) {
			r = graph_export_item_done(x, it);
		} else if (unresolved) {
			/* a member not in Graph yet: the whole export is sent again next time */
			r = store_export_set_state(x->s, it->e->id, STORE_EXPORT_PENDING, NULL,
			                           NULL, NULL);
			store_run_add_error(
			    x->s, x->o->run_id, x->o->step_id, it->e->anchor, it->e->dn,
			    "unresolvedMember",
			    "a member has no Graph object yet; the export stays pending", NULL);
			x->ret->counters.errors++;
			it->finished = true;
		}
	}
	if (r >= 0)
		return store_commit(x->s);
	store_rollback(x->s);
	return r;
}

int graph_export_members(struct xp *x)
{
	struct xitem **v = calloc(GRAPH_EXPORT_CHUNK, sizeof(*v));
	int r = v ? 0 : -ENOMEM;
	size_t i = 0;

	while (r >= 0 && i < x->n && !graph_export_stop_requested(x)) {
		size_t n = 0, members = 0;
		for (; r >= 0 && i < x->n && n < GRAPH_EXPORT_CHUNK &&
		       members < 4 * GRAPH_EXPORT_CHUNK;
		     i++) {
			struct xitem *it = &x->items[i];
			if (it->finished || !graph_export_has_member_work(it) ||
			    it->e->op == STORE_EXPORT_DELETE)
				continue;
			r = graph_export_resolve_target(x, it);
			if (r == -ENOENT) {
				graph_export_item_error(x, it, NULL, "noTargetId",
				                        "the Graph group id is not known");
				r = 0;
				continue;
			}
			for (size_t j = 0; r >= 0 && j < it->n_m; j++) {
				r = resolve_member(x, &it->m[j]);
				if (r == -ENOENT)
					r = 0;
			}
			members += it->n_m;
			v[n++] = it;
		}
		if (r < 0 || n == 0)
			break;
		r = member_round(x, v, n);
		if (r >= 0 && !x->stop)
			r = member_singles(x, v, n);
		if (r >= 0)
			r = settle_members(x, v, n);
		graph_export_progress(x);
	}
	free(v);
	return r;
}
