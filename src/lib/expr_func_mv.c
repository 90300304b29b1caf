/* Multi-valued, directory and miscellaneous functions of the expression language: Contains,
 * Count, Item, Join, RemoveDuplicates, Split, the DN functions, Error and Guid. */
#include "expr_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- multi-valued ------------------------------------------------------------------------------
 */

static bool ascii_casefold_eq(const char *a, size_t al, const char *b, size_t bl)
{
	return al == bl && strncasecmp(a, b, al) == 0 && memchr(a, 0, al) == NULL &&
	       memchr(b, 0, bl) == NULL;
}

static bool contains_text(const char *hay, size_t hl, const char *needle, size_t nl, bool fold)
{
	if (nl == 0)
		return true;
	if (!fold)
		return memmem(hay, hl, needle, nl) != NULL;
	for (size_t i = 0; i + nl <= hl; i++)
		if (strncasecmp(hay + i, needle, nl) == 0 && memchr(hay + i, 0, nl) == NULL)
			return true;
	return false;
}

/* Contains(values, search[, CaseInsensitive|CaseSensitive]): the 1-based index of the first
 * value containing `search` (substring for strings, whole value for references, R8), 0 if none. */
FUNC_IMPL(fn_contains)
{
	const struct expr_value *mv = args[0], *item;
	bool fold = false;
	size_t n;

	if (nargs > 2 && !func_is_null(args[2])) {
		if (strcasecmp(args[2]->string.data, "CaseInsensitive") == 0)
			fold = true;
		else if (strcasecmp(args[2]->string.data, "CaseSensitive") != 0)
			return func_fail_value(
			    ctx, call, "the case type must be CaseInsensitive or CaseSensitive");
	}
	n = expr_value_count(mv);
	if (func_is_null(args[1]))
		n = 0;
	for (size_t i = 0; i < n; i++) {
		struct expr_value *s;
		bool hit;

		item = expr_value_item(mv, i);
		if (item->type == EXPR_VALUE_REFERENCE) {
			if (fold)
				hit = ascii_casefold_eq(item->string.data, item->string.len,
				                        args[1]->string.data, args[1]->string.len);
			else
				hit = item->string.len == args[1]->string.len &&
				      memcmp(item->string.data, args[1]->string.data,
				             item->string.len) == 0;
		} else {
			if (value_to_string(item, &s) < 0)
				continue; /* binary values contain no text */
			hit = contains_text(s->string.data, s->string.len, args[1]->string.data,
			                    args[1]->string.len, fold);
			expr_value_free(s);
		}
		if (hit)
			return func_return(ctx, call, expr_value_new_number((int64_t)i + 1), ret);
	}
	return func_return(ctx, call, expr_value_new_number(0), ret);
}

FUNC_IMPL(fn_count)
{
	(void)nargs;
	return func_return(ctx, call, expr_value_new_number((int64_t)expr_value_count(args[0])),
	                   ret);
}

static int item(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **args,
                bool or_null, struct expr_value **ret)
{
	size_t n = expr_value_count(args[0]);
	int64_t i = 0;
	int r;

	if ((r = func_number_arg(ctx, call, args, 1, &i)) < 0)
		return r;
	if (i < 1 || (uint64_t)i > n) {
		if (or_null)
			return func_null(ctx, call, ret);
		return func_fail_value(ctx, call, "index %" PRId64 " is out of range (%zu value%s)",
		                       i, n, n == 1 ? "" : "s");
	}
	return expr_value_copy(expr_value_item(args[0], (size_t)i - 1), ret) < 0
	           ? ctx_oom(ctx, call)
	           : 0;
}

FUNC_IMPL(fn_item)
{
	(void)nargs;
	return item(ctx, call, args, false, ret);
}

FUNC_IMPL(fn_item_or_null)
{
	(void)nargs;
	return item(ctx, call, args, true, ret);
}

FUNC_IMPL(fn_join)
{
	const char *delim = " ";
	size_t dlen = 1, n = expr_value_count(args[0]);
	struct sbuf b = {0};
	char buf[64];

	if (n == 0)
		return func_null(ctx, call, ret);
	if (nargs > 1) {
		delim = func_is_null(args[1]) ? "" : args[1]->string.data;
		dlen = func_is_null(args[1]) ? 0 : args[1]->string.len;
	}
	for (size_t i = 0; i < n && !b.error; i++) {
		const struct expr_value *v = expr_value_item(args[0], i);
		struct expr_value *s;
		if (value_to_string(v, &s) < 0) {
			sbuf_done(&b);
			return ctx_fail(ctx, call, -EINVAL, EXPR_ERROR_TYPE, "Join: cannot join %s",
			                value_preview(v, buf));
		}
		if (i)
			sbuf_append(&b, delim, dlen);
		sbuf_append(&b, s->string.data, s->string.len);
		expr_value_free(s);
	}
	return func_sbuf_return(ctx, call, &b, ret);
}

