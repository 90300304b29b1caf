/* Attribute diffs: per attribute, the old and the new values. They describe pending
 * exports and export memory. */
#include "attr_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* --- diffs --------------------------------------------------------------------------- */

struct attr_diff *attr_diff_new(void)
{
	return calloc(1, sizeof(struct attr_diff));
}

static void change_free(struct attr_diff_entry *c)
{
	free(c->name);
	attr_vlist_free(&c->old);
	attr_vlist_free(&c->new);
}

struct attr_diff *attr_diff_free(struct attr_diff *d)
{
	size_t i;

	if (!d)
		return NULL;
	for (i = 0; i < d->n; i++)
		change_free(&d->c[i]);
	free(d->c);
	free(d);
	return NULL;
}

static ssize_t diff_find(const struct attr_diff *d, const char *name, size_t *ret_pos)
{
	size_t lo = 0, hi = d->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = attr_name_cmp(name, d->c[mid].name);
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

/* Takes ownership of the two lists. */
int attr_diff_insert_at(struct attr_diff *d, size_t pos, const char *name, struct attr_vlist *old,
                        struct attr_vlist *new)
{
	char *copy;

	if (d->n >= ATTR_ATTRS_MAX)
		return -E2BIG;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		struct attr_diff_entry *c = reallocarray(d->c, cap, sizeof(*c));
		if (!c)
			return -ENOMEM;
		d->c = c;
		d->cap = cap;
	}
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	memmove(&d->c[pos + 1], &d->c[pos], (d->n - pos) * sizeof(*d->c));
	d->c[pos] = (struct attr_diff_entry){.name = copy, .old = *old, .new = *new};
	*old = (struct attr_vlist){0};
	*new = (struct attr_vlist){0};
	d->n++;
	return 0;
}

int attr_diff_put(struct attr_diff *d, const char *name, const struct attr_value *old_values,
                  size_t n_old, const struct attr_value *new_values, size_t n_new)
{
	struct attr_vlist old = {0}, new = {0};
	size_t pos = 0;
	ssize_t i;
	int r;

	if (!d || !attr_name_valid(name) || (n_old && !old_values) || (n_new && !new_values))
		return -EINVAL;
	if (n_old == 0 && n_new == 0)
		return -EINVAL;
	r = attr_vlist_from_values(&old, old_values, n_old);
	if (r >= 0)
		r = attr_vlist_from_values(&new, new_values, n_new);
	if (r < 0)
		goto out;
	i = diff_find(d, name, &pos);
	if (i >= 0) {
		attr_vlist_free(&d->c[i].old);
		attr_vlist_free(&d->c[i].new);
		d->c[i].old = old;
		d->c[i].new = new;
		return 0;
	}
	r = attr_diff_insert_at(d, pos, name, &old, &new);
out:
	attr_vlist_free(&old);
	attr_vlist_free(&new);
	return r;
}

int attr_diff_remove(struct attr_diff *d, const char *name)
{
	ssize_t i;

	if (!d || !name)
		return -EINVAL;
	i = diff_find(d, name, NULL);
	if (i < 0)
		return 0;
	change_free(&d->c[i]);
	memmove(&d->c[i], &d->c[i + 1], (d->n - (size_t)i - 1) * sizeof(*d->c));
	d->n--;
	return 1;
}

size_t attr_diff_count(const struct attr_diff *d)
{
	return d ? d->n : 0;
}

static void change_view(const struct attr_diff_entry *c, struct attr_change *ret)
{
	ret->name = c->name;
	ret->old_values = c->old.v;
	ret->n_old = c->old.n;
	ret->new_values = c->new.v;
	ret->n_new = c->new.n;
}

int attr_diff_at(const struct attr_diff *d, size_t i, struct attr_change *ret)
{
	if (!d || !ret)
		return -EINVAL;
	if (i >= d->n)
		return -ENOENT;
	change_view(&d->c[i], ret);
	return 0;
}

int attr_diff_get(const struct attr_diff *d, const char *name, struct attr_change *ret)
{
	ssize_t i;

	if (!d || !name || !ret)
		return -EINVAL;
	i = diff_find(d, name, NULL);
	if (i < 0)
		return -ENOENT;
	change_view(&d->c[i], ret);
	return 0;
}

/* Appends a change (names arrive in order) copying both value lists. */
static int diff_append(struct attr_diff *d, const char *name, const struct attr_vlist *old,
                       const struct attr_vlist *new)
{
	struct attr_vlist o = {0}, n = {0};
	int r;

	r = attr_vlist_from_values(&o, old ? old->v : NULL, old ? old->n : 0);
	if (r >= 0)
		r = attr_vlist_from_values(&n, new ? new->v : NULL, new ? new->n : 0);
	if (r >= 0)
		r = attr_diff_insert_at(d, d->n, name, &o, &n);
	attr_vlist_free(&o);
	attr_vlist_free(&n);
	return r;
}

int attr_set_diff(const struct attr_set *old, const struct attr_set *new, struct attr_diff **ret)
{
	struct attr_diff *d;
	size_t i = 0, j = 0, no = attr_set_count(old), nn = attr_set_count(new);
	int r = 0;

	if (!ret)
		return -EINVAL;
	d = attr_diff_new();
	if (!d)
		return -ENOMEM;
	while ((i < no || j < nn) && r >= 0) {
		int c;
		if (i == no)
			c = 1;
		else if (j == nn)
			c = -1;
		else
			c = attr_name_cmp(old->a[i].name, new->a[j].name);
		if (c < 0) {
			r = diff_append(d, old->a[i].name, &old->a[i].vals, NULL);
			i++;
		} else if (c > 0) {
			r = diff_append(d, new->a[j].name, NULL, &new->a[j].vals);
			j++;
		} else {
			const struct attr_vlist *a = &old->a[i].vals, *b = &new->a[j].vals;
			if (!attr_values_equal(a->v, a->n, b->v, b->n))
				r = diff_append(d, new->a[j].name, a, b);
			i++;
			j++;
		}
	}
	if (r < 0) {
		attr_diff_free(d);
		return r;
	}
	*ret = d;
	return 0;
}

bool attr_diff_equal(const struct attr_diff *a, const struct attr_diff *b)
{
	size_t i, n = attr_diff_count(a);

	if (n != attr_diff_count(b))
		return false;
	for (i = 0; i < n; i++) {
		const struct attr_diff_entry *x = &a->c[i], *y = &b->c[i];
		if (attr_name_cmp(x->name, y->name) != 0 ||
		    !attr_values_equal(x->old.v, x->old.n, y->old.v, y->old.n) ||
		    !attr_values_equal(x->new.v, x->new.n, y->new.v, y->new.n))
			return false;
	}
	return true;
}
