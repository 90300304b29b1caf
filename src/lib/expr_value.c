/* Expression values: the tagged value type shared by the evaluator, the functions and the
 * callers (rule engine, CLI), with construction, copy, ordering and display. */
#include "expr_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *expr_value_type_to_string(enum expr_value_type t)
{
	static const char *const names[EXPR_VALUE_TYPE_MAX] = {
	    [EXPR_VALUE_NULL] = "null",
	    [EXPR_VALUE_STRING] = "string",
	    [EXPR_VALUE_NUMBER] = "number",
	    [EXPR_VALUE_BOOLEAN] = "boolean",
	    [EXPR_VALUE_BINARY] = "binary",
	    [EXPR_VALUE_DATETIME] = "datetime",
	    [EXPR_VALUE_REFERENCE] = "reference",
	    [EXPR_VALUE_MULTI] = "multi-valued",
	    [EXPR_VALUE_IGNORE_THIS_FLOW] = "IgnoreThisFlow",
	    [EXPR_VALUE_AUTHORITATIVE_NULL] = "AuthoritativeNull",
	};
	return (t >= 0 && t < EXPR_VALUE_TYPE_MAX) ? names[t] : NULL;
}

const char *expr_error_kind_to_string(enum expr_error_kind k)
{
	static const char *const names[EXPR_ERROR_MAX] = {
	    [EXPR_ERROR_NONE] = "none",     [EXPR_ERROR_SYNTAX] = "syntax",
	    [EXPR_ERROR_LIMIT] = "limit",   [EXPR_ERROR_TYPE] = "type",
	    [EXPR_ERROR_VALUE] = "value",   [EXPR_ERROR_USER] = "user",
	    [EXPR_ERROR_LOOKUP] = "lookup",
	};
	return (k >= 0 && k < EXPR_ERROR_MAX) ? names[k] : NULL;
}

static struct expr_value *value_new(enum expr_value_type type)
{
	struct expr_value *v = calloc(1, sizeof(*v));

	if (v)
		v->type = type;
	return v;
}

struct expr_value *expr_value_new_null(void)
{
	return value_new(EXPR_VALUE_NULL);
}

struct expr_value *expr_value_new_ignore_this_flow(void)
{
	return value_new(EXPR_VALUE_IGNORE_THIS_FLOW);
}

struct expr_value *expr_value_new_authoritative_null(void)
{
	return value_new(EXPR_VALUE_AUTHORITATIVE_NULL);
}

struct expr_value *expr_value_new_number(int64_t n)
{
	struct expr_value *v = value_new(EXPR_VALUE_NUMBER);

	if (v)
		v->number = n;
	return v;
}

struct expr_value *expr_value_new_boolean(bool b)
{
	struct expr_value *v = value_new(EXPR_VALUE_BOOLEAN);

	if (v)
		v->boolean = b;
	return v;
}

struct expr_value *expr_value_new_datetime(int64_t filetime)
{
	struct expr_value *v = value_new(EXPR_VALUE_DATETIME);

	if (v)
		v->datetime = filetime;
	return v;
}

static struct expr_value *new_text(enum expr_value_type type, const char *s, size_t len)
{
	struct expr_value *v;
	char *copy;

	if (!s || len > EXPR_STRING_MAX)
		return NULL;
	copy = malloc(len + 1);
	if (!copy)
		return NULL;
	memcpy(copy, s, len);
	copy[len] = '\0';
	v = value_new_string_owned(copy, len);
	if (v)
		v->type = type;
	return v;
}

struct expr_value *value_new_string_owned(char *s, size_t len)
{
	struct expr_value *v;

	if (len > EXPR_STRING_MAX) {
		free(s);
		return NULL;
	}
	v = value_new(EXPR_VALUE_STRING);
	if (!v) {
		free(s);
		return NULL;
	}
	v->string.data = s;
	v->string.len = len;
	return v;
}

struct expr_value *expr_value_new_string_len(const char *s, size_t len)
{
	return new_text(EXPR_VALUE_STRING, s, len);
}

struct expr_value *expr_value_new_string(const char *s)
{
	return s ? new_text(EXPR_VALUE_STRING, s, strlen(s)) : NULL;
}

struct expr_value *expr_value_new_reference(const char *dn)
{
	return dn ? new_text(EXPR_VALUE_REFERENCE, dn, strlen(dn)) : NULL;
}

