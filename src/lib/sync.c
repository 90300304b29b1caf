/* The sync engine: full and delta sync of the 'ad' and 'graph' connector spaces into the
 * metaverse (projection, join, attribute precedence, references), then the outbound pass that
 * computes the pending exports (sync_out.c). Batched transactions; per-object errors go to the
 * run history. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hybridsync/log.h"
#include "sync_internal.h"

#define SYNC_BATCH 1000u

/* A CS object's join or anchor changed: forget its anchor, and the groups that reference it
 * resolve their members again in this run. */
static int forget_and_notify(struct sync_ctx *x, int64_t cs_id)
{
	sync_cache_forget(x, cs_id);
	/* a full sync resolves every reference anyway, groups after their members */
	if (x->preview || x->full)
		return 0;
	return store_cs_get_referrers(x->s, cs_id, sync_referrer_cb, x);
}

/* --- helpers ---------------------------------------------------------------------------------- */

int sync_batch_tick(struct sync_ctx *x)
{
	int r;

	if (x->preview)
		return 0;
	if (++x->batch < SYNC_BATCH)
		return 0;
	x->batch = 0;
	if ((r = store_commit(x->s)) < 0)
		return r;
	return store_begin(x->s);
}

int sync_object_error(struct sync_ctx *x, const char *anchor, const char *dn, const char *code,
                      const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	x->res->counters.errors++;
	if (x->preview || !x->o->run_id)
		return 0;
	return store_run_add_error(x->s, x->o->run_id, x->o->step_id, anchor, dn, code, msg, NULL);
}

static void anchor_text(const struct store_cs_object *o, const char *connector, char *buf,
                        size_t len)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = o->anchor;
	size_t n = o->anchor_len, j = 0;

	if (strcmp(connector, "graph") == 0) {
		snprintf(buf, len, "%.*s", (int)n, (const char *)p);
		return;
	}
	for (size_t i = 0; i < n && j + 5 < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		buf[j++] = b64[(v >> 18) & 63];
		buf[j++] = b64[(v >> 12) & 63];
		buf[j++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		buf[j++] = i + 2 < n ? b64[v & 63] : '=';
	}
	buf[j] = 0;
}

static void set_cause(struct sync_ctx *x, const char *connector, const struct store_cs_object *o)
{
	static const char *const ops[] = {"sync", "add", "update", "delete", "delete-add"};
	char a[200];

	anchor_text(o, connector, a, sizeof(a));
	snprintf(x->cause, sizeof(x->cause), "%s %s %s", connector,
	         x->full && o->pending_import == STORE_PENDING_NONE
	             ? "full-sync"
	             : ops[o->pending_import < STORE_PENDING_MAX ? o->pending_import : 0],
	         a);
}

static int refs_cb_get(void *userdata, const char *attr, struct attr_set *out, const char *as);

struct refs_ctx {
	struct sync_ctx *x;
	int64_t cs_id;
	bool retry;                 /* a target is not synced yet */
	const struct attr_set *old; /* the MV object's attributes before: its reference cache */
	struct attr_set *hidden;    /* the new reference cache */
};

struct old_ref {
	int64_t cs_id;
	const char *anchor;
	size_t len;
};

struct refs_collect {
	struct sync_ctx *x;
	struct attr_value *v;
	size_t n, alloc;
	char **cache_values; /* "cs_id<TAB>anchor" */
	size_t n_cache;
	struct old_ref *old; /* open addressing by cs_id */
	size_t old_cap;
	bool retry;
	int err;
};

static const struct old_ref *old_find(const struct refs_collect *c, int64_t id)
{
	if (!c->old_cap)
		return NULL;
	size_t k = id_hash(id, c->old_cap);
	while (c->old[k].cs_id) {
		if (c->old[k].cs_id == id)
			return &c->old[k];
		k = (k + 1) & (c->old_cap - 1);
	}
	return NULL;
}

