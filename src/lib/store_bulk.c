/* Bulk loading of an empty connector space (a first full import): objects are inserted without
 * looking their anchor up, references are written without a merge and resolved from an
 * in-memory DN map, and the index of resolved references (random inserts into a large B-tree)
 * is dropped for the load and rebuilt at the end with one sort. See docs/store-schema.md. */
#include "store_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REFS_TARGET_INDEX                                                                          \
	"CREATE INDEX IF NOT EXISTS cs_refs_target ON cs_refs(target_cs_id)"                       \
	" WHERE target_cs_id <> 0"

size_t store_bulk_map_max = STORE_BULK_MAP_MAX;
int64_t store_bulk_cache_kib = STORE_BULK_CACHE_KIB;

static int fold(int ch)
{
	return (ch >= 'A' && ch <= 'Z') ? ch + 32 : ch;
}

/* FNV-1a over the ASCII-folded DN (SQLite's NOCASE equality); never 0. */
static uint64_t dn_hash(const char *dn)
{
	uint64_t h = 1469598103934665603ull;

	for (const unsigned char *p = (const unsigned char *)dn; *p; p++) {
		h ^= (uint64_t)fold(*p);
		h *= 1099511628211ull;
	}
	/* FNV leaves the low bits (the slot) poorly mixed for DNs sharing a long suffix. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h ? h : 1;
}

static bool dn_equal(const char *a, const char *b)
{
	/* Mostly the same bytes: a directory writes a DN the same way wherever it stands. */
	if (strcmp(a, b) == 0)
		return true;
	for (; *a && fold((unsigned char)*a) == fold((unsigned char)*b); a++, b++)
		;
	return fold((unsigned char)*a) == fold((unsigned char)*b);
}

void store_bulk_free(struct store *s)
{
	free(s->bulk.slots);
	free(s->bulk.arena);
	s->bulk = (struct store_bulk){0};
}

void store_bulk_forget(struct store *s)
{
	if (!s->bulk.connector_id)
		return;
	free(s->bulk.slots);
	free(s->bulk.arena);
	s->bulk.slots = NULL;
	s->bulk.arena = NULL;
	s->bulk.n = s->bulk.cap = s->bulk.arena_len = s->bulk.arena_cap = 0;
	s->bulk.map_ok = false;
	s->bulk.last_id = 0;
	s->bulk.n_last_attrs = 0;
}

/* The value a pragma reads (cache_size: pages, or -KiB); 0 when it cannot be read. */
static int64_t pragma_get(struct store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = 0;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* A setting only: sqlite3_exec leaves the store's error message as it is. */
static void cache_set(struct store *s, int64_t v)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA cache_size = %lld", (long long)v);
	(void)sqlite3_exec(s->db, sql, NULL, NULL, NULL);
}

/* Sets the load's page cache for the objects added so far (see STORE_BULK_CACHE_KIB). */
static void bulk_cache_adjust(struct store *s)
{
	struct store_bulk *b = &s->bulk;
	int64_t kib = (int64_t)(b->added * STORE_BULK_CACHE_PER_OBJECT / 1024);

	if (kib < store_bulk_cache_kib)
		kib = store_bulk_cache_kib;
	if (kib > b->cache_max_kib)
		kib = b->cache_max_kib;
	if (b->cache == 0 || kib == b->cache_kib)
		return;
	cache_set(s, -kib);
	b->cache_kib = kib;
}

static struct store_bulk_slot *find_slot(struct store_bulk *b, uint64_t h, const char *dn)
{
	size_t i = (size_t)h & (b->cap - 1);

	for (;; i = (i + 1) & (b->cap - 1)) {
		struct store_bulk_slot *sl = &b->slots[i];
		if (sl->hash == 0 || (sl->hash == h && dn_equal(b->arena + sl->off, dn)))
			return sl;
	}
}

static int grow(struct store_bulk *b)
{
	size_t cap = b->cap ? b->cap * 2 : 4096;
	struct store_bulk_slot *old = b->slots, *slots = calloc(cap, sizeof(*slots));
	size_t old_cap = b->cap;

	if (!slots)
		return -ENOMEM;
	b->slots = slots;
	b->cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].hash)
			*find_slot(b, old[i].hash, b->arena + old[i].off) = old[i];
	free(old);
	return 0;
}

