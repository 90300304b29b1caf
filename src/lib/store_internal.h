/* Private to the store module (store*.c): the handle, the statement cache, error translation
 * and binding helpers. The only header that includes sqlite3.h. */
#pragma once

#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "hybridsync/store.h"

#define STORE_ERRMSG_MAX 512
#define STORE_BATCH      512 /* rows fetched per step of a streaming iteration */

struct store_stmt_slot {
	const char *sql; /* the literal at the call site is the cache key */
	sqlite3_stmt *st;
};

struct store_index_attr {
	char *name; /* lower case */
	bool case_insensitive;
};

/* The CS object a reference points to: the non-transient one with that DN, else any (as
 * store_cs_get_by_dn); coalesce() evaluates the second lookup only when needed. */
#define RESOLVE(conn, dn)                                                                          \
	"coalesce((SELECT c.id FROM cs_objects c WHERE c.connector_id = " conn " AND c.dn = " dn   \
	" AND (c.flags & 2) = 0 LIMIT 1), (SELECT c.id FROM cs_objects c"                          \
	" WHERE c.connector_id = " conn " AND c.dn = " dn " LIMIT 1))"

/* Bulk loading of an empty connector space (store_bulk.c): a map from DN (ASCII case folded)
 * to the id of the first object added with it, so references resolve without a query. A slot
 * holds the low 32 bits of the DN's hash (never 0: 0 is a free slot) and where its entry is.
 * An entry holds the id and the DN's first RDN; the rest of the DN, shared by every object
 * of a container, is stored once in a table of parents. */
struct store_bulk_slot {
	uint32_t hash;
	uint32_t ent; /* the entry, in STORE_BULK_ALIGN units from the start of the blocks */
};
#define STORE_BULK_ALIGN 8
#define STORE_BULK_BLOCK (1u << 20) /* entries are written into blocks of this size */

/* The bulk DN map's budget (slots, entries and parents, about 50 bytes an object): beyond it
 * the map is forgotten and references are resolved at the end (by the query, or in passes when
 * there are many), so memory stays bounded whatever the directory's size. A variable so that
 * tests can lower it. */
#define STORE_BULK_MAP_MAX (64u << 20)
extern size_t store_bulk_map_max;
/* The page cache (KiB) while the reference index is rebuilt: the sorter's run size (SQLite's
 * smallest is 250 pages, which is this). */
#define STORE_BULK_SORT_KIB 4096
/* The page cache during a load: STORE_BULK_CACHE_KIB, or STORE_BULK_CACHE_PER_OBJECT bytes per
 * object added so far when that is more, up to the store's own setting. A load appends to its
 * tables and inserts at random into the anchor and DN indexes of cs_objects (about 100 bytes an
 * object): pages beyond those are seldom read again, and each page the cache adds is fresh
 * memory for the kernel to fault in. */
#define STORE_BULK_CACHE_KIB        16384
#define STORE_BULK_CACHE_PER_OBJECT 128
#define STORE_BULK_CACHE_STEP       8192 /* objects between two adjustments */
extern int64_t store_bulk_cache_kib;     /* STORE_BULK_CACHE_KIB; tests lower it */
#define STORE_BULK_ATTRS    4
#define STORE_BULK_ATTR_MAX 64

struct store_bulk {
	int64_t connector_id; /* 0: not bulk loading */
	bool map_ok;          /* the map knows every object of the connector */
	bool fk_off;          /* foreign keys are off for the load (turned back on at the end) */
	int64_t cache;        /* the page cache setting to go back to (PRAGMA cache_size's value) */
	int64_t cache_max_kib; /* that setting in KiB: the load's cache stays under it */
	int64_t cache_kib;     /* the load's page cache now (0: left as it was) */
	uint64_t added;        /* objects the load added */
	uint64_t unresolved;   /* reference rows it wrote unresolved */
	struct store_bulk_slot *slots;
	size_t n, cap;   /* cap: a power of two */
	char **blocks;   /* of STORE_BULK_BLOCK bytes */
	size_t n_blocks; /* allocated; the last one is filled up to block_used */
	size_t blocks_cap;
	size_t block_used;
	char **parents; /* the DNs' parts after their first RDN, by index */
	uint32_t n_parents, parents_cap;
	uint32_t *parent_slots; /* index + 1 (0: free), by hash; a power of two */
	size_t parent_cap;
	size_t parent_bytes; /* the parents' names */
	/* The object last added by the bulk path and the reference attributes already written
	 * for it: only a first store_cs_set_refs per attribute may skip the merge. */
	int64_t last_id;
	char last_attrs[STORE_BULK_ATTRS][STORE_BULK_ATTR_MAX];
	unsigned n_last_attrs;
};

struct store {
	sqlite3 *db;
	char *path;
	bool readonly;
	unsigned tx_depth;
	struct store_stmt_slot *stmts;
	size_t n_stmts, cap_stmts;
	struct store_index_attr *index_attrs;
	size_t n_index_attrs;
	char errmsg[STORE_ERRMSG_MAX];
	struct store_bulk bulk;
	/* A bulk load ended inside a transaction, where the pragma does nothing: foreign keys go
	 * back on when it ends. */
	bool fk_restore;
	struct store_ckpt *ckpt; /* a bulk load's checkpointer (store_ckpt.c), or NULL */
};

