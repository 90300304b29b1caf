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

/* store_schema.c */
int store_migrate(struct store *s);
int store_check_version(struct store *s);

/* store_mv.c */
int store_mv_load_index_attrs(struct store *s);
void store_mv_free_index_attrs(struct store *s);
