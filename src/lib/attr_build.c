/* The attribute builder: one object's attributes collected into reusable buffers and shown as
 * a borrowed attr_set (see attr.h). */
#include "attr_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ab_name {
	size_t off, len; /* in buf, NUL-terminated */
	size_t n_vals;   /* added, duplicates included */
	size_t entry;    /* in the view */
};

struct ab_val {
	size_t off, len; /* in buf, NUL-terminated */
	unsigned attr;
};

struct attr_builder {
	char *buf; /* names and values */
	size_t len, cap;
	struct ab_name *names;
	size_t n_names, cap_names;
	struct ab_val *vals;
	size_t n_vals, cap_vals;

	/* The view, rebuilt when something was added since. */
	bool fresh;
	struct attr_set view;
	struct attr_entry *entries;
	size_t cap_entries;
	struct attr_value *values; /* the entries' values, grouped by entry */
	size_t cap_values;
	size_t *order; /* names in canonical order */
	size_t cap_order;
	struct attr_idx_value *iv; /* duplicate search */
	size_t cap_iv;
	bool *dup;
	size_t cap_dup;
	struct attr_hash *hash;
	size_t n_used; /* names with a value (ATTR_ATTRS_MAX) */
};

/* A buffer of capacity *cap elements of size sz, grown to hold n: the (possibly moved) buffer,
 * or NULL (out of memory or too large; `old` and *cap are unchanged). */
static void *grown(void *old, size_t *cap, size_t n, size_t sz)
{
	size_t c = *cap ? *cap : 16;
	void *v;

	if (n <= *cap)
		return old;
	while (c < n) {
		if (c > SIZE_MAX / 2)
			return NULL;
		c *= 2;
	}
	v = reallocarray(old, c, sz);
	if (v)
		*cap = c;
	return v;
}

#define GROW(ptr, cap, n)                                                                          \
	__extension__({                                                                            \
		__typeof__(ptr) _v = grown((ptr), &(cap), (n), sizeof(*(ptr)));                    \
		if (_v)                                                                            \
			(ptr) = _v;                                                                \
		_v ? 0 : -ENOMEM;                                                                  \
	})

/* Appends len bytes and a NUL to buf: the offset. data may point into buf. */
static int append(struct attr_builder *b, const void *data, size_t len, size_t *ret_off)
{
	const char *d = data;
	bool inside = b->buf && d >= b->buf && d < b->buf + b->len;
	size_t at = inside ? (size_t)(d - b->buf) : 0;

	if (len > SIZE_MAX - b->len - 1 || GROW(b->buf, b->cap, b->len + len + 1) < 0)
		return -ENOMEM;
	if (inside)
		d = b->buf + at; /* the buffer may have moved */
	if (len)
		memmove(b->buf + b->len, d, len);
	b->buf[b->len + len] = '\0';
	*ret_off = b->len;
	b->len += len + 1;
	return 0;
}

int attr_builder_new(struct attr_builder **ret)
{
	struct attr_builder *b;
	int r;

	if (!ret)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	r = attr_hash_new(&b->hash);
	if (r < 0) {
		free(b);
		return r;
	}
	*ret = b;
	return 0;
}

struct attr_builder *attr_builder_free(struct attr_builder *b)
{
	if (!b)
		return NULL;
	free(b->buf);
	free(b->names);
	free(b->vals);
	free(b->entries);
	free(b->values);
	free(b->order);
	free(b->iv);
	free(b->dup);
	attr_hash_free(b->hash);
	free(b);
	return NULL;
}

/* A buffer beyond this is not kept for the next object (one object may hold up to 128 MiB). */
#define KEEP_MAX (4u << 20)

void attr_builder_reset(struct attr_builder *b)
{
	if (!b)
		return;
	if (b->cap > KEEP_MAX) {
		free(b->buf);
		b->buf = NULL;
		b->cap = 0;
	}
	if (b->cap_vals * sizeof(*b->vals) > KEEP_MAX) {
		free(b->vals);
		free(b->values);
		free(b->iv);
		free(b->dup);
		b->vals = NULL;
		b->values = NULL;
		b->iv = NULL;
		b->dup = NULL;
		b->cap_vals = b->cap_values = b->cap_iv = b->cap_dup = 0;
	}
	b->len = b->n_names = b->n_vals = b->n_used = 0;
	b->fresh = false;
}

static bool name_eq(const char *a, const char *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (attr_fold((unsigned char)a[i]) != attr_fold((unsigned char)b[i]))
			return false;
	return true;
}

int attr_builder_attr(struct attr_builder *b, const char *name, size_t len)
{
	size_t off;
	int r;

	if (!b || !name || len == 0 || len > ATTR_NAME_MAX ||
	    !attr_name_valid_bytes((const uint8_t *)name, len))
		return -EINVAL;
	/* An object has a few dozen attributes: a scan beats a hash. */
	for (size_t i = 0; i < b->n_names; i++)
		if (b->names[i].len == len && name_eq(b->buf + b->names[i].off, name, len)) {
			/* attr_set_add keeps the spelling of the first value added */
			if (b->names[i].n_vals == 0)
				memcpy(b->buf + b->names[i].off, name, len);
			return (int)i;
		}
	/* Names that never get a value are not in the set; they are bounded all the same. */
	if (b->n_names >= 2 * ATTR_ATTRS_MAX)
		return -E2BIG;
	r = GROW(b->names, b->cap_names, b->n_names + 1);
	if (r >= 0)
		r = append(b, name, len, &off);
	if (r < 0)
		return r;
	b->names[b->n_names] = (struct ab_name){.off = off, .len = len};
	b->fresh = false;
	return (int)b->n_names++;
}

