/* The store's reference rows (member, manager: one row per value, resolved to CS ids) and the
 * export memory of Graph CS objects (exported, not yet confirmed by an import).
 *
 * A resolved row keeps the target's id only (target_dn is ''): its DN is the target's own, read
 * by a join, so it follows renames by itself. An unresolved row (target_cs_id 0) keeps the DN
 * text. A row is identified by (cs_id, attr, target_cs_id, target_dn). */
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

/* One stored reference as read back: its DN (the target's when resolved) and its key. */
struct ref_row {
	int64_t cs_id;
	char *attr; /* only when read by store_cs_get_refs */
	char *dn;
	int64_t target;
};

struct ref_rows {
	struct ref_row *v;
	size_t n, cap;
};

static void ref_rows_free(struct ref_rows *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].attr);
		free(l->v[i].dn);
	}
	free(l->v);
	*l = (struct ref_rows){0};
}

/* Appends the row of `st` whose first columns are (attr, dn, target) or, when `with_attr` is
 * false, (dn, target). */
static int ref_rows_push(struct store *s, struct ref_rows *l, sqlite3_stmt *st, int64_t cs_id,
                         bool with_attr)
{
	struct ref_row *row;
	int col = 0;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct ref_row *v = reallocarray(l->v, cap, sizeof(*v));
		if (!v)
			return store_failf(s, -ENOMEM, "out of memory");
		l->v = v;
		l->cap = cap;
	}
	row = &l->v[l->n];
	*row = (struct ref_row){.cs_id = cs_id};
	if (with_attr && !(row->attr = strdup((const char *)sqlite3_column_text(st, col++))))
		return store_failf(s, -ENOMEM, "out of memory");
	row->dn = strdup((const char *)sqlite3_column_text(st, col++));
	row->target = sqlite3_column_int64(st, col);
	if (!row->dn) {
		free(row->attr);
		return store_failf(s, -ENOMEM, "out of memory");
	}
	l->n++;
	return 0;
}

/* The DN a row of `cs_refs r LEFT JOIN cs_objects t ON t.id = r.target_cs_id` stands for. */
#define REF_DN "(CASE WHEN r.target_cs_id = 0 THEN r.target_dn ELSE coalesce(t.dn, '') END)"

/* clang-format off */
/* One object's references (?2 NULL: of every attribute) by attribute and DN, unresolved ones
 * resolved for the reader when their target has appeared since. */
#define GET_REFS_SQL                                                                               \
	"SELECT r.attr, " REF_DN " AS dn, CASE WHEN r.target_cs_id <> 0 THEN r.target_cs_id"       \
	" ELSE coalesce(" RESOLVE("r.connector_id", "r.target_dn") ", 0) END"                     \
	" FROM cs_refs r LEFT JOIN cs_objects t ON t.id = r.target_cs_id"                          \
	" WHERE r.cs_id = ?1 AND (?2 IS NULL OR r.attr = ?2) ORDER BY r.attr, dn COLLATE NOCASE"
/* The connector's unresolved references whose target has appeared. OR REPLACE: a row already
 * resolved to the same target (written after the target came) is the same reference. */
#define RESOLVE_REFS_SQL                                                                           \
	"UPDATE OR REPLACE cs_refs SET target_cs_id = "                                            \
	RESOLVE("cs_refs.connector_id", "cs_refs.target_dn") ", target_dn = ''"                    \
	" WHERE connector_id = ?1 AND target_cs_id = 0 AND EXISTS (SELECT 1 FROM cs_objects c"     \
	" WHERE c.connector_id = ?1 AND c.dn = cs_refs.target_dn)"
/* clang-format on */

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

/* Runs one write about the value `dn` of (cs_id, attr), with those parameters as ?1..?4, and
 * adds the rows it changed to *changed. */