int store_bulk_added(struct store *s, const char *dn, int64_t id)
{
	struct store_bulk *b = &s->bulk;
	struct store_bulk_slot *sl;
	size_t len, arena_cap, slots_cap;
	uint64_t h;

	b->last_id = id;
	b->n_last_attrs = 0;
	if (++b->added % STORE_BULK_CACHE_STEP == 0)
		bulk_cache_adjust(s);
	if (!b->map_ok || !dn)
		return 0;
	len = strlen(dn) + 1;
	arena_cap = b->arena_cap ? b->arena_cap : 1u << 20;
	while (arena_cap < b->arena_len + len)
		arena_cap *= 2;
	slots_cap = (b->n + 1) * 2 > b->cap ? (b->cap ? b->cap * 2 : 4096) : b->cap;
	if (slots_cap * sizeof(*b->slots) + arena_cap > store_bulk_map_max)
		goto nomem; /* over budget */
	if (slots_cap != b->cap && grow(b) < 0)
		goto nomem;
	h = dn_hash(dn);
	sl = find_slot(b, h, dn);
	if (sl->hash)
		return 0; /* the first object with the DN has the lowest id: it stays */
	if (arena_cap != b->arena_cap) {
		char *a = realloc(b->arena, arena_cap);
		if (!a)
			goto nomem;
		b->arena = a;
		b->arena_cap = arena_cap;
	}
	memcpy(b->arena + b->arena_len, dn, len);
	*sl = (struct store_bulk_slot){.hash = h, .id = id, .off = b->arena_len};
	b->arena_len += len;
	b->n++;
	return 0;
nomem:
	/* Not an error (out of memory or over budget): the references are resolved by a query at
	 * the end instead. */
	store_bulk_forget(s);
	return 0;
}

/* The ids of n DNs in the map (0: not there). Lookups ahead of the one answered: the slot, then the
 * name it points to, are fetched from memory while earlier DNs are compared (a large group's
 * members are random slots of a map bigger than the caches: two misses each). */
#define LOOKUP_AHEAD 8

void store_bulk_lookup_many(struct store *s, const char *const *dns, size_t n, int64_t *ret_ids)
{
	struct store_bulk *b = &s->bulk;
	uint64_t h[LOOKUP_AHEAD]; /* the hashes of DNs i - LOOKUP_AHEAD + 1 .. i */
	size_t mask = b->cap - 1;

	if (!b->map_ok || b->n == 0) {
		memset(ret_ids, 0, n * sizeof(*ret_ids));
		return;
	}
	for (size_t i = 0; i < n + LOOKUP_AHEAD; i++) {
		/* DN j is answered first: its hash shares a place with DN i's */
		if (i >= LOOKUP_AHEAD) {
			size_t j = i - LOOKUP_AHEAD;
			struct store_bulk_slot *sl = find_slot(b, h[j % LOOKUP_AHEAD], dns[j]);
			ret_ids[j] = sl->hash ? sl->id : 0;
		}
		if (i < n) {
			h[i % LOOKUP_AHEAD] = dn_hash(dns[i]);
			__builtin_prefetch(&b->slots[h[i % LOOKUP_AHEAD] & mask]);
		}
		/* halfway: the slot has arrived, fetch the name it points to */
		if (i >= LOOKUP_AHEAD / 2 && i - LOOKUP_AHEAD / 2 < n) {
			size_t k = i - LOOKUP_AHEAD / 2;
			const struct store_bulk_slot *sl = &b->slots[h[k % LOOKUP_AHEAD] & mask];
			if (sl->hash)
				__builtin_prefetch(b->arena + sl->off);
		}
	}
}

int store_bulk_refs_claim(struct store *s, int64_t cs_id, const char *attr)
{
	struct store_bulk *b = &s->bulk;

	if (!b->connector_id || cs_id != b->last_id || strlen(attr) >= STORE_BULK_ATTR_MAX ||
	    b->n_last_attrs >= STORE_BULK_ATTRS)
		return 0;
	for (unsigned i = 0; i < b->n_last_attrs; i++)
		if (dn_equal(b->last_attrs[i], attr))
			return 0;
	memcpy(b->last_attrs[b->n_last_attrs++], attr, strlen(attr) + 1);
	return 1;
}

int store_bulk_repair(struct store *s)
{
	sqlite3_stmt *st;
	int rc, r;

	r = store_stmt(
	    s, "SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = 'cs_refs_target'", &st);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return store_fail(s, rc);
	return store_exec(s, REFS_TARGET_INDEX);
}

/* The index is built by SQLite's sorter. With temporary storage in memory it allocates each
 * entry apart and sorts them all in one list; with temporary files it fills runs of the page
 * cache's size (4 MiB here: the build reads the table once, in order), sorts each while it is
 * still in the CPU's caches and merges them: twice as fast, and the peak memory stays that of
 * an import. The runs go to an unlinked file under SQLITE_TMPDIR, TMPDIR or /var/tmp; when none
 * can be written, the build is made again in memory. The page cache is then set to `cache`
 * (0: left as it is). */
