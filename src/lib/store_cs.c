/* The store's connector spaces: connectors, change-tracking cursors and CS objects (import
 * upserts with change detection by digest, pending-import flags, full-import obsoletion). */
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* --- enums ------------------------------------------------------------------------------- */

const char *store_cursor_kind_to_string(enum store_cursor_kind k)
{
	static const char *const names[STORE_CURSOR_MAX] = {
	    [STORE_CURSOR_DIRSYNC] = "dirsync",
	    [STORE_CURSOR_USN] = "usn",
	    [STORE_CURSOR_SYNCREPL] = "syncrepl",
	    [STORE_CURSOR_DELTALINK] = "deltalink",
	};
	return (k >= 0 && k < STORE_CURSOR_MAX) ? names[k] : NULL;
}

const char *store_pending_import_to_string(enum store_pending_import p)
{
	static const char *const names[STORE_PENDING_MAX] = {
	    [STORE_PENDING_NONE] = "none",
	    [STORE_PENDING_ADD] = "add",
	    [STORE_PENDING_UPDATE] = "update",
	    [STORE_PENDING_DELETE] = "delete",
	    [STORE_PENDING_DELETE_ADD] = "delete-add",
	};
	return (p >= 0 && p < STORE_PENDING_MAX) ? names[p] : NULL;
}

const char *store_upsert_result_to_string(enum store_upsert_result r)
{
	static const char *const names[STORE_UPSERT_RESULT_MAX] = {
	    [STORE_UNCHANGED] = "unchanged",
	    [STORE_ADDED] = "added",
	    [STORE_CHANGED] = "changed",
	};
	return (r >= 0 && r < STORE_UPSERT_RESULT_MAX) ? names[r] : NULL;
}

/* --- connectors and cursors -------------------------------------------------------------- */

int store_get_connector(struct store *s, const char *name, int64_t *ret_id)
{
	sqlite3_stmt *st;
	int rc, r;

	if (!s || !name || !ret_id)
		return -EINVAL;
	r = store_stmt(s, "SELECT id FROM connectors WHERE name = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "t", name);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret_id = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		r = store_failf(s, -ENOENT, "no connector '%s'", name);
	else
		r = store_fail(s, rc);
	sqlite3_reset(st);
	return r;
}

int store_add_connector(struct store *s, const char *name, const char *type, int64_t *ret_id)
{
	sqlite3_stmt *st;
	int r;

	if (!s || !name || !*name || !type || !*type)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(s, "INSERT INTO connectors(name, type) VALUES (?1, ?2)", &st);
	if (r >= 0)
		r = store_bind(s, st, "tt", name, type);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0 && ret_id)
		*ret_id = sqlite3_last_insert_rowid(s->db);
	return r;
}

int store_get_cursor(struct store *s, int64_t connector_id, const char *partition,
                     enum store_cursor_kind kind, void **ret_value, size_t *ret_len,
                     int64_t *ret_updated)
{
	const char *k = store_cursor_kind_to_string(kind);
	sqlite3_stmt *st;
	void *v = NULL;
	size_t len = 0;
	int rc, r;

	if (!s || !k || !ret_value || !ret_len)
		return -EINVAL;
	r = store_stmt(s,
	               "SELECT value, updated FROM cursors"
	               " WHERE connector_id = ?1 AND partition = ?2 AND kind = ?3",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "itt", connector_id, partition ? partition : "", k);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = store_col_blob(s, st, 0, &v, &len);
		if (r >= 0 && ret_updated)
			*ret_updated = sqlite3_column_int64(st, 1);
	} else if (rc == SQLITE_DONE) {
		r = -ENOENT;
	} else {
		r = store_fail(s, rc);
	}
	sqlite3_reset(st);
	if (r < 0)
		return r;
	*ret_value = v;
	*ret_len = len;
	return 0;
}

int store_set_cursor(struct store *s, int64_t connector_id, const char *partition,
                     enum store_cursor_kind kind, const void *value, size_t len)
{
	const char *k = store_cursor_kind_to_string(kind);
	sqlite3_stmt *st;
	int r;

