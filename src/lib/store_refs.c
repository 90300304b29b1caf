/* The store's reference rows (member, manager: one row per value, resolved to CS ids) and the
 * export memory of Graph CS objects (exported, not yet confirmed by an import). */
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Same folding as SQLite's NOCASE collation (ASCII only), so C and SQL agree on equality. */
static int nocase_cmp(const char *a, const char *b)
{
	const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;

	for (;; x++, y++) {
		int cx = (*x >= 'A' && *x <= 'Z') ? *x + 32 : *x;
		int cy = (*y >= 'A' && *y <= 'Z') ? *y + 32 : *y;
		if (cx != cy || cx == 0)
			return cx - cy;
	}
}

static int cmp_str_ptr(const void *a, const void *b)
{
	return nocase_cmp(*(const char *const *)a, *(const char *const *)b);
}

struct strlist {
	char **v;
	size_t n, cap;
};

static void strlist_free(struct strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	*l = (struct strlist){0};
}

static int strlist_push(struct strlist *l, const char *str)
{
	char *c;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		char **v = reallocarray(l->v, cap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	c = strdup(str);
	if (!c)
		return -ENOMEM;
	l->v[l->n++] = c;
	return 0;
}

/* The CS object a reference points to: the non-transient one with that DN, else any (as
 * store_cs_get_by_dn); coalesce() evaluates the second lookup only when needed. */
#define RESOLVE(conn, dn)                                                                          \
	"coalesce((SELECT c.id FROM cs_objects c WHERE c.connector_id = " conn " AND c.dn = " dn   \
	" AND (c.flags & 2) = 0 LIMIT 1), (SELECT c.id FROM cs_objects c"                          \
	" WHERE c.connector_id = " conn " AND c.dn = " dn " LIMIT 1))"

/* The connector and pending import of a CS object. */
static int cs_info(struct store *s, int64_t cs_id, int64_t *ret_connector, int *ret_pending)
{
	sqlite3_stmt *st;
	int rc, r;

	r = store_stmt(s, "SELECT connector_id, pending_import FROM cs_objects WHERE id = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "i", cs_id);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*ret_connector = sqlite3_column_int64(st, 0);
		if (ret_pending)
			*ret_pending = sqlite3_column_int(st, 1);
	} else if (rc == SQLITE_DONE) {
		r = store_failf(s, -ENOENT, "no CS object %lld", (long long)cs_id);
	} else {
		r = store_fail(s, rc);
	}
	sqlite3_reset(st);
	return r;
}

/* A reference change is a change of the referencing object. */
static int mark_updated(struct store *s, int64_t cs_id)
{
	sqlite3_stmt *st;
	int r;

	r = store_stmt(s,
	               "UPDATE cs_objects SET pending_import = 2, pending_import_since = ?2"
	               " WHERE id = ?1 AND pending_import = 0",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "ii", cs_id, store_now());
	if (r >= 0)
		r = store_exec_stmt(s, st);
	return r;
}

static int ref_insert(struct store *s, int64_t cs_id, const char *attr, const char *dn,
                      int64_t connector_id, int *ret_added)
{
	sqlite3_stmt *st;
	int r;

	r = store_stmt(s,
	               "INSERT OR IGNORE INTO cs_refs(cs_id, attr, target_dn, connector_id,"
	               " target_cs_id) VALUES (?1, ?2, ?3, ?4, " RESOLVE("?4", "?3") ")",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "itti", cs_id, attr, dn, connector_id);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0)
		*ret_added = sqlite3_changes(s->db);
	return r;
}

static int ref_delete(struct store *s, int64_t cs_id, const char *attr, const char *dn,
                      int *ret_removed)
{
	sqlite3_stmt *st;
	int r;

	r = store_stmt(s, "DELETE FROM cs_refs WHERE cs_id = ?1 AND attr = ?2 AND target_dn = ?3",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "itt", cs_id, attr, dn);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0)
		*ret_removed = sqlite3_changes(s->db);
	return r;
}

static int load_refs(struct store *s, int64_t cs_id, const char *attr, struct strlist *out)
{
	sqlite3_stmt *st;
	int rc, r;

	r = store_stmt(s,
	               "SELECT target_dn FROM cs_refs WHERE cs_id = ?1 AND attr = ?2"
	               " ORDER BY target_dn",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "it", cs_id, attr);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = strlist_push(out, (const char *)sqlite3_column_text(st, 0));
		if (r < 0) {
			store_failf(s, r, "out of memory");
			break;
		}
	}
	if (r >= 0 && rc != SQLITE_DONE)
		r = store_fail(s, rc);
	sqlite3_reset(st);
	return r;
}