int attr_builder_add(struct attr_builder *b, int attr, const void *data, size_t len)
{
	size_t off;
	int r;

	if (!b || attr < 0 || (size_t)attr >= b->n_names || (len && !data))
		return -EINVAL;
	if (len > ATTR_VALUE_MAX || b->names[attr].n_vals >= ATTR_VALUES_MAX ||
	    (b->names[attr].n_vals == 0 && b->n_used >= ATTR_ATTRS_MAX))
		return -E2BIG;
	r = GROW(b->vals, b->cap_vals, b->n_vals + 1);
	if (r >= 0)
		r = append(b, data, len, &off);
	if (r < 0)
		return r;
	b->vals[b->n_vals++] = (struct ab_val){.off = off, .len = len, .attr = (unsigned)attr};
	if (b->names[attr].n_vals++ == 0)
		b->n_used++;
	b->fresh = false;
	return 0;
}

/* Drops the later duplicates of v[0..*n), keeping the order; *n becomes the number left. */
static int dedupe(struct attr_builder *b, struct attr_value *v, size_t *n)
{
	size_t k = 0;

	if (*n < 2)
		return 0;
	if (*n <= ATTR_SMALL_SORT) {
		for (size_t i = 0; i < *n; i++) {
			bool seen = false;
			for (size_t j = 0; j < k && !seen; j++)
				seen = attr_value_compare(&v[j], &v[i]) == 0;
			if (!seen)
				v[k++] = v[i];
		}
		*n = k;
		return 0;
	}
	if (GROW(b->iv, b->cap_iv, *n) < 0 || GROW(b->dup, b->cap_dup, *n) < 0)
		return -ENOMEM;
	attr_values_mark_duplicates(v, *n, b->iv, b->dup);
	for (size_t i = 0; i < *n; i++)
		if (!b->dup[i])
			v[k++] = v[i];
	*n = k;
	return 0;
}

static void sort_names(struct attr_builder *b)
{
	/* insertion sort: a few dozen names, often nearly sorted */
	for (size_t i = 1; i < b->n_names; i++) {
		size_t k = b->order[i], j = i;
		const char *name = b->buf + b->names[k].off;
		while (j > 0 && attr_name_cmp(b->buf + b->names[b->order[j - 1]].off, name) > 0) {
			b->order[j] = b->order[j - 1];
			j--;
		}
		b->order[j] = k;
	}
}

int attr_builder_view(struct attr_builder *b, const struct attr_set **ret)
{
	size_t n = 0, pos = 0;
	int r;

	if (!b || !ret)
		return -EINVAL;
	if (b->fresh) {
		*ret = &b->view;
		return 0;
	}
	r = GROW(b->order, b->cap_order, b->n_names);
	if (r >= 0)
		r = GROW(b->entries, b->cap_entries, b->n_names);
	if (r >= 0)
		r = GROW(b->values, b->cap_values, b->n_vals);
	if (r < 0)
		return r;
	for (size_t i = 0; i < b->n_names; i++)
		b->order[i] = i;
	sort_names(b);
	/* The entries in canonical order, each with room for the values added to it. */
	for (size_t i = 0; i < b->n_names; i++) {
		struct ab_name *nm = &b->names[b->order[i]];
		if (nm->n_vals == 0)
			continue;
		b->entries[n] =
		    (struct attr_entry){.name = b->buf + nm->off,
		                        .vals = {.v = b->values + pos, .n = 0, .cap = nm->n_vals}};
		pos += nm->n_vals;
		nm->entry = n++;
	}
	/* The values in the order added, then the later duplicates dropped. */
	for (size_t i = 0; i < b->n_vals; i++) {
		struct attr_entry *e = &b->entries[b->names[b->vals[i].attr].entry];
		e->vals.v[e->vals.n++] =
		    (struct attr_value){b->buf + b->vals[i].off, b->vals[i].len};
	}
	for (size_t i = 0; i < n && r >= 0; i++)
		r = dedupe(b, b->entries[i].vals.v, &b->entries[i].vals.n);
	if (r < 0)
		return r;
	b->view = (struct attr_set){.a = b->entries, .n = n, .cap = n};
	b->fresh = true;
	*ret = &b->view;
	return 0;
}

int attr_builder_encode(struct attr_builder *b, void **ret_buf, size_t *ret_len,
                        uint8_t ret_digest[ATTR_DIGEST_SIZE])
{
	const struct attr_set *s;
	int r;

	if (!b || !ret_buf || !ret_len || !ret_digest)
		return -EINVAL;
	r = attr_builder_view(b, &s);
	if (r < 0)
		return r;
	r = attr_hash_reset(b->hash);
	if (r >= 0)
		r = attr_set_digest_with(b->hash, s, ret_digest);
	if (r >= 0)
		r = attr_set_serialize(s, ret_buf, ret_len);
	return r;
}