	if (!s || !k)
		return -EINVAL;
	r = store_writable(s);
	if (r < 0)
		return r;
	if (!partition)
		partition = "";
	if (!value) {
		r = store_stmt(s,
		               "DELETE FROM cursors"
		               " WHERE connector_id = ?1 AND partition = ?2 AND kind = ?3",
		               &st);
		if (r >= 0)
			r = store_bind(s, st, "itt", connector_id, partition, k);
	} else {
		r = store_stmt(s,
		               "INSERT INTO cursors(connector_id, partition, kind, value, updated)"
		               " VALUES (?1, ?2, ?3, ?4, ?5)"
		               " ON CONFLICT(connector_id, partition, kind)"
		               " DO UPDATE SET value = excluded.value, updated = excluded.updated",
		               &st);
		if (r >= 0)
			r = store_bind(s, st, "ittbi", connector_id, partition, k,
			               (const void *)(len ? value : ""), len, store_now());
	}
	if (r >= 0)
		r = store_exec_stmt(s, st);
	return r;
}

int store_delete_cursors(struct store *s, int64_t connector_id)
{
	sqlite3_stmt *st;
	int r;

	if (!s)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(s, "DELETE FROM cursors WHERE connector_id = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "i", connector_id);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	return r;
}

/* --- CS objects -------------------------------------------------------------------------- */

#define CS_COLUMNS                                                                                 \
	"id, connector_id, anchor, dn, object_class, pending_import, pending_import_since,"        \
	" mv_id, last_import_run, flags, seen_gen, created, updated, attrs_digest, attrs"

struct store_cs_object *store_cs_object_free(struct store_cs_object *o)
{
	if (!o)
		return NULL;
	free(o->anchor);
	free(o->dn);
	free(o->object_class);
	attr_set_free(o->attrs);
	free(o);
	return NULL;
}

static int row_to_cs(struct store *s, sqlite3_stmt *st, struct store_cs_object **ret)
{
	struct store_cs_object *o;
	int r;

	o = calloc(1, sizeof(*o));
	if (!o)
		return store_failf(s, -ENOMEM, "out of memory");
	o->id = sqlite3_column_int64(st, 0);
	o->connector_id = sqlite3_column_int64(st, 1);
	r = store_col_blob(s, st, 2, &o->anchor, &o->anchor_len);
	if (r >= 0)
		r = store_col_text(s, st, 3, &o->dn);
	if (r >= 0)
		r = store_col_text(s, st, 4, &o->object_class);
	if (r < 0)
		goto fail;
	o->pending_import = (enum store_pending_import)sqlite3_column_int(st, 5);
	o->pending_import_since = sqlite3_column_int64(st, 6);
	o->mv_id = sqlite3_column_int64(st, 7);
	o->last_import_run = sqlite3_column_int64(st, 8);
	o->flags = (unsigned)sqlite3_column_int64(st, 9);
	o->seen_gen = sqlite3_column_int64(st, 10);
	o->created = sqlite3_column_int64(st, 11);
	o->updated = sqlite3_column_int64(st, 12);
	store_col_digest(st, 13, o->digest);
	r = store_col_attrs(s, st, 14, &o->attrs);
	if (r < 0)
		goto fail;
	*ret = o;
	return 0;
fail:
	store_cs_object_free(o);
	return r;
}

static int decode_cs(struct store *s, sqlite3_stmt *st, void *batch, size_t i)
{
	return row_to_cs(s, st, &((struct store_cs_object **)batch)[i]);
}

/* Runs a bound single-row query of CS_COLUMNS. */
static int get_one(struct store *s, sqlite3_stmt *st, struct store_cs_object **ret)
{
	return store_get_row(s, st, decode_cs, ret);
}

int store_cs_get(struct store *s, int64_t id, struct store_cs_object **ret)
{
	sqlite3_stmt *st;
	int r;

	if (!s || !ret)
		return -EINVAL;
	r = store_stmt(s, "SELECT " CS_COLUMNS " FROM cs_objects WHERE id = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "i", id);
	if (r >= 0)
		r = get_one(s, st, ret);
	return r;
}

int store_cs_get_by_anchor(struct store *s, int64_t connector_id, const void *anchor,
                           size_t anchor_len, struct store_cs_object **ret)
{
	sqlite3_stmt *st;
	int r;

	if (!s || !anchor || !anchor_len || !ret)
		return -EINVAL;
	r = store_stmt(s,
	               "SELECT " CS_COLUMNS " FROM cs_objects"
	               " WHERE connector_id = ?1 AND anchor = ?2",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "ib", connector_id, anchor, anchor_len);
	if (r >= 0)
		r = get_one(s, st, ret);
	return r;
}

int store_cs_get_by_dn(struct store *s, int64_t connector_id, const char *dn,
                       struct store_cs_object **ret)
{
	sqlite3_stmt *st;
	int r;

	if (!s || !dn || !ret)
		return -EINVAL;
	/* Non-transient first, else any; each walks the DN index in id order without sorting. */
	r = store_stmt(s,
	               "SELECT " CS_COLUMNS " FROM cs_objects"
	               " WHERE connector_id = ?1 AND dn = ?2 AND (flags & 2) = 0 LIMIT 1",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "it", connector_id, dn);
	if (r >= 0)
		r = get_one(s, st, ret);
	if (r != -ENOENT)
		return r;
	r = store_stmt(s,
	               "SELECT " CS_COLUMNS " FROM cs_objects"
	               " WHERE connector_id = ?1 AND dn = ?2 LIMIT 1",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "it", connector_id, dn);
	if (r >= 0)
		r = get_one(s, st, ret);
	return r;
}

int store_cs_get_by_mv(struct store *s, int64_t connector_id, int64_t mv_id,
                       struct store_cs_object **ret)
{
	sqlite3_stmt *st;
	int r;

	if (!s || mv_id <= 0 || !ret)
		return -EINVAL;
	r = store_stmt(s,
	               "SELECT " CS_COLUMNS " FROM cs_objects"
	               " WHERE mv_id = ?2 AND connector_id = ?1 ORDER BY id LIMIT 1",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "ii", connector_id, mv_id);
	if (r >= 0)
		r = get_one(s, st, ret);
	return r;
}

int store_cs_count(struct store *s, int64_t connector_id, uint64_t *ret_total,
                   uint64_t *ret_pending)
{
	sqlite3_stmt *st;
	int rc, r;

	if (!s)
		return -EINVAL;
	r = store_stmt(s,
	               "SELECT (SELECT count(*) FROM cs_objects WHERE connector_id = ?1),"
	               " (SELECT count(*) FROM cs_objects"
	               "  WHERE connector_id = ?1 AND pending_import <> 0)",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "i", connector_id);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (ret_total)
			*ret_total = (uint64_t)sqlite3_column_int64(st, 0);
		if (ret_pending)
			*ret_pending = (uint64_t)sqlite3_column_int64(st, 1);
	} else {
		r = store_fail(s, rc);
	}
	sqlite3_reset(st);
	return r;
}

/* The pending import after a change is seen, given the one not yet synced. */
static enum store_pending_import next_pending(enum store_pending_import old, bool class_changed)
{
	switch (old) {
	case STORE_PENDING_ADD:
		return STORE_PENDING_ADD; /* never synced: still an add */
	case STORE_PENDING_DELETE_ADD:
		return STORE_PENDING_DELETE_ADD;
	default:
		/* A pending delete that reappears is re-evaluated as an update. */
		return class_changed ? STORE_PENDING_DELETE_ADD : STORE_PENDING_UPDATE;
	}
}

struct existing {
	int64_t id;
	bool dn_changed;
	bool class_changed;
	bool attrs_changed;
	enum store_pending_import pending;
	int64_t since;
	unsigned flags;
};

static bool text_differs(const unsigned char *a, const char *b)
{
	if (!a || !b)
		return (a == NULL) != (b == NULL);
	return strcmp((const char *)a, b) != 0;
}

/* Finds the object by anchor and compares it with what was imported. 1: found, 0: new. */
static int find_existing(struct store *s, int64_t connector_id, const struct store_cs_import *in,
                         const uint8_t digest[ATTR_DIGEST_SIZE], struct existing *ex)
{
	sqlite3_stmt *st;
	int rc, r;

	r = store_stmt(s,
	               "SELECT id, dn, object_class, attrs_digest, pending_import,"
	               " pending_import_since, flags"
	               " FROM cs_objects WHERE connector_id = ?1 AND anchor = ?2",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "ib", connector_id, in->anchor, in->anchor_len);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const void *d = sqlite3_column_blob(st, 3);
		ex->id = sqlite3_column_int64(st, 0);
		ex->dn_changed = text_differs(sqlite3_column_text(st, 1), in->dn);
		ex->class_changed = text_differs(sqlite3_column_text(st, 2), in->object_class);
		ex->attrs_changed = sqlite3_column_bytes(st, 3) != (int)ATTR_DIGEST_SIZE || !d ||
		                    memcmp(d, digest, ATTR_DIGEST_SIZE) != 0;
		ex->pending = (enum store_pending_import)sqlite3_column_int(st, 4);
		ex->since = sqlite3_column_int64(st, 5);
		ex->flags = (unsigned)sqlite3_column_int64(st, 6);
		r = 1;
	} else if (rc == SQLITE_DONE) {
		r = 0;
	} else {
		r = store_fail(s, rc);
	}
	sqlite3_reset(st);
	return r;
}

