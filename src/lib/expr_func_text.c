/* Text functions of the expression language. Positions and lengths count characters (Unicode
 * code points), 1-based as in VBA; NULL behaviour follows Microsoft's functions reference (R8)
 * where it says something, and is listed in hybridsync.rules(5) where it does not. */
#include "expr_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *sdata(const struct expr_value *v)
{
	return v->string.data;
}

static size_t slen(const struct expr_value *v)
{
	return v->string.len;
}

/* The characters [from, from + count) of a string, clamped. */
static int substring(struct expr_ctx *ctx, const struct expr_node *call, const struct expr_value *s,
                     size_t from, size_t count, struct expr_value **ret)
{
	size_t a = utf8_offset(sdata(s), slen(s), from);
	size_t b = a + utf8_offset(sdata(s) + a, slen(s) - a, count);

	return func_string(ctx, call, sdata(s) + a, b - a, ret);
}

static int copy_arg(struct expr_ctx *ctx, const struct expr_node *call, const struct expr_value *v,
                    struct expr_value **ret)
{
	return func_string(ctx, call, sdata(v), slen(v), ret);
}

static int map_chars(struct expr_ctx *ctx, const struct expr_node *call, const struct expr_value *s,
                     int mode, struct expr_value **ret)
{
	struct sbuf b = {0};
	size_t i = 0;
	bool word_start = true;

	while (i < slen(s)) {
		uint32_t cp = utf8_next(sdata(s), slen(s), &i);
		if (mode == 0)
			cp = cp_lower(cp);
		else if (mode == 1)
			cp = cp_upper(cp);
		else {
			/* PCase: words are delimited by spaces (R8) */
			bool space = cp == ' ';
			cp = word_start ? cp_upper(cp) : cp_lower(cp);
			word_start = space;
		}
		sbuf_append_cp(&b, cp);
	}
	return func_sbuf_return(ctx, call, &b, ret);
}

FUNC_IMPL(fn_lcase)
{
	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	return map_chars(ctx, call, args[0], 0, ret);
}

FUNC_IMPL(fn_ucase)
{
	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	return map_chars(ctx, call, args[0], 1, ret);
}

FUNC_IMPL(fn_pcase)
{
	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	return map_chars(ctx, call, args[0], 2, ret);
}

static int trim(struct expr_ctx *ctx, const struct expr_node *call, const struct expr_value *s,
                bool left, bool right, struct expr_value **ret)
{
	size_t a = 0, b = slen(s), i;

	if (left)
		while (a < b) {
			i = a;
			if (!cp_is_space(utf8_next(sdata(s), b, &i)))
				break;
			a = i;
		}
	if (right)
		while (b > a) {
			size_t start = b - 1;
			while (start > a && ((unsigned char)sdata(s)[start] & 0xc0) == 0x80)
				start--;
			i = start;
			if (!cp_is_space(utf8_next(sdata(s), b, &i)) || i != b)
				break;
			b = start;
		}
	return func_string(ctx, call, sdata(s) + a, b - a, ret);
}

FUNC_IMPL(fn_trim)
{
	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	return trim(ctx, call, args[0], true, true, ret);
}

FUNC_IMPL(fn_ltrim)
{
	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	return trim(ctx, call, args[0], true, false, ret);
}

FUNC_IMPL(fn_rtrim)
{
	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	return trim(ctx, call, args[0], false, true, ret);
}

/* R8: numChars = 0 -> "", numChars < 0 -> the input, NULL string -> "". */
FUNC_IMPL(fn_left)
{
	int64_t n = 0;
	int r;

	(void)nargs;
	if ((r = func_number_arg(ctx, call, args, 1, &n)) < 0)
		return r;
	if (func_is_null(args[0]))
		return func_string(ctx, call, "", 0, ret);
	if (n < 0)
		return copy_arg(ctx, call, args[0], ret);
	return substring(ctx, call, args[0], 0, (size_t)n, ret);
}

FUNC_IMPL(fn_right)
{
	size_t len;
	int64_t n = 0;
	int r;

	(void)nargs;
	if ((r = func_number_arg(ctx, call, args, 1, &n)) < 0)
		return r;
	if (func_is_null(args[0]))
		return func_string(ctx, call, "", 0, ret);
	len = utf8_length(sdata(args[0]), slen(args[0]));
	if (n < 0 || (uint64_t)n >= len)
		return copy_arg(ctx, call, args[0], ret);
	return substring(ctx, call, args[0], len - (size_t)n, (size_t)n, ret);
}