static int cmp_index(const void *a, const void *b, void *userdata)
{
	struct expr_value *const *items = userdata;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = expr_value_compare(items[x], items[y]);

	if (c)
		return c;
	return (x > y) - (x < y);
}

/* Keeps the first of equal values, in their order. Sorting indices keeps it O(n log n) for the
 * large attributes (member, proxyAddresses) it is used on. */
FUNC_IMPL(fn_remove_duplicates)
{
	const struct expr_value *mv = args[0];
	struct expr_value *out;
	size_t *idx, n;
	bool *drop;
	int r = 0;

	(void)nargs;
	if (mv->type != EXPR_VALUE_MULTI)
		return expr_value_copy(mv, ret) < 0 ? ctx_oom(ctx, call) : 0;
	n = mv->multi.count;
	idx = calloc(n, sizeof(*idx));
	drop = calloc(n, sizeof(*drop));
	out = expr_value_new_multi();
	if (!idx || !drop || !out) {
		r = ctx_oom(ctx, call);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	qsort_r(idx, n, sizeof(*idx), cmp_index, mv->multi.items);
	for (size_t i = 1; i < n; i++)
		if (expr_value_equal(mv->multi.items[idx[i]], mv->multi.items[idx[i - 1]]))
			drop[idx[i]] = true;
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct expr_value *c;
		if (drop[i])
			continue;
		if (expr_value_copy(mv->multi.items[i], &c) < 0 || expr_value_append(out, c) < 0)
			r = ctx_oom(ctx, call);
	}
	if (r >= 0) {
		*ret = value_normalize(out);
		out = NULL;
		r = *ret ? 0 : ctx_oom(ctx, call);
	}
out:
	free(idx);
	free(drop);
	expr_value_free(out);
	return r;
}

/* Split(value, delimiter[, limit]): the delimiter is one character (R8); empty pieces are kept
 * (.NET String.Split); with a limit the last piece holds the rest. An empty value has no values. */
FUNC_IMPL(fn_split)
{
	const char *s, *d;
	size_t len, dlen, i = 0, start = 0;
	struct expr_value *out;
	int64_t limit = INT64_MAX, pieces = 0;
	int r = 0;

	if (nargs > 2 && !func_is_null(args[2])) {
		limit = args[2]->number;
		if (limit < 1)
			return func_fail_value(ctx, call, "the limit must be at least 1");
	}
	if (func_is_null(args[1]) || args[1]->string.len == 0 ||
	    (utf8_next(args[1]->string.data, args[1]->string.len, &i), i != args[1]->string.len))
		return func_fail_value(ctx, call, "the delimiter must be one character");
	if (func_is_null(args[0]) || args[0]->string.len == 0)
		return func_null(ctx, call, ret);
	s = args[0]->string.data, len = args[0]->string.len;
	d = args[1]->string.data, dlen = args[1]->string.len;
	out = expr_value_new_multi();
	if (!out)
		return ctx_oom(ctx, call);
	for (i = 0; r >= 0;) {
		const char *p = pieces + 1 < limit ? memmem(s + i, len - i, d, dlen) : NULL;
		size_t end = p ? (size_t)(p - s) : len;
		struct expr_value *piece = expr_value_new_string_len(s + start, end - start);
		r = piece ? expr_value_append(out, piece) : -ENOMEM;
		pieces++;
		if (!p)
			break;
		i = start = end + dlen;
	}
	if (r < 0) {
		expr_value_free(out);
		return r == -E2BIG
		           ? ctx_fail(ctx, call, r, EXPR_ERROR_LIMIT, "Split: too many values")
		           : ctx_oom(ctx, call);
	}
	*ret = out;
	return 0;
}

/* ---- program flow and GUIDs
 * ------------------------------------------------------------------------- */

FUNC_IMPL(fn_error)
{
	char *msg = NULL;
	int r;

	(void)nargs, (void)ret;
	if (func_is_null(args[0]))
		return ctx_fail_user(ctx, call, "Error", 5);
	if (args[0]->type == EXPR_VALUE_STRING)
		return ctx_fail_user(ctx, call, args[0]->string.data, args[0]->string.len);
	if (expr_value_to_string(args[0], &msg) < 0)
		return ctx_oom(ctx, call);
	r = ctx_fail_user(ctx, call, msg, strlen(msg));
	free(msg);
	return r;
}

/* A random (version 4) GUID in .NET's default format: lower case, no braces. */
FUNC_IMPL(fn_guid)
{
	uint8_t g[16];
	char buf[40];
	int r;

	(void)args, (void)nargs;
	r = ctx_random(ctx, call, g, sizeof(g));
	if (r < 0)
		return r;
	g[6] = (uint8_t)((g[6] & 0x0f) | 0x40);
	g[8] = (uint8_t)((g[8] & 0x3f) | 0x80);
	snprintf(buf, sizeof(buf),
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", g[0], g[1],
	         g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12], g[13], g[14],
	         g[15]);
	return func_string(ctx, call, buf, 36, ret);
}