/* Merges the sorted wanted list with the sorted stored list: inserts and deletes the
 * difference only. */
static int merge_refs(struct store *s, int64_t cs_id, const char *attr, int64_t connector_id,
                      const char **want, size_t n, const struct strlist *have, size_t *changes)
{
	size_t i = 0, j = 0;
	int r = 0, k;

	while ((i < n || j < have->n) && r >= 0) {
		int c;
		if (i == n)
			c = 1;
		else if (j == have->n)
			c = -1;
		else
			c = nocase_cmp(want[i], have->v[j]);
		k = 0;
		if (c < 0)
			r = ref_insert(s, cs_id, attr, want[i++], connector_id, &k);
		else if (c > 0)
			r = ref_delete(s, cs_id, attr, have->v[j++], &k);
		else
			i++, j++;
		*changes += (size_t)k;
	}
	return r;
}

/* The rows of an object a bulk load just added; targets known to the bulk DN map are resolved
 * now, the others by store_cs_bulk_end. `want` is sorted and without duplicates. */
static int bulk_insert_refs(struct store *s, int64_t cs_id, const char *attr, const char **want,
                            size_t n, size_t *changes)
{
	sqlite3_stmt *st;
	int r = 0;

	for (size_t i = 0; i < n && r >= 0; i++) {
		r = store_stmt(s,
		               "INSERT OR IGNORE INTO cs_refs(cs_id, attr, target_dn, connector_id,"
		               " target_cs_id) VALUES (?1, ?2, ?3, ?4, nullif(?5, 0))",
		               &st);
		if (r >= 0)
			r = store_bind(s, st, "ittii", cs_id, attr, want[i], s->bulk.connector_id,
			               store_bulk_lookup(s, want[i]));
		if (r >= 0)
			r = store_exec_stmt(s, st);
		if (r >= 0)
			*changes += (size_t)sqlite3_changes(s->db);
	}
	return r;
}

int store_cs_set_refs(struct store *s, int64_t cs_id, const char *attr,
                      const char *const *target_dns, size_t n, size_t *ret_changes)
{
	struct strlist have = {0};
	const char **want = NULL;
	int64_t connector_id = 0;
	size_t i, m = 0, changes = 0;
	int r;

	if (!s || !attr || !*attr || (n && !target_dns))
		return -EINVAL;
	r = store_writable(s);
	if (r < 0)
		return r;
	want = malloc((n ? n : 1) * sizeof(*want));
	if (!want)
		return store_failf(s, -ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		if (!target_dns[i] || !*target_dns[i]) {
			r = store_failf(s, -EINVAL, "empty reference value");
			goto out;
		}
		want[i] = target_dns[i];
	}
	qsort(want, n, sizeof(*want), cmp_str_ptr);
	for (i = 0; i < n; i++) /* drop duplicates, as the NOCASE key would */
		if (m == 0 || nocase_cmp(want[m - 1], want[i]) != 0)
			want[m++] = want[i];

	r = store_tx_begin(s);
	if (r < 0)
		goto out;
	if (store_bulk_refs_claim(s, cs_id, attr)) {
		/* Just added by a bulk load: no rows yet, pending add (nothing to mark). */
		r = bulk_insert_refs(s, cs_id, attr, want, m, &changes);
		goto done;
	}
	r = cs_info(s, cs_id, &connector_id, NULL);
	if (r >= 0)
		r = load_refs(s, cs_id, attr, &have);
	if (r >= 0)
		r = merge_refs(s, cs_id, attr, connector_id, want, m, &have, &changes);
	if (r >= 0 && changes > 0)
		r = mark_updated(s, cs_id);
done:
	if (r >= 0)
		r = store_tx_commit(s);
	if (r < 0)
		store_tx_rollback(s);
out:
	strlist_free(&have);
	free(want);
	if (r >= 0 && ret_changes)
		*ret_changes = changes;
	return r;
}

