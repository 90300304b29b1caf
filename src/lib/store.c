/* The store: opening the SQLite file, error translation, the prepared-statement cache,
 * transactions, integrity check, online backup and small key/value state. Queries of each
 * table family live in store_cs.c, store_mv.c, store_export.c and store_run.c. */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 5000
#ifndef STORE_PAGE_SIZE
#define STORE_PAGE_SIZE "16384"
#endif
#define BACKUP_BUSY_RETRIES 50

/* --- errors ------------------------------------------------------------------------------ */

int store_errno_from_sqlite(int rc)
{
	switch (rc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return -EEXIST;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return -ENOENT; /* the referenced row does not exist */
	default:
		break;
	}
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_RANGE:
	case SQLITE_MISUSE:
		return -EINVAL;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_TOOBIG:
		return -E2BIG;
	case SQLITE_INTERRUPT:
		return -EINTR;
	case SQLITE_NOTFOUND:
		return -ENOENT;
	default:
		return -EIO;
	}
}

int store_fail(struct store *s, int rc)
{
	int err = store_errno_from_sqlite(rc);

	if (err == 0)
		err = -EIO;
	if (s) {
		const char *m = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
		snprintf(s->errmsg, sizeof(s->errmsg), "%s", m ? m : sqlite3_errstr(rc));
	}
	return err;
}

int store_failf(struct store *s, int err, const char *fmt, ...)
{
	va_list ap;

	if (s) {
		va_start(ap, fmt);
		vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
		va_end(ap);
	}
	return err;
}

const char *store_last_error(struct store *s)
{
	if (!s)
		return "no store";
	return s->errmsg[0] ? s->errmsg : "no error";
}

bool store_is_readonly(const struct store *s)
{
	return s && s->readonly;
}

int store_writable(struct store *s)
{
	if (s->readonly)
		return store_failf(s, -EROFS, "the database is open read-only");
	return 0;
}

int64_t store_now(void)
{
	return (int64_t)time(NULL);
}

/* --- statements -------------------------------------------------------------------------- */

int store_stmt(struct store *s, const char *sql, sqlite3_stmt **ret)
{
	sqlite3_stmt *st = NULL;
	size_t i;
	int rc;

	for (i = 0; i < s->n_stmts; i++) {
		if (s->stmts[i].sql == sql) {
			st = s->stmts[i].st;
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			*ret = st;
			return 0;
		}
	}
	if (s->n_stmts == s->cap_stmts) {
		size_t cap = s->cap_stmts ? s->cap_stmts * 2 : 64;
		struct store_stmt_slot *n = reallocarray(s->stmts, cap, sizeof(*n));
		if (!n)
			return store_failf(s, -ENOMEM, "out of memory");
		s->stmts = n;
		s->cap_stmts = cap;
	}
	rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK)
		return store_fail(s, rc);
	s->stmts[s->n_stmts].sql = sql;
	s->stmts[s->n_stmts].st = st;
	s->n_stmts++;
	*ret = st;
	return 0;
}

int store_bind(struct store *s, sqlite3_stmt *st, const char *types, ...)
{
	va_list ap;
	int i, rc = SQLITE_OK;

	va_start(ap, types);
	for (i = 0; types[i] && rc == SQLITE_OK; i++) {
		switch (types[i]) {
		case 'i':
			rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
			break;
		case 't':
			rc = sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1,
			                       SQLITE_STATIC);
			break;
		case 'b': {
			const void *p = va_arg(ap, const void *);
			size_t len = va_arg(ap, size_t);
			rc = sqlite3_bind_blob64(st, i + 1, p, len, SQLITE_STATIC);
			break;
		}
		case 'n':
			rc = sqlite3_bind_null(st, i + 1);
			break;
		default:
			rc = SQLITE_MISUSE;
			break;
		}
	}
	va_end(ap);
	if (rc != SQLITE_OK)
		return store_fail(s, rc);
	return 0;
}

int store_exec_stmt(struct store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	int r = 0;

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = store_fail(s, rc);
	sqlite3_reset(st);
	return r;
}

int store_get_row(struct store *s, sqlite3_stmt *st, store_decode_fn decode, void *ret)
{
	int rc = sqlite3_step(st);
	int r;

	if (rc == SQLITE_ROW)
		r = decode(s, st, ret, 0);
	else if (rc == SQLITE_DONE)
		r = -ENOENT;
	else
		r = store_fail(s, rc);
	sqlite3_reset(st);
	return r;
}