static int cs_insert(struct store *s, int64_t connector_id, const struct store_cs_import *in,
                     const void *blob, size_t blob_len, const uint8_t *digest, int64_t *ret_id)
{
	sqlite3_stmt *st;
	int64_t now = store_now();
	int r;

	r = store_stmt(s,
	               "INSERT INTO cs_objects(connector_id, anchor, dn, object_class,"
	               " pending_import, pending_import_since, last_import_run, seen_gen,"
	               " created, updated, attrs_digest, attrs)"
	               " VALUES (?1, ?2, ?3, ?4, 1, ?5, nullif(?6, 0), ?7, ?5, ?5, ?8, ?9)"
	               " ON CONFLICT(connector_id, anchor) DO NOTHING",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "ibttiiibb", connector_id, in->anchor, in->anchor_len, in->dn,
		               in->object_class, now, in->run_id, in->seen_gen,
		               (const void *)digest, (size_t)ATTR_DIGEST_SIZE, blob, blob_len);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0) /* 0: the anchor exists already */
		*ret_id = sqlite3_changes(s->db) ? sqlite3_last_insert_rowid(s->db) : 0;
	return r;
}

static int cs_touch(struct store *s, const struct existing *ex, const struct store_cs_import *in)
{
	sqlite3_stmt *st;
	int r;

	if (in->seen_gen == 0 && in->run_id == 0 && !(ex->flags & STORE_CS_OBSOLETE_CANDIDATE))
		return 0;
	r = store_stmt(s,
	               "UPDATE cs_objects SET seen_gen = max(seen_gen, ?2),"
	               " last_import_run = coalesce(nullif(?3, 0), last_import_run),"
	               " flags = flags & ~4 WHERE id = ?1",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "iii", ex->id, in->seen_gen, in->run_id);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	return r;
}

