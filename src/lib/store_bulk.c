/* Bulk loading of an empty connector space (a first full import): objects are inserted without
 * looking their anchor up, references are written without a merge and resolved from an
 * in-memory DN map, and the index of resolved references (random inserts into a large B-tree)
 * is dropped for the load and rebuilt at the end with one sort. References the map could not
 * resolve, when there are many, lose their index too and are resolved at the end in passes
 * over the table, each with a map of as many objects as its budget holds. See
 * docs/store-schema.md. */
#include "store_internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The indexes of cs_refs a load drops and builds again at its end (as in schema version 2):
 * the first always, the second when the load writes many unresolved rows. */
#define REFS_INDEXES                                                                               \
	"CREATE INDEX IF NOT EXISTS cs_refs_target ON cs_refs(target_cs_id)"                       \
	" WHERE target_cs_id <> 0;"                                                                \
	"CREATE INDEX IF NOT EXISTS cs_refs_unresolved ON cs_refs(connector_id, target_dn)"        \
	" WHERE target_cs_id = 0"

size_t store_bulk_map_max = STORE_BULK_MAP_MAX;
int64_t store_bulk_cache_kib = STORE_BULK_CACHE_KIB;
uint64_t store_bulk_unresolved_step = STORE_BULK_UNRESOLVED_STEP;
unsigned store_bulk_passes;

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

/* The map's memory: slots, entries and parents. */
static void map_free(struct store_bulk *b)
{
	for (size_t i = 0; i < b->n_blocks; i++)
		free(b->blocks[i]);
	for (uint32_t i = 0; i < b->n_parents; i++)
		free(b->parents[i]);
	free(b->slots);
	free(b->blocks);
	free(b->parents);
	free(b->parent_slots);
	b->slots = NULL;
	b->blocks = NULL;
	b->parents = NULL;
	b->parent_slots = NULL;
	b->n = b->cap = b->n_blocks = b->blocks_cap = b->block_used = 0;
	b->n_parents = b->parents_cap = 0;
	b->parent_cap = b->parent_bytes = 0;
}

void store_bulk_free(struct store *s)
{
	map_free(&s->bulk);
	s->bulk = (struct store_bulk){0};
}

void store_bulk_forget(struct store *s)
{
	if (!s->bulk.connector_id)
		return;
	map_free(&s->bulk);
	s->bulk.map_ok = false;
	s->bulk.last_id = 0;
	s->bulk.n_last_attrs = 0;
}

/* The value a pragma reads (cache_size: pages, or -KiB); 0 when it cannot be read. */
int64_t store_pragma_get(struct store *s, const char *sql)
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

/* An entry of the map: the object's id and its DN's first RDN, the rest of the DN being the
 * parent's name (none: the DN has no unescaped comma). A query matches when it is the RDN, a
 * comma and the parent, under ASCII folding: the whole DN, wherever the split. */
struct bulk_entry {
	int64_t id;
	uint32_t parent;
	char rdn[];
};
#define NO_PARENT       UINT32_MAX
#define UNITS_PER_BLOCK (STORE_BULK_BLOCK / STORE_BULK_ALIGN)

/* The comma that ends the first RDN (RFC 4514 escapes skipped, so that every "CN=Last\, First"
 * of a container shares its parent); NULL when none. */
static const char *first_comma(const char *dn)
{
	for (; *dn; dn++) {
		if (*dn == '\\' && dn[1])
			dn++;
		else if (*dn == ',')
			return dn;
	}
	return NULL;
}

static uint32_t hash32(const char *dn)
{
	uint32_t h = (uint32_t)dn_hash(dn);
	return h ? h : 1;
}

static struct bulk_entry *entry_at(const struct store_bulk *b, uint32_t ent)
{
	return (struct bulk_entry *)(b->blocks[ent / UNITS_PER_BLOCK] +
	                             (size_t)(ent % UNITS_PER_BLOCK) * STORE_BULK_ALIGN);
}

