/* Conversions between expression value kinds, VBA-style: numeric strings are numbers, "True" and
 * "FALSE" are booleans, date strings are dates; and the comparison the operators use. */
#include "expr_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_ascii_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static void trim_ascii(const char **s, size_t *len)
{
	while (*len > 0 && is_ascii_space(**s))
		(*s)++, (*len)--;
	while (*len > 0 && is_ascii_space((*s)[*len - 1]))
		(*len)--;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "  -42 ", "+7", "&HFF" (as in the language). Integers only: the number kind is int64. */
bool string_to_number(const char *s, size_t len, int64_t *ret)
{
	uint64_t acc = 0, limit;
	bool neg = false;
	size_t i = 0;

	trim_ascii(&s, &len);
	if (len == 0)
		return false;
	if (len > 2 && s[0] == '&' && (s[1] == 'H' || s[1] == 'h')) {
		if (len - 2 > 16)
			return false;
		for (i = 2; i < len; i++) {
			int d = hex_digit(s[i]);
			if (d < 0)
				return false;
			acc = (acc << 4) | (uint64_t)d;
		}
		*ret = (int64_t)acc;
		return true;
	}
	if (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == len)
		return false;
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (acc > (limit - (uint64_t)(s[i] - '0')) / 10)
			return false;
		acc = acc * 10 + (uint64_t)(s[i] - '0');
	}
	if (neg)
		*ret = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
	else
		*ret = (int64_t)acc;
	return true;
}

int value_to_number(const struct expr_value *v, int64_t *ret)
{
	switch (v->type) {
	case EXPR_VALUE_NUMBER:
		*ret = v->number;
		return 0;
	case EXPR_VALUE_STRING:
		return string_to_number(v->string.data, v->string.len, ret) ? 0 : -EINVAL;
	default:
		return -EINVAL;
	}
}

int value_to_bool(const struct expr_value *v, bool *ret)
{
	const char *s;
	size_t len;
	int64_t n;

	switch (v->type) {
	case EXPR_VALUE_BOOLEAN:
		*ret = v->boolean;
		return 0;
	case EXPR_VALUE_NUMBER:
		*ret = v->number != 0;
		return 0;
	case EXPR_VALUE_STRING:
		s = v->string.data;
		len = v->string.len;
		trim_ascii(&s, &len);
		if (len == 4 && strncasecmp(s, "true", 4) == 0) {
			*ret = true;
			return 0;
		}
		if (len == 5 && strncasecmp(s, "false", 5) == 0) {
			*ret = false;
			return 0;
		}
		if (string_to_number(s, len, &n)) {
			*ret = n != 0;
			return 0;
		}
		return -EINVAL;
	default:
		return -EINVAL;
	}
}

int value_to_datetime(const struct expr_value *v, int64_t *ret)
{
	switch (v->type) {
	case EXPR_VALUE_DATETIME:
		*ret = v->datetime;
		return 0;
	case EXPR_VALUE_STRING:
		return datetime_parse(v->string.data, v->string.len, ret);
	default:
		return -EINVAL;
	}
}

int value_to_string(const struct expr_value *v, struct expr_value **ret)
{
	char buf[32];
	struct civil c;
	struct expr_value *s;
	int n;

	switch (v->type) {
	case EXPR_VALUE_STRING:
	case EXPR_VALUE_REFERENCE:
		s = expr_value_new_string_len(v->string.data, v->string.len);
		break;
	case EXPR_VALUE_NUMBER:
		n = snprintf(buf, sizeof(buf), "%" PRId64, v->number);
		s = expr_value_new_string_len(buf, (size_t)n);
		break;
	case EXPR_VALUE_BOOLEAN:
		s = expr_value_new_string(v->boolean ? "True" : "False");
		break;
	case EXPR_VALUE_DATETIME:
		datetime_to_civil(v->datetime, &c);
		n = snprintf(buf, sizeof(buf), "%04d-%02d-%02d %02d:%02d:%02d", c.year, c.month,
		             c.day, c.hour, c.minute, c.second);
		if (n < 0 || (size_t)n >= sizeof(buf))
			return -EINVAL;
		s = expr_value_new_string_len(buf, (size_t)n);
		break;
	default:
		return -EINVAL;
	}
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

static int cmp_text(const char *a, size_t alen, const char *b, size_t blen, bool fold)
{
	size_t n = alen < blen ? alen : blen;

	for (size_t i = 0; i < n; i++) {
		unsigned char ca = (unsigned char)a[i], cb = (unsigned char)b[i];
		if (fold) {
			if (ca >= 'A' && ca <= 'Z')
				ca += 32;
			if (cb >= 'A' && cb <= 'Z')
				cb += 32;
		}
		if (ca != cb)
			return ca < cb ? -1 : 1;
	}
	return alen < blen ? -1 : alen > blen;
}

static bool is_text(const struct expr_value *v)
{
	return v->type == EXPR_VALUE_STRING || v->type == EXPR_VALUE_REFERENCE;
}

int value_compare_op(const struct expr_value *a, const struct expr_value *b, int *ret)
{
	enum expr_value_type ta = a->type, tb = b->type;

	if (ta == EXPR_VALUE_BOOLEAN || tb == EXPR_VALUE_BOOLEAN) {
		bool x, y;
		if (value_to_bool(a, &x) < 0 || value_to_bool(b, &y) < 0)
			return -EINVAL;
		*ret = (int)x - (int)y;
		return 0;
	}
	if (ta == EXPR_VALUE_NUMBER || tb == EXPR_VALUE_NUMBER) {
		int64_t x, y;
		if (value_to_number(a, &x) < 0 || value_to_number(b, &y) < 0)
			return -EINVAL;
		*ret = (x > y) - (x < y);
		return 0;
	}
	if (ta == EXPR_VALUE_DATETIME || tb == EXPR_VALUE_DATETIME) {
		int64_t x, y;
		if (value_to_datetime(a, &x) < 0 || value_to_datetime(b, &y) < 0)
			return -EINVAL;
		*ret = (x > y) - (x < y);
		return 0;
	}
	if (ta == EXPR_VALUE_BINARY && tb == EXPR_VALUE_BINARY) {
		*ret = expr_value_compare(a, b);
		return 0;
	}
	if (is_text(a) && is_text(b)) {
		/* DNs compare case-insensitively, as LDAP does; strings exactly (R10: the language
		 * is case-sensitive) */
		bool fold = ta == EXPR_VALUE_REFERENCE || tb == EXPR_VALUE_REFERENCE;
		*ret = cmp_text(a->string.data, a->string.len, b->string.data, b->string.len, fold);
		return 0;
	}
	return -EINVAL;
}