static int cs_update(struct store *s, const struct existing *ex, const struct store_cs_import *in,
                     const void *blob, size_t blob_len, const uint8_t *digest)
{
	enum store_pending_import p = next_pending(ex->pending, ex->class_changed);
	int64_t now = store_now();
	int64_t since = ex->pending == STORE_PENDING_NONE ? now : ex->since;
	sqlite3_stmt *st;
	int r;

	r = store_stmt(s,
	               "UPDATE cs_objects SET dn = ?2, object_class = ?3, pending_import = ?4,"
	               " pending_import_since = ?5,"
	               " last_import_run = coalesce(nullif(?6, 0), last_import_run),"
	               " flags = flags & ~6, seen_gen = max(seen_gen, ?7), updated = ?8,"
	               " attrs_digest = ?9, attrs = ?10 WHERE id = ?1",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "ittiiiiibb", ex->id, in->dn, in->object_class, (int64_t)p,
		               since, in->run_id, in->seen_gen, now, (const void *)digest,
		               (size_t)ATTR_DIGEST_SIZE, blob, blob_len);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	/* AD renames do not touch the groups that hold the object: nothing to follow here, the
	 * resolved references to it have no DN of their own and show the new one. */
	return r;
}

/* The attributes' blob: the caller's when it encoded them (not to be freed), else a new one. */
static int encode(struct store *s, const struct store_cs_import *in, void **ret, size_t *ret_len)
{
	if (in->attrs_blob) {
		*ret = (void *)in->attrs_blob;
		*ret_len = in->attrs_blob_len;
		return 0;
	}
	return store_encode_attrs(s, in->attrs, ret, ret_len, NULL);
}

