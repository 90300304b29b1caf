/* The store's pending exports: one row per target object (upserted, never duplicated), its
 * attribute changes and membership changes, export state, counts and the queue fingerprint. */
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *store_export_op_to_string(enum store_export_op op)
{
	static const char *const names[STORE_EXPORT_OP_MAX] = {
	    [STORE_EXPORT_ADD] = "add",
	    [STORE_EXPORT_UPDATE] = "update",
	    [STORE_EXPORT_DELETE] = "delete",
	};
	return (op >= 0 && op < STORE_EXPORT_OP_MAX) ? names[op] : NULL;
}

int store_export_op_from_string(const char *s)
{
	int i;

	for (i = 0; s && i < STORE_EXPORT_OP_MAX; i++)
		if (strcmp(s, store_export_op_to_string(i)) == 0)
			return i;
	return -EINVAL;
}

const char *store_export_state_to_string(enum store_export_state st)
{
	static const char *const names[STORE_EXPORT_STATE_MAX] = {
	    [STORE_EXPORT_PENDING] = "pending",
	    [STORE_EXPORT_IN_FLIGHT] = "in_flight",
	    [STORE_EXPORT_ERROR] = "error",
	    [STORE_EXPORT_DONE] = "done",
	};
	return (st >= 0 && st < STORE_EXPORT_STATE_MAX) ? names[st] : NULL;
}

int store_export_state_from_string(const char *s)
{
	int i;

	for (i = 0; s && i < STORE_EXPORT_STATE_MAX; i++)
		if (strcmp(s, store_export_state_to_string(i)) == 0)
			return i;
	return -EINVAL;
}

/* --- membership digest ------------------------------------------------------------------ */

static int cmp_member_ptr(const void *a, const void *b)
{
	const struct store_member_change *x = *(const struct store_member_change *const *)a;
	const struct store_member_change *y = *(const struct store_member_change *const *)b;

	return strcmp(x->member_anchor, y->member_anchor);
}

/* Sorted view of the membership changes and its digest; -EINVAL for a member named twice. */
static int members_digest(const struct store_member_change *m, size_t n,
                          const struct store_member_change ***ret_sorted,
                          uint8_t digest[ATTR_DIGEST_SIZE])
{
	const struct store_member_change **v;
	struct attr_hash *h = NULL;
	size_t i;
	int r;

	v = malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (!m[i].member_anchor || !*m[i].member_anchor ||
		    !store_member_op_to_string(m[i].op)) {
			free(v);
			return -EINVAL;
		}
		v[i] = &m[i];
	}
	qsort(v, n, sizeof(*v), cmp_member_ptr);
	for (i = 1; i < n; i++) {
		if (strcmp(v[i - 1]->member_anchor, v[i]->member_anchor) == 0) {
			free(v);
			return -EINVAL;
		}
	}
	r = attr_hash_new(&h);
	if (r >= 0)
		r = attr_hash_add_string(h, "hybridsync members v1");
	if (r >= 0)
		r = attr_hash_add_int(h, (int64_t)n);
	for (i = 0; i < n && r >= 0; i++) {
		r = attr_hash_add_string(h, store_member_op_to_string(v[i]->op));
		if (r >= 0)
			r = attr_hash_add_string(h, v[i]->member_anchor);
		if (r >= 0)
			r = attr_hash_add_string(h, v[i]->target_id);
	}
	if (r >= 0)
		r = attr_hash_final(h, digest);
	attr_hash_free(h);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret_sorted = v;
	return 0;
}

/* --- upsert ------------------------------------------------------------------------------- */

struct encoded {
	void *changes;
	size_t changes_len;
	uint8_t changes_digest[ATTR_DIGEST_SIZE];
	const struct store_member_change **members; /* sorted */
	uint8_t members_digest[ATTR_DIGEST_SIZE];
};

