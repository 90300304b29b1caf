/* Attribute sets: the in-memory form of a directory object's attributes. Names compare
 * case-insensitively (ASCII), values are byte strings kept in insertion order. */
#include "attr_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* --- names --------------------------------------------------------------------------- */

/* Case-insensitive (ASCII) comparison, deliberately independent of the locale. */
int attr_name_cmp(const char *a, const char *b)
{
	const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;

	for (;; x++, y++) {
		int cx = attr_fold(*x), cy = attr_fold(*y);
		if (cx != cy || cx == 0)
			return cx - cy;
	}
}

bool attr_name_valid(const char *name)
{
	size_t i;

	if (!name || !name[0])
		return false;
	for (i = 0; name[i]; i++) {
		unsigned char c = (unsigned char)name[i];
		if (i >= ATTR_NAME_MAX || c < 0x21 || c > 0x7e)
			return false;
	}
	return true;
}

bool attr_name_valid_bytes(const uint8_t *p, size_t len)
{
	size_t i;

	if (len == 0 || len > ATTR_NAME_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (p[i] < 0x21 || p[i] > 0x7e)
			return false;
	return true;
}

/* --- value lists --------------------------------------------------------------------- */

int attr_value_compare(const struct attr_value *a, const struct attr_value *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int r = n ? memcmp(a->data, b->data, n) : 0;

	if (r)
		return r;
	return (a->len > b->len) - (a->len < b->len);
}

static int cmp_value_ptr(const void *a, const void *b)
{
	return attr_value_compare(*(const struct attr_value *const *)a,
	                          *(const struct attr_value *const *)b);
}

static bool value_eq(const struct attr_value *a, const void *data, size_t len)
{
	return a->len == len && (len == 0 || memcmp(a->data, data, len) == 0);
}

void attr_vlist_free(struct attr_vlist *vl)
{
	size_t i;

	for (i = 0; i < vl->n; i++)
		free((void *)vl->v[i].data);
	free(vl->v);
	vl->v = NULL;
	vl->n = vl->cap = 0;
}

/* Appends a copy of the value, without looking for duplicates. */
int attr_vlist_push(struct attr_vlist *vl, const void *data, size_t len)
{
	uint8_t *copy;

	if (len > ATTR_VALUE_MAX || vl->n >= ATTR_VALUES_MAX)
		return -E2BIG;
	if (len && !data)
		return -EINVAL;
	if (vl->n == vl->cap) {
		size_t cap = vl->cap ? vl->cap * 2 : 2;
		struct attr_value *v = reallocarray(vl->v, cap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		vl->v = v;
		vl->cap = cap;
	}
	copy = malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, data, len);
	copy[len] = 0;
	vl->v[vl->n].data = copy;
	vl->v[vl->n].len = len;
	vl->n++;
	return 0;
}

static ssize_t vlist_find(const struct attr_vlist *vl, const void *data, size_t len)
{
	size_t i;

	for (i = 0; i < vl->n; i++)
		if (value_eq(&vl->v[i], data, len))
			return (ssize_t)i;
	return -1;
}

/* Sorts pointers to the values of `values` into `ptrs` (n entries). */
static void sort_ptrs(const struct attr_value *values, size_t n, const struct attr_value **ptrs)
{
	size_t i;

	for (i = 0; i < n; i++)
		ptrs[i] = &values[i];
	qsort(ptrs, n, sizeof(*ptrs), cmp_value_ptr);
}

/* A sorted view of a value list: on the stack when small. Returns NULL on allocation failure. */
const struct attr_value **attr_sorted_view(const struct attr_value *values, size_t n,
                                           const struct attr_value **small)
{
	const struct attr_value **ptrs = small;

	if (n > ATTR_SMALL_SORT) {
		ptrs = malloc(n * sizeof(*ptrs));
		if (!ptrs)
			return NULL;
	}
	sort_ptrs(values, n, ptrs);
	return ptrs;
}

void attr_sorted_view_free(const struct attr_value **ptrs, const struct attr_value **small)
{
	if (ptrs != small)
		free(ptrs);
}

/* Multiset equality of two value lists, in any order. */
bool attr_values_equal(const struct attr_value *a, size_t na, const struct attr_value *b, size_t nb)
{
	const struct attr_value *sa[ATTR_SMALL_SORT], *sb[ATTR_SMALL_SORT];
	const struct attr_value **pa, **pb;
	bool eq = true;
	size_t i;

	if (na != nb)
		return false;
	if (na == 0)
		return true;
	if (na == 1)
		return value_eq(&a[0], b[0].data, b[0].len);

	pa = attr_sorted_view(a, na, sa);
	pb = attr_sorted_view(b, nb, sb);
	if (!pa || !pb) {
		/* Out of memory: a quadratic check needs none (sets hold no duplicates). */
		for (i = 0; i < na && eq; i++) {
			size_t j;
			bool found = false;
			for (j = 0; j < nb && !found; j++)
				found = value_eq(&b[j], a[i].data, a[i].len);
			eq = found;
		}
	} else {
		for (i = 0; i < na && eq; i++)
			eq = attr_value_compare(pa[i], pb[i]) == 0;
	}
	if (pa)
		attr_sorted_view_free(pa, sa);
	if (pb)
		attr_sorted_view_free(pb, sb);
	return eq;
}

/* Does a value list hold the same value twice? */
int attr_values_have_duplicates(const struct attr_value *v, size_t n)
{
	const struct attr_value *small[ATTR_SMALL_SORT], **p;
	size_t i;
	int r = 0;

	if (n < 2)
		return 0;
	p = attr_sorted_view(v, n, small);
	if (!p)
		return -ENOMEM;
	for (i = 1; i < n && !r; i++)
		if (attr_value_compare(p[i - 1], p[i]) == 0)
			r = 1;
	attr_sorted_view_free(p, small);
	return r;
}

static int cmp_idx_value(const void *a, const void *b)
{
	const struct attr_idx_value *x = a, *y = b;
	int r = attr_value_compare(x->v, y->v);

	if (r)
		return r;
	return (x->idx > y->idx) - (x->idx < y->idx);
}

void attr_values_mark_duplicates(const struct attr_value *values, size_t n,
                                 struct attr_idx_value *iv, bool *dup)
{
	size_t i;

	for (i = 0; i < n; i++) {
		iv[i].v = &values[i];
		iv[i].idx = i;
		dup[i] = false;
	}
	qsort(iv, n, sizeof(*iv), cmp_idx_value);
	for (i = 1; i < n; i++)
		if (attr_value_compare(iv[i - 1].v, iv[i].v) == 0)
			dup[iv[i].idx] = true;
}

/* Builds a list from `values`, dropping later duplicates, keeping the order. */
int attr_vlist_from_values(struct attr_vlist *out, const struct attr_value *values, size_t n)
{
	struct attr_vlist vl = {0};
	struct attr_idx_value *iv = NULL;
	bool *dup = NULL;
	size_t i;
	int r = 0;

	if (n > ATTR_VALUES_MAX)
		return -E2BIG;
	if (n > 1) {
		iv = malloc(n * sizeof(*iv));
		dup = malloc(n * sizeof(*dup));
		if (!iv || !dup) {
			r = -ENOMEM;
			goto out;
		}
		attr_values_mark_duplicates(values, n, iv, dup);
	}
	for (i = 0; i < n; i++) {
		if (dup && dup[i])
			continue;
		r = attr_vlist_push(&vl, values[i].data, values[i].len);
		if (r < 0)
			goto out;
	}
	*out = vl;
	vl = (struct attr_vlist){0};
out:
	attr_vlist_free(&vl);
	free(iv);
	free(dup);
	return r;
}

/* --- sets ---------------------------------------------------------------------------- */

struct attr_set *attr_set_new(void)
{
	return calloc(1, sizeof(struct attr_set));
}

struct attr_set *attr_set_free(struct attr_set *s)
{
	size_t i;

	if (!s)
		return NULL;
	for (i = 0; i < s->n; i++) {
		free(s->a[i].name);
		attr_vlist_free(&s->a[i].vals);
	}
	free(s->a);
	free(s);
	return NULL;
}

/* Binary search: the index of `name`, or -1 with the insertion point in *ret_pos. */
static ssize_t set_find(const struct attr_set *s, const char *name, size_t *ret_pos)
{
	size_t lo = 0, hi = s ? s->n : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = attr_name_cmp(name, s->a[mid].name);
		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (ret_pos)
		*ret_pos = lo;
	return -1;
}

/* Inserts an empty attribute at `pos`. */
int attr_set_insert_at(struct attr_set *s, size_t pos, const char *name, size_t name_len)
{
	char *copy;

	if (s->n >= ATTR_ATTRS_MAX)
		return -E2BIG;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		struct attr_entry *a = reallocarray(s->a, cap, sizeof(*a));
		if (!a)
			return -ENOMEM;
		s->a = a;
		s->cap = cap;
	}
	copy = strndup(name, name_len);
	if (!copy)
		return -ENOMEM;
	memmove(&s->a[pos + 1], &s->a[pos], (s->n - pos) * sizeof(*s->a));
	s->a[pos] = (struct attr_entry){.name = copy};
	s->n++;
	return 0;
}

