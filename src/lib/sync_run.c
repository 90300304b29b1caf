/* A sync step: the passes over the connector spaces (AD before Graph, groups after the objects
 * they reference, references resolved again where they changed), the outbound pass, batched
 * transactions, cancellation and the stale-export cleanup of a full sync. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hybridsync/log.h"
#include "sync_internal.h"

struct pass {
	struct sync_ctx *x;
	const char *connector;
	bool clear_pending;
	bool defer;
	int64_t *deferred;
	size_t n_deferred, alloc_deferred;
};

static int process_one(struct pass *p, const struct store_cs_object *o);

static int pass_cb(const struct store_cs_object *o, void *userdata)
{
	struct pass *p = userdata;
	struct sync_ctx *x = p->x;

	if (x->o->cancelled && x->batch == 0 && x->o->cancelled(x->o->userdata))
		return 1;
	if (o->flags & STORE_CS_PLACEHOLDER)
		return 0;
	/* groups after the objects they reference, so that new members are synced first */
	if (p->defer && strcasecmp(o->object_class, "group") == 0 &&
	    o->pending_import != STORE_PENDING_DELETE) {
		if (p->n_deferred == p->alloc_deferred) {
			size_t na = p->alloc_deferred ? p->alloc_deferred * 2 : 64;
			int64_t *nv = realloc(p->deferred, na * sizeof(*nv));
			if (!nv)
				return -ENOMEM;
			p->deferred = nv;
			p->alloc_deferred = na;
		}
		p->deferred[p->n_deferred++] = o->id;
		return 0;
	}
	return process_one(p, o);
}

static int run_deferred(struct pass *p)
{
	int r = 0;

	p->defer = false;
	for (size_t i = 0; i < p->n_deferred && r == 0; i++) {
		struct store_cs_object *o = NULL;
		if (p->x->o->cancelled && p->x->batch == 0 && p->x->o->cancelled(p->x->o->userdata))
			return 1;
		r = store_cs_get(p->x->s, p->deferred[i], &o);
		if (r == -ENOENT) {
			r = 0;
			continue;
		}
		if (r < 0)
			break;
		r = process_one(p, o);
		store_cs_object_free(o);
	}
	free(p->deferred);
	p->deferred = NULL;
	p->n_deferred = p->alloc_deferred = 0;
	return r;
}

static int process_one(struct pass *p, const struct store_cs_object *o)
{
	struct sync_ctx *x = p->x;
	bool membership_changes = false;
	int r;

	/* what asked for this object to be resolved again is served by this evaluation */
	if (!x->preview)
		id_set_remove(&x->retry, o->id);
	/* in a delta sync, objects that appear, disappear or change their join are referenced by
	 * groups whose members must be resolved again */
	if (!x->full && strcmp(p->connector, "ad") == 0 &&
	    (o->pending_import == STORE_PENDING_ADD || o->pending_import == STORE_PENDING_DELETE ||
	     o->pending_import == STORE_PENDING_DELETE_ADD || !o->mv_id))
		membership_changes = true;
	if (membership_changes &&
	    (r = store_cs_get_referrers(x->s, o->id, sync_referrer_cb, x)) < 0)
		return r;
	enum store_pending_import pi = o->pending_import;
	bool keep_pending = false;
	if ((r = sync_cs_object(x, o, p->connector)) < 0)
		return r;
	if (strcmp(p->connector, "graph") == 0 && pi != STORE_PENDING_DELETE) {
		struct store_cs_object *cur = NULL;
		if (store_cs_get(x->s, o->id, &cur) == 0 && !cur->mv_id) {
			/* a Graph object of ours that joins nothing (yet): its AD object may be
			 * imported later, so it stays pending and is tried again by every delta */
			keep_pending = sync_graph_is_ours(x, cur);
			if (x->full && (r = sync_keep_delete(x, cur)) < 0) {
				store_cs_object_free(cur);
				return r;
			}
		}
		store_cs_object_free(cur);
	}
	if (p->clear_pending && pi != STORE_PENDING_NONE && pi != STORE_PENDING_DELETE &&
	    !keep_pending && (r = store_cs_clear_pending_import(x->s, o->id)) < 0)
		return r;
	if (x->o->progress && x->res->counters.objects % 1000 == 0)
		x->o->progress(x->res->counters.objects, x->estimate, x->o->userdata);
	return sync_batch_tick(x);
}