static int ref_change(struct store *s, int64_t cs_id, const char *attr, const char *dn, bool add)
{
	int64_t connector_id = 0;
	int r, k = 0;

	if (!s || !attr || !*attr || !dn || !*dn)
		return -EINVAL;
	r = store_tx_begin(s);
	if (r < 0)
		return r;
	r = cs_info(s, cs_id, &connector_id, NULL);
	if (r >= 0)
		r = add ? ref_insert(s, cs_id, attr, dn, connector_id, &k)
		        : ref_delete(s, cs_id, attr, dn, &k);
	if (r >= 0 && k > 0)
		r = mark_updated(s, cs_id);
	if (r >= 0)
		r = store_tx_commit(s);
	if (r < 0) {
		store_tx_rollback(s);
		return r;
	}
	return k > 0 ? 1 : 0;
}

int store_cs_add_ref(struct store *s, int64_t cs_id, const char *attr, const char *target_dn)
{
	return ref_change(s, cs_id, attr, target_dn, true);
}

int store_cs_remove_ref(struct store *s, int64_t cs_id, const char *attr, const char *target_dn)
{
	return ref_change(s, cs_id, attr, target_dn, false);
}

struct ref_row {
	int64_t cs_id;
	char *attr;
	char *dn;
	int64_t target;
};

static int decode_ref(struct store *s, sqlite3_stmt *st, void *batch, size_t i)
{
	struct ref_row *row = &((struct ref_row *)batch)[i];

	row->cs_id = sqlite3_column_int64(st, 0);
	row->target = sqlite3_column_int64(st, 3);
	row->attr = strdup((const char *)sqlite3_column_text(st, 1));
	row->dn = strdup((const char *)sqlite3_column_text(st, 2));
	if (!row->attr || !row->dn) {
		free(row->attr);
		free(row->dn);
		return store_failf(s, -ENOMEM, "out of memory");
	}
	return 0;
}

/* Streams a keyset-paginated ref query whose rows are (cs_id, attr, target_dn, target) and
 * whose parameters ?1..?3 are fixed and ?4..?6 the last (cs_id, attr, target_dn), ?7 limit. */
static int stream_refs(struct store *s, const char *sql, int64_t p1, const char *p2, int64_t p3,
                       store_ref_cb cb, void *userdata)
{
	struct ref_row batch[STORE_BATCH];
	int64_t last_id = 0;
	char *last_attr = NULL, *last_dn = NULL;
	size_t n, i;
	int r = 0;

	for (;;) {
		sqlite3_stmt *st;
		r = store_stmt(s, sql, &st);
		if (r >= 0)
			r = store_bind(s, st, "itiitti", p1, p2, p3, last_id,
			               last_attr ? last_attr : "", last_dn ? last_dn : "",
			               (int64_t)STORE_BATCH);
		if (r < 0)
			break;
		r = store_fetch_page(s, st, decode_ref, batch, &n);
		if (r >= 0 && n > 0) { /* the key to continue after */
			free(last_attr);
			free(last_dn);
			last_id = batch[n - 1].cs_id;
			last_attr = strdup(batch[n - 1].attr);
			last_dn = strdup(batch[n - 1].dn);
			if (!last_attr || !last_dn)
				r = store_failf(s, -ENOMEM, "out of memory");
		}
		for (i = 0; i < n; i++) {
			struct store_ref ref = {batch[i].cs_id, batch[i].attr, batch[i].dn,
			                        batch[i].target};
			if (r == 0)
				r = cb(&ref, userdata);
			free(batch[i].attr);
			free(batch[i].dn);
		}
		if (r != 0 || n < STORE_BATCH)
			break;
	}
	free(last_attr);
	free(last_dn);
	return r;
}

int store_cs_get_refs(struct store *s, int64_t cs_id, const char *attr, store_ref_cb cb,
                      void *userdata)
{
	if (!s || !cb)
		return -EINVAL;
	/* ?3 and ?4 are unused: the key is (attr, target_dn) within one object. */
	return stream_refs(
	    s,
	    "SELECT r.cs_id, r.attr, r.target_dn, coalesce(r.target_cs_id,"
	    "  " RESOLVE(
	        "r.connector_id",
	        "r.target_dn") ", 0)"
	                       " FROM cs_refs r WHERE r.cs_id = ?1 AND (?2 IS NULL OR r.attr = ?2)"
	                       " AND (r.attr, r.target_dn) > (?5, ?6)"
	                       " ORDER BY r.attr, r.target_dn LIMIT ?7",
	    cs_id, attr, 0, cb, userdata);
}