static void set_delete(struct attr_set *s, size_t pos)
{
	free(s->a[pos].name);
	attr_vlist_free(&s->a[pos].vals);
	memmove(&s->a[pos], &s->a[pos + 1], (s->n - pos - 1) * sizeof(*s->a));
	s->n--;
}

int attr_set_copy(const struct attr_set *s, struct attr_set **ret)
{
	struct attr_set *c;
	size_t i;
	int r;

	if (!s || !ret)
		return -EINVAL;
	c = attr_set_new();
	if (!c)
		return -ENOMEM;
	for (i = 0; i < s->n; i++) {
		r = attr_set_insert_at(c, i, s->a[i].name, strlen(s->a[i].name));
		if (r >= 0)
			r = attr_vlist_from_values(&c->a[i].vals, s->a[i].vals.v, s->a[i].vals.n);
		if (r < 0) {
			attr_set_free(c);
			return r;
		}
	}
	*ret = c;
	return 0;
}

int attr_set_add(struct attr_set *s, const char *name, const void *data, size_t len)
{
	size_t pos = 0;
	ssize_t i;
	int r;

	if (!s || !attr_name_valid(name) || (len && !data))
		return -EINVAL;
	if (len > ATTR_VALUE_MAX)
		return -E2BIG;
	i = set_find(s, name, &pos);
	if (i >= 0) {
		if (vlist_find(&s->a[i].vals, data, len) >= 0)
			return 0;
		r = attr_vlist_push(&s->a[i].vals, data, len);
		return r < 0 ? r : 1;
	}
	r = attr_set_insert_at(s, pos, name, strlen(name));
	if (r < 0)
		return r;
	r = attr_vlist_push(&s->a[pos].vals, data, len);
	if (r < 0) {
		set_delete(s, pos);
		return r;
	}
	return 1;
}