static int retry_pass(struct sync_ctx *x)
{
	/* groups whose references pointed at objects synced later in this run */
	while (x->retry.n) {
		struct id_set todo = x->retry;
		memset(&x->retry, 0, sizeof(x->retry));
		x->in_retry = true;
		for (size_t i = 0; i < todo.cap; i++) {
			int64_t id = todo.v[i];
			struct store_cs_object *o = NULL;
			int r;
			if (!id || id_set_has(&x->done_retry, id))
				continue;
			id_set_add(&x->done_retry, id);
			r = store_cs_get(x->s, id, &o);
			if (r == -ENOENT)
				continue;
			if (r < 0) {
				id_set_clear(&todo);
				return r;
			}
			if (o->mv_id)
				r = sync_recompute_mv(x, o->mv_id);
			store_cs_object_free(o);
			if (r >= 0)
				r = sync_batch_tick(x);
			if (r < 0) {
				id_set_clear(&todo);
				return r;
			}
		}
		id_set_clear(&todo);
	}
	x->in_retry = false;
	return 0;
}

static int mv_all_cb(const struct store_mv_object *mv, void *userdata)
{
	struct id_set *all = userdata;
	int q = id_set_add(all, mv->id);
	return q < 0 ? q : 0;
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Outbound for a set of MV objects, in id order (reproducible exports). */
static int outbound_ids(struct sync_ctx *x, const struct id_set *set, bool cancellable,
                        const struct id_set *skip)
{
	size_t n = 0;
	int64_t *ids = malloc((set->n + 1) * sizeof(*ids));
	int r = 0;

	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < set->cap; i++)
		if (set->v[i] && !(skip && id_set_has(skip, set->v[i])))
			ids[n++] = set->v[i];
	qsort(ids, n, sizeof(*ids), cmp_id);
	for (size_t i = 0; i < n && r == 0; i++) {
		if (cancellable && x->o->cancelled && x->batch == 0 &&
		    x->o->cancelled(x->o->userdata)) {
			r = 1;
			break;
		}
		if ((r = sync_outbound(x, ids[i])) == 0)
			r = sync_batch_tick(x);
	}
	free(ids);
	return r;
}

/* The MV objects inbound changed always get their exports computed, even when the step is
 * cancelled (their pending imports are cleared already); the rest of a full sync can stop. */
static int outbound_pass(struct sync_ctx *x, bool inbound_cancelled)
{
	struct id_set all = {0};
	int r;

	r = outbound_ids(x, &x->touched, false, NULL);
	if (r != 0 || !x->full || inbound_cancelled)
		return r;
	if ((r = store_mv_iterate(x->s, NULL, mv_all_cb, &all)) == 0)
		r = outbound_ids(x, &all, true, &x->touched);
	id_set_clear(&all);
	return r;
}

static int ensure_index(struct sync_ctx *x)
{
	static const struct store_mv_index_attr base[] = {{"sourceAnchor", false},
	                                                  {"cloudAnchor", false},
	                                                  {"objectSid", false},
	                                                  {"userPrincipalName", true},
	                                                  {"mail", true}};
	struct store_mv_index_attr v[64];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		v[n++] = base[i];
	for (size_t i = 0; i < x->rules->n_index_attrs && n < 64; i++) {
		bool dup = false;
		for (size_t j = 0; j < n; j++)
			if (strcasecmp(v[j].name, x->rules->index_attrs[i]) == 0)
				dup = true;
		if (!dup) {
			v[n].name = x->rules->index_attrs[i];
			v[n].case_insensitive = true;
			n++;
		}
	}
	return store_mv_set_index_attrs(x->s, v, n);
}