/* Reads the cache "hs:ATTR.refs" of the MV object into c->old. */
static int old_load(struct refs_collect *c, const struct attr_set *old, const char *name)
{
	const struct attr_value *v;
	size_t n;

	if (!old || attr_set_get(old, name, &v, &n) < 0 || n == 0)
		return 0;
	size_t cap = 16;
	while (cap < n * 2)
		cap *= 2;
	c->old = calloc(cap, sizeof(*c->old));
	if (!c->old)
		return -ENOMEM;
	c->old_cap = cap;
	for (size_t i = 0; i < n; i++) {
		const char *p = v[i].data, *tab = memchr(p, '\t', v[i].len);
		char *end;
		if (!tab)
			continue;
		long long id = strtoll(p, &end, 10);
		if (end != tab || id <= 0)
			continue;
		size_t k = id_hash(id, cap);
		while (c->old[k].cs_id)
			k = (k + 1) & (cap - 1);
		c->old[k].cs_id = id;
		c->old[k].anchor = tab + 1;
		c->old[k].len = v[i].len - (size_t)(tab + 1 - p);
	}
	return 0;
}

static int ref_collect_cb(const struct store_ref *r, void *userdata)
{
	struct refs_collect *c = userdata;
	const char *anchor;
	int64_t mv;
	int q;

	if (!r->target_cs_id)
		return 0;
	const struct old_ref *o = c->old ? old_find(c, r->target_cs_id) : NULL;
	char *owned = NULL;
	if (o && !id_set_has(&c->x->invalid, r->target_cs_id)) {
		owned = strndup(o->anchor, o->len);
		if (!owned)
			return -ENOMEM;
		anchor = owned;
	} else {
		q = sync_resolve_anchor(c->x, r->target_cs_id, &anchor, &mv);
		if (q < 0)
			return q;
		if (mv < 0) {
			c->retry = true;
			return 0;
		}
		if (!anchor)
			return 0;
	}
	/* the cache value "cs_id<TAB>anchor"; the value handed on points into it */
	char **ncv = realloc(c->cache_values, (c->n_cache + 1) * sizeof(*ncv));
	if (!ncv) {
		free(owned);
		return -ENOMEM;
	}
	c->cache_values = ncv;
	size_t alen = strlen(anchor), cl = alen + 24;
	char *cv = malloc(cl);
	if (!cv) {
		free(owned);
		return -ENOMEM;
	}
	int pre = snprintf(cv, cl, "%lld\t%s", (long long)r->target_cs_id, anchor);
	free(owned);
	c->cache_values[c->n_cache++] = cv;
	anchor = cv + pre - alen;
	if (c->n == c->alloc) {
		size_t na = c->alloc ? c->alloc * 2 : 16;
		struct attr_value *nv = realloc(c->v, na * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		c->v = nv;
		c->alloc = na;
	}
	/* anchors live in the cache for the whole run */
	c->v[c->n].data = anchor;
	c->v[c->n].len = strlen(anchor);
	c->n++;
	return 0;
}

static int refs_cb_get(void *userdata, const char *attr, struct attr_set *out, const char *as)
{
	struct refs_ctx *rc = userdata;
	struct refs_collect c = {.x = rc->x};
	char hname[ATTR_NAME_MAX + 1];
	int r;

	snprintf(hname, sizeof(hname), SYNC_HIDDEN_PREFIX "%s.refs", as);
	/* a full sync resolves everything again; a delta trusts the cache for targets whose join
	 * and anchor did not change */
	r = rc->x->full ? 0 : old_load(&c, rc->old, hname);
	if (r >= 0)
		r = store_cs_get_refs(rc->x->s, rc->cs_id, attr, ref_collect_cb, &c);
	if (r >= 0 && c.n)
		r = attr_set_replace(out, as, c.v, c.n);
	if (r >= 0 && rc->hidden && c.n_cache) {
		struct attr_value *hv = malloc(c.n_cache * sizeof(*hv));
		if (!hv)
			r = -ENOMEM;
		for (size_t i = 0; r >= 0 && i < c.n_cache; i++) {
			hv[i].data = c.cache_values[i];
			hv[i].len = strlen(c.cache_values[i]);
		}
		if (r >= 0)
			r = attr_set_replace(rc->hidden, hname, hv, c.n_cache);
		free(hv);
	}
	if (c.retry)
		rc->retry = true;
	for (size_t i = 0; i < c.n_cache; i++)
		free(c.cache_values[i]);
	free(c.cache_values);
	free(c.old);
	free(c.v);
	return r < 0 ? r : 0;
}

static void fill_source(struct sync_ctx *x, const struct store_cs_object *o, const char *connector,
                        struct rule_source *src, struct refs_ctx *rc)
{
	memset(src, 0, sizeof(*src));
	src->attrs = o->attrs;
	src->dn = o->dn;
	src->anchor = o->anchor;
	src->anchor_len = o->anchor_len;
	src->connector = connector;
	src->store = x->s;
	src->cs_id = o->id;
	src->connector_id = o->connector_id;
	src->rules = x->rules;
	if (strcmp(connector, "ad") == 0) {
		rc->x = x;
		rc->cs_id = o->id;
		rc->retry = false;
		rc->old = NULL;
		rc->hidden = NULL;
		src->get_refs = refs_cb_get;
		src->refs_userdata = rc;
	}
}

static bool rule_applies(const struct sync_rule *r, const char *connector, const char *cls)
{
	return !r->disabled && r->direction == RULE_INBOUND &&
	       strcmp(r->connector, connector) == 0 && strcasecmp(r->source_type, cls) == 0;
}

/* --- preview hooks (sync_preview.c) ---------------------------------------------------------- */
void sync_preview_rule(struct sync_ctx *x, const struct sync_rule *r, const char *cs_connector,
                       const struct attr_set *values, const char *error);

/* --- the metaverse object --------------------------------------------------------------------- */

struct mv_sources {
	struct store_cs_object *cs[2]; /* ad, graph */
	const char *conn[2];
};

static int eval_inbound(struct sync_ctx *x, const struct mv_sources *ms,
                        const struct attr_set *current, struct attr_set **ret_attrs,
                        bool *ret_provisioned, bool *ret_error, bool *ret_retry)
{
	struct flow_merge *m = flow_merge_new();
	struct rule_source src[2];
	struct refs_ctx rc[2];
	bool provisioned = false, error = false;
	int r = 0;

	if (!m)
		return -ENOMEM;
	struct attr_set *hidden = attr_set_new();
	if (!hidden) {
		flow_merge_free(m);
		return -ENOMEM;
	}
	for (int k = 0; k < 2; k++)
		if (ms->cs[k]) {
			fill_source(x, ms->cs[k], ms->conn[k], &src[k], &rc[k]);
			rc[k].old = current;
			rc[k].hidden = hidden;
		}
	for (size_t i = 0; i < x->rules->n && r >= 0; i++) {
		const struct sync_rule *rule = x->rules->v[i];
		for (int k = 0; k < 2 && r >= 0; k++) {
			bool in;
			if (!ms->cs[k] || !rule_applies(rule, ms->conn[k], ms->cs[k]->object_class))
				continue;
			if ((r = rule_in_scope(rule, &src[k], &in)) < 0)
				break;
			if (!in)
				continue;
			if (rule->link != RULE_LINK_JOIN)
				provisioned = true;
			struct attr_set *contrib = x->preview ? attr_set_new() : NULL;
			char errtext[600] = "";
			for (size_t j = 0; j < rule->n_flows; j++) {
				const struct rule_flow *f = &rule->flows[j];
				struct attr_set *vals = NULL;
				enum flow_outcome oc;
				char err[600] = "";
				if (f->apply_once && current && attr_set_has(current, f->target)) {
					flow_merge_add(m, f->target, FLOW_IGNORE, f->merge, NULL,
					               rule->name);
					continue;
				}
				r = rule_eval_flow(rule, f, &src[k], &vals, &oc, err, sizeof(err));
				if (r < 0)
					break;
				if (oc == FLOW_ERROR) {
					char a[200];
					anchor_text(ms->cs[k], ms->conn[k], a, sizeof(a));
					sync_object_error(x, a, ms->cs[k]->dn, "sync-rule-error",
					                  "rule \"%s\": %s", rule->name, err);
					snprintf(errtext, sizeof(errtext), "%s", err);
					error = true;
				} else {
					r = flow_merge_add(m, f->target, oc, f->merge, vals,
					                   rule->name);
					if (r > 0 && contrib) {
						const struct attr_value *v;
						size_t n;
						if (oc == FLOW_AUTH_NULL)
							attr_set_add_string(contrib, f->target,
							                    "AuthoritativeNull");
						else if (oc == FLOW_IGNORE)
							attr_set_add_string(contrib, f->target,
							                    "IgnoreThisFlow");
						else if (attr_set_get(vals, f->target, &v, &n) == 0)
							attr_set_replace(contrib, f->target, v, n);
						else
							attr_set_add_string(contrib, f->target,
							                    "NULL");
					}
					if (r > 0)
						r = 0;
				}
				attr_set_free(vals);
				if (r < 0)
					break;
			}
			if (x->preview)
				sync_preview_rule(x, rule, ms->conn[k], contrib,
				                  errtext[0] ? errtext : NULL);
			attr_set_free(contrib);
		}
	}
	if (r >= 0) {
		struct attr_set *out = attr_set_new();
		if (!out)
			r = -ENOMEM;
		else if ((r = flow_merge_apply(m, current, out)) < 0)
			attr_set_free(out);
		else {
			/* the reference caches of this evaluation, and the Graph member cache the
			 * outbound pass keeps */
			for (size_t i = 0; r >= 0 && i < attr_set_count(hidden); i++) {
				const char *name;
				const struct attr_value *v;
				size_t n;
				if ((r = attr_set_at(hidden, i, &name, &v, &n)) >= 0)
					r = attr_set_replace(out, name, v, n);
			}
			const struct attr_value *gv;
			size_t gn;
			if (r >= 0 && current &&
			    attr_set_get(current, SYNC_HIDDEN_GRAPH, &gv, &gn) == 0)
				r = attr_set_replace(out, SYNC_HIDDEN_GRAPH, gv, gn);
			if (r < 0)
				attr_set_free(out);
			else
				*ret_attrs = out;
		}
	}
	attr_set_free(hidden);
	flow_merge_free(m);
	*ret_provisioned = provisioned;
	*ret_error = error;
	*ret_retry = (ms->cs[0] && rc[0].retry);
	return r;
}

static int load_sources(struct sync_ctx *x, int64_t mv_id, struct mv_sources *ms)
{
	int r;

	memset(ms, 0, sizeof(*ms));
	ms->conn[0] = "ad";
	ms->conn[1] = "graph";
	r = store_cs_get_by_mv(x->s, x->ad_id, mv_id, &ms->cs[0]);
	if (r < 0 && r != -ENOENT)
		return r;
	r = store_cs_get_by_mv(x->s, x->graph_id, mv_id, &ms->cs[1]);
	if (r < 0 && r != -ENOENT) {
		ms->cs[0] = store_cs_object_free(ms->cs[0]);
		return r;
	}
	/* a preview of a delete or disjoin: the object is still joined in the store */
	for (int k = 0; k < 2; k++)
		if (x->pv_exclude && ms->cs[k] && ms->cs[k]->id == x->pv_exclude)
			ms->cs[k] = store_cs_object_free(ms->cs[k]);
	return 0;
}

static void free_sources(struct mv_sources *ms)
{
	store_cs_object_free(ms->cs[0]);
	store_cs_object_free(ms->cs[1]);
}

static int drop_export_by_anchor(struct sync_ctx *x, const char *type, const char *anchor)
{
	struct store_export *e = NULL;
	int r;

	if (!anchor || x->preview)
		return 0;
	r = store_export_get_by_anchor(x->s, x->graph_id, type, anchor, &e);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (e->state != STORE_EXPORT_IN_FLIGHT) {
		r = store_export_delete(x->s, e->id);
		if (r >= 0)
			x->res->exports_changed++;
	}
	store_export_free(e);
	return r < 0 ? r : 0;
}

/* Recomputes the attributes of an MV object from every joined CS object; deletes it (and
 * deprovisions its Graph object) when no provisioning rule keeps it. */
int sync_recompute_mv(struct sync_ctx *x, int64_t mv_id)
{
	struct store_mv_object *mv = NULL;
	struct mv_sources ms;
	struct attr_set *attrs = NULL;
	bool provisioned, error, retry;
	int r;

	r = store_mv_get(x->s, mv_id, &mv);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if ((r = load_sources(x, mv_id, &ms)) < 0)
		goto out;
	x->evaluated++;
	if (x->join_changed) {
		x->join_changed = false;
		if ((r = sync_anchor_changed(x, mv->source_anchor)) < 0)
			goto out;
	}
	r = eval_inbound(x, &ms, mv->attrs, &attrs, &provisioned, &error, &retry);
	if (r < 0)
		goto out;
	if (retry && ms.cs[0] && !x->in_retry && (r = id_set_add(&x->retry, ms.cs[0]->id)) < 0)
		goto out;
	if (x->preview) {
		if (!provisioned) { /* would be deleted: its Graph object deprovisioned */
			x->pv_mv = 0;
			r = sync_deprovision(x, mv, ms.cs[1]);
			goto out;
		}
		/* what the MV object would hold; sync_preview runs the outbound rules on it */
		attr_set_free(x->pv_attrs);
		x->pv_attrs = attrs;
		attrs = NULL;
		x->pv_mv = provisioned ? mv_id : 0;
		r = 0;
		goto out;
	}
	if (!provisioned) {
		/* no source keeps it: delete, deprovision */
		if ((r = sync_deprovision(x, mv, ms.cs[1])) < 0)
			goto out;
		if ((r = sync_anchor_changed(x, mv->source_anchor)) < 0)
			goto out;
		if (!x->preview) {
			if (ms.cs[0] && (r = forget_and_notify(x, ms.cs[0]->id)) < 0)
				goto out;
			if ((r = store_mv_delete(x->s, mv_id)) < 0)
				goto out;
		}
		x->res->counters.deletes++;
		r = 0;
		goto out;
	}
	if (error) { /* keep the MV object as it was; the error is recorded */
		r = 0;
		goto out;
	}
	const char *sa = attr_set_get_string(attrs, "sourceAnchor");
	if (sa && (!mv->source_anchor || strcmp(sa, mv->source_anchor) != 0)) {
		if ((r = sync_anchor_changed(x, sa)) < 0 ||
		    (r = sync_anchor_changed(x, mv->source_anchor)) < 0)
			goto out;
		if (!x->preview) {
			r = store_mv_set_source_anchor(x->s, mv_id, sa);
			if (r == -EEXIST) {
				sync_object_error(
				    x, sa, ms.cs[0] ? ms.cs[0]->dn : NULL, "duplicate-anchor",
				    "sourceAnchor %s is already used by another object", sa);
				r = 0;
				goto out;
			}
			if (r < 0)
				goto out;
			/* an add queued under the old anchor is void now */
			const char *type = strcmp(mv->object_type, "group") == 0 ? "group" : "user";
			if ((r = drop_export_by_anchor(x, type, mv->source_anchor)) < 0)
				goto out;
			/* groups name their members by anchor: they resolve again */
			if (ms.cs[0] && (r = forget_and_notify(x, ms.cs[0]->id)) < 0)
				goto out;
		}
	}
	if (!x->preview) {
		r = store_mv_update(x->s, mv_id, attrs);
		if (r < 0)
			goto out;
		if (r > 0)
			x->res->counters.updates++;
	}
	if ((r = id_set_add(&x->touched, mv_id)) < 0)
		goto out;
	r = 0;
out:
	free_sources(&ms);
	attr_set_free(attrs);
	store_mv_object_free(mv);
	return r;
}

/* --- join and projection ---------------------------------------------------------------------- */

static bool values_match(const struct attr_value *a, size_t na, const struct attr_value *b,
                         size_t nb, bool cs)
{
	for (size_t i = 0; i < na; i++)
		for (size_t j = 0; j < nb; j++)
			if (a[i].len == b[j].len &&
			    (cs ? memcmp(a[i].data, b[j].data, a[i].len) == 0
			        : strncasecmp(a[i].data, b[j].data, a[i].len) == 0))
				return true;
	return false;
}

/* Tries the join groups of `rule` top to bottom: the first group with exactly one match wins.
 * *ret_mv is 0 when none did. */
static int try_join(struct sync_ctx *x, const struct sync_rule *rule, const struct rule_source *src,
                    int64_t connector_id, int64_t *ret_mv, bool *ret_ambiguous)
{
	int r = 0;

	*ret_mv = 0;
	*ret_ambiguous = false;
	for (size_t g = 0; g < rule->n_join; g++) {
		const struct rule_join_group *jg = &rule->join[g];
		int64_t found = 0;
		size_t nfound = 0;
		struct attr_set *tmp = attr_set_new();
		const struct attr_value *sv;
		size_t sn;
		if (!tmp)
			return -ENOMEM;
		/* candidates from the first clause through the MV index */
		struct rule_flow df = {
		    .type = RULE_FLOW_DIRECT, .source = jg->v[0].source, .target = "v"};
		struct attr_set *vals = NULL;
		enum flow_outcome oc;
		char err[8];
		r = rule_eval_flow(rule, &df, src, &vals, &oc, err, sizeof(err));
		attr_set_free(tmp);
		if (r < 0)
			return r;
		if (attr_set_get(vals, "v", &sv, &sn) < 0)
			sn = 0;
		for (size_t i = 0; i < sn && nfound <= 1; i++) {
			int64_t ids[8];
			size_t n = 0;
			r = store_mv_find_by_index(x->s, jg->v[0].target, sv[i].data, sv[i].len,
			                           ids, 8, &n);
			if (r < 0)
				break;
			for (size_t k = 0; k < n && k < 8; k++) {
				struct store_mv_object *mv = NULL;
				struct store_cs_object *other = NULL;
				bool ok = true;
				if (ids[k] == found)
					continue;
				if ((r = store_mv_get(x->s, ids[k], &mv)) < 0)
					break;
				if (strcasecmp(mv->object_type, rule->target_type) != 0)
					ok = false;
				if (ok && jg->v[0].case_sensitive) {
					const struct attr_value *tv;
					size_t tn;
					if (attr_set_get(mv->attrs, jg->v[0].target, &tv, &tn) <
					        0 ||
					    !values_match(&sv[i], 1, tv, tn, true))
						ok = false;
				}
				for (size_t c = 1; ok && c < jg->n; c++) {
					struct rule_flow cf = {.type = RULE_FLOW_DIRECT,
					                       .source = jg->v[c].source,
					                       .target = "v"};
					struct attr_set *cv = NULL;
					const struct attr_value *a, *b;
					size_t an, bn;
					if ((r = rule_eval_flow(rule, &cf, src, &cv, &oc, err,
					                        sizeof(err))) < 0)
						break;
					if (attr_set_get(cv, "v", &a, &an) < 0 ||
					    attr_set_get(mv->attrs, jg->v[c].target, &b, &bn) < 0 ||
					    !values_match(a, an, b, bn, jg->v[c].case_sensitive))
						ok = false;
					attr_set_free(cv);
				}
				/* an MV object holds one CS object per connector */
				if (ok && r >= 0) {
					int q =
					    store_cs_get_by_mv(x->s, connector_id, mv->id, &other);
					if (q == 0 && other->id != src->cs_id)
						ok = false;
					else if (q < 0 && q != -ENOENT)
						r = q;
					store_cs_object_free(other);
				}
				store_mv_object_free(mv);
				if (r < 0)
					break;
				if (ok) {
					found = ids[k];
					nfound++;
				}
			}
			if (r < 0)
				break;
		}
		attr_set_free(vals);
		if (r < 0)
			return r;
		if (nfound == 1) {
			*ret_mv = found;
			return 0;
		}
		if (nfound > 1)
			*ret_ambiguous = true;
	}
	return 0;
}

static int graph_referrer_cb(const struct store_ref *r, void *userdata)
{
	struct sync_ctx *x = userdata;
	struct store_cs_object *g = NULL;
	int q = store_cs_get(x->s, r->cs_id, &g);

	if (q == -ENOENT)
		return 0;
	if (q < 0)
		return q;
	if (g->mv_id)
		q = id_set_add(&x->touched, g->mv_id);
	store_cs_object_free(g);
	return q < 0 ? q : 0;
}

static int touch_graph_referrers(struct sync_ctx *x, int64_t cs_id)
{
	return store_cs_get_referrers(x->s, cs_id, graph_referrer_cb, x);
}

/* Inbound processing of one CS object. */
int sync_cs_object(struct sync_ctx *x, const struct store_cs_object *o, const char *connector)
{
	struct rule_source src;
	struct refs_ctx rc;
	const struct sync_rule *joiner = NULL, *provisioner = NULL;
	bool any = false;
	int64_t mv_id = o->mv_id;
	int r;

	x->evaluated++;
	x->res->counters.objects++;
	set_cause(x, connector, o);
	if (o->pending_import == STORE_PENDING_DELETE) {
		/* Graph groups that held it compute their membership again */
		if (strcmp(connector, "graph") == 0 && !x->preview &&
		    (r = touch_graph_referrers(x, o->id)) < 0)
			return r;
		if (x->preview)
			x->pv_exclude = o->id;
		else {
			/* referrers resolve their references again */
			sync_cache_forget(x, o->id);
			if ((r = store_cs_delete(x->s, o->id)) < 0)
				return r;
		}
		x->join_changed = true;
		if (mv_id && (r = sync_recompute_mv(x, mv_id)) < 0)
			return r;
		x->join_changed = false;
		if (strcmp(connector, "graph") == 0 && mv_id)
			id_set_add(&x->touched, mv_id);
		return 0;
	}
	if (o->pending_import == STORE_PENDING_DELETE_ADD && mv_id && !x->preview) {
		/* the object class changed: leave the old MV object, then sync it as new */
		if ((r = store_cs_set_mv(x->s, o->id, 0)) < 0)
			return r;
		if (strcmp(connector, "ad") == 0 && (r = forget_and_notify(x, o->id)) < 0)
			return r;
		x->join_changed = true;
		if ((r = sync_recompute_mv(x, mv_id)) < 0)
			return r;
		mv_id = 0;
	}
	fill_source(x, o, connector, &src, &rc);
	for (size_t i = 0; i < x->rules->n; i++) {
		const struct sync_rule *rule = x->rules->v[i];
		bool in;
		if (!rule_applies(rule, connector, o->object_class))
			continue;
		if ((r = rule_in_scope(rule, &src, &in)) < 0)
			return r;
		if (!in)
			continue;
		any = true;
		if (!joiner && rule->n_join)
			joiner = rule;
		else if (joiner && rule->n_join && !mv_id) {
			char a[200];
			anchor_text(o, connector, a, sizeof(a));
			sync_object_error(
			    x, a, o->dn, "ambiguous-join-rules",
			    "rules \"%s\" and \"%s\" both have join criteria and are in "
			    "scope; only one may be",
			    joiner->name, rule->name);
			return 0;
		}
		if (!provisioner && rule->link == RULE_LINK_PROVISION)
			provisioner = rule;
	}
	if (mv_id && !any) {
		/* out of scope of every rule: disjoin */
		if (x->preview)
			x->pv_exclude = o->id;
		else if ((r = store_cs_set_mv(x->s, o->id, 0)) < 0)
			return r;
		if (strcmp(connector, "ad") == 0 && (r = forget_and_notify(x, o->id)) < 0)
			return r;
		x->join_changed = true;
		r = sync_recompute_mv(x, mv_id);
		goto done;
	}
	if (!mv_id && joiner) {
		bool amb;
		if ((r = try_join(x, joiner, &src, o->connector_id, &mv_id, &amb)) < 0)
			return r;
		if (amb && !mv_id) {
			char a[200];
			anchor_text(o, connector, a, sizeof(a));
			sync_object_error(x, a, o->dn, "ambiguous-join",
			                  "rule \"%s\": more than one metaverse object matches",
			                  joiner->name);
		}
		if (mv_id && !x->preview && (r = store_cs_set_mv(x->s, o->id, mv_id)) < 0)
			return r;
	}
	if (!mv_id && provisioner) {
		/* projection: the sourceAnchor decides; an MV object that already has it (a
		 * re-created CS object) is joined instead */
		struct mv_sources ms = {{(struct store_cs_object *)o, NULL}, {connector, "graph"}};
		struct attr_set *attrs = NULL;
		bool prov, err, retry;
		if (strcmp(connector, "graph") == 0) {
			ms.cs[0] = NULL;
			ms.cs[1] = (struct store_cs_object *)o;
			ms.conn[0] = "ad";
		}
		r = eval_inbound(x, &ms, NULL, &attrs, &prov, &err, &retry);
		if (r < 0)
			return r;
		if (err) {
			attr_set_free(attrs);
			goto done;
		}
		const char *sa = attr_set_get_string(attrs, "sourceAnchor");
		struct store_mv_object *ex = NULL;
		if (sa && store_mv_get_by_source_anchor(x->s, sa, &ex) == 0) {
			struct store_cs_object *other = NULL;
			if (store_cs_get_by_mv(x->s, o->connector_id, ex->id, &other) == -ENOENT)
				mv_id = ex->id;
			store_cs_object_free(other);
			store_mv_object_free(ex);
			if (!mv_id) {
				sync_object_error(
				    x, sa, o->dn, "duplicate-anchor",
				    "sourceAnchor %s is already used by another object", sa);
				attr_set_free(attrs);
				goto done;
			}
		} else if (!x->preview) {
			r = store_mv_create(x->s, provisioner->target_type, sa, attrs, &mv_id);
			if (r >= 0)
				r = store_cs_set_mv(x->s, o->id, mv_id);
			if (r >= 0)
				r = sync_anchor_changed(x, sa);
			if (r >= 0)
				r = sync_rejoin(x, mv_id, provisioner->target_type, sa, attrs);
			attr_set_free(attrs); /* sa points into it */
			if (r < 0)
				return r;
			x->res->counters.adds++;
			/* projected with every inbound flow already: no second evaluation */
			if (strcmp(connector, "ad") == 0 && (r = forget_and_notify(x, o->id)) < 0)
				return r;
			if (retry && !x->in_retry && (r = id_set_add(&x->retry, o->id)) < 0)
				return r;
			if ((r = id_set_add(&x->touched, mv_id)) < 0)
				return r;
			goto done;
		} else {
			/* would be projected: sync_preview shows it and its export */
			attr_set_free(x->pv_attrs);
			x->pv_attrs = attrs;
			attrs = NULL;
			x->pv_type = provisioner->target_type;
			x->pv_mv = 0;
		}
		attr_set_free(attrs);
		if (mv_id && !x->preview && (r = store_cs_set_mv(x->s, o->id, mv_id)) < 0)
			return r;
	}
	if (mv_id) {
		if (mv_id != o->mv_id)
			x->join_changed = true;
		if (mv_id != o->mv_id && strcmp(connector, "ad") == 0) {
			if ((r = forget_and_notify(x, o->id)) < 0)
				return r;
		} else if (o->pending_import == STORE_PENDING_ADD ||
		           o->pending_import == STORE_PENDING_DELETE_ADD)
			sync_cache_forget(x, o->id);
		r = sync_recompute_mv(x, mv_id);
		if (r < 0)
			return r;
	}
done:
	return 0;
}

int sync_referrer_cb(const struct store_ref *r, void *userdata)
{
	struct sync_ctx *x = userdata;
	int q = id_set_add(&x->retry, r->cs_id);
	return q < 0 ? q : 0;
}
