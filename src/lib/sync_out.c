/* The outbound pass: what the outbound rules want in Graph for one metaverse object, compared
 * with the Graph connector space overlaid with the export memory, upserted as one pending
 * export per target; deprovisioning; the sourceAnchor guard. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sync_internal.h"

void sync_preview_rule(struct sync_ctx *x, const struct sync_rule *r, const char *cs_connector,
                       const struct attr_set *values, const char *error);
void sync_preview_export(struct sync_ctx *x, const struct store_export_spec *spec, bool remove);

/* --- a string map ------------------------------------------------------------------------------
 */

struct str_map_entry {
	char *key;
	char *value;
};

struct str_map {
	struct str_map_entry *v;
	size_t n, cap;
};

struct str_map *str_map_free(struct str_map *m)
{
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->cap; i++) {
		free(m->v[i].key);
		free(m->v[i].value);
	}
	free(m->v);
	free(m);
	return NULL;
}

static size_t str_hash(const char *s, size_t cap)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)h & (cap - 1);
}

static struct str_map_entry *str_map_find(struct str_map *m, const char *key)
{
	if (!m || !m->cap)
		return NULL;
	size_t k = str_hash(key, m->cap);
	while (m->v[k].key) {
		if (strcmp(m->v[k].key, key) == 0)
			return &m->v[k];
		k = (k + 1) & (m->cap - 1);
	}
	return NULL;
}

static int str_map_put(struct str_map *m, const char *key, const char *value)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 256;
		struct str_map_entry *nv = calloc(nc, sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		for (size_t i = 0; i < m->cap; i++)
			if (m->v[i].key) {
				size_t k = str_hash(m->v[i].key, nc);
				while (nv[k].key)
					k = (k + 1) & (nc - 1);
				nv[k] = m->v[i];
			}
		free(m->v);
		m->v = nv;
		m->cap = nc;
	}
	size_t k = str_hash(key, m->cap);
	while (m->v[k].key) {
		if (strcmp(m->v[k].key, key) == 0) {
			char *nvl = value ? strdup(value) : NULL;
			if (value && !nvl)
				return -ENOMEM;
			free(m->v[k].value);
			m->v[k].value = nvl;
			return 0;
		}
		k = (k + 1) & (m->cap - 1);
	}
	m->v[k].key = strdup(key);
	m->v[k].value = value ? strdup(value) : NULL;
	if (!m->v[k].key || (value && !m->v[k].value))
		return -ENOMEM;
	m->n++;
	return 0;
}

/* --- outbound rule evaluation ----------------------------------------------------------------- */

static bool out_applies(const struct sync_rule *r, const char *mv_type)
{
	return !r->disabled && r->direction == RULE_OUTBOUND &&
	       strcasecmp(r->source_type, mv_type) == 0;
}

struct out_scope {
	const struct sync_rule *provision; /* first in-scope Provision rule */
	const char *target_type;
	bool any;
};

static int outbound_scope(struct sync_ctx *x, const struct store_mv_object *mv,
                          struct out_scope *ret)
{
	struct rule_source src = {.attrs = mv->attrs, .rules = x->rules, .store = x->s};
	int r;

	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < x->rules->n; i++) {
		const struct sync_rule *rule = x->rules->v[i];
		bool in;
		if (!out_applies(rule, mv->object_type))
			continue;
		if ((r = rule_in_scope(rule, &src, &in)) < 0)
			return r;
		if (!in)
			continue;
		if (!ret->any)
			ret->target_type = rule->target_type;
		ret->any = true;
		if (!ret->provision && rule->link == RULE_LINK_PROVISION)
			ret->provision = rule;
	}
	return 0;
}

/* Is the Graph object one of ours (it carries an anchor)? Returns that anchor. */
static const char *cloud_anchor(struct sync_ctx *x, const struct store_cs_object *g)
{
	const char *a = NULL;
	if (strcmp(g->object_class, "group") == 0) {
		if (x->rules->anchor_extension)
			a = attr_set_get_string(g->attrs, x->rules->anchor_extension);
	} else
		a = attr_set_get_string(g->attrs, "onPremisesImmutableId");
	return a && *a ? a : NULL;
}