int store_cs_get_referrers(struct store *s, int64_t target_cs_id, store_ref_cb cb, void *userdata)
{
	int64_t connector_id = 0;
	sqlite3_stmt *st;
	char *dn = NULL;
	int rc, r;

	if (!s || !cb)
		return -EINVAL;
	r = store_stmt(s, "SELECT connector_id, dn FROM cs_objects WHERE id = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "i", target_cs_id);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		connector_id = sqlite3_column_int64(st, 0);
		r = store_col_text(s, st, 1, &dn);
	} else if (rc == SQLITE_DONE) {
		r = store_failf(s, -ENOENT, "no CS object %lld", (long long)target_cs_id);
	} else {
		r = store_fail(s, rc);
	}
	sqlite3_reset(st);
	if (r < 0)
		return r;
	/* Resolved rows by id; unresolved ones by the target's DN. */
	r = stream_refs(s,
	                "SELECT cs_id, attr, target_dn, ?1 FROM ("
	                "  SELECT cs_id, attr, target_dn FROM cs_refs WHERE target_cs_id = ?1"
	                "  UNION"
	                "  SELECT cs_id, attr, target_dn FROM cs_refs"
	                "   WHERE target_cs_id IS NULL AND connector_id = ?3 AND target_dn = ?2)"
	                " WHERE (cs_id, attr, target_dn) > (?4, ?5, ?6)"
	                " ORDER BY cs_id, attr, target_dn LIMIT ?7",
	                target_cs_id, dn ? dn : "", connector_id, cb, userdata);
	free(dn);
	return r;
}

int store_cs_resolve_refs(struct store *s, int64_t connector_id, uint64_t *ret_n)
{
	sqlite3_stmt *st;
	int r;

	if (!s)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(s,
		               "UPDATE cs_refs SET target_cs_id = " RESOLVE(
		                   "cs_refs.connector_id",
		                   "cs_refs.target_dn") " WHERE connector_id = ?1 AND target_cs_id "
		                                        "IS NULL AND EXISTS ("
		                                        "  SELECT 1 FROM cs_objects c WHERE "
		                                        "c.connector_id = ?1"
		                                        "  AND c.dn = cs_refs.target_dn)",
		               &st);
	if (r >= 0)
		r = store_bind(s, st, "i", connector_id);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0 && ret_n)
		*ret_n = (uint64_t)sqlite3_changes(s->db);
	return r;
}

/* --- export memory ----------------------------------------------------------------------- */

const char *store_member_op_to_string(enum store_member_op op)
{
	static const char *const names[STORE_MEMBER_OP_MAX] = {
	    [STORE_MEMBER_ADD] = "add",
	    [STORE_MEMBER_REMOVE] = "remove",
	};
	return (op >= 0 && op < STORE_MEMBER_OP_MAX) ? names[op] : NULL;
}

int store_cs_get_export_memory(struct store *s, int64_t cs_id, struct attr_diff **ret,
                               int64_t *ret_exported)
{
	struct attr_diff *d = NULL;
	sqlite3_stmt *st;
	int64_t exported = 0;
	int rc, r;

	if (!s || !ret)
		return -EINVAL;
	r = store_stmt(s, "SELECT changes, exported FROM cs_export_memory WHERE cs_id = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "i", cs_id);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = attr_diff_deserialize(sqlite3_column_blob(st, 0),
		                          (size_t)sqlite3_column_bytes(st, 0), &d);
		if (r < 0)
			store_failf(s, r, "corrupt export memory of CS object %lld",
			            (long long)cs_id);
		exported = sqlite3_column_int64(st, 1);
	} else if (rc == SQLITE_DONE) {
		r = -ENOENT;
	} else {
		r = store_fail(s, rc);
	}
	sqlite3_reset(st);
	if (r < 0)
		return r;
	*ret = d;
	if (ret_exported)
		*ret_exported = exported;
	return 0;
}