static int rebuild_index(struct store *s, int64_t cache)
{
	int r;

	if (cache != 0)
		cache_set(s, -STORE_BULK_SORT_KIB);
	/* refused inside a transaction once temporary storage is open: the build still works */
	(void)sqlite3_exec(s->db, "PRAGMA temp_store = FILE", NULL, NULL, NULL);
	r = store_bulk_repair(s);
	(void)sqlite3_exec(s->db, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
	if (r < 0) /* no temporary file (no writable directory, or it is full): in memory, slower */
		r = store_bulk_repair(s);
	if (cache != 0)
		cache_set(s, cache);
	return r;
}

int store_cs_bulk_begin(struct store *s, int64_t connector_id)
{
	sqlite3_stmt *st;
	bool fk_off;
	int rc, r;

	if (!s || connector_id <= 0)
		return -EINVAL;
	r = store_writable(s);
	if (r < 0)
		return r;
	if (s->bulk.connector_id)
		return store_failf(s, -EBUSY, "a bulk load is under way");
	/* The pragma is a no-op inside a transaction: only a load started outside one runs
	 * without foreign-key checks. */
	fk_off = s->tx_depth == 0;
	r = store_tx_begin(s);
	if (r < 0)
		return r;
	r = store_stmt(s, "SELECT EXISTS (SELECT 1 FROM cs_objects WHERE connector_id = ?1)", &st);
	if (r >= 0)
		r = store_bind(s, st, "i", connector_id);
	if (r >= 0) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			r = sqlite3_column_int(st, 0) ? 0 : 1;
		else
			r = store_fail(s, rc);
		sqlite3_reset(st);
	}
	if (r == 1) {
		int e = store_exec(s, "DROP INDEX IF EXISTS cs_refs_target");
		if (e < 0)
			r = e;
	}
	if (r >= 0) {
		int e = store_tx_commit(s);
		if (e < 0)
			r = e;
	}
	if (r < 0) {
		store_tx_rollback(s);
		return r;
	}
	if (r == 1 && fk_off) {
		r = store_exec(s, "PRAGMA foreign_keys = OFF");
		if (r >= 0) {
			r = 1;
		} else {
			char err[sizeof(s->errmsg)];
			memcpy(err, s->errmsg, sizeof(err));
			(void)store_bulk_repair(s); /* no load: the index it dropped goes back */
			memcpy(s->errmsg, err, sizeof(err));
		}
	}
	if (r == 1) {
		s->bulk = (struct store_bulk){.connector_id = connector_id,
		                              .map_ok = true,
		                              .fk_off = fk_off,
		                              .cache = pragma_get(s, "PRAGMA cache_size")};
		if (s->bulk.cache < 0)
			s->bulk.cache_max_kib = -s->bulk.cache;
		else
			s->bulk.cache_max_kib =
			    s->bulk.cache * pragma_get(s, "PRAGMA page_size") / 1024;
		bulk_cache_adjust(s);
	}
	return r;
}

int store_cs_bulk_end(struct store *s, uint64_t *ret_resolved)
{
	char err[sizeof(s->errmsg)];
	int64_t connector_id, cache;
	uint64_t n = 0;
	bool fk_off;
	int r, e;

	if (!s)
		return -EINVAL;
	connector_id = s->bulk.connector_id;
	fk_off = s->bulk.fk_off;
	cache = s->bulk.cache;
	store_bulk_free(s);
	if (!connector_id) {
		if (ret_resolved)
			*ret_resolved = 0;
		return 0;
	}
	if (cache != 0)
		cache_set(s, cache); /* the load's is small for a query over every reference */
	/* Resolve first: the rows change before the index is built from them. */
	r = store_cs_resolve_refs(s, connector_id, &n);
	if (r < 0)
		memcpy(err, s->errmsg, sizeof(err)); /* the first error is the one reported */
	e = rebuild_index(s, cache);
	if (r >= 0 && e < 0) {
		r = e;
		memcpy(err, s->errmsg, sizeof(err));
	}
	if (fk_off && s->tx_depth > 0) {
		s->fk_restore = true; /* the pragma would do nothing now */
	} else if (fk_off) {
		e = store_exec(s, "PRAGMA foreign_keys = ON");
		if (r >= 0 && e < 0) {
			r = e;
			memcpy(err, s->errmsg, sizeof(err));
		}
	}
	if (r < 0)
		memcpy(s->errmsg, err, sizeof(err));
	if (r >= 0 && ret_resolved)
		*ret_resolved = n;
	return r;
}