static int encode_spec(struct store *s, const struct store_export_spec *e, struct encoded *enc)
{
	int r;

	r = attr_diff_serialize(e->changes, &enc->changes, &enc->changes_len);
	if (r >= 0)
		r = attr_diff_digest(e->changes, enc->changes_digest);
	if (r < 0)
		return store_failf(s, r, "cannot encode attribute changes: %s", strerror(-r));
	r = members_digest(e->members, e->n_members, &enc->members, enc->members_digest);
	if (r < 0)
		return store_failf(s, r, "bad membership changes for '%s'", e->anchor);
	return 0;
}

static bool blob_eq(sqlite3_stmt *st, int col, const uint8_t *d)
{
	return sqlite3_column_bytes(st, col) == (int)ATTR_DIGEST_SIZE &&
	       memcmp(sqlite3_column_blob(st, col), d, ATTR_DIGEST_SIZE) == 0;
}

static bool text_eq(sqlite3_stmt *st, int col, const char *t)
{
	const unsigned char *c = sqlite3_column_text(st, col);

	if (!c || !t)
		return !c && !t;
	return strcmp((const char *)c, t) == 0;
}

struct found {
	int64_t id;
	bool same_content;
	bool same_members;
};

static int find_export(struct store *s, const struct store_export_spec *e,
                       const struct encoded *enc, struct found *f)
{
	sqlite3_stmt *st;
	int rc, r;

	r = store_stmt(s,
	               "SELECT id, op, cs_id, mv_id, dn, target_id, changes_digest,"
	               " members_digest FROM pending_exports"
	               " WHERE connector_id = ?1 AND object_type = ?2 AND anchor = ?3",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "itt", e->connector_id, e->object_type, e->anchor);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		f->id = sqlite3_column_int64(st, 0);
		f->same_members = blob_eq(st, 7, enc->members_digest);
		f->same_content =
		    f->same_members && text_eq(st, 1, store_export_op_to_string(e->op)) &&
		    sqlite3_column_int64(st, 2) == e->cs_id &&
		    sqlite3_column_int64(st, 3) == e->mv_id && text_eq(st, 4, e->dn) &&
		    text_eq(st, 5, e->target_id) && blob_eq(st, 6, enc->changes_digest);
		r = 1;
	} else if (rc == SQLITE_DONE) {
		r = 0;
	} else {
		r = store_fail(s, rc);
	}
	sqlite3_reset(st);
	return r;
}

static int write_members(struct store *s, int64_t id, const struct encoded *enc, size_t n,
                         bool replace)
{
	sqlite3_stmt *st;
	size_t i;
	int r = 0;

	if (replace) {
		r = store_stmt(s, "DELETE FROM pending_export_members WHERE export_id = ?1", &st);
		if (r >= 0)
			r = store_bind(s, st, "i", id);
		if (r >= 0)
			r = store_exec_stmt(s, st);
	}
	for (i = 0; i < n && r >= 0; i++) {
		r = store_stmt(s,
		               "INSERT INTO pending_export_members(export_id, member_anchor, op,"
		               " target_id) VALUES (?1, ?2, ?3, ?4)",
		               &st);
		if (r >= 0)
			r = store_bind(s, st, "ittt", id, enc->members[i]->member_anchor,
			               store_member_op_to_string(enc->members[i]->op),
			               enc->members[i]->target_id);
		if (r >= 0)
			r = store_exec_stmt(s, st);
	}
	return r;
}

static int export_insert(struct store *s, const struct store_export_spec *e,
                         const struct encoded *enc, int64_t *ret_id)
{
	sqlite3_stmt *st;
	int64_t now = store_now();
	int r;

	r = store_stmt(s,
	               "INSERT INTO pending_exports(connector_id, object_type, anchor, op, cs_id,"
	               " mv_id, dn, target_id, changes_digest, n_members, members_digest, rules,"
	               " run_id, cause, state, state_since, sync_gen, created, updated, changes)"
	               " VALUES (?1, ?2, ?3, ?4, nullif(?5, 0), nullif(?6, 0), ?7, ?8, ?9, ?10,"
	               " ?11, ?12, nullif(?13, 0), ?14, 'pending', ?15, ?16, ?15, ?15, ?17)",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "itttiittbibtitiib", e->connector_id, e->object_type,
		               e->anchor, store_export_op_to_string(e->op), e->cs_id, e->mv_id,
		               e->dn, e->target_id, (const void *)enc->changes_digest,
		               (size_t)ATTR_DIGEST_SIZE, (int64_t)e->n_members,
		               (const void *)enc->members_digest, (size_t)ATTR_DIGEST_SIZE,
		               e->rules, e->run_id, e->cause, now, e->sync_gen,
		               (const void *)enc->changes, enc->changes_len);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0)
		*ret_id = sqlite3_last_insert_rowid(s->db);
	return r;
}