static const char *graph_type(const struct store_mv_object *mv, const struct out_scope *sc);

static int rejoin_deleted(struct sync_ctx *x, const struct store_mv_object *mv, const char *type,
                          struct store_cs_object **ret_g)
{
	struct store_export *e = NULL;
	struct store_cs_object *g = NULL;
	int r;

	r = store_export_get_by_anchor(x->s, x->graph_id, type, mv->source_anchor, &e);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (e->op != STORE_EXPORT_DELETE || !e->cs_id || !mv->id) {
		store_export_free(e);
		return 0;
	}
	r = store_cs_get(x->s, e->cs_id, &g);
	store_export_free(e);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	const char *ca = cloud_anchor(x, g);
	if (g->mv_id || !ca || strcmp(ca, mv->source_anchor) != 0 ||
	    strcmp(g->object_class, type) != 0) {
		store_cs_object_free(g);
		return 0;
	}
	if (!x->preview && (r = store_cs_set_mv(x->s, g->id, mv->id)) < 0) {
		store_cs_object_free(g);
		return r;
	}
	*ret_g = g;
	return 0;
}

int sync_rejoin(struct sync_ctx *x, int64_t mv_id, const char *mv_type, const char *anchor,
                const struct attr_set *attrs)
{
	struct store_mv_object mv = {.id = mv_id,
	                             .object_type = (char *)mv_type,
	                             .source_anchor = (char *)anchor,
	                             .attrs = (struct attr_set *)attrs};
	struct store_cs_object *g = NULL;
	struct out_scope sc;
	int r;

	if (!anchor)
		return 0;
	/* only for an object the outbound rules provision, as the same Graph type */
	if ((r = outbound_scope(x, &mv, &sc)) < 0 || !sc.provision)
		return r < 0 ? r : 0;
	r = rejoin_deleted(x, &mv, graph_type(&mv, &sc), &g);
	store_cs_object_free(g);
	return r;
}

int sync_anchor_changed(struct sync_ctx *x, const char *anchor)
{
	if (!anchor)
		return 0;
	if (!x->changed_anchors && !(x->changed_anchors = calloc(1, sizeof(*x->changed_anchors))))
		return -ENOMEM;
	return str_map_put(x->changed_anchors, anchor, "1");
}

bool sync_graph_is_ours(struct sync_ctx *x, const struct store_cs_object *g)
{
	return cloud_anchor(x, g) != NULL;
}

static const char *graph_type(const struct store_mv_object *mv, const struct out_scope *sc)
{
	if (sc && sc->target_type)
		return sc->target_type;
	return strcmp(mv->object_type, "group") == 0 ? "group" : "user";
}

static int put_export(struct sync_ctx *x, struct store_export_spec *spec)
{
	enum store_upsert_result res;
	int r;

	spec->connector_id = x->graph_id;
	spec->run_id = x->o->run_id;
	spec->cause = x->cause[0] ? x->cause : NULL;
	spec->sync_gen = x->gen;
	if (x->preview) {
		sync_preview_export(x, spec, false);
		return 0;
	}
	r = store_export_upsert(x->s, spec, &res, NULL);
	if (r < 0)
		return r;
	if (res != STORE_UNCHANGED)
		x->res->exports_changed++;
	return 0;
}

/* Removes the target's pending export (a change undone, an add no longer wanted). keep_delete:
 * a pending delete stays, it is about another Graph object with the same anchor (the MV
 * object that had it was deleted). */
static int remove_export(struct sync_ctx *x, const char *type, const char *anchor, bool keep_delete)
{
	struct store_export *e = NULL;
	int r;

	if (!anchor)
		return 0;
	r = store_export_get_by_anchor(x->s, x->graph_id, type, anchor, &e);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (x->preview || (keep_delete && e->op == STORE_EXPORT_DELETE)) {
		store_export_free(e);
		return 0;
	}
	if (e->state != STORE_EXPORT_IN_FLIGHT) {
		r = store_export_delete(x->s, e->id);
		if (r >= 0)
			x->res->exports_changed++;
	}
	store_export_free(e);
	return r < 0 ? r : 0;
}