/* ---- directory ----------------------------------------------------------------------------------
 */

struct rdn {
	const char *type, *value;
	size_t type_len, value_len;
};

static void trim_spaces(const char **s, size_t *len)
{
	while (*len && **s == ' ')
		(*s)++, (*len)--;
	/* a trailing space escaped with a backslash belongs to the value */
	while (*len && (*s)[*len - 1] == ' ' && !(*len >= 2 && (*s)[*len - 2] == '\\'))
		(*len)--;
}

/* Splits a DN at unescaped commas (RFC 4514; the legacy ';' separator and quoted values of
 * RFC 1779 are accepted). Values stay escaped, as they appear in the DN. Returns the number of
 * components, or -EINVAL. */
static int dn_split(const char *dn, size_t len, struct rdn *out, size_t max)
{
	size_t n = 0, start = 0;
	bool quoted = false;

	if (len == 0)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		const char *c, *eq;
		size_t clen;

		if (i < len && dn[i] == '\\') {
			if (i + 1 >= len)
				return -EINVAL;
			i++;
			continue;
		}
		if (i < len && dn[i] == '"') {
			quoted = !quoted;
			continue;
		}
		if (i < len && (quoted || (dn[i] != ',' && dn[i] != ';')))
			continue;
		if (quoted)
			return -EINVAL;
		if (n == max)
			return -E2BIG;
		c = dn + start;
		clen = i - start;
		eq = memchr(c, '=', clen);
		if (!eq)
			return -EINVAL;
		out[n].type = c;
		out[n].type_len = (size_t)(eq - c);
		trim_spaces(&out[n].type, &out[n].type_len);
		out[n].value = eq + 1;
		out[n].value_len = clen - (size_t)(eq - c) - 1;
		trim_spaces(&out[n].value, &out[n].value_len);
		if (out[n].type_len == 0)
			return -EINVAL;
		n++;
		start = i + 1;
	}
	return (int)n;
}

#define DN_COMPONENTS_MAX 1024

static int dn_component(struct expr_ctx *ctx, const struct expr_node *call,
                        struct expr_value **args, size_t nargs, bool rev, struct expr_value **ret)
{
	struct rdn *rdns;
	bool skip_dc = false;
	int64_t want = 0, seen = 0;
	int n, r;

	if ((r = func_number_arg(ctx, call, args, 1, &want)) < 0)
		return r;
	if (nargs > 2 && !func_is_null(args[2])) {
		if (strcasecmp(args[2]->string.data, "DC") != 0)
			return func_fail_value(ctx, call, "the only option is \"DC\"");
		skip_dc = true;
	}
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	rdns = calloc(DN_COMPONENTS_MAX, sizeof(*rdns));
	if (!rdns)
		return ctx_oom(ctx, call);
	n = dn_split(args[0]->string.data, args[0]->string.len, rdns, DN_COMPONENTS_MAX);
	if (n < 0) {
		free(rdns);
		return func_fail_value(ctx, call, "\"%.*s\" is not a distinguished name",
		                       (int)(args[0]->string.len > 64 ? 64 : args[0]->string.len),
		                       args[0]->string.data);
	}
	for (int k = 0; k < n; k++) {
		const struct rdn *c = &rdns[rev ? n - 1 - k : k];
		if (skip_dc && c->type_len == 2 && strncasecmp(c->type, "DC", 2) == 0)
			continue;
		if (++seen == want) {
			r = func_string(ctx, call, c->value, c->value_len, ret);
			free(rdns);
			return r;
		}
	}
	free(rdns);
	return func_null(ctx, call, ret); /* no such component */
}

FUNC_IMPL(fn_dn_component)
{
	return dn_component(ctx, call, args, nargs, false, ret);
}

FUNC_IMPL(fn_dn_component_rev)
{
	return dn_component(ctx, call, args, nargs, true, ret);
}

/* Escapes the value of "type=value" (or the whole string when there is no '=') for use in a DN,
 * as RFC 4514 asks: , + " \ < > ; with a backslash, a leading '#' or space and a trailing space,
 * and control characters as \XX. */
FUNC_IMPL(fn_escape_dn_component)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *s, *eq;
	size_t len, v;
	struct sbuf b = {0};

	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	s = args[0]->string.data;
	len = args[0]->string.len;
	eq = memchr(s, '=', len);
	v = eq ? (size_t)(eq - s) + 1 : 0;
	sbuf_append(&b, s, v);
	for (size_t i = v; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f) {
			char esc[3] = {'\\', hex[c >> 4], hex[c & 15]};
			sbuf_append(&b, esc, 3);
			continue;
		}
		if (strchr(",+\"\\<>;=", c) || (i == v && (c == '#' || c == ' ')) ||
		    (i == len - 1 && c == ' '))
			sbuf_append(&b, "\\", 1);
		sbuf_append(&b, s + i, 1);
	}
	return func_sbuf_return(ctx, call, &b, ret);
}