int store_cs_upsert(struct store *s, int64_t connector_id, const struct store_cs_import *in,
                    enum store_upsert_result *ret_result, int64_t *ret_id)
{
	uint8_t digest[ATTR_DIGEST_SIZE];
	struct existing ex = {0};
	enum store_upsert_result result;
	void *blob = NULL;
	size_t blob_len = 0;
	int64_t id = 0;
	int r;

	if (!s || !in || !in->anchor || !in->anchor_len || !in->object_class ||
	    !in->attrs_blob != !in->attrs_digest)
		return -EINVAL;
	r = store_writable(s);
	if (r < 0)
		return r;
	if (in->attrs_digest)
		memcpy(digest, in->attrs_digest, sizeof(digest));
	else if ((r = attr_set_digest(in->attrs, digest)) < 0)
		return store_failf(s, r, "cannot digest attributes: %s", strerror(-r));
	if (s->bulk.connector_id && s->bulk.connector_id == connector_id) {
		/* Bulk loading an empty space: the object is new unless the import returned it
		 * twice (then the usual path, and the DN map is no longer trusted). */
		r = encode(s, in, &blob, &blob_len);
		if (r >= 0)
			r = cs_insert(s, connector_id, in, blob, blob_len, digest, &id);
		if (r >= 0 && id != 0) {
			result = STORE_ADDED;
			r = store_bulk_added(s, in->dn, id);
			goto out;
		}
		if (blob != in->attrs_blob)
			free(blob);
		blob = NULL;
		if (r < 0)
			goto out;
		store_bulk_forget(s);
	}
	r = find_existing(s, connector_id, in, digest, &ex);
	if (r < 0)
		goto out;
	if (r > 0 && !ex.dn_changed && !ex.class_changed && !ex.attrs_changed &&
	    !(ex.flags & STORE_CS_TRANSIENT) && ex.pending != STORE_PENDING_DELETE) {
		r = cs_touch(s, &ex, in);
		id = ex.id;
		result = STORE_UNCHANGED;
		goto out;
	}
	r = encode(s, in, &blob, &blob_len);
	if (r < 0)
		goto out;
	if (ex.id == 0) {
		r = cs_insert(s, connector_id, in, blob, blob_len, digest, &id);
		if (r >= 0 && id == 0) /* another writer added it since the lookup */
			r = store_failf(s, -EEXIST, "CS object added concurrently");
		result = STORE_ADDED;
		goto out;
	}
	r = cs_update(s, &ex, in, blob, blob_len, digest);
	id = ex.id;
	result = STORE_CHANGED;
out:
	if (blob != in->attrs_blob)
		free(blob);
	if (r < 0)
		return r;
	if (ret_result)
		*ret_result = result;
	if (ret_id)
		*ret_id = id;
	return 0;
}

/* Runs a bound write and returns -ENOENT when it touched nothing. */
static int exec_one(struct store *s, sqlite3_stmt *st, const char *what, int64_t id)
{
	int r = store_exec_stmt(s, st);

	if (r >= 0 && sqlite3_changes(s->db) == 0)
		r = store_failf(s, -ENOENT, "no %s %lld", what, (long long)id);
	return r;
}