static int export_refresh(struct store *s, const struct store_export_spec *e, int64_t id)
{
	sqlite3_stmt *st;
	int r;

	r = store_stmt(s,
	               "UPDATE pending_exports SET rules = ?2, run_id = nullif(?3, 0),"
	               " cause = ?4, sync_gen = max(sync_gen, ?5) WHERE id = ?1",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "ititi", id, e->rules, e->run_id, e->cause, e->sync_gen);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	return r;
}

static int export_update(struct store *s, const struct store_export_spec *e,
                         const struct encoded *enc, int64_t id)
{
	sqlite3_stmt *st;
	int r;

	/* In flight: the exporter must settle what was sent before anything else happens. */
	r = store_stmt(s,
	               "UPDATE pending_exports SET op = ?2, cs_id = nullif(?3, 0),"
	               " mv_id = nullif(?4, 0), dn = ?5, target_id = ?6, changes_digest = ?7,"
	               " n_members = ?8, members_digest = ?9, rules = ?10, run_id = nullif(?11, 0),"
	               " cause = ?12, sync_gen = max(sync_gen, ?13), updated = ?14, changes = ?15,"
	               " state = CASE state WHEN 'in_flight' THEN state ELSE 'pending' END,"
	               " state_since = CASE state WHEN 'in_flight' THEN state_since ELSE ?14 END,"
	               " attempts = CASE state WHEN 'in_flight' THEN attempts ELSE 0 END,"
	               " error_code = CASE state WHEN 'in_flight' THEN error_code END,"
	               " error_message = CASE state WHEN 'in_flight' THEN error_message END,"
	               " request_id = CASE state WHEN 'in_flight' THEN request_id END"
	               " WHERE id = ?1",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "itiittbibtitiib", id, store_export_op_to_string(e->op),
		               e->cs_id, e->mv_id, e->dn, e->target_id,
		               (const void *)enc->changes_digest, (size_t)ATTR_DIGEST_SIZE,
		               (int64_t)e->n_members, (const void *)enc->members_digest,
		               (size_t)ATTR_DIGEST_SIZE, e->rules, e->run_id, e->cause, e->sync_gen,
		               store_now(), (const void *)enc->changes, enc->changes_len);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	return r;
}

int store_export_upsert(struct store *s, const struct store_export_spec *e,
                        enum store_upsert_result *ret_result, int64_t *ret_id)
{
	struct encoded enc = {0};
	struct found f = {0};
	enum store_upsert_result result = STORE_UNCHANGED;
	int64_t id = 0;
	bool tx = false;
	int r;

