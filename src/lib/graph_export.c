/* Graph export: sends the pending exports of the 'graph' connector. Every export is journaled
 * in flight before anything is sent and settled after (done, error, or pending again); creates
 * are looked up first (hard match on onPremisesImmutableId, soft match on UPN, groups by the
 * anchor extension), so a restart after a crash adopts what was created instead of creating
 * it twice. Order: creates, updates, membership changes, deletes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "graph_internal.h"
#include "hybridsync/log.h"

const char *graph_export_coll_of(const struct xitem *it)
{
	return it->is_group ? "groups" : "users";
}

/* --- loading ---------------------------------------------------------------------------------- */

struct ids {
	int64_t *v;
	size_t n, cap;
};

static int collect_id(const struct store_export *e, void *userdata)
{
	struct ids *ids = userdata;

	if (ids->n == ids->cap) {
		size_t c = ids->cap ? 2 * ids->cap : 256;
		int64_t *v = realloc(ids->v, c * sizeof(*v));
		if (!v)
			return -ENOMEM;
		ids->v = v;
		ids->cap = c;
	}
	ids->v[ids->n++] = e->id;
	return 0;
}

static int collect_member(const struct store_member_change *m, void *userdata)
{
	struct xitem *it = userdata;
	struct xmember *x;

	if (it->n_m % 64 == 0) {
		struct xmember *v = realloc(it->m, (it->n_m + 64) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		it->m = v;
	}
	x = &it->m[it->n_m];
	memset(x, 0, sizeof(*x));
	x->op = m->op;
	if (!(x->anchor = strdup(m->member_anchor ? m->member_anchor : "")))
		return -ENOMEM;
	if (m->target_id && m->target_id[0] && !(x->target = strdup(m->target_id))) {
		free(x->anchor);
		return -ENOMEM;
	}
	it->n_m++;
	return 0;
}

static void items_free(struct xp *x)
{
	for (size_t i = 0; i < x->n; i++) {
		struct xitem *it = &x->items[i];
		store_export_free(it->e);
		for (size_t k = 0; k < it->n_m; k++) {
			free(it->m[k].anchor);
			free(it->m[k].target);
		}
		free(it->m);
		free(it->target_id);
	}
	free(x->items);
}

static int load(struct xp *x)
{
	struct store_export_filter f = {
	    .connector_id = x->conn,
	    .state_mask = (1u << STORE_EXPORT_PENDING) | (1u << STORE_EXPORT_IN_FLIGHT),
	};
	struct ids ids = {0};
	int r;

	r = store_export_list(x->s, &f, collect_id, &ids);
	if (r < 0)
		goto out;
	x->items = calloc(ids.n ? ids.n : 1, sizeof(*x->items));
	if (!x->items) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < ids.n; i++) {
		struct xitem *it = &x->items[x->n];
		r = store_export_get(x->s, ids.v[i], &it->e);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			goto out;
		x->n++;
		it->is_group = strcmp(it->e->object_type, "group") == 0;
		it->cs_id = it->e->cs_id;
		if (it->e->target_id && it->e->target_id[0] &&
		    !(it->target_id = strdup(it->e->target_id))) {
			r = -ENOMEM;
			goto out;
		}
		if (it->e->n_members) {
			r = store_export_list_members(x->s, it->e->id, collect_member, it);
			if (r < 0)
				goto out;
		}
		/* contacts are read-only in Graph: nothing is ever sent for them */
		if (strcmp(it->e->object_type, "user") != 0 && !it->is_group)
			it->finished = true;
	}
	r = 0;
out:
	free(ids.v);
	return r;
}

/* --- settling --------------------------------------------------------------------------------- */

void graph_export_item_error(struct xp *x, struct xitem *it, const struct gop *op, const char *code,
                             const char *message)
{
	const char *c = code ? code : (op && op->code[0] ? op->code : "httpError");
	char msg[GRAPH_MESSAGE_MAX + 64];
	const char *rid = op && op->request_id[0] ? op->request_id : NULL;

	if (message)
		snprintf(msg, sizeof(msg), "%s", message);
	else if (op)
		snprintf(msg, sizeof(msg), "HTTP %ld: %s", op->status,
		         op->message[0] ? op->message : "no message");
	else
		snprintf(msg, sizeof(msg), "failed");
	store_export_set_state(x->s, it->e->id, STORE_EXPORT_ERROR, c, msg, rid);
	store_run_add_error(x->s, x->o->run_id, x->o->step_id, it->e->anchor, it->e->dn, c, msg,
	                    rid);
	log_debug("Graph export %s %s %s failed: %s: %s", store_export_op_to_string(it->e->op),
	          it->e->object_type, it->e->anchor, c, msg);
	x->ret->counters.errors++;
	it->finished = true;
}