static bool entry_is(const struct store_bulk *b, const struct bulk_entry *e, const char *dn)
{
	const char *p = e->rdn;

	for (; *p && fold((unsigned char)*p) == fold((unsigned char)*dn); p++, dn++)
		;
	if (*p)
		return false;
	if (e->parent == NO_PARENT)
		return *dn == '\0';
	return *dn == ',' && dn_equal(b->parents[e->parent], dn + 1);
}

static struct store_bulk_slot *find_slot(struct store_bulk *b, uint32_t h, const char *dn)
{
	size_t i = h & (b->cap - 1);

	for (;; i = (i + 1) & (b->cap - 1)) {
		struct store_bulk_slot *sl = &b->slots[i];
		if (sl->hash == 0 || (sl->hash == h && entry_is(b, entry_at(b, sl->ent), dn)))
			return sl;
	}
}

/* The memory the map would take with `slots` slots and one more block. */
static size_t map_bytes(const struct store_bulk *b, size_t slots, bool new_block)
{
	return slots * sizeof(*b->slots) + (b->n_blocks + new_block) * STORE_BULK_BLOCK +
	       b->parent_cap * sizeof(*b->parent_slots) + b->parents_cap * sizeof(*b->parents) +
	       b->parent_bytes;
}

/* Doubles the slots: each moves by the hash it keeps. */
static int grow(struct store_bulk *b)
{
	size_t cap = b->cap ? b->cap * 2 : 4096;
	struct store_bulk_slot *old = b->slots, *slots = calloc(cap, sizeof(*slots));
	size_t old_cap = b->cap;

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < old_cap; i++) {
		if (!old[i].hash)
			continue;
		size_t j = old[i].hash & (cap - 1);
		while (slots[j].hash)
			j = (j + 1) & (cap - 1);
		slots[j] = old[i];
	}
	b->slots = slots;
	b->cap = cap;
	free(old);
	return 0;
}

/* The index of a parent name, added when new; -ENOMEM when out of memory or budget. */
static int64_t parent_index(struct store_bulk *b, const char *name)
{
	uint32_t h = hash32(name);
	size_t i, len = strlen(name) + 1;

	if (b->parent_cap) {
		for (i = h & (b->parent_cap - 1); b->parent_slots[i];
		     i = (i + 1) & (b->parent_cap - 1))
			if (dn_equal(b->parents[b->parent_slots[i] - 1], name))
				return b->parent_slots[i] - 1;
	}
	if (b->n_parents >= NO_PARENT - 1)
		return -ENOMEM;
	if ((size_t)(b->n_parents + 1) * 2 > b->parent_cap) { /* both tables double */
		size_t cap = b->parent_cap ? b->parent_cap * 2 : 64;
		size_t more = cap * sizeof(*b->parent_slots) + cap / 2 * sizeof(*b->parents) -
		              b->parent_cap * sizeof(*b->parent_slots) -
		              b->parents_cap * sizeof(*b->parents);
		if (map_bytes(b, b->cap, false) + more + len > store_bulk_map_max)
			return -ENOMEM;
		uint32_t *slots = calloc(cap, sizeof(*slots));
		char **names = slots ? realloc(b->parents, cap / 2 * sizeof(*names)) : NULL;
		if (!names) {
			free(slots);
			return -ENOMEM;
		}
		b->parents = names;
		b->parents_cap = (uint32_t)(cap / 2);
		for (uint32_t k = 0; k < b->n_parents; k++) {
			size_t j = hash32(names[k]) & (cap - 1);
			while (slots[j])
				j = (j + 1) & (cap - 1);
			slots[j] = k + 1;
		}
		free(b->parent_slots);
		b->parent_slots = slots;
		b->parent_cap = cap;
	}
	if (map_bytes(b, b->cap, false) + len > store_bulk_map_max)
		return -ENOMEM;
	b->parents[b->n_parents] = strdup(name);
	if (!b->parents[b->n_parents])
		return -ENOMEM;
	b->parent_bytes += len;
	for (i = h & (b->parent_cap - 1); b->parent_slots[i]; i = (i + 1) & (b->parent_cap - 1))
		;
	b->parent_slots[i] = ++b->n_parents;
	return b->n_parents - 1;
}