	if (!s || !e || e->connector_id <= 0 || !store_export_op_to_string(e->op) ||
	    !e->object_type || !*e->object_type || !e->anchor || !*e->anchor || e->cs_id < 0 ||
	    e->mv_id < 0 || (e->n_members && !e->members))
		return -EINVAL;
	r = store_writable(s);
	if (r < 0)
		return r;
	r = encode_spec(s, e, &enc);
	if (r < 0)
		goto out;
	r = find_export(s, e, &enc, &f);
	if (r < 0)
		goto out;
	/* Several rows to write only when there are membership rows to change. */
	tx = e->n_members > 0 || (r > 0 && !f.same_members);
	if (tx) {
		int t = store_tx_begin(s);
		if (t < 0) {
			r = t;
			goto out;
		}
	}
	if (r == 0) {
		r = export_insert(s, e, &enc, &id);
		if (r >= 0)
			r = write_members(s, id, &enc, e->n_members, false);
		result = STORE_ADDED;
	} else if (f.same_content) {
		id = f.id;
		r = export_refresh(s, e, id);
		result = STORE_UNCHANGED;
	} else {
		id = f.id;
		r = export_update(s, e, &enc, id);
		if (r >= 0 && !f.same_members)
			r = write_members(s, id, &enc, e->n_members, true);
		result = STORE_CHANGED;
	}
	if (tx && r >= 0)
		r = store_tx_commit(s);
	if (tx && r < 0)
		store_tx_rollback(s);
out:
	free(enc.changes);
	free(enc.members);
	if (r < 0)
		return r;
	if (ret_result)
		*ret_result = result;
	if (ret_id)
		*ret_id = id;
	return 0;
}

/* --- reading ------------------------------------------------------------------------------ */

#define EXPORT_COLUMNS                                                                             \
	"id, connector_id, op, object_type, anchor, cs_id, mv_id, dn, target_id, n_members,"       \
	" rules, run_id, cause, state, state_since, attempts, error_code, error_message,"          \
	" request_id, sync_gen, created, updated, changes"

struct store_export *store_export_free(struct store_export *e)
{
	if (!e)
		return NULL;
	free(e->object_type);
	free(e->anchor);
	free(e->dn);
	free(e->target_id);
	attr_diff_free(e->changes);
	free(e->rules);
	free(e->cause);
	free(e->error_code);
	free(e->error_message);
	free(e->request_id);
	free(e);
	return NULL;
}

static int row_to_export(struct store *s, sqlite3_stmt *st, struct store_export **ret)
{
	struct store_export *e;
	int r;

	e = calloc(1, sizeof(*e));
	if (!e)
		return store_failf(s, -ENOMEM, "out of memory");
	e->id = sqlite3_column_int64(st, 0);
	e->connector_id = sqlite3_column_int64(st, 1);
	e->op = store_export_op_from_string((const char *)sqlite3_column_text(st, 2));
	e->cs_id = sqlite3_column_int64(st, 5);
	e->mv_id = sqlite3_column_int64(st, 6);
	e->n_members = (uint64_t)sqlite3_column_int64(st, 9);
	e->run_id = sqlite3_column_int64(st, 11);
	e->state = store_export_state_from_string((const char *)sqlite3_column_text(st, 13));
	e->state_since = sqlite3_column_int64(st, 14);
	e->attempts = (unsigned)sqlite3_column_int64(st, 15);
	e->sync_gen = sqlite3_column_int64(st, 19);
	e->created = sqlite3_column_int64(st, 20);
	e->updated = sqlite3_column_int64(st, 21);
	r = ((int)e->op < 0 || (int)e->state < 0) ? store_failf(s, -EBADMSG, "bad export row") : 0;
	if (r >= 0)
		r = store_col_text(s, st, 3, &e->object_type);
	if (r >= 0)
		r = store_col_text(s, st, 4, &e->anchor);
	if (r >= 0)
		r = store_col_text(s, st, 7, &e->dn);
	if (r >= 0)
		r = store_col_text(s, st, 8, &e->target_id);
	if (r >= 0)
		r = store_col_text(s, st, 10, &e->rules);
	if (r >= 0)
		r = store_col_text(s, st, 12, &e->cause);
	if (r >= 0)
		r = store_col_text(s, st, 16, &e->error_code);
	if (r >= 0)
		r = store_col_text(s, st, 17, &e->error_message);
	if (r >= 0)
		r = store_col_text(s, st, 18, &e->request_id);
	if (r >= 0) {
		r = attr_diff_deserialize(sqlite3_column_blob(st, 22),
		                          (size_t)sqlite3_column_bytes(st, 22), &e->changes);
		if (r < 0)
			store_failf(s, r, "corrupt attribute changes of pending export %lld",
			            (long long)e->id);
	}
	if (r < 0) {
		store_export_free(e);
		return r;
	}
	*ret = e;
	return 0;
}