int store_cs_mark_seen(struct store *s, int64_t cs_id, int64_t gen)
{
	sqlite3_stmt *st;
	int r;

	if (!s)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(
		    s,
		    "UPDATE cs_objects SET seen_gen = max(seen_gen, ?2), flags = flags & ~4"
		    " WHERE id = ?1",
		    &st);
	if (r >= 0)
		r = store_bind(s, st, "ii", cs_id, gen);
	if (r >= 0)
		r = exec_one(s, st, "CS object", cs_id);
	return r;
}

int store_cs_count_unseen(struct store *s, int64_t connector_id, int64_t gen, uint64_t *ret_n)
{
	sqlite3_stmt *st;
	int rc, r;

	if (!s || !ret_n)
		return -EINVAL;
	/* A table scan: walking an index here would mean a random row read per object. */
	r = store_stmt(s,
	               "SELECT count(*) FROM cs_objects WHERE +connector_id = ?1"
	               " AND seen_gen < ?2 AND pending_import <> 3 AND (flags & 1) = 0",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "ii", connector_id, gen);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret_n = (uint64_t)sqlite3_column_int64(st, 0);
	else
		r = store_fail(s, rc);
	sqlite3_reset(st);
	return r;
}

int store_cs_mark_unseen_as_deleted(struct store *s, int64_t connector_id, int64_t gen,
                                    uint64_t *ret_n)
{
	sqlite3_stmt *st;
	int r;

	if (!s || gen <= 0)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(s,
		               "UPDATE cs_objects SET pending_import = 3,"
		               " pending_import_since = CASE WHEN pending_import = 0 THEN ?3"
		               "   ELSE pending_import_since END, updated = ?3"
		               " WHERE +connector_id = ?1 AND seen_gen < ?2 AND pending_import <> 3"
		               " AND (flags & 1) = 0",
		               &st);
	if (r >= 0)
		r = store_bind(s, st, "iii", connector_id, gen, store_now());
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0 && ret_n)
		*ret_n = (uint64_t)sqlite3_changes(s->db);
	return r;
}

int store_cs_mark_deleted(struct store *s, int64_t connector_id, const void *anchor,
                          size_t anchor_len)
{
	sqlite3_stmt *st;
	int r;

	if (!s || !anchor || !anchor_len)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(s,
		               "UPDATE cs_objects SET pending_import = 3,"
		               " pending_import_since = CASE WHEN pending_import = 0 THEN ?3"
		               "   ELSE pending_import_since END, updated = ?3"
		               " WHERE connector_id = ?1 AND anchor = ?2",
		               &st);
	if (r >= 0)
		r = store_bind(s, st, "ibi", connector_id, anchor, anchor_len, store_now());
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0 && sqlite3_changes(s->db) == 0)
		r = store_failf(s, -ENOENT, "no CS object with that anchor");
	return r;
}

/* What the foreign keys of the rows that name an object do when it is deleted, for a bulk
 * load, which runs without them: else its rows would stay, and go to the next object given its
 * id. */
static int delete_dependents(struct store *s, int64_t cs_id)
{
	static const char *const sql[] = {
	    "DELETE FROM cs_refs WHERE cs_id = ?1",
	    "DELETE FROM cs_export_members WHERE cs_id = ?1",
	    "DELETE FROM cs_export_memory WHERE cs_id = ?1",
	    "UPDATE pending_exports SET cs_id = NULL WHERE cs_id = ?1",
	};
	sqlite3_stmt *st;
	int r = 0;

	for (size_t i = 0; i < sizeof(sql) / sizeof(*sql) && r >= 0; i++) {
		r = store_stmt(s, sql[i], &st);
		if (r >= 0)
			r = store_bind(s, st, "i", cs_id);
		if (r >= 0)
			r = store_exec_stmt(s, st);
	}
	return r;
}