/* Room for an entry of `size` bytes; its place in *ret_ent. NULL: out of memory or budget. */
static struct bulk_entry *entry_new(struct store_bulk *b, size_t size, uint32_t *ret_ent)
{
	if (size > STORE_BULK_BLOCK)
		return NULL;
	if (b->n_blocks == 0 || b->block_used + size > STORE_BULK_BLOCK) {
		if ((b->n_blocks + 1) * (size_t)UNITS_PER_BLOCK > UINT32_MAX ||
		    map_bytes(b, b->cap, true) > store_bulk_map_max)
			return NULL;
		if (b->n_blocks == b->blocks_cap) {
			size_t cap = b->blocks_cap ? b->blocks_cap * 2 : 16;
			char **v = realloc(b->blocks, cap * sizeof(*v));
			if (!v)
				return NULL;
			b->blocks = v;
			b->blocks_cap = cap;
		}
		b->blocks[b->n_blocks] = malloc(STORE_BULK_BLOCK);
		if (!b->blocks[b->n_blocks])
			return NULL;
		b->n_blocks++;
		b->block_used = 0;
	}
	*ret_ent =
	    (uint32_t)((b->n_blocks - 1) * UNITS_PER_BLOCK + b->block_used / STORE_BULK_ALIGN);
	b->block_used += size;
	return entry_at(b, *ret_ent);
}

/* Adds a DN unless the map has it (the first object with a DN, the lowest id, stays): 1 when
 * added, 0 when there, -ENOMEM when out of memory or over budget (never for a DN there). */
static int map_add(struct store_bulk *b, const char *dn, int64_t id)
{
	struct store_bulk_slot *sl;
	struct bulk_entry *e;
	const char *comma;
	size_t rdn_len, size;
	int64_t parent = NO_PARENT;
	uint32_t h = hash32(dn), ent;

	if ((b->n + 1) * 4 > b->cap * 3) { /* at most three slots in four used */
		if (b->cap && find_slot(b, h, dn)->hash)
			return 0; /* no growth (that may fail) for a DN there */
		if (map_bytes(b, b->cap ? b->cap * 2 : 4096, false) > store_bulk_map_max ||
		    grow(b) < 0)
			return -ENOMEM;
	}
	sl = find_slot(b, h, dn);
	if (sl->hash)
		return 0;
	comma = first_comma(dn);
	rdn_len = comma ? (size_t)(comma - dn) : strlen(dn);
	if (comma && (parent = parent_index(b, comma + 1)) < 0)
		return -ENOMEM;
	size = offsetof(struct bulk_entry, rdn) + rdn_len + 1;
	size = (size + STORE_BULK_ALIGN - 1) / STORE_BULK_ALIGN * STORE_BULK_ALIGN;
	e = entry_new(b, size, &ent);
	if (!e)
		return -ENOMEM;
	e->id = id;
	e->parent = (uint32_t)parent;
	memcpy(e->rdn, dn, rdn_len);
	e->rdn[rdn_len] = '\0';
	*sl = (struct store_bulk_slot){.hash = h, .ent = ent};
	b->n++;
	return 1;
}

int store_bulk_added(struct store *s, const char *dn, int64_t id)
{
	struct store_bulk *b = &s->bulk;

	b->last_id = id;
	b->n_last_attrs = 0;
	if (++b->added % STORE_BULK_CACHE_STEP == 0)
		bulk_cache_adjust(s);
	if (b->map_ok && dn && map_add(b, dn, id) < 0)
		/* Not an error (out of memory or over budget): the references are resolved at the
		 * end instead. */
		store_bulk_forget(s);
	return 0;
}

/* The ids of n DNs in the map (0: not there). Lookups ahead of the one answered: the slot, then the
 * name it points to, are fetched from memory while earlier DNs are compared (a large group's
 * members are random slots of a map bigger than the caches: two misses each). */
#define LOOKUP_AHEAD 8