static int decode_export(struct store *s, sqlite3_stmt *st, void *batch, size_t i)
{
	return row_to_export(s, st, &((struct store_export **)batch)[i]);
}

static int get_one(struct store *s, sqlite3_stmt *st, struct store_export **ret)
{
	return store_get_row(s, st, decode_export, ret);
}

int store_export_get(struct store *s, int64_t id, struct store_export **ret)
{
	sqlite3_stmt *st;
	int r;

	if (!s || !ret)
		return -EINVAL;
	r = store_stmt(s, "SELECT " EXPORT_COLUMNS " FROM pending_exports WHERE id = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "i", id);
	if (r >= 0)
		r = get_one(s, st, ret);
	return r;
}

int store_export_get_by_anchor(struct store *s, int64_t connector_id, const char *object_type,
                               const char *anchor, struct store_export **ret)
{
	sqlite3_stmt *st;
	int r;

	if (!s || !object_type || !anchor || !ret)
		return -EINVAL;
	r = store_stmt(s,
	               "SELECT " EXPORT_COLUMNS " FROM pending_exports"
	               " WHERE connector_id = ?1 AND object_type = ?2 AND anchor = ?3",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "itt", connector_id, object_type, anchor);
	if (r >= 0)
		r = get_one(s, st, ret);
	return r;
}

int store_export_list(struct store *s, const struct store_export_filter *f, store_export_cb cb,
                      void *userdata)
{
	struct store_export_filter none = {0};
	struct store_export *batch[STORE_BATCH];
	int64_t last_conn = 0;
	char *last_type = NULL, *last_anchor = NULL;
	size_t n, i;
	int r = 0;

	if (!s || !cb)
		return -EINVAL;
	if (!f)
		f = &none;
	for (;;) {
		sqlite3_stmt *st;
		r = store_stmt(
		    s,
		    "SELECT " EXPORT_COLUMNS " FROM pending_exports"
		    " WHERE (connector_id, object_type, anchor) > (?1, ?2, ?3)"
		    " AND (?4 = 0 OR connector_id = ?4) AND (?5 IS NULL OR object_type = ?5)"
		    " AND (?6 = 0 OR (?6 >> CASE op WHEN 'add' THEN 0 WHEN 'update' THEN 1"
		    "   ELSE 2 END) & 1)"
		    " AND (?7 = 0 OR (?7 >> CASE state WHEN 'pending' THEN 0"
		    "   WHEN 'in_flight' THEN 1 WHEN 'error' THEN 2 ELSE 3 END) & 1)"
		    " ORDER BY connector_id, object_type, anchor LIMIT ?8",
		    &st);
		if (r >= 0)
			r = store_bind(s, st, "ittitiii", last_conn, last_type ? last_type : "",
			               last_anchor ? last_anchor : "", f->connector_id,
			               f->object_type, (int64_t)f->op_mask, (int64_t)f->state_mask,
			               (int64_t)STORE_BATCH);
		if (r < 0)
			break;
		r = store_fetch_page(s, st, decode_export, batch, &n);
		if (r >= 0 && n > 0) {
			free(last_type);
			free(last_anchor);
			last_conn = batch[n - 1]->connector_id;
			last_type = strdup(batch[n - 1]->object_type);
			last_anchor = strdup(batch[n - 1]->anchor);
			if (!last_type || !last_anchor)
				r = store_failf(s, -ENOMEM, "out of memory");
		}
		for (i = 0; i < n; i++) {
			if (r == 0)
				r = cb(batch[i], userdata);
			store_export_free(batch[i]);
		}
		if (r != 0 || n < STORE_BATCH)
			break;
	}
	free(last_type);
	free(last_anchor);
	return r;
}

struct member_row {
	enum store_member_op op;
	char *anchor;
	char *target_id;
};

static int decode_member(struct store *s, sqlite3_stmt *st, void *batch, size_t i)
{
	struct member_row *m = &((struct member_row *)batch)[i];
	int r;

	m->op = strcmp((const char *)sqlite3_column_text(st, 0), "add") == 0 ? STORE_MEMBER_ADD
	                                                                     : STORE_MEMBER_REMOVE;
	m->target_id = NULL;
	m->anchor = strdup((const char *)sqlite3_column_text(st, 1));
	if (!m->anchor)
		return store_failf(s, -ENOMEM, "out of memory");
	r = store_col_text(s, st, 2, &m->target_id);
	if (r < 0)
		free(m->anchor);
	return r;
}

int store_export_list_members(struct store *s, int64_t export_id, store_member_change_cb cb,
                              void *userdata)
{
	struct member_row batch[STORE_BATCH];
	char *last = NULL;
	size_t n, i;
	int r = 0;

	if (!s || !cb)
		return -EINVAL;
	for (;;) {
		sqlite3_stmt *st;
		r = store_stmt(s,
		               "SELECT op, member_anchor, target_id FROM pending_export_members"
		               " WHERE export_id = ?1 AND member_anchor > ?2"
		               " ORDER BY member_anchor LIMIT ?3",
		               &st);
		if (r >= 0)
			r = store_bind(s, st, "iti", export_id, last ? last : "",
			               (int64_t)STORE_BATCH);
		if (r < 0)
			break;
		r = store_fetch_page(s, st, decode_member, batch, &n);
		if (r >= 0 && n > 0) {
			free(last);
			last = strdup(batch[n - 1].anchor);
			if (!last)
				r = store_failf(s, -ENOMEM, "out of memory");
		}
		for (i = 0; i < n; i++) {
			struct store_member_change m = {batch[i].op, batch[i].anchor,
			                                batch[i].target_id};
			if (r == 0)
				r = cb(&m, userdata);
			free(batch[i].anchor);
			free(batch[i].target_id);
		}
		if (r != 0 || n < STORE_BATCH)
			break;
	}
	free(last);
	return r;
}

/* --- state changes ------------------------------------------------------------------------ */

int store_export_delete(struct store *s, int64_t id)
{
	sqlite3_stmt *st;
	int r;

	if (!s)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(s, "DELETE FROM pending_exports WHERE id = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "i", id);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0 && sqlite3_changes(s->db) == 0)
		r = store_failf(s, -ENOENT, "no pending export %lld", (long long)id);
	return r;
}

int store_export_delete_stale(struct store *s, int64_t connector_id, int64_t gen, uint64_t *ret_n)
{
	sqlite3_stmt *st;
	int r;

	if (!s || gen <= 0)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(s,
		               "DELETE FROM pending_exports WHERE connector_id = ?1"
		               " AND sync_gen < ?2 AND state <> 'in_flight'",
		               &st);
	if (r >= 0)
		r = store_bind(s, st, "ii", connector_id, gen);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0 && ret_n)
		*ret_n = (uint64_t)sqlite3_changes(s->db);
	return r;
}

int store_export_set_state(struct store *s, int64_t id, enum store_export_state state,
                           const char *code, const char *message, const char *request_id)
{
	const char *name = store_export_state_to_string(state);
	sqlite3_stmt *st;
	int r;

	if (!s || !name)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(s,
		               "UPDATE pending_exports SET state = ?2, state_since = ?3,"
		               " attempts = CASE ?2 WHEN 'in_flight' THEN attempts + 1"
		               "   WHEN 'pending' THEN 0 ELSE attempts END,"
		               " error_code = CASE ?2 WHEN 'error' THEN ?4 END,"
		               " error_message = CASE ?2 WHEN 'error' THEN ?5 END,"
		               " request_id = CASE WHEN ?2 IN ('error', 'in_flight') THEN ?6 END"
		               " WHERE id = ?1",
		               &st);
	if (r >= 0)
		r = store_bind(s, st, "itittt", id, name, store_now(), code, message, request_id);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0 && sqlite3_changes(s->db) == 0)
		r = store_failf(s, -ENOENT, "no pending export %lld", (long long)id);
	return r;
}