struct expr_value *expr_value_new_binary(const void *data, size_t len)
{
	struct expr_value *v;
	uint8_t *copy;

	if ((!data && len) || len > EXPR_STRING_MAX)
		return NULL;
	copy = malloc(len ? len : 1);
	if (!copy)
		return NULL;
	if (len)
		memcpy(copy, data, len);
	v = value_new(EXPR_VALUE_BINARY);
	if (!v) {
		free(copy);
		return NULL;
	}
	v->binary.data = copy;
	v->binary.len = len;
	return v;
}

struct expr_value *expr_value_new_multi(void)
{
	return value_new(EXPR_VALUE_MULTI);
}

struct expr_value *expr_value_free(struct expr_value *v)
{
	if (!v)
		return NULL;
	switch (v->type) {
	case EXPR_VALUE_STRING:
	case EXPR_VALUE_REFERENCE:
		free(v->string.data);
		break;
	case EXPR_VALUE_BINARY:
		free(v->binary.data);
		break;
	case EXPR_VALUE_MULTI:
		for (size_t i = 0; i < v->multi.count; i++)
			expr_value_free(v->multi.items[i]);
		free(v->multi.items);
		break;
	default:
		break;
	}
	free(v);
	return NULL;
}

static int append_one(struct expr_value *multi, struct expr_value *item)
{
	struct expr_value **items;
	size_t cap;

	if (multi->multi.count >= EXPR_MULTI_MAX) {
		expr_value_free(item);
		return -E2BIG;
	}
	/* grow by doubling: the capacity is implied by the count (powers of two from 4) */
	cap = 4;
	while (cap < multi->multi.count)
		cap *= 2;
	if (multi->multi.count == 0 || multi->multi.count == cap) {
		size_t want = multi->multi.count == 0 ? 4 : cap * 2;
		items = realloc(multi->multi.items, want * sizeof(*items));
		if (!items) {
			expr_value_free(item);
			return -ENOMEM;
		}
		multi->multi.items = items;
	}
	multi->multi.items[multi->multi.count++] = item;
	return 0;
}

int expr_value_append(struct expr_value *multi, struct expr_value *item)
{
	int r = 0;

	if (!multi || multi->type != EXPR_VALUE_MULTI) {
		expr_value_free(item);
		return -EINVAL;
	}
	if (!item || item->type == EXPR_VALUE_NULL) {
		expr_value_free(item);
		return 0;
	}
	if (value_is_flow(item)) {
		expr_value_free(item);
		return -EINVAL;
	}
	if (item->type != EXPR_VALUE_MULTI)
		return append_one(multi, item);
	for (size_t i = 0; i < item->multi.count; i++) {
		r = append_one(multi, item->multi.items[i]);
		item->multi.items[i] = NULL;
		if (r < 0)
			break;
	}
	expr_value_free(item);
	return r;
}

int expr_value_copy(const struct expr_value *v, struct expr_value **ret)
{
	struct expr_value *c = NULL;
	int r;

	if (!v || !ret)
		return -EINVAL;
	switch (v->type) {
	case EXPR_VALUE_STRING:
	case EXPR_VALUE_REFERENCE:
		c = new_text(v->type, v->string.data, v->string.len);
		break;
	case EXPR_VALUE_BINARY:
		c = expr_value_new_binary(v->binary.data, v->binary.len);
		break;
	case EXPR_VALUE_MULTI:
		c = expr_value_new_multi();
		if (!c)
			return -ENOMEM;
		for (size_t i = 0; i < v->multi.count; i++) {
			struct expr_value *item;

			r = expr_value_copy(v->multi.items[i], &item);
			if (r >= 0)
				r = append_one(c, item);
			if (r < 0) {
				expr_value_free(c);
				return r;
			}
		}
		break;
	default:
		c = value_new(v->type);
		if (c)
			*c = *v;
		break;
	}
	if (!c)
		return -ENOMEM;
	*ret = c;
	return 0;
}

size_t expr_value_count(const struct expr_value *v)
{
	if (!v || v->type == EXPR_VALUE_NULL || value_is_flow(v))
		return 0;
	return v->type == EXPR_VALUE_MULTI ? v->multi.count : 1;
}

