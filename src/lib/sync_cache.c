/* Small containers of a sync run: a set of ids, and the cache of the anchors that CS objects'
 * MV objects have, for resolving references (member, manager) within a run. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sync_internal.h"

int id_set_add(struct id_set *s, int64_t id)
{
	if ((s->n + 1) * 2 > s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 64;
		int64_t *nv = calloc(nc, sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++)
			if (s->v[i]) {
				size_t k = id_hash(s->v[i], nc);
				while (nv[k])
					k = (k + 1) & (nc - 1);
				nv[k] = s->v[i];
			}
		free(s->v);
		s->v = nv;
		s->cap = nc;
	}
	size_t k = id_hash(id, s->cap);
	while (s->v[k]) {
		if (s->v[k] == id)
			return 0;
		k = (k + 1) & (s->cap - 1);
	}
	s->v[k] = id;
	s->n++;
	return 1;
}

void id_set_remove(struct id_set *s, int64_t id)
{
	if (!s->cap)
		return;
	size_t k = id_hash(id, s->cap);
	while (s->v[k] && s->v[k] != id)
		k = (k + 1) & (s->cap - 1);
	if (!s->v[k])
		return;
	s->v[k] = 0;
	s->n--;
	/* backward-shift the entries after it that probed past the hole */
	size_t j = k;
	for (;;) {
		j = (j + 1) & (s->cap - 1);
		if (!s->v[j])
			return;
		size_t h = id_hash(s->v[j], s->cap);
		bool between = k <= j ? (k < h && h <= j) : (k < h || h <= j);
		if (!between) {
			s->v[k] = s->v[j];
			s->v[j] = 0;
			k = j;
		}
	}
}

bool id_set_has(const struct id_set *s, int64_t id)
{
	if (!s->cap)
		return false;
	size_t k = id_hash(id, s->cap);
	while (s->v[k]) {
		if (s->v[k] == id)
			return true;
		k = (k + 1) & (s->cap - 1);
	}
	return false;
}

void id_set_clear(struct id_set *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

void sync_cache_clear(struct sync_ctx *x)
{
	for (size_t i = 0; i < x->cache_cap; i++)
		free(x->cache[i].anchor);
	free(x->cache);
	x->cache = NULL;
	x->cache_cap = x->cache_n = 0;
}

void sync_cache_forget(struct sync_ctx *x, int64_t cs_id)
{
	id_set_add(&x->invalid, cs_id);
	if (!x->cache_cap)
		return;
	size_t k = id_hash(cs_id, x->cache_cap);
	while (x->cache[k].cs_id) {
		if (x->cache[k].cs_id == cs_id) {
			/* keep the slot (probing), mark it stale */
			free(x->cache[k].anchor);
			x->cache[k].anchor = NULL;
			x->cache[k].mv_id = -1;
			return;
		}
		k = (k + 1) & (x->cache_cap - 1);
	}
}

static struct anchor_cache_entry *cache_slot(struct sync_ctx *x, int64_t cs_id, bool *found)
{
	if ((x->cache_n + 1) * 2 > x->cache_cap) {
		size_t nc = x->cache_cap ? x->cache_cap * 2 : 1024;
		struct anchor_cache_entry *nv = calloc(nc, sizeof(*nv));
		if (!nv)
			return NULL;
		for (size_t i = 0; i < x->cache_cap; i++)
			if (x->cache[i].cs_id) {
				size_t k = id_hash(x->cache[i].cs_id, nc);
				while (nv[k].cs_id)
					k = (k + 1) & (nc - 1);
				nv[k] = x->cache[i];
			}
		free(x->cache);
		x->cache = nv;
		x->cache_cap = nc;
	}
	size_t k = id_hash(cs_id, x->cache_cap);
	while (x->cache[k].cs_id) {
		if (x->cache[k].cs_id == cs_id) {
			*found = x->cache[k].mv_id >= 0;
			return &x->cache[k];
		}
		k = (k + 1) & (x->cache_cap - 1);
	}
	*found = false;
	x->cache[k].cs_id = cs_id;
	x->cache[k].mv_id = -1;
	x->cache_n++;
	return &x->cache[k];
}

/* The sourceAnchor of the MV object a CS object is joined to (NULL when none). */
int sync_resolve_anchor(struct sync_ctx *x, int64_t cs_id, const char **ret_anchor, int64_t *ret_mv)
{
	bool found;
	struct anchor_cache_entry *e = cache_slot(x, cs_id, &found);
	struct store_cs_object *o = NULL;
	struct store_mv_object *mv = NULL;
	int r;

	if (!e)
		return -ENOMEM;
	if (found) {
		*ret_anchor = e->anchor;
		*ret_mv = e->mv_id;
		return 0;
	}
	x->resolved++;
	e->mv_id = 0;
	r = store_cs_get(x->s, cs_id, &o);
	if (r == -ENOENT) {
		*ret_anchor = NULL;
		*ret_mv = 0;
		return 0;
	}
	if (r < 0)
		return r;
	if (o->mv_id) {
		r = store_mv_get(x->s, o->mv_id, &mv);
		if (r < 0 && r != -ENOENT) {
			store_cs_object_free(o);
			return r;
		}
		if (mv && mv->source_anchor) {
			e->anchor = strdup(mv->source_anchor);
			if (!e->anchor) {
				store_cs_object_free(o);
				store_mv_object_free(mv);
				return -ENOMEM;
			}
			e->mv_id = mv->id;
		}
	} else if (!x->in_retry && (o->pending_import != STORE_PENDING_NONE || x->full)) {
		/* not synced yet in this run: the referrer is resolved again at the end */
		e->mv_id = -1;
		store_cs_object_free(o);
		*ret_anchor = NULL;
		*ret_mv = -1;
		return 0;
	}
	store_cs_object_free(o);
	store_mv_object_free(mv);
	*ret_anchor = e->anchor;
	*ret_mv = e->mv_id;
	return 0;
}