int store_export_counts(struct store *s, int64_t connector_id, struct store_export_totals *ret)
{
	struct store_export_totals t = {0};
	sqlite3_stmt *st;
	int rc, r;

	if (!s || !ret)
		return -EINVAL;
	r = store_stmt(s,
	               "SELECT op, state, count(*) FROM pending_exports"
	               " WHERE (?1 = 0 OR connector_id = ?1) GROUP BY state, op",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "i", connector_id);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int op = store_export_op_from_string((const char *)sqlite3_column_text(st, 0));
		int state =
		    store_export_state_from_string((const char *)sqlite3_column_text(st, 1));
		uint64_t n = (uint64_t)sqlite3_column_int64(st, 2);
		switch (state) {
		case STORE_EXPORT_PENDING:
			t.pending += n;
			break;
		case STORE_EXPORT_IN_FLIGHT:
			t.in_flight += n;
			break;
		case STORE_EXPORT_ERROR:
			t.error += n;
			break;
		default:
			t.done += n;
			continue; /* done is not pending any more */
		}
		if (op == STORE_EXPORT_ADD)
			t.add += n;
		else if (op == STORE_EXPORT_UPDATE)
			t.update += n;
		else
			t.delete += n;
		t.total += n;
	}
	if (rc != SQLITE_DONE)
		r = store_fail(s, rc);
	sqlite3_reset(st);
	if (r >= 0)
		*ret = t;
	return r;
}

