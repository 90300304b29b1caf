/* Graph export, creates: hard match on onPremisesImmutableId and soft match on the UPN (users),
 * the anchor extension (groups), then a create, or an adoption (PATCH) of what was found. A
 * create whose answer was lost is looked up again before it is sent again. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "graph_internal.h"
#include "hybridsync/log.h"

#define CREATE_PASSES 5

/* --- bodies ----------------------------------------------------------------------------------- */

/* The attributes of a create (or of an adoption): every new value, and the anchor. */
static int create_attrs(struct xp *x, const struct xitem *it, struct attr_set **ret)
{
	struct attr_set *a = attr_set_new();
	const char *anchor_prop = it->is_group ? x->g->anchor_extension : "onPremisesImmutableId";
	int r = a ? 0 : -ENOMEM;

	for (size_t i = 0; r >= 0 && i < attr_diff_count(it->e->changes); i++) {
		struct attr_change c;
		r = attr_diff_at(it->e->changes, i, &c);
		if (r >= 0 && c.n_new)
			r = attr_set_replace(a, c.name, c.new_values, c.n_new);
	}
	if (r >= 0 && anchor_prop && !attr_set_has(a, anchor_prop))
		r = attr_set_add_string(a, anchor_prop, it->e->anchor);
	if (r < 0) {
		attr_set_free(a);
		return r;
	}
	*ret = a;
	return 0;
}

static int body_from_set(const struct attr_set *a, cJSON **ret)
{
	cJSON *body = cJSON_CreateObject();
	int r = body ? 0 : -ENOMEM;

	for (size_t i = 0; r >= 0 && i < attr_set_count(a); i++) {
		const char *name;
		const struct attr_value *v;
		size_t n;
		r = attr_set_at(a, i, &name, &v, &n);
		if (r >= 0)
			r = graph_export_add_prop(body, name, v, n);
	}
	if (r < 0) {
		cJSON_Delete(body);
		return r;
	}
	*ret = body;
	return 0;
}

static int add_password(cJSON *body)
{
	char pw[32];
	cJSON *pp = cJSON_CreateObject();
	int r = graph_random_password(pw, sizeof(pw));

	if (r < 0 || !pp || !cJSON_AddStringToObject(pp, "password", pw) ||
	    !cJSON_AddFalseToObject(pp, "forceChangePasswordNextSignIn") ||
	    !cJSON_AddItemToObject(body, "passwordProfile", pp)) {
		explicit_bzero(pw, sizeof(pw));
		cJSON_Delete(pp);
		return r < 0 ? r : -ENOMEM;
	}
	explicit_bzero(pw, sizeof(pw));
	return 0;
}

/* Records a created or adopted object in the Graph CS, joined to the export's MV object. */
static int record_created(struct xp *x, struct xitem *it, const struct attr_set *sent)
{
	struct store_cs_object *old = NULL;
	struct attr_set *a = NULL;
	int64_t cs_id = 0;
	int r;

	r = store_cs_get_by_anchor(x->s, x->conn, it->target_id, strlen(it->target_id), &old);
	if (r < 0 && r != -ENOENT)
		return r;
	if (old && old->attrs)
		r = attr_set_copy(old->attrs, &a);
	else
		r = (a = attr_set_new()) ? 0 : -ENOMEM;
	for (size_t i = 0; r >= 0 && i < attr_set_count(sent); i++) {
		const char *name;
		const struct attr_value *v;
		size_t n;
		r = attr_set_at(sent, i, &name, &v, &n);
		if (r >= 0)
			r = attr_set_replace(a, name, v, n);
	}
	if (r >= 0) {
		struct store_cs_import in = {
		    .anchor = it->target_id,
		    .anchor_len = strlen(it->target_id),
		    .dn = it->target_id,
		    .object_class = it->is_group ? "group" : "user",
		    .attrs = a,
		};
		r = store_cs_upsert(x->s, x->conn, &in, NULL, &cs_id);
	}
	if (r >= 0 && it->e->mv_id)
		r = store_cs_set_mv(x->s, cs_id, it->e->mv_id);
	if (r >= 0)
		it->cs_id = cs_id;
	store_cs_object_free(old);
	attr_set_free(a);
	return r;
}

/* --- creates ---------------------------------------------------------------------------------- */