int store_cs_set_export_memory(struct store *s, int64_t cs_id, const struct attr_diff *d,
                               int64_t run_id)
{
	sqlite3_stmt *st;
	void *blob = NULL;
	size_t len = 0;
	int r;

	if (!s)
		return -EINVAL;
	r = store_writable(s);
	if (r < 0)
		return r;
	if (attr_diff_count(d) == 0) {
		r = store_stmt(s, "DELETE FROM cs_export_memory WHERE cs_id = ?1", &st);
		if (r >= 0)
			r = store_bind(s, st, "i", cs_id);
		if (r >= 0)
			r = store_exec_stmt(s, st);
		return r;
	}
	r = attr_diff_serialize(d, &blob, &len);
	if (r < 0)
		return store_failf(s, r, "cannot encode export memory: %s", strerror(-r));
	r = store_stmt(s,
	               "INSERT INTO cs_export_memory(cs_id, run_id, exported, changes)"
	               " VALUES (?1, nullif(?2, 0), ?3, ?4) ON CONFLICT(cs_id) DO UPDATE SET"
	               " run_id = excluded.run_id, exported = excluded.exported,"
	               " changes = excluded.changes",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "iiib", cs_id, run_id, store_now(), (const void *)blob, len);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	free(blob);
	return r;
}

int store_cs_set_export_member(struct store *s, int64_t cs_id, const char *member,
                               enum store_member_op op)
{
	const char *o = store_member_op_to_string(op);
	sqlite3_stmt *st;
	int r;

	if (!s || !member || !*member || !o)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(s,
		               "INSERT INTO cs_export_members(cs_id, member, op, exported)"
		               " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(cs_id, member) DO UPDATE SET"
		               " op = excluded.op, exported = excluded.exported",
		               &st);
	if (r >= 0)
		r = store_bind(s, st, "itti", cs_id, member, o, store_now());
	if (r >= 0)
		r = store_exec_stmt(s, st);
	return r;
}

int store_cs_confirm_export_member(struct store *s, int64_t cs_id, const char *member)
{
	sqlite3_stmt *st;
	int r;

	if (!s || !member)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(s, "DELETE FROM cs_export_members WHERE cs_id = ?1 AND member = ?2",
		               &st);
	if (r >= 0)
		r = store_bind(s, st, "it", cs_id, member);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r < 0)
		return r;
	return sqlite3_changes(s->db) > 0 ? 1 : 0;
}

struct member_row {
	char *member;
	enum store_member_op op;
	int64_t exported;
};

static int decode_export_member(struct store *s, sqlite3_stmt *st, void *batch, size_t i)
{
	struct member_row *m = &((struct member_row *)batch)[i];

	m->member = strdup((const char *)sqlite3_column_text(st, 0));
	if (!m->member)
		return store_failf(s, -ENOMEM, "out of memory");
	m->op = strcmp((const char *)sqlite3_column_text(st, 1), "add") == 0 ? STORE_MEMBER_ADD
	                                                                     : STORE_MEMBER_REMOVE;
	m->exported = sqlite3_column_int64(st, 2);
	return 0;
}

int store_cs_list_export_members(struct store *s, int64_t cs_id, store_export_member_cb cb,
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
		               "SELECT member, op, exported FROM cs_export_members"
		               " WHERE cs_id = ?1 AND member > ?2 ORDER BY member LIMIT ?3",
		               &st);
		if (r >= 0)
			r = store_bind(s, st, "iti", cs_id, last ? last : "", (int64_t)STORE_BATCH);
		if (r < 0)
			break;
		r = store_fetch_page(s, st, decode_export_member, batch, &n);
		for (i = 0; i < n; i++) {
			if (r == 0 && batch[i].member) {
				struct store_export_member m = {cs_id, batch[i].member, batch[i].op,
				                                batch[i].exported};
				r = cb(&m, userdata);
			}
			if (i == n - 1 && batch[i].member) {
				free(last);
				last = batch[i].member;
			} else {
				free(batch[i].member);
			}
		}
		if (r != 0 || n < STORE_BATCH)
			break;
	}
	free(last);
	return r;
}

int store_cs_clear_export_memory(struct store *s, int64_t cs_id)
{
	sqlite3_stmt *st;
	int r;

	if (!s)
		return -EINVAL;
	r = store_tx_begin(s);
	if (r < 0)
		return r;
	r = store_stmt(s, "DELETE FROM cs_export_memory WHERE cs_id = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "i", cs_id);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0)
		r = store_stmt(s, "DELETE FROM cs_export_members WHERE cs_id = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "i", cs_id);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0)
		r = store_tx_commit(s);
	if (r < 0)
		store_tx_rollback(s);
	return r;
}