int graph_export_item_done(struct xp *x, struct xitem *it)
{
	int r = store_export_set_state(x->s, it->e->id, STORE_EXPORT_DONE, NULL, NULL, NULL);

	if (r < 0)
		return r;
	it->finished = true;
	x->done++;
	switch (it->e->op) {
	case STORE_EXPORT_ADD:
		x->ret->counters.adds++;
		break;
	case STORE_EXPORT_UPDATE:
		x->ret->counters.updates++;
		break;
	case STORE_EXPORT_DELETE:
		x->ret->counters.deletes++;
		break;
	default:
		break;
	}
	return 0;
}

/* --- shared helpers ----------------------------------------------------------------------------
 */

bool graph_export_stop_requested(struct xp *x)
{
	if (x->o->cancelled && x->o->cancelled(x->o->userdata)) {
		graph_fail(x->g, "stopped-cancelled", "export cancelled");
		x->stop = true;
	}
	return x->stop;
}

void graph_export_progress(struct xp *x)
{
	if (x->o->progress)
		x->o->progress(x->done, x->n, x->o->userdata);
}

/* Stops the step: Graph did not answer after every retry. */
void graph_export_server_down(struct xp *x, const struct gop *op)
{
	if (!x->stop)
		graph_fail(x->g, "stopped-server-down",
		           "Graph did not complete a request after %d attempts: HTTP %ld %s",
		           GRAPH_ATTEMPTS_MAX, op->status, op->message[0] ? op->message : op->code);
	x->stop = true;
}

int graph_export_add_prop(cJSON *body, const char *name, const struct attr_value *v, size_t n)
{
	cJSON *j = graph_attr_to_json(name, v, n);

	if (!j)
		return -ENOMEM;
	cJSON_DeleteItemFromObjectCaseSensitive(body, name);
	if (!cJSON_AddItemToObject(body, name, j)) {
		cJSON_Delete(j);
		return -ENOMEM;
	}
	return 0;
}

/* The password is wiped before the request's memory is released. */
static void wipe_password(struct gop *op)
{
	cJSON *pp = cJSON_GetObjectItemCaseSensitive(op->body, "passwordProfile");
	cJSON *pw = cJSON_GetObjectItemCaseSensitive(pp, "password");

	if (cJSON_IsString(pw))
		explicit_bzero(pw->valuestring, strlen(pw->valuestring));
}

void graph_export_ops_free(struct gop *ops, size_t n)
{
	for (size_t i = 0; ops && i < n; i++) {
		wipe_password(&ops[i]);
		gop_clear(&ops[i]);
	}
	free(ops);
}

int graph_export_resolve_target(struct xp *x, struct xitem *it)
{
	struct store_cs_object *o = NULL;
	int r;

	if (it->target_id)
		return 0;
	if (!it->cs_id)
		return -ENOENT;
	r = store_cs_get(x->s, it->cs_id, &o);
	if (r < 0)
		return r;
	it->target_id = strndup(o->anchor, o->anchor_len);
	store_cs_object_free(o);
	return it->target_id ? 0 : -ENOMEM;
}

/* --- updates ---------------------------------------------------------------------------------- */

static int remember_update(struct xp *x, struct xitem *it)
{
	struct attr_diff *mem = NULL;
	int r;

	if (!it->cs_id || attr_diff_count(it->e->changes) == 0)
		return 0;
	r = store_cs_get_export_memory(x->s, it->cs_id, &mem, NULL);
	if (r == -ENOENT || (r >= 0 && !mem)) {
		mem = attr_diff_new();
		r = mem ? 0 : -ENOMEM;
	}
	for (size_t i = 0; r >= 0 && i < attr_diff_count(it->e->changes); i++) {
		struct attr_change c, prev;
		r = attr_diff_at(it->e->changes, i, &c);
		if (r < 0)
			break;
		/* keep the oldest "before" value: what the import last confirmed */
		if (attr_diff_get(mem, c.name, &prev) == 0 && (prev.n_old || c.n_new))
			r = attr_diff_put(mem, c.name, prev.old_values, prev.n_old, c.new_values,
			                  c.n_new);
		else
			r = attr_diff_put(mem, c.name, c.old_values, c.n_old, c.new_values,
			                  c.n_new);
		if (r == -EINVAL)
			r = 0;
	}
	if (r >= 0)
		r = store_cs_set_export_memory(x->s, it->cs_id, mem, x->o->run_id);
	attr_diff_free(mem);
	return r;
}