static const char *upn_of(const struct xitem *it)
{
	struct attr_change c;

	if (attr_diff_get(it->e->changes, "userPrincipalName", &c) == 0 && c.n_new)
		return c.new_values[0].data;
	return NULL;
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

#define LOOKUP_IN_MAX 15 /* values in one $filter "in" clause */

enum lookup_kind { LOOKUP_HARD, LOOKUP_SOFT, LOOKUP_GROUP };

struct lookup_op {
	enum lookup_kind kind;
	size_t *idx; /* positions in v */
	size_t n;
};

static int lookup_path(const char *coll, const char *prop, const char *select, struct xitem **v,
                       const size_t *idx, size_t n, bool soft, char **ret)
{
	const char **vals = calloc(n + 1, sizeof(*vals));
	char *f, *path;
	size_t len;

	if (!vals)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		vals[i] = soft ? upn_of(v[idx[i]]) : v[idx[i]]->e->anchor;
	f = n == 1 ? graph_filter_eq(prop, vals[0]) : graph_filter_in(prop, vals, n);
	free(vals);
	if (!f)
		return -ENOMEM;
	len = strlen(f) + strlen(coll) + strlen(select) + 32;
	path = malloc(len);
	if (path)
		snprintf(path, len, "/%s?$filter=%s&$select=%s", coll, f, select);
	free(f);
	*ret = path;
	return path ? 0 : -ENOMEM;
}

/* Hard match on onPremisesImmutableId, then soft match on the UPN (a cloud user not synced
 * from elsewhere), for the user creates in `v`, up to 15 per query; groups by the anchor
 * extension. A match is adopted (PATCHed) instead of created. */
static int lookup(struct xp *x, struct xitem **v, size_t n)
{
	static const char *const sel_users = "id,onPremisesImmutableId,userPrincipalName";
	size_t *hard = calloc(n + 1, sizeof(size_t)), *soft = calloc(n + 1, sizeof(size_t));
	size_t *grp = calloc(n + 1, sizeof(size_t)), nh = 0, ns = 0, ng = 0, k = 0;
	struct gop *ops = calloc(2 * n + 1, sizeof(*ops));
	struct lookup_op *lk = calloc(2 * n + 1, sizeof(*lk));
	int r = hard && soft && grp && ops && lk ? 0 : -ENOMEM;

	for (size_t i = 0; r >= 0 && i < n; i++) {
		if (v[i]->finished)
			continue;
		if (v[i]->is_group)
			grp[ng++] = i;
		else
			hard[nh++] = i;
		if (!v[i]->is_group && x->g->soft_match && upn_of(v[i]))
			soft[ns++] = i;
	}
	for (int kind = LOOKUP_HARD; r >= 0 && kind <= LOOKUP_GROUP; kind++) {
		size_t *idx = kind == LOOKUP_HARD ? hard : kind == LOOKUP_SOFT ? soft : grp;
		size_t cnt = kind == LOOKUP_HARD ? nh : kind == LOOKUP_SOFT ? ns : ng;
		size_t step = kind == LOOKUP_GROUP ? 1 : LOOKUP_IN_MAX;
		for (size_t i = 0; r >= 0 && i < cnt; i += step) {
			size_t m = cnt - i < step ? cnt - i : step;
			char *path = NULL;
			if (kind == LOOKUP_GROUP)
				r = lookup_path("groups", x->g->anchor_extension, "id", v, idx + i,
				                m, false, &path);
			else
				r = lookup_path("users",
				                kind == LOOKUP_HARD ? "onPremisesImmutableId"
				                                    : "userPrincipalName",
				                sel_users, v, idx + i, m, kind == LOOKUP_SOFT,
				                &path);
			if (r >= 0)
				r = gop_set(&ops[k], "GET", path, NULL);
			free(path);
			if (r < 0)
				break;
			lk[k] = (struct lookup_op){
			    .kind = (enum lookup_kind)kind, .idx = idx + i, .n = m};
			k++;
		}
	}
	if (r >= 0)
		r = graph_run(x->g, ops, k, true);
	/* hard matches first: they win over a soft match of the same user */
	for (size_t j = 0; r >= 0 && j < k; j++) {
		struct gop *op = &ops[j];
		const cJSON *val = cJSON_GetObjectItemCaseSensitive(op->json, "value"), *o;
		if (op->status != 200 || !cJSON_IsArray(val)) {
			for (size_t q = 0; q < lk[j].n; q++) {
				struct xitem *it = v[lk[j].idx[q]];
				if (it->finished)
					continue;
				if (graph_transient(op->status))
					graph_export_server_down(x, op);
				else
					graph_export_item_error(
					    x, it, op, op->status == 200 ? "badResponse" : NULL,
					    NULL);
			}
			continue;
		}
		cJSON_ArrayForEach(o, val)
		{
			const char *id = jstr(o, "id"), *imm = jstr(o, "onPremisesImmutableId");
			const char *upn = jstr(o, "userPrincipalName");
			for (size_t q = 0; id && q < lk[j].n; q++) {
				struct xitem *it = v[lk[j].idx[q]];
				if (it->finished || it->target_id)
					continue;
				if (lk[j].kind == LOOKUP_HARD &&
				    (!imm || strcasecmp(imm, it->e->anchor) != 0))
					continue;
				if (lk[j].kind == LOOKUP_SOFT &&
				    (!upn || strcasecmp(upn, upn_of(it)) != 0 ||
				     (imm && imm[0] && strcasecmp(imm, it->e->anchor) != 0)))
					continue;
				if (lk[j].kind == LOOKUP_SOFT)
					log_debug("Graph export: user %s soft-matched %s by UPN",
					          it->e->anchor, id);
				if (!(it->target_id = strdup(id))) {
					r = -ENOMEM;
					break;
				}
				it->adopt = true;
				break;
			}
		}
	}
	graph_export_ops_free(ops, k);
	free(lk);
	free(hard);
	free(soft);
	free(grp);
	return r;
}

static int create_round(struct xp *x, struct xitem **v, size_t n, struct xitem **retry,
                        size_t *n_retry)
{
	struct gop *ops = calloc(n + 1, sizeof(*ops));
	struct attr_set **sent = calloc(n + 1, sizeof(*sent));
	size_t k = 0;
	int r = ops && sent ? 0 : -ENOMEM;

	*n_retry = 0;
	if (r >= 0)
		r = lookup(x, v, n);
	if (r < 0 || x->stop)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct xitem *it = v[i];
		cJSON *body = NULL;
		char path[256];
		if (it->finished)
			continue;
		r = create_attrs(x, it, &sent[k]);
		if (r >= 0)
			r = body_from_set(sent[k], &body);
		if (r < 0)
			goto out;
		if (it->adopt) {
			char *id = http_escape(it->target_id);
			if (!id) {
				cJSON_Delete(body);
				r = -ENOMEM;
				goto out;
			}
			/* create-only properties cannot be sent again */
			cJSON_DeleteItemFromObjectCaseSensitive(body, "groupTypes");
			snprintf(path, sizeof(path), "/%s/%s", graph_export_coll_of(it), id);
			free(id);
			r = gop_set(&ops[k], "PATCH", path, body);
		} else {
			if (!it->is_group && (r = add_password(body)) < 0) {
				cJSON_Delete(body);
				goto out;
			}
			snprintf(path, sizeof(path), "/%s", graph_export_coll_of(it));
			r = gop_set(&ops[k], "POST", path, body);
		}
		if (r < 0)
			goto out;
		ops[k].tag = i;
		it->sent = true;
		k++;
	}
	r = graph_run(x->g, ops, k, true);
	if (r < 0)
		goto out;
	r = store_begin(x->s);
	if (r < 0)
		goto out;
	for (size_t j = 0; j < k; j++) {
		struct gop *op = &ops[j];
		struct xitem *it = v[op->tag];
		bool ok = it->adopt ? op->status == 204 || op->status == 200 : op->status == 201;
		if (ok && !it->adopt) {
			const cJSON *id = cJSON_GetObjectItemCaseSensitive(op->json, "id");
			if (!cJSON_IsString(id) || !(it->target_id = strdup(id->valuestring))) {
				graph_export_item_error(x, it, op, "badResponse",
				                        "the create answer has no id");
				continue;
			}
		}
		if (ok) {
			r = record_created(x, it, sent[j]);
			if (r >= 0 && !graph_export_has_member_work(it))
				r = graph_export_item_done(x, it);
			if (r < 0)
				break;
			continue;
		}
		if (graph_transient(op->status) || (it->adopt && op->status == 404)) {
			/* unknown outcome: look it up again before sending it again */
			free(it->target_id);
			it->target_id = NULL;
			it->adopt = false;
			retry[(*n_retry)++] = it;
			continue;
		}
		graph_export_item_error(x, it, op, NULL, NULL);
	}
	if (r >= 0)
		r = store_commit(x->s);
	else
		store_rollback(x->s);
out:
	for (size_t j = 0; sent && j < n; j++)
		attr_set_free(sent[j]);
	free(sent);
	graph_export_ops_free(ops, k);
	return r;
}