static void map_lookup_many(struct store_bulk *b, const char *const *dns, size_t n,
                            int64_t *ret_ids)
{
	uint32_t h[LOOKUP_AHEAD]; /* the hashes of DNs i - LOOKUP_AHEAD + 1 .. i */
	size_t mask = b->cap - 1;

	if (b->n == 0) {
		memset(ret_ids, 0, n * sizeof(*ret_ids));
		return;
	}
	for (size_t i = 0; i < n + LOOKUP_AHEAD; i++) {
		/* DN j is answered first: its hash shares a place with DN i's */
		if (i >= LOOKUP_AHEAD) {
			size_t j = i - LOOKUP_AHEAD;
			struct store_bulk_slot *sl = find_slot(b, h[j % LOOKUP_AHEAD], dns[j]);
			ret_ids[j] = sl->hash ? entry_at(b, sl->ent)->id : 0;
		}
		if (i < n) {
			h[i % LOOKUP_AHEAD] = hash32(dns[i]);
			__builtin_prefetch(&b->slots[h[i % LOOKUP_AHEAD] & mask]);
		}
		/* halfway: the slot has arrived, fetch the entry it points to */
		if (i >= LOOKUP_AHEAD / 2 && i - LOOKUP_AHEAD / 2 < n) {
			size_t k = i - LOOKUP_AHEAD / 2;
			const struct store_bulk_slot *sl = &b->slots[h[k % LOOKUP_AHEAD] & mask];
			if (sl->hash)
				__builtin_prefetch(entry_at(b, sl->ent));
		}
	}
}

void store_bulk_lookup_many(struct store *s, const char *const *dns, size_t n, int64_t *ret_ids)
{
	if (s->bulk.map_ok)
		map_lookup_many(&s->bulk, dns, n, ret_ids);
	else
		memset(ret_ids, 0, n * sizeof(*ret_ids));
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

void store_bulk_unresolved(struct store *s, size_t n)
{
	struct store_bulk *b = &s->bulk;
	uint64_t before = b->unresolved;

	b->unresolved += n;
	/* Again after each step: a rollback brings the index back. Refused while a statement
	 * reads (none does here): the rows then go into the index, slower. */
	if (before / store_bulk_unresolved_step != b->unresolved / store_bulk_unresolved_step)
		(void)sqlite3_exec(s->db, "DROP INDEX IF EXISTS cs_refs_unresolved", NULL, NULL,
		                   NULL);
}

static int index_exists(struct store *s, const char *name, bool *ret)
{
	sqlite3_stmt *st;
	int rc, r;

	r = store_stmt(s, "SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "t", name);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail(s, rc);
	*ret = rc == SQLITE_ROW;
	return 0;
}

/* The object a reference to `dn` resolves to when several have it (RESOLVE). */
static int dn_winner(struct store *s, int64_t connector_id, const char *dn, int64_t *ret_id)
{
	sqlite3_stmt *st;
	int rc, r;

	r = store_stmt(s, "SELECT " RESOLVE("?1", "?2"), &st);
	if (r >= 0)
		r = store_bind(s, st, "it", connector_id, dn);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER)
		*ret_id = sqlite3_column_int64(st, 0);
	else
		r = store_fail(s, rc == SQLITE_ROW ? SQLITE_INTERNAL : rc);
	sqlite3_reset(st);
	return r;
}

/* The place where the next pass starts: after this DN and id in the DN index. */
struct pass_start {
	char *dn;
	int64_t id;
};

/* Fills an empty map with the connector's objects after *from in the order of the DN index
 * (DN, ASCII folded, then id: the objects of one DN come together, the lowest id first), until
 * its budget; *from becomes the last object added, *ret_more tells whether objects are left. */
static int fill_map(struct store *s, struct store_bulk *m, int64_t connector_id,
                    struct pass_start *from, bool *ret_more)
{
	char *next = NULL; /* the last DN added (the row's text goes with the next step) */
	size_t next_cap = 0;
	sqlite3_stmt *st;
	int64_t id = 0, winner = 0;
	int rc, r;

	*ret_more = false;
	r = store_stmt(s,
	               "SELECT id, dn FROM cs_objects WHERE connector_id = ?1"
	               " AND (dn, id) > (?2, ?3) ORDER BY dn, id",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "iti", connector_id, from->dn ? from->dn : "", from->id);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1) + 1;
		int added = d ? map_add(m, d, sqlite3_column_int64(st, 0)) : -ENOMEM;
		if (added < 0) {
			*ret_more = true;
			break;
		}
		/* A DN of several objects (rare): the one the query picks */
		if (added == 0 && (r = dn_winner(s, connector_id, d, &winner)) >= 0)
			entry_at(m, find_slot(m, hash32(d), d)->ent)->id = winner;
		if (r < 0)
			break;
		if (len > next_cap) {
			char *p = realloc(next, len < 256 ? 256 : len);
			if (!p) {
				r = store_failf(s, -ENOMEM, "out of memory");
				break;
			}
			next = p;
			next_cap = len < 256 ? 256 : len;
		}
		memcpy(next, d, len);
		id = sqlite3_column_int64(st, 0);
	}
	if (r >= 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = store_fail(s, rc);
	sqlite3_reset(st);
	if (r >= 0 && next) {
		free(from->dn);
		from->dn = next;
		from->id = id;
	} else {
		free(next);
	}
	return r;
}