int sync_deprovision(struct sync_ctx *x, const struct store_mv_object *mv,
                     const struct store_cs_object *g)
{
	const char *type = graph_type(mv, NULL);

	if (!g || !cloud_anchor(x, g))
		/* nothing of ours in Graph: an add not yet sent is void */
		return remove_export(x, type, mv->source_anchor, true);
	const char *anchor = mv->source_anchor ? mv->source_anchor : cloud_anchor(x, g);
	/* a pending export under another type or anchor is replaced by the delete */
	struct store_export_spec spec = {
	    .op = STORE_EXPORT_DELETE,
	    .object_type = g->object_class,
	    .anchor = anchor,
	    .cs_id = g->id,
	    .mv_id = 0,
	    .dn = NULL, /* the AD object is gone; target_id names the Graph object */
	    .target_id = g->dn,
	    .rules = "deprovision",
	};
	return put_export(x, &spec);
}

int sync_keep_delete(struct sync_ctx *x, const struct store_cs_object *g)
{
	const char *anchor = cloud_anchor(x, g);
	struct store_export *e = NULL;
	int r;

	if (!anchor)
		return 0;
	r = store_export_get_by_anchor(x->s, x->graph_id, g->object_class, anchor, &e);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (e->op == STORE_EXPORT_DELETE) {
		struct store_export_spec spec = {
		    .op = STORE_EXPORT_DELETE,
		    .object_type = g->object_class,
		    .anchor = anchor,
		    .cs_id = g->id,
		    .dn = e->dn,
		    .target_id = g->dn,
		    .rules = e->rules,
		};
		char cause[sizeof(x->cause)];
		memcpy(cause, x->cause, sizeof(cause));
		if (e->cause)
			snprintf(x->cause, sizeof(x->cause), "%s", e->cause);
		r = put_export(x, &spec);
		memcpy(x->cause, cause, sizeof(cause));
	}
	store_export_free(e);
	return r;
}

/* --- members ------------------------------------------------------------------------------------
 */

/* For a member anchor: "" when it will be exported but has no Graph id yet, its Graph id, or
 * NULL when it is not exported (a contact, a filtered object, unknown). */
static int member_target(struct sync_ctx *x, const char *anchor, const char **ret)
{
	struct str_map_entry *e;
	struct store_mv_object *mv = NULL;
	struct store_cs_object *g = NULL;
	const char *val = NULL;
	int r;

	if (!x->members && !(x->members = calloc(1, sizeof(*x->members))))
		return -ENOMEM;
	if ((e = str_map_find(x->members, anchor))) {
		*ret = e->value;
		return 0;
	}
	x->resolved++;
	r = store_mv_get_by_source_anchor(x->s, anchor, &mv);
	if (r < 0 && r != -ENOENT)
		return r;
	if (mv) {
		r = store_cs_get_by_mv(x->s, x->graph_id, mv->id, &g);
		if (r < 0 && r != -ENOENT)
			goto out;
		/* a member is exported while the outbound rules provision it; a joined Graph
		 * object out of their scope is being deprovisioned */
		struct out_scope sc;
		if ((r = outbound_scope(x, mv, &sc)) < 0)
			goto out;
		if (sc.provision)
			val = g ? g->dn : "";
	}
	r = str_map_put(x->members, anchor, val);
	if (r < 0)
		goto out;
	e = str_map_find(x->members, anchor);
	*ret = e ? e->value : NULL;
	r = 0;
out:
	store_mv_object_free(mv);
	store_cs_object_free(g);
	return r;
}

struct cur_members {
	struct str_map *ids; /* Graph id -> "1" */
	int err;
};

static int cur_ref_cb(const struct store_ref *r, void *userdata)
{
	struct cur_members *c = userdata;
	return str_map_put(c->ids, r->target_dn, "1");
}

static int cur_mem_cb(const struct store_export_member *m, void *userdata)
{
	struct cur_members *c = userdata;
	if (m->op == STORE_MEMBER_ADD)
		return str_map_put(c->ids, m->member, "1");
	return str_map_put(c->ids, m->member, NULL);
}

struct member_list {
	struct store_member_change *v;
	char **owned;
	size_t n, alloc, n_owned;
};