/* R8: numChars = 0 -> "", numChars < 0, start <= 0 or start > length -> the input,
 * NULL string -> "". Mid(s, start) without numChars returns the rest (R8's own example). */
FUNC_IMPL(fn_mid)
{
	int64_t start = 0, n = INT64_MAX;
	size_t len;
	int r;

	if ((r = func_number_arg(ctx, call, args, 1, &start)) < 0 ||
	    (nargs > 2 && (r = func_number_arg(ctx, call, args, 2, &n)) < 0))
		return r;
	if (func_is_null(args[0]))
		return func_string(ctx, call, "", 0, ret);
	len = utf8_length(sdata(args[0]), slen(args[0]));
	if (n < 0 || start <= 0 || (uint64_t)start > len)
		return copy_arg(ctx, call, args[0], ret);
	return substring(ctx, call, args[0], (size_t)start - 1, (uint64_t)n > len ? len : (size_t)n,
	                 ret);
}

FUNC_IMPL(fn_len)
{
	(void)nargs;
	if (func_is_null(args[0]))
		return func_return(ctx, call, expr_value_new_number(0), ret);
	return func_return(
	    ctx, call, expr_value_new_number((int64_t)utf8_length(sdata(args[0]), slen(args[0]))),
	    ret);
}

static int pad(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **args,
               bool left, struct expr_value **ret)
{
	struct sbuf b = {0};
	size_t len, i = 0;
	int64_t want = 0;
	int r;

	if ((r = func_number_arg(ctx, call, args, 1, &want)) < 0)
		return r;
	if (func_is_null(args[2]))
		return func_fail_value(ctx, call, "the pad character cannot be NULL");
	if (slen(args[2]) == 0 ||
	    (utf8_next(sdata(args[2]), slen(args[2]), &i), i != slen(args[2])))
		return func_fail_value(ctx, call, "the pad character must be one character");
	if (func_is_null(args[0]))
		return func_string(ctx, call, "", 0, ret);
	len = utf8_length(sdata(args[0]), slen(args[0]));
	if (want <= 0 || (uint64_t)want <= len)
		return copy_arg(ctx, call, args[0], ret);
	if ((uint64_t)want > EXPR_STRING_MAX)
		return ctx_fail(ctx, call, -E2BIG, EXPR_ERROR_LIMIT, "%s: length %lld is over %u",
		                call->call.func->name, (long long)want, EXPR_STRING_MAX);
	if (!left)
		sbuf_append(&b, sdata(args[0]), slen(args[0]));
	sbuf_append_repeat(&b, sdata(args[2]), slen(args[2]), (size_t)want - len);
	if (left)
		sbuf_append(&b, sdata(args[0]), slen(args[0]));
	return func_sbuf_return(ctx, call, &b, ret);
}

FUNC_IMPL(fn_pad_left)
{
	(void)nargs;
	return pad(ctx, call, args, true, ret);
}

FUNC_IMPL(fn_pad_right)
{
	(void)nargs;
	return pad(ctx, call, args, false, ret);
}

/* A copy of s with every character lower-cased (for vbTextCompare); character positions are
 * kept because the mapping is one character to one character. */
static char *fold(const char *s, size_t len, size_t *ret_len)
{
	struct sbuf b = {0};
	size_t i = 0;

	while (i < len)
		sbuf_append_cp(&b, cp_lower(utf8_next(s, len, &i)));
	if (b.error) {
		sbuf_done(&b);
		return NULL;
	}
	if (!b.data)
		b.data = strdup("");
	*ret_len = b.len;
	return b.data;
}

static int compare_mode(struct expr_ctx *ctx, const struct expr_node *call,
                        struct expr_value **args, size_t nargs, bool *ret_text)
{
	const struct expr_value *v = nargs > 3 ? args[3] : NULL;

