/* The store's metaverse: MV objects and the join index, (attribute, value) -> MV object, for
 * the few attributes join rules look up. */
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INDEX_ATTRS_KEY "mv.index_attrs"
#define INDEX_ATTRS_MAX 32
#define INDEX_VALUE_MAX 2048 /* longer values are not indexed: no join looks them up */

/* --- the index attribute set -------------------------------------------------------------- */

void store_mv_free_index_attrs(struct store *s)
{
	size_t i;

	for (i = 0; i < s->n_index_attrs; i++)
		free(s->index_attrs[i].name);
	free(s->index_attrs);
	s->index_attrs = NULL;
	s->n_index_attrs = 0;
}

static void lower_ascii(char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] >= 'A' && p[i] <= 'Z')
			p[i] = (char)(p[i] + 32);
}

static int cmp_index_attr(const void *a, const void *b)
{
	return strcmp(((const struct store_index_attr *)a)->name,
	              ((const struct store_index_attr *)b)->name);
}

/* Parses "name[:ci],..." (as persisted) into a sorted array. */
static int parse_index_attrs(const char *spec, struct store_index_attr **ret, size_t *ret_n)
{
	struct store_index_attr *v = NULL;
	const char *p = spec;
	size_t n = 0;

	v = calloc(INDEX_ATTRS_MAX, sizeof(*v));
	if (!v)
		return -ENOMEM;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		bool ci = len > 3 && memcmp(p + len - 3, ":ci", 3) == 0;
		size_t nlen = ci ? len - 3 : len;
		if (nlen > 0) {
			if (n == INDEX_ATTRS_MAX)
				goto inval;
			v[n].name = strndup(p, nlen);
			if (!v[n].name)
				goto nomem;
			lower_ascii(v[n].name, nlen);
			v[n].case_insensitive = ci;
			n++;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	qsort(v, n, sizeof(*v), cmp_index_attr);
	*ret = v;
	*ret_n = n;
	return 0;
inval:
	while (n > 0)
		free(v[--n].name);
	free(v);
	return -EINVAL;
nomem:
	while (n > 0)
		free(v[--n].name);
	free(v);
	return -ENOMEM;
}

int store_mv_load_index_attrs(struct store *s)
{
	struct store_index_attr *v;
	char *spec = NULL;
	size_t n;
	int r;

	r = store_state_get(s, INDEX_ATTRS_KEY, &spec);
	if (r == -ENOENT) {
		spec = strdup("");
		r = spec ? 0 : -ENOMEM;
	}
	if (r < 0)
		return r;
	r = parse_index_attrs(spec, &v, &n);
	free(spec);
	if (r < 0)
		return store_failf(s, r, "bad metaverse index attribute list in the database");
	store_mv_free_index_attrs(s);
	s->index_attrs = v;
	s->n_index_attrs = n;
	return 0;
}

static const struct store_index_attr *index_attr_find(struct store *s, const char *name)
{
	char lower[ATTR_NAME_MAX + 1];
	size_t i, len = strlen(name);

	if (len > ATTR_NAME_MAX)
		return NULL;
	memcpy(lower, name, len + 1);
	lower_ascii(lower, len);
	for (i = 0; i < s->n_index_attrs; i++)
		if (strcmp(s->index_attrs[i].name, lower) == 0)
			return &s->index_attrs[i];
	return NULL;
}

/* --- index rows --------------------------------------------------------------------------- */

static int index_value(struct store *s, int64_t mv_id, const struct store_index_attr *ia,
                       const struct attr_value *v)
{
	char buf[INDEX_VALUE_MAX];
	sqlite3_stmt *st;
	const void *val = v->data;
	int r;

	if (v->len == 0 || v->len > INDEX_VALUE_MAX)
		return 0;
	if (ia->case_insensitive) {
		memcpy(buf, v->data, v->len);
		lower_ascii(buf, v->len);
		val = buf;
	}
	r = store_stmt(s, "INSERT OR IGNORE INTO mv_index(attr, value, mv_id) VALUES (?1, ?2, ?3)",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "tbi", ia->name, val, v->len, mv_id);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	return r;
}

static int index_object(struct store *s, int64_t mv_id, const struct attr_set *attrs)
{
	size_t i, j;
	int r = 0;

	for (i = 0; i < s->n_index_attrs && r >= 0; i++) {
		const struct attr_value *v;
		size_t n;
		if (attr_set_get(attrs, s->index_attrs[i].name, &v, &n) < 0)
			continue;
		for (j = 0; j < n && r >= 0; j++)
			r = index_value(s, mv_id, &s->index_attrs[i], &v[j]);
	}
	return r;
}

static int unindex_object(struct store *s, int64_t mv_id)
{
	sqlite3_stmt *st;
	int r;

	r = store_stmt(s, "DELETE FROM mv_index WHERE mv_id = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "i", mv_id);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	return r;
}

/* --- MV objects --------------------------------------------------------------------------- */

#define MV_COLUMNS "id, object_type, source_anchor, created, updated, attrs_digest, attrs"

struct store_mv_object *store_mv_object_free(struct store_mv_object *o)
{
	if (!o)
		return NULL;
	free(o->object_type);
	free(o->source_anchor);
	attr_set_free(o->attrs);
	free(o);
	return NULL;
}

static int row_to_mv(struct store *s, sqlite3_stmt *st, struct store_mv_object **ret)
{
	struct store_mv_object *o;
	int r;

	o = calloc(1, sizeof(*o));
	if (!o)
		return store_failf(s, -ENOMEM, "out of memory");
	o->id = sqlite3_column_int64(st, 0);
	r = store_col_text(s, st, 1, &o->object_type);
	if (r >= 0)
		r = store_col_text(s, st, 2, &o->source_anchor);
	o->created = sqlite3_column_int64(st, 3);
	o->updated = sqlite3_column_int64(st, 4);
	store_col_digest(st, 5, o->digest);
	if (r >= 0)
		r = store_col_attrs(s, st, 6, &o->attrs);
	if (r < 0) {
		store_mv_object_free(o);
		return r;
	}
	*ret = o;
	return 0;
}

static int decode_mv(struct store *s, sqlite3_stmt *st, void *batch, size_t i)
{
	return row_to_mv(s, st, &((struct store_mv_object **)batch)[i]);
}

static int get_one(struct store *s, sqlite3_stmt *st, struct store_mv_object **ret)
{
	return store_get_row(s, st, decode_mv, ret);
}

int store_mv_create(struct store *s, const char *object_type, const char *source_anchor,
                    const struct attr_set *attrs, int64_t *ret_id)
{
	uint8_t digest[ATTR_DIGEST_SIZE];
	sqlite3_stmt *st;
	void *blob = NULL;
	size_t len = 0;
	int64_t id = 0, now = store_now();
	int r;

	if (!s || !object_type || !*object_type)
		return -EINVAL;
	r = store_encode_attrs(s, attrs, &blob, &len, digest);
	if (r < 0)
		return r;
	r = store_tx_begin(s);
	if (r < 0)
		goto out;
	r = store_stmt(s,
	               "INSERT INTO mv_objects(object_type, source_anchor, created, updated,"
	               " attrs_digest, attrs) VALUES (?1, ?2, ?3, ?3, ?4, ?5)",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "ttibb", object_type, source_anchor, now,
		               (const void *)digest, (size_t)ATTR_DIGEST_SIZE, (const void *)blob,
		               len);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r == -EEXIST)
		store_failf(s, r, "source anchor '%s' is already in the metaverse", source_anchor);
	if (r >= 0) {
		id = sqlite3_last_insert_rowid(s->db);
		r = index_object(s, id, attrs);
	}
	if (r >= 0)
		r = store_tx_commit(s);
	if (r < 0)
		store_tx_rollback(s);
out:
	free(blob);
	if (r >= 0 && ret_id)
		*ret_id = id;
	return r;
}

int store_mv_get(struct store *s, int64_t id, struct store_mv_object **ret)
{
	sqlite3_stmt *st;
	int r;

	if (!s || !ret)
		return -EINVAL;
	r = store_stmt(s, "SELECT " MV_COLUMNS " FROM mv_objects WHERE id = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "i", id);
	if (r >= 0)
		r = get_one(s, st, ret);
	return r;
}

int store_mv_get_by_source_anchor(struct store *s, const char *source_anchor,
                                  struct store_mv_object **ret)
{
	sqlite3_stmt *st;
	int r;

	if (!s || !source_anchor || !ret)
		return -EINVAL;
	r = store_stmt(s, "SELECT " MV_COLUMNS " FROM mv_objects WHERE source_anchor = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "t", source_anchor);
	if (r >= 0)
		r = get_one(s, st, ret);
	return r;
}

int store_mv_update(struct store *s, int64_t id, const struct attr_set *attrs)
{
	uint8_t digest[ATTR_DIGEST_SIZE];
	sqlite3_stmt *st;
	void *blob = NULL;
	size_t len = 0;
	bool same = false;
	int rc, r;

	if (!s)
		return -EINVAL;
	r = store_writable(s);
	if (r < 0)
		return r;
	r = attr_set_digest(attrs, digest);
	if (r < 0)
		return store_failf(s, r, "cannot digest attributes: %s", strerror(-r));
	r = store_stmt(s, "SELECT attrs_digest FROM mv_objects WHERE id = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "i", id);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		same = sqlite3_column_bytes(st, 0) == (int)ATTR_DIGEST_SIZE &&
		       memcmp(sqlite3_column_blob(st, 0), digest, ATTR_DIGEST_SIZE) == 0;
	else if (rc == SQLITE_DONE)
		r = store_failf(s, -ENOENT, "no MV object %lld", (long long)id);
	else
		r = store_fail(s, rc);
	sqlite3_reset(st);
	if (r < 0 || same)
		return r;

	r = store_encode_attrs(s, attrs, &blob, &len, NULL);
	if (r < 0)
		return r;
	r = store_tx_begin(s);
	if (r < 0)
		goto out;
	r = store_stmt(s,
	               "UPDATE mv_objects SET updated = ?2, attrs_digest = ?3, attrs = ?4"
	               " WHERE id = ?1",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "iibb", id, store_now(), (const void *)digest,
		               (size_t)ATTR_DIGEST_SIZE, (const void *)blob, len);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0)
		r = unindex_object(s, id);
	if (r >= 0)
		r = index_object(s, id, attrs);
	if (r >= 0)
		r = store_tx_commit(s);
	if (r < 0)
		store_tx_rollback(s);
out:
	free(blob);
	return r < 0 ? r : 1;
}

int store_mv_set_source_anchor(struct store *s, int64_t id, const char *source_anchor)
{
	sqlite3_stmt *st;
	int r;

	if (!s)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(
		    s, "UPDATE mv_objects SET source_anchor = ?2, updated = ?3 WHERE id = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "iti", id, source_anchor, store_now());
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r == -EEXIST)
		store_failf(s, r, "source anchor '%s' is already in the metaverse", source_anchor);
	if (r >= 0 && sqlite3_changes(s->db) == 0)
		r = store_failf(s, -ENOENT, "no MV object %lld", (long long)id);
	return r;
}

int store_mv_delete(struct store *s, int64_t id)
{
	sqlite3_stmt *st;
	int r;

	if (!s)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(s, "DELETE FROM mv_objects WHERE id = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "i", id);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0 && sqlite3_changes(s->db) == 0)
		r = store_failf(s, -ENOENT, "no MV object %lld", (long long)id);
	return r;
}

int store_mv_iterate(struct store *s, const char *object_type, store_mv_cb cb, void *userdata)
{
	struct store_mv_object *batch[STORE_BATCH];
	int64_t last = 0;
	size_t n, i;
	int r;

	if (!s || !cb)
		return -EINVAL;
	for (;;) {
		sqlite3_stmt *st;
		r = store_stmt(s,
		               "SELECT " MV_COLUMNS " FROM mv_objects WHERE id > ?2"
		               " AND (?1 IS NULL OR +object_type = ?1) ORDER BY id LIMIT ?3",
		               &st);
		if (r >= 0)
			r = store_bind(s, st, "tii", object_type, last, (int64_t)STORE_BATCH);
		if (r < 0)
			return r;
		r = store_fetch_page(s, st, decode_mv, batch, &n);
		if (n > 0)
			last = batch[n - 1]->id;
		for (i = 0; i < n; i++) {
			if (r == 0)
				r = cb(batch[i], userdata);
			store_mv_object_free(batch[i]);
		}
		if (r != 0 || n < STORE_BATCH)
			return r;
	}
}

int store_mv_count(struct store *s, uint64_t *ret_n)
{
	sqlite3_stmt *st;
	int rc, r;

	if (!s || !ret_n)
		return -EINVAL;
	r = store_stmt(s, "SELECT count(*) FROM mv_objects", &st);
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

/* --- the join index ------------------------------------------------------------------------ */

static int reindex_one(const struct store_mv_object *o, void *userdata)
{
	return index_object(userdata, o->id, o->attrs);
}

/* The persisted form: sorted lower-case names, ":ci" for case-insensitive ones. */
static int index_spec(const struct store_mv_index_attr *attrs, size_t n, char **ret)
{
	struct store_index_attr v[INDEX_ATTRS_MAX];
	char *spec, *p;
	size_t i, total = 1;

	if (n > INDEX_ATTRS_MAX)
		return -E2BIG;
	for (i = 0; i < n; i++) {
		size_t len = attrs[i].name ? strlen(attrs[i].name) : 0;
		if (len == 0 || len > ATTR_NAME_MAX || strchr(attrs[i].name, ',') ||
		    strchr(attrs[i].name, ':'))
			return -EINVAL;
		v[i].name = (char *)attrs[i].name;
		v[i].case_insensitive = attrs[i].case_insensitive;
		total += len + 4;
	}
	spec = malloc(total);
	if (!spec)
		return -ENOMEM;
	p = spec;
	for (i = 0; i < n; i++) {
		size_t len = strlen(v[i].name);
		memcpy(p, v[i].name, len);
		lower_ascii(p, len);
		p += len;
		if (v[i].case_insensitive) {
			memcpy(p, ":ci", 3);
			p += 3;
		}
		*p++ = ',';
	}
	if (p > spec)
		p--;
	*p = 0;
	*ret = spec;
	return 0;
}

int store_mv_set_index_attrs(struct store *s, const struct store_mv_index_attr *attrs, size_t n)
{
	struct store_index_attr *v = NULL;
	char *spec = NULL, *canon = NULL, *old = NULL;
	size_t nv = 0;
	sqlite3_stmt *st;
	int r;

	if (!s || (n && !attrs))
		return -EINVAL;
	r = index_spec(attrs, n, &spec);
	if (r < 0)
		return store_failf(s, r, "bad metaverse index attribute list");
	/* Round-trip through the parser: sorted, so the comparison ignores the order given. */
	r = parse_index_attrs(spec, &v, &nv);
	if (r >= 0) {
		struct store_mv_index_attr tmp[INDEX_ATTRS_MAX];
		size_t i;
		for (i = 0; i < nv; i++)
			tmp[i] = (struct store_mv_index_attr){v[i].name, v[i].case_insensitive};
		r = index_spec(tmp, nv, &canon);
	}
	if (r < 0) {
		r = store_failf(s, r, "bad metaverse index attribute list");
		goto out;
	}
	r = store_state_get(s, INDEX_ATTRS_KEY, &old);
	if (r < 0 && r != -ENOENT)
		goto out;
	if (old && strcmp(old, canon) == 0) {
		r = 0;
		goto out;
	}
	r = store_tx_begin(s);
	if (r < 0)
		goto out;
	r = store_state_set(s, INDEX_ATTRS_KEY, canon);
	if (r >= 0)
		r = store_stmt(s, "DELETE FROM mv_index", &st);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0) {
		store_mv_free_index_attrs(s);
		s->index_attrs = v;
		s->n_index_attrs = nv;
		v = NULL;
		nv = 0;
		r = store_mv_iterate(s, NULL, reindex_one, s);
	}
	if (r >= 0)
		r = store_tx_commit(s);
	if (r < 0) {
		store_tx_rollback(s);
		store_mv_load_index_attrs(s); /* back to what the file says */
	}
out:
	while (v && nv > 0)
		free(v[--nv].name);
	free(v);
	free(spec);
	free(canon);
	free(old);
	return r;
}

int store_mv_find_by_index(struct store *s, const char *attr, const void *value, size_t len,
                           int64_t *ret_ids, size_t max, size_t *ret_n)
{
	const struct store_index_attr *ia;
	char buf[INDEX_VALUE_MAX];
	sqlite3_stmt *st;
	size_t n = 0;
	int rc, r;

	if (!s || !attr || (len && !value) || (max && !ret_ids) || !ret_n)
		return -EINVAL;
	ia = index_attr_find(s, attr);
	if (!ia)
		return store_failf(s, -EINVAL, "attribute '%s' is not in the metaverse index",
		                   attr);
	if (len == 0 || len > INDEX_VALUE_MAX) {
		*ret_n = 0;
		return 0;
	}
	if (ia->case_insensitive) {
		memcpy(buf, value, len);
		lower_ascii(buf, len);
		value = buf;
	}
	r = store_stmt(
	    s, "SELECT mv_id FROM mv_index WHERE attr = ?1 AND value = ?2 ORDER BY mv_id", &st);
	if (r >= 0)
		r = store_bind(s, st, "tb", ia->name, value, len);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n < max)
			ret_ids[n] = sqlite3_column_int64(st, 0);
		n++;
	}
	if (rc != SQLITE_DONE)
		r = store_fail(s, rc);
	sqlite3_reset(st);
	if (r >= 0)
		*ret_n = n;
	return r;
}