static int ml_add(struct member_list *l, enum store_member_op op, const char *anchor,
                  const char *target)
{
	if (l->n == l->alloc) {
		size_t na = l->alloc ? l->alloc * 2 : 16;
		struct store_member_change *nv = realloc(l->v, na * sizeof(*nv));
		char **no = realloc(l->owned, 2 * na * sizeof(*no));
		if (nv)
			l->v = nv;
		if (no)
			l->owned = no;
		if (!nv || !no)
			return -ENOMEM;
		l->alloc = na;
	}
	char *a = strdup(anchor), *t = target && *target ? strdup(target) : NULL;
	if (!a || (target && *target && !t)) {
		free(a);
		free(t);
		return -ENOMEM;
	}
	l->owned[l->n_owned++] = a;
	if (t)
		l->owned[l->n_owned++] = t;
	l->v[l->n].op = op;
	l->v[l->n].member_anchor = a;
	l->v[l->n].target_id = t;
	l->n++;
	return 0;
}

static void ml_free(struct member_list *l)
{
	for (size_t i = 0; i < l->n_owned; i++)
		free(l->owned[i]);
	free(l->owned);
	free(l->v);
}

/* The anchor to name a member that is to be removed, from its Graph id. */
static int removed_anchor(struct sync_ctx *x, const char *gid, char *buf, size_t len)
{
	struct store_cs_object *g = NULL;
	struct store_mv_object *mv = NULL;
	int r;

	snprintf(buf, len, "%s", gid);
	r = store_cs_get_by_dn(x->s, x->graph_id, gid, &g);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (g->mv_id && store_mv_get(x->s, g->mv_id, &mv) == 0 && mv->source_anchor)
		snprintf(buf, len, "%s", mv->source_anchor);
	else if (cloud_anchor(x, g))
		snprintf(buf, len, "%s", cloud_anchor(x, g));
	store_mv_object_free(mv);
	store_cs_object_free(g);
	return 0;
}

/* The Graph member cache of the group's MV object ("anchor<TAB>Graph id"), from the last
 * evaluation: a member still in the Graph group under that id needs no lookup. */