int store_fetch_page(struct store *s, sqlite3_stmt *st, store_decode_fn decode, void *batch,
                     size_t *ret_n)
{
	size_t n = 0;
	int rc = SQLITE_DONE, r = 0;

	while (n < STORE_BATCH && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = decode(s, st, batch, n);
		if (r < 0)
			break;
		n++;
	}
	if (r >= 0 && n < STORE_BATCH && rc != SQLITE_DONE)
		r = store_fail(s, rc);
	sqlite3_reset(st);
	*ret_n = n;
	return r;
}

int store_exec(struct store *s, const char *sql)
{
	char *msg = NULL;
	int rc;

	rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		int err = store_errno_from_sqlite(rc);
		snprintf(s->errmsg, sizeof(s->errmsg), "%s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return err ? err : -EIO;
	}
	return 0;
}

/* --- columns ----------------------------------------------------------------------------- */

int store_col_text(struct store *s, sqlite3_stmt *st, int col, char **ret)
{
	const unsigned char *t;
	char *c;

	if (sqlite3_column_type(st, col) == SQLITE_NULL) {
		*ret = NULL;
		return 0;
	}
	t = sqlite3_column_text(st, col);
	if (!t)
		return store_failf(s, -ENOMEM, "out of memory");
	c = strdup((const char *)t);
	if (!c)
		return store_failf(s, -ENOMEM, "out of memory");
	*ret = c;
	return 0;
}

int store_col_blob(struct store *s, sqlite3_stmt *st, int col, void **ret, size_t *ret_len)
{
	const void *p = sqlite3_column_blob(st, col);
	size_t len = (size_t)sqlite3_column_bytes(st, col);
	char *c;

	if (sqlite3_column_type(st, col) == SQLITE_NULL) {
		*ret = NULL;
		*ret_len = 0;
		return 0;
	}
	c = malloc(len + 1);
	if (!c)
		return store_failf(s, -ENOMEM, "out of memory");
	if (len)
		memcpy(c, p, len);
	c[len] = 0;
	*ret = c;
	*ret_len = len;
	return 0;
}

void store_col_digest(sqlite3_stmt *st, int col, uint8_t out[ATTR_DIGEST_SIZE])
{
	const void *p = sqlite3_column_blob(st, col);
	int len = sqlite3_column_bytes(st, col);

	memset(out, 0, ATTR_DIGEST_SIZE);
	if (p && len == (int)ATTR_DIGEST_SIZE)
		memcpy(out, p, ATTR_DIGEST_SIZE);
}

int store_col_attrs(struct store *s, sqlite3_stmt *st, int col, struct attr_set **ret)
{
	const void *p = sqlite3_column_blob(st, col);
	int len = sqlite3_column_bytes(st, col);
	int r;

	r = attr_set_deserialize(p, (size_t)len, ret);
	if (r == -EBADMSG)
		return store_failf(s, r, "corrupt attribute blob in the database");
	if (r < 0)
		return store_failf(s, r, "cannot decode attributes: %s", strerror(-r));
	return 0;
}

int store_encode_attrs(struct store *s, const struct attr_set *attrs, void **ret_buf,
                       size_t *ret_len, uint8_t digest[ATTR_DIGEST_SIZE])
{
	int r;

	r = digest ? attr_set_digest(attrs, digest) : 0;
	if (r >= 0)
		r = attr_set_serialize(attrs, ret_buf, ret_len);
	if (r < 0)
		return store_failf(s, r, "cannot encode attributes: %s", strerror(-r));
	return 0;
}

/* --- transactions ------------------------------------------------------------------------ */

int store_tx_begin(struct store *s)
{
	sqlite3_stmt *st;
	int r;

	r = store_writable(s);
	if (r < 0)
		return r;
	if (s->tx_depth == 0) {
		store_ckpt_before_begin(s);
		r = store_stmt(s, "BEGIN IMMEDIATE", &st);
	} else {
		r = store_stmt(s, "SAVEPOINT store_sp", &st);
	}
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0)
		s->tx_depth++;
	return r;
}

/* Outside any transaction: foreign keys back on after a bulk load that ended inside one. */
static void fk_restore(struct store *s)
{
	if (s->fk_restore && s->tx_depth == 0 &&
	    sqlite3_exec(s->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL) == SQLITE_OK)
		s->fk_restore = false;
}

/* SQLite rolls a transaction back by itself after some errors (disk full, I/O errors):
 * notice it so the depth does not drift. */