const struct expr_value *expr_value_item(const struct expr_value *v, size_t i)
{
	if (i >= expr_value_count(v))
		return NULL;
	return v->type == EXPR_VALUE_MULTI ? v->multi.items[i] : v;
}

bool value_is_flow(const struct expr_value *v)
{
	return v &&
	       (v->type == EXPR_VALUE_IGNORE_THIS_FLOW || v->type == EXPR_VALUE_AUTHORITATIVE_NULL);
}

size_t value_size(const struct expr_value *v)
{
	size_t n = sizeof(*v);

	switch (v->type) {
	case EXPR_VALUE_STRING:
	case EXPR_VALUE_REFERENCE:
		n += v->string.len;
		break;
	case EXPR_VALUE_BINARY:
		n += v->binary.len;
		break;
	case EXPR_VALUE_MULTI:
		for (size_t i = 0; i < v->multi.count; i++)
			n += value_size(v->multi.items[i]);
		break;
	default:
		break;
	}
	return n;
}

static int cmp_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c < 0 ? -1 : 1;
	return alen < blen ? -1 : alen > blen;
}

int expr_value_compare(const struct expr_value *a, const struct expr_value *b)
{
	if (!a || !b)
		return !a ? (b ? -1 : 0) : 1;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	switch (a->type) {
	case EXPR_VALUE_STRING:
	case EXPR_VALUE_REFERENCE:
		return cmp_bytes(a->string.data, a->string.len, b->string.data, b->string.len);
	case EXPR_VALUE_BINARY:
		return cmp_bytes(a->binary.data, a->binary.len, b->binary.data, b->binary.len);
	case EXPR_VALUE_NUMBER:
		return (a->number > b->number) - (a->number < b->number);
	case EXPR_VALUE_DATETIME:
		return (a->datetime > b->datetime) - (a->datetime < b->datetime);
	case EXPR_VALUE_BOOLEAN:
		return (int)a->boolean - (int)b->boolean;
	case EXPR_VALUE_MULTI:
		for (size_t i = 0; i < a->multi.count && i < b->multi.count; i++) {
			int c = expr_value_compare(a->multi.items[i], b->multi.items[i]);
			if (c)
				return c;
		}
		return (a->multi.count > b->multi.count) - (a->multi.count < b->multi.count);
	default:
		return 0;
	}
}

bool expr_value_equal(const struct expr_value *a, const struct expr_value *b)
{
	return expr_value_compare(a, b) == 0;
}

static void display(struct sbuf *b, const struct expr_value *v)
{
	struct civil c;
	struct expr_value *s = NULL;

	switch (v->type) {
	case EXPR_VALUE_STRING:
	case EXPR_VALUE_REFERENCE:
		sbuf_append(b, v->string.data, v->string.len);
		break;
	case EXPR_VALUE_NUMBER:
		sbuf_printf(b, "%" PRId64, v->number);
		break;
	case EXPR_VALUE_BOOLEAN:
		sbuf_append_str(b, v->boolean ? "True" : "False");
		break;
	case EXPR_VALUE_BINARY:
		if (base64_encode(v->binary.data, v->binary.len, &s) < 0) {
			b->error = b->error ? b->error : -ENOMEM;
			return;
		}
		sbuf_append(b, s->string.data, s->string.len);
		expr_value_free(s);
		break;
	case EXPR_VALUE_DATETIME:
		datetime_to_civil(v->datetime, &c);
		sbuf_printf(b, "%04d-%02d-%02d %02d:%02d:%02d", c.year, c.month, c.day, c.hour,
		            c.minute, c.second);
		break;
	case EXPR_VALUE_MULTI:
		for (size_t i = 0; i < v->multi.count; i++) {
			if (i)
				sbuf_append(b, "; ", 2);
			display(b, v->multi.items[i]);
		}
		break;
	default:
		sbuf_append_str(b, v->type == EXPR_VALUE_NULL ? "NULL"
		                                              : expr_value_type_to_string(v->type));
		break;
	}
}

int expr_value_to_string(const struct expr_value *v, char **ret)
{
	struct sbuf b = {0};
	struct expr_value *s;
	int r;

	if (!v || !ret)
		return -EINVAL;
	display(&b, v);
	r = sbuf_finish(&b, &s);
	if (r < 0)
		return r;
	*ret = s->string.data;
	s->string.data = NULL;
	expr_value_free(s);
	return 0;
}