static int graph_cache_load(const struct store_mv_object *mv, struct str_map *m)
{
	const struct attr_value *v;
	size_t n;
	int r;

	if (attr_set_get(mv->attrs, SYNC_HIDDEN_GRAPH, &v, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const char *p = v[i].data, *tab = memchr(p, '\t', v[i].len);
		if (!tab)
			continue;
		char *key = strndup(p, (size_t)(tab - p));
		if (!key)
			return -ENOMEM;
		r = str_map_put(m, key, tab + 1);
		free(key);
		if (r < 0)
			return r;
	}
	return 0;
}

static int value_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int graph_cache_store(struct sync_ctx *x, const struct store_mv_object *mv, char **vals,
                             size_t n)
{
	const struct attr_value *ov;
	size_t on = 0;
	struct attr_value *v = NULL;
	struct attr_set *a = NULL;
	int r = 0;

	if (x->preview)
		return 0;
	/* unchanged (same values, in any order): nothing to write */
	if (attr_set_get(mv->attrs, SYNC_HIDDEN_GRAPH, &ov, &on) < 0)
		on = 0;
	if (on == n) {
		char **old = malloc((on + 1) * sizeof(*old));
		bool same = true;
		if (!old)
			return -ENOMEM;
		for (size_t i = 0; i < on; i++)
			old[i] = (char *)ov[i].data;
		qsort(old, on, sizeof(*old), value_cmp);
		qsort(vals, n, sizeof(*vals), value_cmp);
		for (size_t i = 0; i < n && same; i++)
			same = strcmp(old[i], vals[i]) == 0;
		free(old);
		if (same)
			return 0;
	}
	v = n ? malloc(n * sizeof(*v)) : NULL;
	if (n && !v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		v[i].data = vals[i];
		v[i].len = strlen(vals[i]);
	}
	if ((r = attr_set_copy(mv->attrs, &a)) < 0)
		goto out;
	if ((r = attr_set_replace(a, SYNC_HIDDEN_GRAPH, v, n)) < 0)
		goto out;
	r = store_mv_update(x->s, mv->id, a);
out:
	attr_set_free(a);
	free(v);
	return r < 0 ? r : 0;
}

static int member_changes(struct sync_ctx *x, const struct store_mv_object *mv,
                          const struct attr_set *wants, const struct store_cs_object *g,
                          struct member_list *out)
{
	const struct attr_value *v = NULL;
	size_t n = 0, n_cache = 0;
	struct cur_members cur = {0};
	struct str_map *wanted_ids = NULL, *cached = NULL;
	char **cache_vals = NULL;
	int r;

	if (attr_set_get(wants, "member", &v, &n) < 0)
		n = 0;
	cur.ids = calloc(1, sizeof(*cur.ids));
	wanted_ids = calloc(1, sizeof(*wanted_ids));
	cached = calloc(1, sizeof(*cached));
	cache_vals = calloc(n + 1, sizeof(*cache_vals));
	if (!cur.ids || !wanted_ids || !cached || !cache_vals) {
		r = -ENOMEM;
		goto out;
	}
	if (!x->full && (r = graph_cache_load(mv, cached)) < 0)
		goto out;
	if (g) {
		if ((r = store_cs_get_refs(x->s, g->id, "member", cur_ref_cb, &cur)) < 0)
			goto out;
		if ((r = store_cs_list_export_members(x->s, g->id, cur_mem_cb, &cur)) < 0)
			goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const char *anchor = v[i].data, *target = NULL;
		struct str_map_entry *ce = str_map_find(cached, anchor), *e;
		if (ce && ce->value && !str_map_find(x->changed_anchors, anchor) &&
		    (e = str_map_find(cur.ids, ce->value)) && e->value)
			target = ce->value; /* in the Graph group under the cached id */
		else if ((r = member_target(x, anchor, &target)) < 0)
			goto out;
		if (!target)
			continue; /* not exported */
		if (*target) {
			size_t cl = strlen(anchor) + strlen(target) + 2;
			if (!(cache_vals[n_cache] = malloc(cl))) {
				r = -ENOMEM;
				goto out;
			}
			snprintf(cache_vals[n_cache++], cl, "%s\t%s", anchor, target);
			if ((r = str_map_put(wanted_ids, target, "1")) < 0)
				goto out;
			e = str_map_find(cur.ids, target);
			if (e && e->value)
				continue; /* already a member */
		}
		if ((r = ml_add(out, STORE_MEMBER_ADD, anchor, target)) < 0)
			goto out;
	}
	if ((r = graph_cache_store(x, mv, cache_vals, n_cache)) < 0)
		goto out;
	for (size_t i = 0; i < cur.ids->cap; i++) {
		const struct str_map_entry *e = &cur.ids->v[i];
		char a[256];
		if (!e->key || !e->value || str_map_find(wanted_ids, e->key))
			continue;
		if ((r = removed_anchor(x, e->key, a, sizeof(a))) < 0)
			goto out;
		/* the same anchor is added under another Graph id (its Graph object was replaced):
		 * name the removal by the old Graph id */
		for (size_t k = 0; k < out->n; k++)
			if (strcmp(out->v[k].member_anchor, a) == 0) {
				snprintf(a, sizeof(a), "%s", e->key);
				break;
			}
		if ((r = ml_add(out, STORE_MEMBER_REMOVE, a, e->key)) < 0)
			goto out;
	}
	r = 0;
out:
	for (size_t i = 0; i < n_cache; i++)
		free(cache_vals[i]);
	free(cache_vals);
	str_map_free(cached);
	str_map_free(cur.ids);
	str_map_free(wanted_ids);
	return r;
}

/* --- one object ---------------------------------------------------------------------------------
 */

static int overlay_memory(struct sync_ctx *x, const struct store_cs_object *g,
                          struct attr_set **ret)
{
	struct attr_set *cur = NULL;
	struct attr_diff *mem = NULL;
	int r;

	if ((r = attr_set_copy(g->attrs, &cur)) < 0)
		return r;
	r = store_cs_get_export_memory(x->s, g->id, &mem, NULL);
	if (r == -ENOENT)
		r = 0;
	for (size_t i = 0; r >= 0 && mem && i < attr_diff_count(mem); i++) {
		struct attr_change c;
		if ((r = attr_diff_at(mem, i, &c)) < 0)
			break;
		r = attr_set_replace(cur, c.name, c.new_values, c.n_new);
	}
	attr_diff_free(mem);
	if (r < 0) {
		attr_set_free(cur);
		return r;
	}
	*ret = cur;
	return 0;
}

static int eval_outbound(struct sync_ctx *x, const struct store_mv_object *mv, bool exists,
                         struct flow_merge *m, char *rules_buf, size_t rules_len, bool *ret_error)
{
	struct rule_source src = {.attrs = mv->attrs, .rules = x->rules, .store = x->s};
	int r;

	*ret_error = false;
	rules_buf[0] = 0;
	for (size_t i = 0; i < x->rules->n; i++) {
		const struct sync_rule *rule = x->rules->v[i];
		bool in, contributed = false;
		char errtext[600] = "";
		if (!out_applies(rule, mv->object_type))
			continue;
		if ((r = rule_in_scope(rule, &src, &in)) < 0)
			return r;
		if (!in)
			continue;
		struct attr_set *contrib = x->preview ? attr_set_new() : NULL;
		for (size_t j = 0; j < rule->n_flows; j++) {
			const struct rule_flow *f = &rule->flows[j];
			struct attr_set *vals = NULL;
			enum flow_outcome oc;
			char err[600] = "";
			if (f->apply_once && exists) {
				flow_merge_add(m, f->target, FLOW_IGNORE, f->merge, NULL,
				               rule->name);
				continue;
			}
			if ((r = rule_eval_flow(rule, f, &src, &vals, &oc, err, sizeof(err))) < 0) {
				attr_set_free(contrib);
				return r;
			}
			if (oc == FLOW_ERROR) {
				sync_object_error(x, mv->source_anchor, NULL, "sync-rule-error",
				                  "rule \"%s\": %s", rule->name, err);
				snprintf(errtext, sizeof(errtext), "%s", err);
				*ret_error = true;
			} else {
				r = flow_merge_add(m, f->target, oc, f->merge, vals, rule->name);
				if (r < 0) {
					attr_set_free(vals);
					attr_set_free(contrib);
					return r;
				}
				if (r > 0) {
					contributed = true;
					const struct attr_value *v;
					size_t n;
					if (contrib && attr_set_get(vals, f->target, &v, &n) == 0)
						attr_set_replace(contrib, f->target, v, n);
					else if (contrib)
						attr_set_add_string(
						    contrib, f->target,
						    oc == FLOW_AUTH_NULL ? "AuthoritativeNull"
						    : oc == FLOW_IGNORE  ? "IgnoreThisFlow"
						                         : "NULL");
				}
			}
			attr_set_free(vals);
		}
		if (x->preview)
			sync_preview_rule(x, rule, NULL, contrib, errtext[0] ? errtext : NULL);
		attr_set_free(contrib);
		if (contributed) {
			size_t l = strlen(rules_buf);
			snprintf(rules_buf + l, rules_len - l, "%s%s", l ? ", " : "", rule->name);
		}
	}
	return 0;
}

int sync_outbound(struct sync_ctx *x, int64_t mv_id)
{
	struct store_mv_object *mv = NULL;
	int r = store_mv_get(x->s, mv_id, &mv);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	r = sync_outbound_obj(x, mv);
	store_mv_object_free(mv);
	return r;
}

int sync_outbound_obj(struct sync_ctx *x, const struct store_mv_object *mv)
{
	int64_t mv_id = mv->id;
	struct store_cs_object *g = NULL, *ad = NULL;
	struct flow_merge *m = NULL;
	struct attr_set *wants = NULL, *cur = NULL;
	struct attr_diff *changes = NULL;
	struct member_list ml = {0};
	struct out_scope sc;
	char rules_buf[1024];
	bool error;
	int r = 0;

	if (mv_id) {
		r = store_cs_get_by_mv(x->s, x->graph_id, mv_id, &g);
		if (r < 0 && r != -ENOENT)
			goto out;
		r = store_cs_get_by_mv(x->s, x->ad_id, mv_id, &ad);
		if (r < 0 && r != -ENOENT)
			goto out;
	}
	x->evaluated++;
	if ((r = outbound_scope(x, mv, &sc)) < 0)
		goto out;
	const char *type = graph_type(mv, &sc);
	if (!sc.provision) {
		/* out of scope (filtered, a contact): an object of ours in Graph is deleted */
		if (g && cloud_anchor(x, g) && sc.any == false) {
			r = sync_deprovision(x, mv, g);
		} else if (!g)
			r = remove_export(x, type, mv->source_anchor, true);
		else
			r = 0;
		if (!(g && sc.any))
			goto out;
	}
	if (!mv->source_anchor) {
		r = 0;
		goto out;
	}
	/* a Graph object of ours that is being deleted because its MV object went, while a new
	 * MV object has its anchor (an AD object deleted and re-created): join it again instead
	 * of creating a second one */
	if (!g && sc.provision && (r = rejoin_deleted(x, mv, type, &g)) < 0)
		goto out;
	/* the sourceAnchor guard */
	if (g) {
		const char *ca = cloud_anchor(x, g);
		if (ca && strcmp(ca, mv->source_anchor) != 0) {
			r = sync_object_error(
			    x, mv->source_anchor, ad ? ad->dn : NULL, "source-anchor-changed",
			    "the sourceAnchor of an exported object changed from %s "
			    "to %s: the object is blocked",
			    ca, mv->source_anchor);
			goto out;
		}
	}
	if (!(m = flow_merge_new()) || !(wants = attr_set_new()) || !(changes = attr_diff_new())) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = eval_outbound(x, mv, g != NULL, m, rules_buf, sizeof(rules_buf), &error)) < 0)
		goto out;
	if (error) {
		r = 0;
		goto out;
	}
	if ((r = flow_merge_apply(m, NULL, wants)) < 0)
		goto out;
	if (g && (r = overlay_memory(x, g, &cur)) < 0)
		goto out;
	bool has_members = false;
	for (size_t i = 0; flow_merge_target(m, i); i++) {
		const char *t = flow_merge_target(m, i);
		const struct attr_value *w = NULL, *c = NULL;
		size_t nw = 0, nc = 0;
		if (!flow_merge_managed(m, t))
			continue;
		if (strcasecmp(t, "member") == 0) {
			has_members = true;
			continue;
		}
		if (attr_set_get(wants, t, &w, &nw) < 0)
			nw = 0;
		if (cur && attr_set_get(cur, t, &c, &nc) < 0)
			nc = 0;
		if (nw == 0 && nc == 0)
			continue;
		if (g) {
			struct attr_set *a = attr_set_new(), *b = attr_set_new();
			bool eq;
			if (!a || !b) {
				attr_set_free(a);
				attr_set_free(b);
				r = -ENOMEM;
				goto out;
			}
			if (nw)
				attr_set_replace(a, t, w, nw);
			if (nc)
				attr_set_replace(b, t, c, nc);
			eq = attr_set_equal(a, b);
			attr_set_free(a);
			attr_set_free(b);
			if (eq)
				continue;
			r = attr_diff_put(changes, t, c, nc, w, nw);
		} else if (nw) {
			r = attr_diff_put(changes, t, NULL, 0, w, nw);
		}
		if (r < 0)
			goto out;
	}
	if (has_members && (r = member_changes(x, mv, wants, g, &ml)) < 0)
		goto out;
	if (attr_diff_count(changes) == 0 && ml.n == 0) {
		r = remove_export(x, type, mv->source_anchor, g == NULL);
		if (x->preview)
			sync_preview_export(x, NULL, true);
		goto out;
	}
	struct store_export_spec spec = {
	    .op = g ? STORE_EXPORT_UPDATE : STORE_EXPORT_ADD,
	    .object_type = type,
	    .anchor = mv->source_anchor,
	    .cs_id = g ? g->id : 0,
	    .mv_id = mv_id,
	    .dn = ad ? ad->dn : NULL,
	    .target_id = g ? g->dn : NULL,
	    .changes = changes,
	    .members = ml.v,
	    .n_members = ml.n,
	    .rules = rules_buf,
	};
	r = put_export(x, &spec);
out:
	ml_free(&ml);
	attr_diff_free(changes);
	attr_set_free(cur);
	attr_set_free(wants);
	flow_merge_free(m);
	store_cs_object_free(g);
	store_cs_object_free(ad);
	return r;
}