void sync_ctx_done(struct sync_ctx *x)
{
	id_set_clear(&x->touched);
	id_set_clear(&x->retry);
	id_set_clear(&x->done_retry);
	id_set_clear(&x->invalid);
	sync_cache_clear(x);
	x->pv_attrs = attr_set_free(x->pv_attrs);
	x->members = str_map_free(x->members);
	x->changed_anchors = str_map_free(x->changed_anchors);
}

int sync_ctx_init(struct sync_ctx *x, struct store *s, const struct sync_rules *r,
                  const struct sync_opts *o, struct sync_result *res)
{
	int q;

	memset(x, 0, sizeof(*x));
	x->s = s;
	x->rules = r;
	x->o = o;
	x->res = res;
	x->full = o->full;
	if ((q = store_get_connector(s, "ad", &x->ad_id)) < 0)
		return q;
	return store_get_connector(s, "graph", &x->graph_id);
}

int sync_run(struct store *s, const struct sync_rules *rules, const struct sync_opts *o,
             struct sync_result *ret)
{
	struct sync_ctx x;
	struct sync_result res = {0};
	int r;
	bool cancelled = false;

	if (!s || !rules || !o || !ret)
		return -EINVAL;
	if ((r = sync_ctx_init(&x, s, rules, o, &res)) < 0)
		return r;
	if ((r = store_begin(s)) < 0)
		return r;
	if ((r = ensure_index(&x)) < 0)
		goto fail;
	if (x.full && (r = store_next_generation(s, &x.gen)) < 0)
		goto fail;
	if (o->progress) {
		uint64_t ta = 0, pa = 0, tg = 0, pg_ = 0;
		if (store_cs_count(s, x.ad_id, &ta, &pa) >= 0 &&
		    store_cs_count(s, x.graph_id, &tg, &pg_) >= 0)
			x.estimate = x.full ? ta + tg : pa + pg_;
	}
	struct pass pa = {.x = &x, .connector = "ad", .clear_pending = true, .defer = true};
	struct pass pg = {.x = &x, .connector = "graph", .clear_pending = true};
	if (x.full) {
		r = store_cs_iterate(s, x.ad_id, pass_cb, &pa);
		if (r == 0)
			r = run_deferred(&pa);
		if (r == 0)
			r = retry_pass(&x);
		if (r == 0)
			r = store_cs_iterate(s, x.graph_id, pass_cb, &pg);
	} else {
		r = store_cs_iterate_pending_import(s, x.ad_id, pass_cb, &pa);
		if (r == 0)
			r = run_deferred(&pa);
		if (r == 0)
			r = retry_pass(&x);
		if (r == 0)
			r = store_cs_iterate_pending_import(s, x.graph_id, pass_cb, &pg);
	}
	free(pa.deferred);
	if (r == 1) {
		cancelled = true;
		r = 0;
	}
	if (o->progress)
		o->progress(res.counters.objects, x.estimate, o->userdata);
	if (r == 0) {
		r = outbound_pass(&x, cancelled);
		if (r == 1) {
			cancelled = true;
			r = 0;
		}
	}
	if (r < 0)
		goto fail;
	if (x.full && !cancelled) {
		uint64_t n = 0;
		if ((r = store_export_delete_stale(s, x.graph_id, x.gen, &n)) < 0)
			goto fail;
		res.exports_changed += n;
	}
	if ((r = store_commit(s)) < 0)
		goto fail;
	log_debug("%s sync: %llu CS objects, %llu evaluations, %llu references resolved",
	          x.full ? "full" : "delta", (unsigned long long)res.counters.objects,
	          (unsigned long long)x.evaluated, (unsigned long long)x.resolved);
	snprintf(res.status, sizeof(res.status), "%s",
	         cancelled             ? "stopped-cancelled"
	         : res.counters.errors ? "completed-sync-errors"
	                               : "success");
	sync_ctx_done(&x);
	*ret = res;
	return 0;
fail:
	store_rollback(s);
	sync_ctx_done(&x);
	snprintf(res.status, sizeof(res.status), "stopped-error");
	*ret = res;
	return r;
}