/* Translates a SQLite result code to a negative errno and keeps SQLite's message. */
int store_fail(struct store *s, int rc);
/* Records our own message for `err` (negative errno) and returns it. */
int store_failf(struct store *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int store_errno_from_sqlite(int rc);

/* A cached prepared statement for `sql` (a string literal), reset and with bindings cleared. */
int store_stmt(struct store *s, const char *sql, sqlite3_stmt **ret);
/* Binds parameters 1..n from `types`: 'i' int64_t, 't' const char * (NULL binds NULL),
 * 'b' const void *, size_t (NULL binds NULL), 'n' NULL. Pass exactly those C types. */
int store_bind(struct store *s, sqlite3_stmt *st, const char *types, ...);
/* Steps a statement that returns no row (or whose rows are ignored) and resets it. */
int store_exec_stmt(struct store *s, sqlite3_stmt *st);
/* Decodes the current row of `st` into slot `i` of the caller's `batch` (or, for a single
 * row, into the object `ret` points to). On failure the decoder frees what it built. */
typedef int (*store_decode_fn)(struct store *s, sqlite3_stmt *st, void *batch, size_t i);
/* Steps a bound single-row query: the row decoded into slot 0 of `ret`, -ENOENT when there is
 * none. Resets the statement. */
int store_get_row(struct store *s, sqlite3_stmt *st, store_decode_fn decode, void *ret);
/* One page of a keyset iteration: steps a bound query for up to STORE_BATCH rows, decoding
 * each into `batch`, and resets it. *ret_n gets the rows decoded (to be delivered or freed by
 * the caller even when an error is returned). */
int store_fetch_page(struct store *s, sqlite3_stmt *st, store_decode_fn decode, void *batch,
                     size_t *ret_n);
/* Runs a literal SQL script (migrations, pragmas, transaction control). */
int store_exec(struct store *s, const char *sql);

int store_tx_begin(struct store *s);
int store_tx_commit(struct store *s);
int store_tx_rollback(struct store *s);
int store_writable(struct store *s);

int64_t store_now(void);
/* Copies a text column (NULL stays NULL). */
int store_col_text(struct store *s, sqlite3_stmt *st, int col, char **ret);
int store_col_blob(struct store *s, sqlite3_stmt *st, int col, void **ret, size_t *ret_len);
void store_col_digest(sqlite3_stmt *st, int col, uint8_t out[ATTR_DIGEST_SIZE]);
int store_col_attrs(struct store *s, sqlite3_stmt *st, int col, struct attr_set **ret);
/* Serializes a set and, unless `digest` is NULL (known already), computes its digest. */
int store_encode_attrs(struct store *s, const struct attr_set *attrs, void **ret_buf,
                       size_t *ret_len, uint8_t digest[ATTR_DIGEST_SIZE]);

/* store_bulk.c */
/* Something the map cannot follow happened (a rollback, a delete, a flag or DN change): from
 * now on references are left for store_cs_resolve_refs, and set_refs merges as usual. */
void store_bulk_forget(struct store *s);
/* The value a pragma (or any query) reads first; 0 when it cannot be read. */
int64_t store_pragma_get(struct store *s, const char *sql);
/* The bulk path of store_cs_upsert added `id` with `dn`. */
int store_bulk_added(struct store *s, const char *dn, int64_t id);
/* The bulk path wrote `n` unresolved reference rows. Past every STORE_BULK_UNRESOLVED_STEP of
 * them, the index of unresolved rows is dropped (it is built again at the end): those rows
 * are then resolved in passes over the table rather than by a lookup each. */
#define STORE_BULK_UNRESOLVED_STEP 65536
extern uint64_t store_bulk_unresolved_step; /* tests lower it */
extern unsigned store_bulk_passes;          /* passes made so far (tests read it) */
void store_bulk_unresolved(struct store *s, size_t n);
/* 1 when store_cs_set_refs(cs_id, attr) may take the bulk path (and records attr as done),
 * 0 otherwise. */
int store_bulk_refs_claim(struct store *s, int64_t cs_id, const char *attr);
/* The id of the object with that DN (0: unknown, leave unresolved). */
/* The ids of n DNs in the bulk DN map (0: not there), looked up together. */
void store_bulk_lookup_many(struct store *s, const char *const *dns, size_t n, int64_t *ret_ids);
void store_bulk_free(struct store *s);
/* Recreates the indexes a bulk load drops, when a crash left them dropped. */
int store_bulk_repair(struct store *s);

#define STORE_STR_(x) #x
#define STORE_STR(x)  STORE_STR_(x) /* a macro's value as a string literal */
/* The WAL's size limit (journal_size_limit), in bytes. */
#define STORE_WAL_LIMIT 67108864
/* The bulk load's checkpointer (store_ckpt.c): while a bulk load runs, a thread with its own
 * connection copies committed WAL pages into the database file, so that the writer neither
 * copies them nor waits for the disk's flushes. A WAL of store_ckpt_wal_max bytes or more makes
 * the next transaction wait for the checkpoint under way, after which it rewinds the WAL
 * (unless another connection still reads an older state): the WAL stays under that plus one
 * transaction. Not being able to start it is not an error (SQLite checkpoints on the writer,
 * as outside a load). */
#define STORE_CKPT_WAL_MAX STORE_WAL_LIMIT
extern size_t store_ckpt_wal_max; /* STORE_CKPT_WAL_MAX; tests lower it */
extern unsigned store_ckpt_runs;  /* checkpoints it completed (tests read it) */
void store_ckpt_start(struct store *s);
/* Before a transaction begins at depth 0 (or a statement writes outside one). */
void store_ckpt_before_begin(struct store *s);
/* Joins the thread (after the checkpoint under way) and gives SQLite its checkpoints back. */
void store_ckpt_stop(struct store *s);

/* store_schema.c */
int store_migrate(struct store *s);
int store_check_version(struct store *s);

/* store_mv.c */
int store_mv_load_index_attrs(struct store *s);
void store_mv_free_index_attrs(struct store *s);