static int ref_exec(struct store *s, const char *sql, int64_t cs_id, const char *attr,
                    const char *dn, int64_t connector_id, int *changed)
{
	sqlite3_stmt *st;
	int r;

	r = store_stmt(s, sql, &st);
	if (r >= 0)
		r = store_bind(s, st, "itti", cs_id, attr, dn, connector_id);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0)
		*changed += sqlite3_changes(s->db);
	return r;
}

/* Adds a row for `dn`, resolved now when an object has that DN; the caller knows that no row
 * stands for `dn` yet. */
static int ref_insert(struct store *s, int64_t cs_id, const char *attr, const char *dn,
                      int64_t connector_id, int *ret_added)
{
	*ret_added = 0;
	return ref_exec(s,
	                "INSERT OR IGNORE INTO cs_refs(cs_id, attr, target_cs_id, target_dn,"
	                " connector_id) SELECT ?1, ?2, t, CASE t WHEN 0 THEN ?3 ELSE '' END, ?4"
	                " FROM (SELECT coalesce(" RESOLVE("?4", "?3") ", 0) AS t)",
	                cs_id, attr, dn, connector_id, ret_added);
}

/* Deletes the rows standing for `dn` (unresolved, or resolved to an object with that DN): two
 * statements, each a lookup by the full key, however many values the attribute has. */
static int ref_delete_dn(struct store *s, int64_t cs_id, const char *attr, const char *dn,
                         int64_t connector_id, int *ret_removed)
{
	int r;

	*ret_removed = 0;
	r = ref_exec(s,
	             "DELETE FROM cs_refs WHERE cs_id = ?1 AND attr = ?2 AND target_cs_id = 0"
	             " AND target_dn = ?3 AND connector_id = ?4",
	             cs_id, attr, dn, connector_id, ret_removed);
	if (r >= 0)
		r = ref_exec(
		    s,
		    "DELETE FROM cs_refs WHERE cs_id = ?1 AND attr = ?2 AND target_cs_id IN ("
		    " SELECT c.id FROM cs_objects c WHERE c.connector_id = ?4 AND c.dn = ?3)"
		    " AND target_dn = ''",
		    cs_id, attr, dn, connector_id, ret_removed);
	return r;
}

/* 1 when a row stands for `dn`, resolved or not. */
static int ref_exists(struct store *s, int64_t cs_id, const char *attr, const char *dn,
                      int64_t connector_id)
{
	sqlite3_stmt *st;
	int rc, r;

	r = store_stmt(s,
	               "SELECT EXISTS (SELECT 1 FROM cs_refs WHERE cs_id = ?1 AND attr = ?2"
	               "  AND target_cs_id = 0 AND target_dn = ?3)"
	               " OR EXISTS (SELECT 1 FROM cs_objects c CROSS JOIN cs_refs r"
	               "  ON r.cs_id = ?1 AND r.attr = ?2 AND r.target_cs_id = c.id"
	               "  AND r.target_dn = '' WHERE c.connector_id = ?4 AND c.dn = ?3)",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "itti", cs_id, attr, dn, connector_id);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	r = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : store_fail(s, rc);
	sqlite3_reset(st);
	return r;
}

/* Deletes one row read by load_refs. */
static int ref_delete_row(struct store *s, int64_t cs_id, const char *attr,
                          const struct ref_row *row, int *ret_removed)
{
	sqlite3_stmt *st;
	int r;

	r = store_stmt(s,
	               "DELETE FROM cs_refs WHERE cs_id = ?1 AND attr = ?2 AND target_cs_id = ?3"
	               " AND target_dn = ?4",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "itit", cs_id, attr, row->target, row->target ? "" : row->dn);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0)
		*ret_removed = sqlite3_changes(s->db);
	return r;
}

/* The stored values of one attribute with their keys, in DN order. */
static int load_refs(struct store *s, int64_t cs_id, const char *attr, struct ref_rows *out)
{
	sqlite3_stmt *st;
	int rc, r;

	r = store_stmt(s,
	               "SELECT " REF_DN " AS dn, r.target_cs_id FROM cs_refs r"
	               " LEFT JOIN cs_objects t ON t.id = r.target_cs_id"
	               " WHERE r.cs_id = ?1 AND r.attr = ?2 ORDER BY dn COLLATE NOCASE",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "it", cs_id, attr);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && r >= 0)
		r = ref_rows_push(s, out, st, cs_id, false);
	if (r >= 0 && rc != SQLITE_DONE)
		r = store_fail(s, rc);
	sqlite3_reset(st);
	return r;
}