/* Sends the n requests of a chunk (r: how building them went) and applies the answers in one
 * transaction: done() for a success (also a 404 when gone_ok), the server is down for a
 * transient error, an item error otherwise. Clears the requests. 0 to go on, 1 when there was
 * nothing to send, < 0 on failure. */
static int send_chunk(struct xp *x, struct gop *ops, struct xitem **v, size_t n, int r,
                      bool gone_ok, int (*done)(struct xp *x, struct xitem *it))
{
	if (r >= 0 && n > 0)
		r = graph_run(x->g, ops, n, true);
	if (r < 0 || n == 0) {
		for (size_t j = 0; j < n; j++)
			gop_clear(&ops[j]);
		return r < 0 ? r : 1;
	}
	r = store_begin(x->s);
	for (size_t j = 0; r >= 0 && j < n; j++) {
		struct gop *op = &ops[j];
		if (op->status == 204 || op->status == 200 || (gone_ok && op->status == 404))
			r = done(x, v[j]);
		else if (graph_transient(op->status))
			graph_export_server_down(x, op);
		else
			graph_export_item_error(x, v[j], op, NULL, NULL);
	}
	if (r >= 0)
		r = store_commit(x->s);
	else
		store_rollback(x->s);
	for (size_t j = 0; j < n; j++)
		gop_clear(&ops[j]);
	graph_export_progress(x);
	return r < 0 ? r : 0;
}

static int updated(struct xp *x, struct xitem *it)
{
	int r = remember_update(x, it);

	if (r >= 0 && !graph_export_has_member_work(it))
		r = graph_export_item_done(x, it);
	return r;
}

static int deleted(struct xp *x, struct xitem *it)
{
	int r = 0;

	if (it->cs_id) {
		r = store_cs_delete(x->s, it->cs_id);
		if (r == -ENOENT)
			r = 0;
	}
	return r >= 0 ? graph_export_item_done(x, it) : r;
}

static int do_updates(struct xp *x)
{
	struct gop *ops = calloc(GRAPH_EXPORT_CHUNK, sizeof(*ops));
	struct xitem **v = calloc(GRAPH_EXPORT_CHUNK, sizeof(*v));
	int r = ops && v ? 0 : -ENOMEM;
	size_t i = 0;

	while (r >= 0 && i < x->n && !graph_export_stop_requested(x)) {
		size_t n = 0;
		for (; r >= 0 && i < x->n && n < GRAPH_EXPORT_CHUNK; i++) {
			struct xitem *it = &x->items[i];
			cJSON *body = NULL;
			char path[256], *id;
			if (it->finished || it->e->op != STORE_EXPORT_UPDATE)
				continue;
			r = graph_export_resolve_target(x, it);
			if (r == -ENOENT) {
				graph_export_item_error(x, it, NULL, "noTargetId",
				                        "the Graph object id is not known");
				r = 0;
				continue;
			}
			if (r < 0)
				break;
			if (attr_diff_count(it->e->changes) == 0) {
				if (!graph_export_has_member_work(it))
					r = graph_export_item_done(x, it);
				continue;
			}
			body = cJSON_CreateObject();
			r = body ? 0 : -ENOMEM;
			for (size_t c = 0; r >= 0 && c < attr_diff_count(it->e->changes); c++) {
				struct attr_change ch;
				r = attr_diff_at(it->e->changes, c, &ch);
				if (r >= 0)
					r = graph_export_add_prop(body, ch.name, ch.new_values,
					                          ch.n_new);
			}
			id = r >= 0 ? http_escape(it->target_id) : NULL;
			if (!id) {
				cJSON_Delete(body);
				r = -ENOMEM;
				break;
			}
			snprintf(path, sizeof(path), "/%s/%s", graph_export_coll_of(it), id);
			free(id);
			r = gop_set(&ops[n], "PATCH", path, body);
			if (r < 0)
				break;
			it->sent = true;
			v[n++] = it;
		}
		r = send_chunk(x, ops, v, n, r, false, updated);
		if (r != 0)
			break;
	}
	free(ops);
	free(v);
	return r < 0 ? r : 0; /* 1: the last chunk was empty */
}

/* --- deletes ---------------------------------------------------------------------------------- */