int attr_set_add_string(struct attr_set *s, const char *name, const char *value)
{
	if (!value)
		return -EINVAL;
	return attr_set_add(s, name, value, strlen(value));
}

int attr_set_replace(struct attr_set *s, const char *name, const struct attr_value *values,
                     size_t n)
{
	struct attr_vlist vl = {0};
	size_t pos = 0;
	ssize_t i;
	int r;

	if (!s || !attr_name_valid(name) || (n && !values))
		return -EINVAL;
	if (n == 0) {
		attr_set_remove(s, name);
		return 0;
	}
	r = attr_vlist_from_values(&vl, values, n);
	if (r < 0)
		return r;
	i = set_find(s, name, &pos);
	if (i < 0) {
		r = attr_set_insert_at(s, pos, name, strlen(name));
		if (r < 0) {
			attr_vlist_free(&vl);
			return r;
		}
		i = (ssize_t)pos;
	}
	attr_vlist_free(&s->a[i].vals);
	s->a[i].vals = vl;
	return 0;
}

int attr_set_set_string(struct attr_set *s, const char *name, const char *value)
{
	struct attr_value v;

	if (!value)
		return attr_set_replace(s, name, NULL, 0);
	v.data = value;
	v.len = strlen(value);
	return attr_set_replace(s, name, &v, 1);
}