/* Merges the sorted wanted list with the sorted stored list: inserts and deletes the
 * difference only (a DN stored twice, resolved and not, loses its second row). */
static int merge_refs(struct store *s, int64_t cs_id, const char *attr, int64_t connector_id,
                      const char **want, size_t n, const struct ref_rows *have, size_t *changes)
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
			c = nocase_cmp(want[i], have->v[j].dn);
		k = 0;
		if (c < 0)
			r = ref_insert(s, cs_id, attr, want[i++], connector_id, &k);
		else if (c > 0)
			r = ref_delete_row(s, cs_id, attr, &have->v[j++], &k);
		else
			i++, j++;
		*changes += (size_t)k;
	}
	return r;
}

/* Rows per INSERT of a bulk load: one statement per row spends more on the statement (bind,
 * step, reset) than on the row. */
#define BULK_ROWS 16
#define ROW5      "(?, ?, ?, ?, ?)"
#define ROWS4     ROW5 "," ROW5 "," ROW5 "," ROW5
#define BULK_INSERT                                                                                \
	"INSERT OR IGNORE INTO cs_refs(cs_id, attr, target_cs_id, target_dn, connector_id) "       \
	"VALUES "

static int bind_ref(struct store *s, sqlite3_stmt *st, int first, int64_t cs_id, const char *attr,
                    const char *dn, int64_t target)
{
	int rc;

	rc = sqlite3_bind_int64(st, first, cs_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, first + 1, attr, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, first + 2, target);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, first + 3, target ? "" : dn, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, first + 4, s->bulk.connector_id);
	return rc == SQLITE_OK ? 0 : store_fail(s, rc);
}

/* One row of a bulk load: its target (0: not in the DN map) and its DN. */
struct bulk_row {
	int64_t target;
	const char *dn;
};

/* The table's key order: unresolved rows first, by DN (NOCASE), then by target. Two rows that
 * compare equal are one reference: a target id stands for one DN (the map's equality is NOCASE
 * too). */
static int cmp_bulk_row(const void *a, const void *b)
{
	const struct bulk_row *x = a, *y = b;

	if (x->target != y->target)
		return x->target < y->target ? -1 : 1;
	return x->target == 0 ? nocase_cmp(x->dn, y->dn) : 0;
}

/* The rows of an object a bulk load just added; targets known to the bulk DN map are resolved
 * now, the others by store_cs_bulk_end. `dns` is as the directory sent it: the rows are sorted
 * and their duplicates dropped here, by target id where resolved (integers, where the general
 * path compares DNs). They go in in the order of the table's key: each lands at the end of the
 * B-tree, where SQLite appends without rebalancing pages. In the DN map's order (random ids) a
 * first import of contoso-100k spent a fifth more on them. */