static bool tx_lost(struct store *s)
{
	if (s->tx_depth > 0 && sqlite3_get_autocommit(s->db)) {
		s->tx_depth = 0;
		store_bulk_forget(s); /* ids handed out in it are gone */
		fk_restore(s);
		return true;
	}
	return false;
}

int store_tx_commit(struct store *s)
{
	sqlite3_stmt *st;
	int r;

	if (s->tx_depth == 0)
		return store_failf(s, -EINVAL, "no transaction to commit");
	if (tx_lost(s))
		return store_failf(s, -EIO,
		                   "the transaction was rolled back after an earlier error");
	if (s->tx_depth > 1)
		r = store_stmt(s, "RELEASE store_sp", &st);
	else
		r = store_stmt(s, "COMMIT", &st);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0)
		s->tx_depth--;
	fk_restore(s);
	return r;
}

int store_tx_rollback(struct store *s)
{
	sqlite3_stmt *st;
	int r;

	if (s->tx_depth == 0)
		return store_failf(s, -EINVAL, "no transaction to roll back");
	store_bulk_forget(s); /* ids handed out in it may be reused */
	if (tx_lost(s))
		return 0;
	if (s->tx_depth > 1) {
		r = store_stmt(s, "ROLLBACK TO store_sp", &st);
		if (r >= 0)
			r = store_exec_stmt(s, st);
		if (r >= 0)
			r = store_stmt(s, "RELEASE store_sp", &st);
		if (r >= 0)
			r = store_exec_stmt(s, st);
	} else {
		r = store_stmt(s, "ROLLBACK", &st);
		if (r >= 0)
			r = store_exec_stmt(s, st);
	}
	s->tx_depth--;
	tx_lost(s);
	fk_restore(s);
	return r;
}

int store_begin(struct store *s)
{
	if (!s)
		return -EINVAL;
	return store_tx_begin(s);
}

int store_commit(struct store *s)
{
	if (!s)
		return -EINVAL;
	return store_tx_commit(s);
}

int store_rollback(struct store *s)
{
	if (!s)
		return -EINVAL;
	return store_tx_rollback(s);
}

/* --- open / close ------------------------------------------------------------------------ */

#define JOURNAL_SIZE_LIMIT "PRAGMA journal_size_limit = " STORE_STR(STORE_WAL_LIMIT) ";"

static int configure(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);

	if (s->readonly)
		return store_exec(s, "PRAGMA query_only = ON; PRAGMA cache_size = -16384;");

	/* Only a new, empty file takes a page size, and before WAL is enabled: big pages mean
	 * fewer WAL frames (and system calls) per bulk import. See docs/store-schema.md. */
	r = store_exec(s, "PRAGMA page_size = " STORE_PAGE_SIZE);
	if (r < 0)
		return r;
	/* WAL: readers (hybridsyncctl, backups) never block the daemon, nor it them. It is a
	 * property of the file; asking again is harmless. */
	rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = store_fail(s, rc);
		goto out;
	}
	if (strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
		r = store_failf(s, -EIO, "cannot switch the database to WAL mode (journal mode %s)",
		                (const char *)sqlite3_column_text(st, 0));
		goto out;
	}
	r = store_exec(s, "PRAGMA synchronous = NORMAL;"
	                  "PRAGMA foreign_keys = ON;"
	                  "PRAGMA temp_store = MEMORY;"
	                  "PRAGMA cache_size = -65536;" JOURNAL_SIZE_LIMIT
	                  "PRAGMA trusted_schema = OFF;");
out:
	sqlite3_finalize(st);
	return r;
}

static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

/* Process-wide settings, before SQLite initializes: no global memory statistics (a mutex on
 * every allocation). Fails harmlessly if SQLite was initialized already. */