int attr_set_remove(struct attr_set *s, const char *name)
{
	ssize_t i;

	if (!s || !name)
		return -EINVAL;
	i = set_find(s, name, NULL);
	if (i < 0)
		return 0;
	set_delete(s, (size_t)i);
	return 1;
}

int attr_set_remove_value(struct attr_set *s, const char *name, const void *data, size_t len)
{
	struct attr_vlist *vl;
	ssize_t i, j;

	if (!s || !name || (len && !data))
		return -EINVAL;
	i = set_find(s, name, NULL);
	if (i < 0)
		return 0;
	vl = &s->a[i].vals;
	j = vlist_find(vl, data, len);
	if (j < 0)
		return 0;
	free((void *)vl->v[j].data);
	memmove(&vl->v[j], &vl->v[j + 1], (vl->n - (size_t)j - 1) * sizeof(*vl->v));
	vl->n--;
	if (vl->n == 0)
		set_delete(s, (size_t)i);
	return 1;
}

bool attr_set_has(const struct attr_set *s, const char *name)
{
	return s && name && set_find(s, name, NULL) >= 0;
}

bool attr_set_has_value(const struct attr_set *s, const char *name, const void *data, size_t len)
{
	ssize_t i;

	if (!s || !name || (len && !data))
		return false;
	i = set_find(s, name, NULL);
	return i >= 0 && vlist_find(&s->a[i].vals, data, len) >= 0;
}

int attr_set_get(const struct attr_set *s, const char *name, const struct attr_value **ret_values,
                 size_t *ret_n)
{
	ssize_t i;

	if (!s || !name)
		return -EINVAL;
	i = set_find(s, name, NULL);
	if (i < 0)
		return -ENOENT;
	if (ret_values)
		*ret_values = s->a[i].vals.v;
	if (ret_n)
		*ret_n = s->a[i].vals.n;
	return 0;
}

int attr_set_get_first(const struct attr_set *s, const char *name, struct attr_value *ret)
{
	const struct attr_value *v;
	size_t n;
	int r;

	r = attr_set_get(s, name, &v, &n);
	if (r < 0)
		return r;
	if (ret)
		*ret = v[0];
	return 0;
}

const char *attr_set_get_string(const struct attr_set *s, const char *name)
{
	struct attr_value v;

	if (attr_set_get_first(s, name, &v) < 0)
		return NULL;
	if (memchr(v.data, 0, v.len))
		return NULL;
	return v.data;
}

size_t attr_set_count(const struct attr_set *s)
{
	return s ? s->n : 0;
}

int attr_set_at(const struct attr_set *s, size_t i, const char **ret_name,
                const struct attr_value **ret_values, size_t *ret_n)
{
	if (!s)
		return -EINVAL;
	if (i >= s->n)
		return -ENOENT;
	if (ret_name)
		*ret_name = s->a[i].name;
	if (ret_values)
		*ret_values = s->a[i].vals.v;
	if (ret_n)
		*ret_n = s->a[i].vals.n;
	return 0;
}

static int cmp_value(const void *a, const void *b)
{
	return attr_value_compare(a, b);
}

void attr_set_sort_values(struct attr_set *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->n; i++)
		qsort(s->a[i].vals.v, s->a[i].vals.n, sizeof(struct attr_value), cmp_value);
}

bool attr_set_equal(const struct attr_set *a, const struct attr_set *b)
{
	size_t i, na = attr_set_count(a), nb = attr_set_count(b);

	if (na != nb)
		return false;
	for (i = 0; i < na; i++) {
		const struct attr_entry *x = &a->a[i], *y = &b->a[i];
		if (attr_name_cmp(x->name, y->name) != 0)
			return false;
		if (!attr_values_equal(x->vals.v, x->vals.n, y->vals.v, y->vals.n))
			return false;
	}
	return true;
}