static int bulk_insert_refs(struct store *s, int64_t cs_id, const char *attr,
                            const char *const *dns, size_t n, size_t *changes)
{
	struct bulk_row small[BULK_ROWS], *row = n <= BULK_ROWS ? small : malloc(n * sizeof(*row));
	int64_t small_ids[BULK_ROWS], *ids = n <= BULK_ROWS ? small_ids : malloc(n * sizeof(*ids));
	sqlite3_stmt *st;
	size_t i = 0, m = 0, unresolved = 0;
	int r = 0;

	if (!row || !ids) {
		r = store_failf(s, -ENOMEM, "out of memory");
		goto out;
	}
	store_bulk_lookup_many(s, dns, n, ids);
	for (i = 0; i < n; i++)
		row[i] = (struct bulk_row){.target = ids[i], .dn = dns[i]};
	qsort(row, n, sizeof(*row), cmp_bulk_row);
	for (i = 0; i < n; i++) {
		if (m > 0 && cmp_bulk_row(&row[m - 1], &row[i]) == 0)
			continue;
		row[m++] = row[i];
		unresolved += row[i].target == 0;
	}
	if (unresolved > 0)
		store_bulk_unresolved(s, unresolved);

	i = 0;
	while (i < m && r >= 0) {
		size_t k = m - i >= BULK_ROWS ? BULK_ROWS : 1;
		r = store_stmt(s,
		               k == BULK_ROWS ? BULK_INSERT ROWS4 "," ROWS4 "," ROWS4 "," ROWS4
		                              : BULK_INSERT ROW5,
		               &st);
		for (size_t j = 0; j < k && r >= 0; j++)
			r = bind_ref(s, st, (int)(5 * j + 1), cs_id, attr, row[i + j].dn,
			             row[i + j].target);
		if (r >= 0)
			r = store_exec_stmt(s, st);
		if (r >= 0)
			*changes += (size_t)sqlite3_changes(s->db);
		i += k;
	}
out:
	if (row != small)
		free(row);
	if (ids != small_ids)
		free(ids);
	return r;
}

static void bulk_undo_refs(struct store *s, int64_t cs_id, const char *attr)
{
	sqlite3_stmt *st;
	char err[sizeof(s->errmsg)];

	memcpy(err, s->errmsg, sizeof(err)); /* the first error is the one to report */
	if (store_stmt(s, "DELETE FROM cs_refs WHERE cs_id = ?1 AND attr = ?2", &st) >= 0 &&
	    store_bind(s, st, "it", cs_id, attr) >= 0)
		(void)store_exec_stmt(s, st);
	memcpy(s->errmsg, err, sizeof(err));
}

int store_cs_set_refs(struct store *s, int64_t cs_id, const char *attr,
                      const char *const *target_dns, size_t n, size_t *ret_changes)
{
	struct ref_rows have = {0};
	const char **want = NULL;
	int64_t connector_id = 0;
	size_t i, m = 0, changes = 0;
	int r;

	if (!s || !attr || !*attr || (n && !target_dns))
		return -EINVAL;
	r = store_writable(s);
	if (r < 0)
		return r;
	for (i = 0; i < n; i++)
		if (!target_dns[i] || !*target_dns[i])
			return store_failf(s, -EINVAL, "empty reference value");
	if (s->tx_depth > 0 && store_bulk_refs_claim(s, cs_id, attr)) {
		/* Just added by a bulk load: no rows yet, pending add (nothing to mark). Inside the
		 * load's transaction without a savepoint of its own (two statements per object, a
		 * tenth of a first import): a failure deletes what it inserted, which is every row
		 * of this object and attribute. The list is read as it is: no copy. */
		r = bulk_insert_refs(s, cs_id, attr, target_dns, n, &changes);
		if (r < 0)
			bulk_undo_refs(s, cs_id, attr);
		goto out;
	}
	want = malloc((n ? n : 1) * sizeof(*want));
	if (!want)
		return store_failf(s, -ENOMEM, "out of memory");
	if (n > 0)
		memcpy(want, target_dns, n * sizeof(*want));
	qsort(want, n, sizeof(*want), cmp_str_ptr);
	for (i = 0; i < n; i++) /* drop duplicates, as the NOCASE key would */
		if (m == 0 || nocase_cmp(want[m - 1], want[i]) != 0)
			want[m++] = want[i];

	r = store_tx_begin(s);
	if (r < 0)
		goto out;
	r = cs_info(s, cs_id, &connector_id, NULL);
	if (r >= 0)
		r = load_refs(s, cs_id, attr, &have);
	if (r >= 0)
		r = merge_refs(s, cs_id, attr, connector_id, want, m, &have, &changes);
	if (r >= 0 && changes > 0)
		r = mark_updated(s, cs_id);
	if (r >= 0)
		r = store_tx_commit(s);
	if (r < 0)
		store_tx_rollback(s);
out:
	ref_rows_free(&have);
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
	if (r >= 0 && add) {
		r = ref_exists(s, cs_id, attr, dn, connector_id);
		if (r == 0)
			r = ref_insert(s, cs_id, attr, dn, connector_id, &k);
	} else if (r >= 0) {
		r = ref_delete_dn(s, cs_id, attr, dn, connector_id, &k);
	}
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

/* Hands the rows to `cb` after the statement that read them is done, so that it may write. */
static int ref_rows_emit(const struct ref_rows *rows, store_ref_cb cb, void *userdata)
{
	int r = 0;

	for (size_t i = 0; i < rows->n && r == 0; i++) {
		struct store_ref ref = {rows->v[i].cs_id, rows->v[i].attr, rows->v[i].dn,
		                        rows->v[i].target};
		r = cb(&ref, userdata);
	}
	return r;
}

int store_cs_get_refs(struct store *s, int64_t cs_id, const char *attr, store_ref_cb cb,
                      void *userdata)
{
	struct ref_rows rows = {0};
	sqlite3_stmt *st;
	int rc, r;

	if (!s || !cb)
		return -EINVAL;
	/* One object's references at once (they are sorted by DN, which is not the key): its
	 * memory is that of its largest attribute, never of the directory. */
	r = store_stmt(s, GET_REFS_SQL, &st);
	if (r >= 0)
		r = store_bind(s, st, "it", cs_id, attr);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && r >= 0)
		r = ref_rows_push(s, &rows, st, cs_id, true);
	if (r >= 0 && rc != SQLITE_DONE)
		r = store_fail(s, rc);
	sqlite3_reset(st);
	if (r >= 0)
		r = ref_rows_emit(&rows, cb, userdata);
	ref_rows_free(&rows);
	return r;
}