int store_cs_delete(struct store *s, int64_t cs_id)
{
	sqlite3_stmt *st;
	bool tx;
	int r;

	if (!s)
		return -EINVAL;
	store_bulk_forget(s);
	tx = s->bulk.fk_off;
	r = store_writable(s);
	if (r < 0)
		return r;
	if (tx) {
		r = store_tx_begin(s);
		if (r < 0)
			return r;
		r = delete_dependents(s, cs_id);
	}
	if (r >= 0)
		r = store_stmt(s, "DELETE FROM cs_objects WHERE id = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "i", cs_id);
	if (r >= 0)
		r = exec_one(s, st, "CS object", cs_id);
	if (tx && r >= 0)
		r = store_tx_commit(s);
	if (tx && r < 0)
		store_tx_rollback(s);
	return r;
}

int store_cs_set_flags(struct store *s, int64_t cs_id, unsigned set, unsigned clear)
{
	sqlite3_stmt *st;
	int r;

	if (!s)
		return -EINVAL;
	store_bulk_forget(s);
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(s, "UPDATE cs_objects SET flags = (flags | ?2) & ~?3 WHERE id = ?1",
		               &st);
	if (r >= 0)
		r = store_bind(s, st, "iii", cs_id, (int64_t)set, (int64_t)clear);
	if (r >= 0)
		r = exec_one(s, st, "CS object", cs_id);
	return r;
}

int store_cs_clear_pending_import(struct store *s, int64_t cs_id)
{
	sqlite3_stmt *st;
	int r;

	if (!s)
		return -EINVAL;
	store_bulk_forget(s);
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(
		    s,
		    "UPDATE cs_objects SET pending_import = 0, pending_import_since = NULL"
		    " WHERE id = ?1",
		    &st);
	if (r >= 0)
		r = store_bind(s, st, "i", cs_id);
	if (r >= 0)
		r = exec_one(s, st, "CS object", cs_id);
	return r;
}

int store_cs_set_mv(struct store *s, int64_t cs_id, int64_t mv_id)
{
	sqlite3_stmt *st;
	int r;

	if (!s || mv_id < 0)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(s, "UPDATE cs_objects SET mv_id = nullif(?2, 0) WHERE id = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "ii", cs_id, mv_id);
	if (r >= 0)
		r = exec_one(s, st, "CS object", cs_id);
	return r;
}

/* Streams a keyset-paginated query (?1 connector, ?2 last id, ?3 limit) batch by batch: the
 * statement is reset before the callbacks run, so they may write to the store. */
static int iterate(struct store *s, const char *sql, int64_t connector_id, store_cs_cb cb,
                   void *userdata)
{
	struct store_cs_object *batch[STORE_BATCH];
	int64_t last = 0;
	size_t n, i;
	int r;

	if (!s || !cb)
		return -EINVAL;
	for (;;) {
		sqlite3_stmt *st;
		r = store_stmt(s, sql, &st);
		if (r >= 0)
			r = store_bind(s, st, "iii", connector_id, last, (int64_t)STORE_BATCH);
		if (r < 0)
			return r;
		r = store_fetch_page(s, st, decode_cs, batch, &n);
		if (n > 0)
			last = batch[n - 1]->id;
		for (i = 0; i < n; i++) {
			if (r == 0)
				r = cb(batch[i], userdata);
			store_cs_object_free(batch[i]);
		}
		if (r != 0 || n < STORE_BATCH)
			return r;
	}
}

int store_cs_iterate_pending_import(struct store *s, int64_t connector_id, store_cs_cb cb,
                                    void *userdata)
{
	return iterate(s,
	               "SELECT " CS_COLUMNS " FROM cs_objects"
	               " WHERE connector_id = ?1 AND pending_import <> 0 AND id > ?2"
	               " ORDER BY id LIMIT ?3",
	               connector_id, cb, userdata);
}

int store_cs_iterate(struct store *s, int64_t connector_id, store_cs_cb cb, void *userdata)
{
	return iterate(s,
	               "SELECT " CS_COLUMNS " FROM cs_objects"
	               " WHERE id > ?2 AND +connector_id = ?1 ORDER BY id LIMIT ?3",
	               connector_id, cb, userdata);
}