	*ret_text = false;
	if (func_is_null(v))
		return 0;
	if (v->type == EXPR_VALUE_NUMBER && (v->number == 0 || v->number == 1)) {
		*ret_text = v->number == 1; /* VBA's vbBinaryCompare = 0, vbTextCompare = 1 */
		return 0;
	}
	if (v->type == EXPR_VALUE_STRING && strcasecmp(v->string.data, "vbTextCompare") == 0) {
		*ret_text = true;
		return 0;
	}
	if (v->type == EXPR_VALUE_STRING && strcasecmp(v->string.data, "vbBinaryCompare") == 0)
		return 0;
	return func_fail_value(ctx, call,
	                       "the compare mode must be vbTextCompare or vbBinaryCompare");
}

/* InStr (reverse = false) and InStrRev. The result is a character position, 0 when not found. */
static int instr(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **args,
                 size_t nargs, bool reverse, struct expr_value **ret)
{
	int64_t start = reverse ? -1 : 1, found = 0;
	const char *hay, *needle;
	char *fh = NULL, *fn = NULL;
	size_t hl, nl, len, from, limit;
	bool text;
	int r;

	if (nargs > 2 && (r = func_number_arg(ctx, call, args, 2, &start)) < 0)
		return r;
	if ((r = compare_mode(ctx, call, args, nargs, &text)) < 0)
		return r;
	if (reverse ? (start == 0 || start < -1) : start < 1)
		return func_fail_value(ctx, call, "start must be %s",
		                       reverse ? "-1 or at least 1" : "at least 1");
	if (func_is_null(args[0]) || func_is_null(args[1]))
		return func_return(ctx, call, expr_value_new_number(0), ret);
	hay = sdata(args[0]), hl = slen(args[0]);
	needle = sdata(args[1]), nl = slen(args[1]);
	if (text) {
		fh = fold(hay, hl, &hl);
		fn = fold(needle, nl, &nl);
		if (!fh || !fn) {
			free(fh);
			free(fn);
			return ctx_oom(ctx, call);
		}
		hay = fh, needle = fn;
	}
	len = utf8_length(hay, hl);
	if (!reverse) {
		from = utf8_offset(hay, hl, (size_t)start - 1);
		if ((uint64_t)start <= len + 1) {
			const char *p = nl ? memmem(hay + from, hl - from, needle, nl) : hay + from;
			if (p)
				found = (int64_t)utf8_length(hay, (size_t)(p - hay)) + 1;
		}
	} else {
		/* the match must end at or before character `start` */
		limit =
		    start == -1 || (uint64_t)start > len ? hl : utf8_offset(hay, hl, (size_t)start);
		if (nl == 0)
			found = (int64_t)utf8_length(hay, limit);
		for (size_t off = 0; nl && off + nl <= limit;) {
			const char *p = memmem(hay + off, limit - off, needle, nl);
			if (!p)
				break;
			found = (int64_t)utf8_length(hay, (size_t)(p - hay)) + 1;
			off = (size_t)(p - hay) + 1;
		}
	}
	free(fh);
	free(fn);
	return func_return(ctx, call, expr_value_new_number(found), ret);
}

FUNC_IMPL(fn_instr)
{
	return instr(ctx, call, args, nargs, false, ret);
}

FUNC_IMPL(fn_instr_rev)
{
	return instr(ctx, call, args, nargs, true, ret);
}

/* \n, \r and \t in the old and new values stand for the control characters (R8). */
static void unmoniker(const struct expr_value *v, struct sbuf *b)
{
	for (size_t i = 0; i < slen(v); i++) {
		char c = sdata(v)[i];
		if (c == '\\' && i + 1 < slen(v)) {
			char n = sdata(v)[i + 1];
			if (n == 'n' || n == 'r' || n == 't') {
				sbuf_append(b, n == 'n' ? "\n" : n == 'r' ? "\r" : "\t", 1);
				i++;
				continue;
			}
		}
		sbuf_append(b, &c, 1);
	}
	sbuf_append(b, "", 0);
}

FUNC_IMPL(fn_replace)
{
	struct sbuf from = {0}, to = {0}, out = {0};
	const char *s, *p;
	size_t len, i = 0;

	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	if (func_is_null(args[1]) || slen(args[1]) == 0)
		return copy_arg(ctx, call, args[0], ret);
	unmoniker(args[1], &from);
	if (!func_is_null(args[2]))
		unmoniker(args[2], &to);
	s = sdata(args[0]);
	len = slen(args[0]);
	while (!from.error && !to.error && from.len > 0 && i < len &&
	       (p = memmem(s + i, len - i, from.data, from.len))) {
		sbuf_append(&out, s + i, (size_t)(p - s) - i);
		sbuf_append(&out, to.data ? to.data : "", to.len);
		i = (size_t)(p - s) + from.len;
	}
	sbuf_append(&out, s + i, len - i);
	if (from.error || to.error)
		out.error = from.error ? from.error : to.error;
	sbuf_done(&from);
	sbuf_done(&to);
	return func_sbuf_return(ctx, call, &out, ret);
}