int graph_export_creates(struct xp *x)
{
	struct xitem **v = calloc(GRAPH_EXPORT_CHUNK, sizeof(*v)),
	             **retry = calloc(GRAPH_EXPORT_CHUNK, sizeof(*retry));
	int r = v && retry ? 0 : -ENOMEM;
	size_t i = 0;

	while (r >= 0 && i < x->n && !graph_export_stop_requested(x)) {
		size_t n = 0, n_retry = 0;
		for (; i < x->n && n < GRAPH_EXPORT_CHUNK; i++)
			if (!x->items[i].finished && x->items[i].e->op == STORE_EXPORT_ADD)
				v[n++] = &x->items[i];
		for (unsigned pass = 0; r >= 0 && n > 0 && !x->stop; pass++) {
			if (pass >= CREATE_PASSES) {
				graph_fail(
				    x->g, "stopped-server-down",
				    "creates did not get an answer from Graph after %u passes",
				    CREATE_PASSES);
				x->stop = true;
				break;
			}
			if (pass > 0)
				graph_sleep(0.5 * (1u << pass));
			r = create_round(x, v, n, retry, &n_retry);
			memcpy(v, retry, n_retry * sizeof(*v));
			n = n_retry;
		}
		graph_export_progress(x);
	}
	free(v);
	free(retry);
	return r;
}