int store_cs_get_referrers(struct store *s, int64_t target_cs_id, store_ref_cb cb, void *userdata)
{
	struct ref_rows rows = {0};
	int64_t connector_id = 0, last_id = 0;
	char *last_attr = NULL;
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
	/* Resolved rows by id, unresolved ones by the target's DN; a popular target (a manager
	 * of thousands) is read in batches, continuing after the last (cs_id, attr). */
	while (r >= 0) {
		r = store_stmt(s,
		               "SELECT attr, ?2, ?1, cs_id FROM ("
		               "  SELECT cs_id, attr FROM cs_refs"
		               "   WHERE target_cs_id = ?1 AND target_cs_id <> 0"
		               "  UNION"
		               "  SELECT cs_id, attr FROM cs_refs"
		               "   WHERE target_cs_id = 0 AND connector_id = ?3 AND target_dn = ?2)"
		               " WHERE (cs_id, attr) > (?4, ?5) ORDER BY cs_id, attr LIMIT ?6",
		               &st);
		if (r >= 0)
			r = store_bind(s, st, "itiiti", target_cs_id, dn ? dn : "", connector_id,
			               last_id, last_attr ? last_attr : "", (int64_t)STORE_BATCH);
		if (r < 0)
			break;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW && r >= 0)
			r = ref_rows_push(s, &rows, st, sqlite3_column_int64(st, 3), true);
		if (r >= 0 && rc != SQLITE_DONE)
			r = store_fail(s, rc);
		sqlite3_reset(st);
		if (r < 0 || rows.n == 0)
			break;
		last_id = rows.v[rows.n - 1].cs_id;
		free(last_attr);
		last_attr = strdup(rows.v[rows.n - 1].attr);
		if (!last_attr) {
			r = store_failf(s, -ENOMEM, "out of memory");
			break;
		}
		r = ref_rows_emit(&rows, cb, userdata);
		if (r != 0 || rows.n < STORE_BATCH)
			break;
		ref_rows_free(&rows);
	}
	ref_rows_free(&rows);
	free(last_attr);
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
		r = store_stmt(s, RESOLVE_REFS_SQL, &st);
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