#define RESOLVE_BATCH 4096

/* Resolves the unresolved rows whose DN the map knows, reading them in key order a batch at a
 * time (each batch continues after the last row read; rows changed meanwhile are not read
 * again by an open statement). */
static int resolve_with(struct store *s, struct store_bulk *m, int64_t connector_id, uint64_t *n)
{
	int64_t *cs_id = malloc(RESOLVE_BATCH * sizeof(*cs_id));
	int64_t *ids = malloc(RESOLVE_BATCH * sizeof(*ids));
	char **attr = calloc(RESOLVE_BATCH, sizeof(*attr));
	char **dn = calloc(RESOLVE_BATCH, sizeof(*dn));
	int64_t last_id = -1;
	char *last_attr = NULL, *last_dn = NULL;
	size_t k = RESOLVE_BATCH;
	sqlite3_stmt *st;
	bool oom;
	int rc = SQLITE_DONE, r = 0;

	if (!cs_id || !ids || !attr || !dn)
		r = store_failf(s, -ENOMEM, "out of memory");
	while (r >= 0 && k == RESOLVE_BATCH) {
		r = store_stmt(s,
		               /* "+": the key's order, without sorting */
		               "SELECT cs_id, attr, target_dn FROM cs_refs"
		               " WHERE (cs_id, attr, target_cs_id, target_dn) > (?2, ?3, 0, ?4)"
		               " AND +target_cs_id = 0 AND connector_id = ?1"
		               " ORDER BY cs_id, attr, target_cs_id, target_dn LIMIT ?5",
		               &st);
		if (r >= 0)
			r = store_bind(s, st, "iitti", connector_id, last_id,
			               last_attr ? last_attr : "", last_dn ? last_dn : "",
			               (int64_t)RESOLVE_BATCH);
		if (r < 0)
			break;
		oom = false;
		for (k = 0; k < RESOLVE_BATCH && (rc = sqlite3_step(st)) == SQLITE_ROW; k++) {
			const char *a = (const char *)sqlite3_column_text(st, 1);
			const char *d = (const char *)sqlite3_column_text(st, 2);
			cs_id[k] = sqlite3_column_int64(st, 0);
			attr[k] = a ? strdup(a) : NULL;
			dn[k] = d ? strdup(d) : NULL;
			if (!attr[k] || !dn[k]) { /* NOT NULL columns: out of memory */
				k++;
				oom = true;
				break;
			}
		}
		if (oom)
			r = store_failf(s, -ENOMEM, "out of memory");
		else if (k < RESOLVE_BATCH && rc != SQLITE_DONE)
			r = store_fail(s, rc);
		sqlite3_reset(st);
		if (r >= 0 && k > 0)
			map_lookup_many(m, (const char *const *)dn, k, ids);
		for (size_t i = 0; i < k && r >= 0; i++) {
			if (ids[i] == 0)
				continue;
			r = store_stmt(
			    s,
			    "UPDATE OR REPLACE cs_refs SET target_cs_id = ?4, target_dn = ''"
			    " WHERE cs_id = ?1 AND attr = ?2 AND target_cs_id = 0"
			    " AND target_dn = ?3",
			    &st);
			if (r >= 0)
				r = store_bind(s, st, "itti", cs_id[i], attr[i], dn[i], ids[i]);
			if (r >= 0)
				r = store_exec_stmt(s, st);
			if (r >= 0)
				*n += (uint64_t)sqlite3_changes(s->db);
		}
		if (k > 0) { /* the last row read is where the next batch starts */
			free(last_attr);
			free(last_dn);
			last_id = cs_id[k - 1];
			last_attr = attr[k - 1];
			last_dn = dn[k - 1];
			attr[k - 1] = dn[k - 1] = NULL;
		}
		for (size_t i = 0; i < k; i++) {
			free(attr[i]);
			free(dn[i]);
			attr[i] = dn[i] = NULL;
		}
	}
	free(last_attr);
	free(last_dn);
	free(cs_id);
	free(ids);
	free(attr);
	free(dn);
	return r;
}