static int do_deletes(struct xp *x)
{
	struct gop *ops = calloc(GRAPH_EXPORT_CHUNK, sizeof(*ops));
	struct xitem **v = calloc(GRAPH_EXPORT_CHUNK, sizeof(*v));
	int r = ops && v ? 0 : -ENOMEM;
	size_t i = 0;

	while (r >= 0 && i < x->n && !graph_export_stop_requested(x)) {
		size_t n = 0;
		for (; r >= 0 && i < x->n && n < GRAPH_EXPORT_CHUNK; i++) {
			struct xitem *it = &x->items[i];
			char path[256], *id;
			if (it->finished || it->e->op != STORE_EXPORT_DELETE)
				continue;
			r = graph_export_resolve_target(x, it);
			if (r == -ENOENT) {
				graph_export_item_error(x, it, NULL, "noTargetId",
				                        "the Graph object id is not known");
				r = 0;
				continue;
			}
			id = r >= 0 ? http_escape(it->target_id) : NULL;
			if (!id) {
				r = -ENOMEM;
				break;
			}
			snprintf(path, sizeof(path), "/%s/%s", graph_export_coll_of(it), id);
			free(id);
			r = gop_set(&ops[n], "DELETE", path, NULL);
			it->sent = true;
			v[n++] = it;
		}
		/* 404: already gone (a replay after a crash, or deleted in the portal) */
		r = send_chunk(x, ops, v, n, r, true, deleted);
		if (r != 0)
			break;
	}
	free(ops);
	free(v);
	return r < 0 ? r : 0; /* 1: the last chunk was empty */
}

/* --- the step --------------------------------------------------------------------------------- */

static int journal_all(struct xp *x)
{
	int r = store_begin(x->s);

	for (size_t i = 0; r >= 0 && i < x->n; i++)
		if (!x->items[i].finished)
			r = store_export_set_state(x->s, x->items[i].e->id, STORE_EXPORT_IN_FLIGHT,
			                           NULL, NULL, NULL);
	if (r >= 0)
		return store_commit(x->s);
	store_rollback(x->s);
	return r;
}

/* What was never sent goes back to pending when the step stops early. */
static int unsent_to_pending(struct xp *x)
{
	int r = store_begin(x->s);

	for (size_t i = 0; r >= 0 && i < x->n; i++) {
		struct xitem *it = &x->items[i];
		if (!it->finished && !it->sent && it->e->state != STORE_EXPORT_IN_FLIGHT)
			r = store_export_set_state(x->s, it->e->id, STORE_EXPORT_PENDING, NULL,
			                           NULL, NULL);
	}
	if (r >= 0)
		return store_commit(x->s);
	store_rollback(x->s);
	return r;
}

int graph_export(struct graph *g, struct store *s, const struct graph_export_opts *o,
                 struct graph_step_result *ret)
{
	struct xp x = {.g = g, .s = s, .o = o, .ret = ret};
	uint64_t writes0, throttled0;
	int r;

	if (!g || !s || !o || !ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (g->staging) {
		log_error("BUG: Graph export requested while staging; nothing is written");
		snprintf(ret->status, sizeof(ret->status), "stopped-error");
		snprintf(ret->error, sizeof(ret->error), "export refused: the server is staging");
		return -EPERM;
	}
	g->error[0] = '\0';
	g->stop_status = NULL;
	writes0 = g->writes_total;
	throttled0 = g->throttled_total;
	r = store_get_connector(s, GRAPH_CONNECTOR, &x.conn);
	if (r >= 0)
		r = load(&x);
	if (r >= 0)
		r = journal_all(&x);
	if (r >= 0)
		r = graph_export_creates(&x);
	if (r >= 0 && !x.stop)
		r = do_updates(&x);
	if (r >= 0 && !x.stop)
		r = graph_export_members(&x);
	if (r >= 0 && !x.stop)
		r = do_deletes(&x);
	if (r == -EACCES)
		x.stop = true;
	if (x.stop || r < 0)
		unsent_to_pending(&x);
	ret->counters.objects = x.n;
	ret->write_requests = g->writes_total - writes0;
	ret->throttled = g->throttled_total - throttled0;
	if (r < 0 && r != -EACCES) {
		snprintf(ret->status, sizeof(ret->status), "stopped-error");
		snprintf(ret->error, sizeof(ret->error), "%s",
		         g->error[0] ? g->error : strerror(-r));
	} else if (x.stop) {
		snprintf(ret->status, sizeof(ret->status), "%s",
		         g->stop_status ? g->stop_status : "stopped-error");
		snprintf(ret->error, sizeof(ret->error), "%s", g->error);
	} else if (ret->counters.errors) {
		snprintf(ret->status, sizeof(ret->status), "completed-export-errors");
	} else {
		snprintf(ret->status, sizeof(ret->status), "success");
	}
	items_free(&x);
	return r < 0 && r != -EACCES && r != -ENOMEM ? 0 : (r == -EACCES ? 0 : r);
}