struct char_map {
	uint32_t from;
	const char *to;
	size_t to_len;
};

/* ReplacePattern "s:t,s:t": white space is ignored, a source is one character, a target may be
 * empty (remove) or longer than one character (R8). */
FUNC_IMPL(fn_replace_chars)
{
	struct sbuf pat = {0}, out = {0};
	struct char_map *map = NULL;
	size_t nmap = 0, i = 0;
	int r = 0;

	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	if (func_is_null(args[1]))
		return copy_arg(ctx, call, args[0], ret);
	while (i < slen(args[1])) {
		size_t before = i;
		uint32_t cp = utf8_next(sdata(args[1]), slen(args[1]), &i);
		if (!cp_is_space(cp))
			sbuf_append(&pat, sdata(args[1]) + before, i - before);
	}
	sbuf_append(&pat, "", 0);
	if (pat.error) {
		sbuf_done(&pat);
		return ctx_oom(ctx, call);
	}
	map = calloc(pat.len / 2 + 1, sizeof(*map));
	if (!map) {
		sbuf_done(&pat);
		return ctx_oom(ctx, call);
	}
	for (size_t e = 0; e < pat.len;) {
		size_t end = e, colon, k;
		while (end < pat.len && pat.data[end] != ',')
			end++;
		if (end > e) {
			colon = e;
			while (colon < end && pat.data[colon] != ':')
				colon++;
			k = e;
			if (colon < end)
				utf8_next(pat.data, colon, &k);
			if (colon == end || colon == e || k != colon) {
				r = func_fail_value(
				    ctx, call, "entry \"%.*s\" is not <one character>:<text>",
				    (int)(end - e > 32 ? 32 : end - e), pat.data + e);
				goto out;
			}
			k = e;
			map[nmap].from = utf8_next(pat.data, colon, &k);
			map[nmap].to = pat.data + colon + 1;
			map[nmap].to_len = end - colon - 1;
			nmap++;
		}
		e = end + 1;
	}
	for (i = 0; i < slen(args[0]);) {
		size_t before = i, m;
		uint32_t cp = utf8_next(sdata(args[0]), slen(args[0]), &i);
		for (m = 0; m < nmap && map[m].from != cp; m++)
			;
		if (m < nmap)
			sbuf_append(&out, map[m].to, map[m].to_len);
		else
			sbuf_append(&out, sdata(args[0]) + before, i - before);
	}
	r = func_sbuf_return(ctx, call, &out, ret);
out:
	sbuf_done(&out);
	sbuf_done(&pat);
	free(map);
	return r;
}

/* Word(string, n, delimiters): words are the non-empty runs between delimiter characters; n < 1,
 * a NULL string or too few words give "" (R8). */
FUNC_IMPL(fn_word)
{
	const char *s, *d;
	size_t len, dlen, i = 0, start = 0, word = 0;
	int64_t n = 0;
	int r;

	(void)nargs;
	if ((r = func_number_arg(ctx, call, args, 1, &n)) < 0)
		return r;
	if (func_is_null(args[0]) || n < 1)
		return func_string(ctx, call, "", 0, ret);
	s = sdata(args[0]), len = slen(args[0]);
	d = func_is_null(args[2]) ? "" : sdata(args[2]);
	dlen = func_is_null(args[2]) ? 0 : slen(args[2]);
	while (i <= len) {
		size_t before = i;
		bool delim = i == len;
		if (!delim) {
			uint32_t cp = utf8_next(s, len, &i);
			for (size_t k = 0; k < dlen && !delim;) {
				delim = utf8_next(d, dlen, &k) == cp;
			}
		} else {
			i++;
		}
		if (!delim)
			continue;
		if (before > start && ++word == (uint64_t)n)
			return func_string(ctx, call, s + start, before - start, ret);
		start = i;
	}
	return func_string(ctx, call, "", 0, ret);
}