/* Resolves the connector's unresolved references in passes (see store_bulk_unresolved): each
 * fills a map with the next objects of the DN index, up to the map's budget, then resolves the
 * rows it knows. A DN's objects come together; when there are several, the one the resolving
 * query picks is looked up. Memory stays that of a map, and the DN index and the reference
 * table are read in order, once a pass. */
static int resolve_in_passes(struct store *s, int64_t connector_id, uint64_t *ret_n)
{
	struct store_bulk m = {0};
	struct pass_start from = {.dn = NULL, .id = 0};
	bool more = true;
	int r = 0;

	*ret_n = 0;
	while (r >= 0 && more) {
		map_free(&m);
		r = fill_map(s, &m, connector_id, &from, &more);
		if (r >= 0 && m.n == 0 && more) { /* not even one DN fits: the query does it */
			uint64_t n = 0;
			r = store_cs_resolve_refs(s, connector_id, &n);
			*ret_n += n;
			break;
		}
		if (r >= 0 && m.n > 0) { /* one transaction a pass, not one an update */
			store_bulk_passes++;
			r = store_tx_begin(s);
			if (r >= 0)
				r = resolve_with(s, &m, connector_id, ret_n);
			if (r >= 0)
				r = store_tx_commit(s);
			else
				store_tx_rollback(s);
		}
	}
	map_free(&m);
	free(from.dn);
	return r;
}

int store_bulk_repair(struct store *s)
{
	bool target = false, unresolved = false;
	int r = index_exists(s, "cs_refs_target", &target);

	if (r >= 0)
		r = index_exists(s, "cs_refs_unresolved", &unresolved);
	if (r < 0)
		return r;
	return target && unresolved ? 0 : store_exec(s, REFS_INDEXES);
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
		                              .cache = store_pragma_get(s, "PRAGMA cache_size")};
		if (s->bulk.cache < 0)
			s->bulk.cache_max_kib = -s->bulk.cache;
		else
			s->bulk.cache_max_kib =
			    s->bulk.cache * store_pragma_get(s, "PRAGMA page_size") / 1024;
		bulk_cache_adjust(s);
		store_ckpt_start(s);
	}
	return r;
}

int store_cs_bulk_end(struct store *s, uint64_t *ret_resolved)
{
	char err[sizeof(s->errmsg)];
	int64_t connector_id, cache;
	uint64_t n = 0;
	bool fk_off, indexed = true;
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
	/* Resolve first: the rows change before the index is built from them. Both write outside
	 * store_tx_begin: the WAL's bound is kept here. */
	if (s->tx_depth == 0)
		store_ckpt_before_begin(s);
	r = index_exists(s, "cs_refs_unresolved", &indexed);
	if (r >= 0)
		r = indexed ? store_cs_resolve_refs(s, connector_id, &n)
		            : resolve_in_passes(s, connector_id, &n);
	if (r < 0)
		memcpy(err, s->errmsg, sizeof(err)); /* the first error is the one reported */
	if (s->tx_depth == 0)
		store_ckpt_before_begin(s);
	e = rebuild_index(s, cache);
	if (r >= 0 && e < 0) {
		r = e;
		memcpy(err, s->errmsg, sizeof(err));
	}
	/* after the rebuild: the checkpoint of the load's last pages ran beside it */
	store_ckpt_stop(s);
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