static void sqlite_setup(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int store_open(const char *path, unsigned flags, struct store **ret, char *err, size_t err_len)
{
	struct store *s;
	int oflags, rc, r;

	if (!path || !ret || (flags & ~(unsigned)(STORE_OPEN_READONLY | STORE_OPEN_NOCREATE)))
		return -EINVAL;
	pthread_once(&sqlite_once, sqlite_setup);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->readonly = flags & STORE_OPEN_READONLY;
	s->path = strdup(path);
	if (!s->path) {
		r = -ENOMEM;
		goto fail;
	}
	if ((s->readonly || (flags & STORE_OPEN_NOCREATE)) && access(path, F_OK) < 0) {
		r = store_failf(s, -errno, "cannot open database %s: %s", path, strerror(errno));
		goto fail;
	}
	oflags = SQLITE_OPEN_NOMUTEX;
	if (s->readonly)
		oflags |= SQLITE_OPEN_READONLY;
	else
		oflags |= SQLITE_OPEN_READWRITE |
		          ((flags & STORE_OPEN_NOCREATE) ? 0 : SQLITE_OPEN_CREATE);
	rc = sqlite3_open_v2(path, &s->db, oflags, NULL);
	if (rc != SQLITE_OK) {
		r = store_fail(s, rc);
		goto fail;
	}
	r = configure(s);
	if (r >= 0)
		r = s->readonly ? store_check_version(s) : store_migrate(s);
	if (r >= 0 && !s->readonly)
		r = store_bulk_repair(s);
	if (r >= 0)
		r = store_mv_load_index_attrs(s);
	if (r < 0)
		goto fail;
	s->errmsg[0] = 0;
	*ret = s;
	return 0;
fail:
	if (err && err_len)
		snprintf(err, err_len, "%s", s->errmsg[0] ? s->errmsg : strerror(-r));
	store_close(s);
	return r;
}

struct store *store_close(struct store *s)
{
	size_t i;

	if (!s)
		return NULL;
	if (s->db && s->tx_depth > 0 && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	if (s->db)
		store_ckpt_stop(s);
	for (i = 0; i < s->n_stmts; i++)
		sqlite3_finalize(s->stmts[i].st);
	free(s->stmts);
	if (s->db)
		sqlite3_close(s->db);
	store_mv_free_index_attrs(s);
	store_bulk_free(s);
	free(s->path);
	free(s);
	return NULL;
}

/* --- integrity and backup ---------------------------------------------------------------- */

int store_check_integrity(struct store *s, bool full)
{
	sqlite3_stmt *st = NULL;
	unsigned problems = 0;
	char first[256] = "";
	int rc, r = 0;

	if (!s)
		return -EINVAL;
	rc = sqlite3_prepare_v2(
	    s->db, full ? "PRAGMA integrity_check(100)" : "PRAGMA quick_check(100)", -1, &st, NULL);
	while (rc == SQLITE_OK || rc == SQLITE_ROW) {
		const char *m;
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW)
			break;
		m = (const char *)sqlite3_column_text(st, 0);
		if (m && strcmp(m, "ok") == 0)
			continue;
		if (problems++ == 0)
			snprintf(first, sizeof(first), "%s", m ? m : "?");
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK) {
		r = store_fail(s, rc);
		if (r == -EBADMSG)
			store_failf(s, r, "database %s is corrupt: %s", s->path,
			            sqlite3_errmsg(s->db));
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (problems) {
		r = store_failf(s, -EBADMSG, "database %s is corrupt (%u problem%s): %s", s->path,
		                problems, problems == 1 ? "" : "s", first);
		goto out;
	}
	rc = sqlite3_prepare_v2(s->db, "PRAGMA foreign_key_check", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = store_failf(s, -EBADMSG,
		                "database %s is inconsistent: a row of %s references a "
		                "missing row of %s",
		                s->path, (const char *)sqlite3_column_text(st, 0),
		                (const char *)sqlite3_column_text(st, 2));
	} else if (rc != SQLITE_DONE) {
		r = store_fail(s, rc);
	}
out:
	sqlite3_finalize(st);
	return r;
}

static int fsync_path(const char *path, bool dir)
{
	int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

int store_backup(struct store *s, const char *path)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	sqlite3 *dst = NULL;
	sqlite3_backup *b;
	int rc, r = 0, n;

	if (!s || !path)
		return -EINVAL;
	if (s->tx_depth > 0)
		return store_failf(s, -EBUSY, "cannot back up inside a transaction");
	n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return store_failf(s, -ENAMETOOLONG, "backup path too long");
	if (unlink(tmp) < 0 && errno != ENOENT)
		return store_failf(s, -errno, "cannot remove %s: %s", tmp, strerror(errno));

	rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		r = store_failf(s, store_errno_from_sqlite(rc), "cannot create %s: %s", tmp,
		                dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
		goto out;
	}
	b = sqlite3_backup_init(dst, "main", s->db, "main");
	if (!b) {
		r = store_failf(s, store_errno_from_sqlite(sqlite3_errcode(dst)),
		                "cannot back up: %s", sqlite3_errmsg(dst));
		goto out;
	}
	/* One step: the copy is read in a single read transaction, hence consistent, without
	 * blocking the daemon (WAL). Chunked steps would restart at every commit of the daemon. */
	for (n = 0; n < BACKUP_BUSY_RETRIES; n++) {
		rc = sqlite3_backup_step(b, -1);
		if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
			break;
		sqlite3_sleep(100);
	}
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		r = store_failf(s, store_errno_from_sqlite(rc) ? store_errno_from_sqlite(rc) : -EIO,
		                "backup to %s failed: %s", tmp, sqlite3_errstr(rc));
		goto out;
	}
	rc = sqlite3_close(dst);
	dst = NULL;
	if (rc != SQLITE_OK) {
		r = store_failf(s, -EIO, "cannot close %s: %s", tmp, sqlite3_errstr(rc));
		goto out;
	}
	r = fsync_path(tmp, false);
	if (r < 0) {
		store_failf(s, r, "cannot sync %s: %s", tmp, strerror(-r));
		goto out;
	}
	if (rename(tmp, path) < 0) {
		r = store_failf(s, -errno, "cannot rename %s to %s: %s", tmp, path,
		                strerror(errno));
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	(void)fsync_path(dirname(dir), true);
out:
	if (dst)
		sqlite3_close(dst);
	if (r < 0)
		unlink(tmp);
	return r;
}

/* --- stats, generation, state ------------------------------------------------------------ */

int store_get_stats(struct store *s, struct store_stats *ret)
{
	sqlite3_stmt *st;
	int rc, r;

	if (!s || !ret)
		return -EINVAL;
	r = store_stmt(
	    s,
	    "SELECT (SELECT count(*) FROM cs_objects),"
	    " (SELECT count(*) FROM cs_objects WHERE pending_import <> 0),"
	    " (SELECT count(*) FROM mv_objects),"
	    " (SELECT count(*) FROM pending_exports),"
	    " (SELECT count(*) FROM runs),"
	    " (SELECT page_count - freelist_count FROM pragma_page_count, pragma_freelist_count)"
	    "   * (SELECT page_size FROM pragma_page_size)",
	    &st);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = store_fail(s, rc);
	} else {
		ret->cs_objects = (uint64_t)sqlite3_column_int64(st, 0);
		ret->cs_pending_import = (uint64_t)sqlite3_column_int64(st, 1);
		ret->mv_objects = (uint64_t)sqlite3_column_int64(st, 2);
		ret->pending_exports = (uint64_t)sqlite3_column_int64(st, 3);
		ret->runs = (uint64_t)sqlite3_column_int64(st, 4);
		ret->file_bytes = (uint64_t)sqlite3_column_int64(st, 5);
	}
	sqlite3_reset(st);
	return r;
}

int store_state_get(struct store *s, const char *key, char **ret_value)
{
	sqlite3_stmt *st;
	char *v = NULL;
	int rc, r;

	if (!s || !key || !ret_value)
		return -EINVAL;
	r = store_stmt(s, "SELECT value FROM state WHERE key = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "t", key);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = store_col_text(s, st, 0, &v);
	else if (rc == SQLITE_DONE)
		r = store_failf(s, -ENOENT, "no state '%s'", key);
	else
		r = store_fail(s, rc);
	sqlite3_reset(st);
	if (r >= 0)
		*ret_value = v;
	return r;
}

int store_state_set(struct store *s, const char *key, const char *value)
{
	sqlite3_stmt *st;
	int r;

	if (!s || !key)
		return -EINVAL;
	r = store_writable(s);
	if (r < 0)
		return r;
	if (value)
		r = store_stmt(s,
		               "INSERT INTO state(key, value) VALUES (?1, ?2)"
		               " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
		               &st);
	else
		r = store_stmt(s, "DELETE FROM state WHERE key = ?1", &st);
	if (r >= 0)
		r = value ? store_bind(s, st, "tt", key, value) : store_bind(s, st, "t", key);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	return r;
}

int store_next_generation(struct store *s, int64_t *ret_gen)
{
	sqlite3_stmt *st;
	int64_t gen = 0;
	int rc, r;

	if (!s || !ret_gen)
		return -EINVAL;
	r = store_tx_begin(s);
	if (r < 0)
		return r;
	r = store_stmt(s,
	               "INSERT INTO state(key, value) VALUES ('generation', '1')"
	               " ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
	               &st);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0)
		r = store_stmt(
		    s, "SELECT CAST(value AS INTEGER) FROM state WHERE key = 'generation'", &st);
	if (r >= 0) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			gen = sqlite3_column_int64(st, 0);
		else
			r = store_fail(s, rc);
		sqlite3_reset(st);
	}
	if (r >= 0)
		r = store_tx_commit(s);
	if (r < 0) {
		store_tx_rollback(s);
		return r;
	}
	*ret_gen = gen;
	return 0;
}