static int fingerprint(struct store *s, bool deletes_only, char ret[STORE_FINGERPRINT_LEN + 1])
{
	uint8_t digest[ATTR_DIGEST_SIZE];
	struct attr_hash *h = NULL;
	sqlite3_stmt *st;
	int64_t count = 0;
	int rc, r;

	if (!s || !ret)
		return -EINVAL;
	r = attr_hash_new(&h);
	if (r < 0)
		return store_failf(s, r, "cannot start a digest");
	r = attr_hash_add_string(h, deletes_only ? "hybridsync pending deletes v1"
	                                         : "hybridsync pending exports v1");
	if (r >= 0)
		r = store_stmt(s,
		               "SELECT c.name, e.op, e.object_type, e.anchor, e.target_id,"
		               " e.changes_digest, e.members_digest"
		               " FROM connectors c JOIN pending_exports e ON e.connector_id = c.id"
		               " WHERE e.state <> 'done' AND (?1 = 0 OR e.op = 'delete')"
		               " ORDER BY c.name, e.object_type, e.anchor",
		               &st);
	if (r >= 0)
		r = store_bind(s, st, "i", (int64_t)deletes_only);
	if (r < 0)
		goto out;
	while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int col;
		for (col = 0; col < 5 && r >= 0; col++)
			r = attr_hash_add(h,
			                  sqlite3_column_type(st, col) == SQLITE_NULL
			                      ? NULL
			                      : sqlite3_column_text(st, col),
			                  (size_t)sqlite3_column_bytes(st, col));
		for (; col < 7 && r >= 0; col++)
			r = attr_hash_add(h, sqlite3_column_blob(st, col),
			                  (size_t)sqlite3_column_bytes(st, col));
		count++;
	}
	if (r >= 0 && rc != SQLITE_DONE)
		r = store_fail(s, rc);
	sqlite3_reset(st);
	if (r >= 0)
		r = attr_hash_add_int(h, count);
	if (r >= 0)
		r = attr_hash_final(h, digest);
	if (r >= 0)
		attr_digest_to_hex(digest, ret);
out:
	attr_hash_free(h);
	return r;
}

int store_pending_fingerprint(struct store *s, char ret[STORE_FINGERPRINT_LEN + 1])
{
	return fingerprint(s, false, ret);
}

int store_pending_deletes_fingerprint(struct store *s, char ret[STORE_FINGERPRINT_LEN + 1])
{
	return fingerprint(s, true, ret);
}
