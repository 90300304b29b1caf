/* The function table of the expression language (R8, Microsoft's functions reference) and the
 * conversion, date, evaluation and math functions. Text, multi-valued and directory functions
 * are in expr_func_text.c. */
#include "expr_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S FUNC_SPECIAL
#define UNSUPPORTED(n)                                                                             \
	{                                                                                          \
		n, 0, FUNC_ARGS_VARIADIC, FUNC_UNSUPPORTED, {ARG_WHOLE}, NULL, NULL                \
	}

/* Sorted by strcmp() (a unit test checks it). Argument kinds: see enum arg_kind. */
static const struct expr_func functions[] = {
    {"BitAnd", 2, 2, 0, {ARG_NUM}, fn_bit_and, NULL},
    {"BitOr", 2, 2, 0, {ARG_NUM}, fn_bit_or, NULL},
    {"CBool", 1, 1, 0, {ARG_ANY}, fn_cbool, NULL},
    {"CDate", 1, 1, 0, {ARG_ANY}, fn_cdate, NULL},
    {"CGuid", 1, 1, 0, {ARG_STR}, fn_cguid, NULL},
    {"CNum", 1, 1, 0, {ARG_ANY}, fn_cnum, NULL},
    {"CRef", 1, 1, 0, {ARG_STR}, fn_cref, NULL},
    {"CStr", 1, 1, 0, {ARG_ANY}, fn_cstr, NULL},
    UNSUPPORTED("CertExtensionOids"),
    UNSUPPORTED("CertFormat"),
    UNSUPPORTED("CertFriendlyName"),
    UNSUPPORTED("CertHashString"),
    UNSUPPORTED("CertIssuer"),
    UNSUPPORTED("CertIssuerDN"),
    UNSUPPORTED("CertIssuerOid"),
    UNSUPPORTED("CertKeyAlgorithm"),
    UNSUPPORTED("CertKeyAlgorithmParams"),
    UNSUPPORTED("CertNameInfo"),
    UNSUPPORTED("CertNotAfter"),
    UNSUPPORTED("CertNotBefore"),
    UNSUPPORTED("CertPublicKeyOid"),
    UNSUPPORTED("CertPublicKeyParametersOid"),
    UNSUPPORTED("CertSerialNumber"),
    UNSUPPORTED("CertSignatureAlgorithmOid"),
    UNSUPPORTED("CertSubject"),
    UNSUPPORTED("CertSubjectNameDN"),
    UNSUPPORTED("CertSubjectNameOid"),
    UNSUPPORTED("CertThumbprint"),
    UNSUPPORTED("CertVersion"),
    {"Contains", 2, 3, 0, {ARG_WHOLE, ARG_STR}, fn_contains, NULL},
    {"ConvertFromBase64", 1, 2, 0, {ARG_STR}, fn_convert_from_base64, NULL},
    {"ConvertFromUTF8Hex", 1, 1, 0, {ARG_STR}, fn_convert_from_utf8hex, NULL},
    {"ConvertToBase64", 1, 1, 0, {ARG_ANY}, fn_convert_to_base64, NULL},
    {"ConvertToUTF8Hex", 1, 1, 0, {ARG_STR}, fn_convert_to_utf8hex, NULL},
    {"Count", 1, 1, 0, {ARG_WHOLE}, fn_count, NULL},
    {"DNComponent", 2, 2, 0, {ARG_REF, ARG_NUM}, fn_dn_component, NULL},
    {"DNComponentRev", 2, 3, 0, {ARG_REF, ARG_NUM, ARG_STR}, fn_dn_component_rev, NULL},
    {"DateAdd", 3, 3, 0, {ARG_STR, ARG_NUM, ARG_DT}, fn_date_add, NULL},
    {"DateFromNum", 1, 1, 0, {ARG_NUM}, fn_date_from_num, NULL},
    {"Error", 1, 1, 0, {ARG_WHOLE}, fn_error, NULL},
    {"EscapeDNComponent", 1, 1, 0, {ARG_STR}, fn_escape_dn_component, NULL},
    {"FormatDateTime", 2, 2, 0, {ARG_DT, ARG_STR}, fn_format_date_time, NULL},
    {"Guid", 0, 0, 0, {ARG_WHOLE}, fn_guid, NULL},
    {"IIF", 3, 3, S, {ARG_WHOLE}, NULL, eval_iif},
    {"ImportedValue", 1, 1, S | FUNC_NAME_LITERAL, {ARG_WHOLE}, NULL, eval_imported},
    {"InStr", 2, 4, 0, {ARG_STR, ARG_STR, ARG_NUM, ARG_ANY}, fn_instr, NULL},
    {"InStrRev", 2, 4, 0, {ARG_STR, ARG_STR, ARG_NUM, ARG_ANY}, fn_instr_rev, NULL},
    {"IsBitSet", 2, 2, 0, {ARG_NUM}, fn_is_bit_set, NULL},
    UNSUPPORTED("IsCert"),
    {"IsDate", 1, 1, 0, {ARG_WHOLE}, fn_is_date, NULL},
    {"IsEmpty", 1, 1, 0, {ARG_WHOLE}, fn_is_empty, NULL},
    {"IsGuid", 1, 1, 0, {ARG_WHOLE}, fn_is_guid, NULL},
    {"IsNull", 1, 1, 0, {ARG_WHOLE}, fn_is_null, NULL},
    {"IsNullOrEmpty", 1, 1, 0, {ARG_WHOLE}, fn_is_null_or_empty, NULL},
    {"IsNumeric", 1, 1, 0, {ARG_WHOLE}, fn_is_numeric, NULL},
    {"IsPresent", 1, 1, 0, {ARG_WHOLE}, fn_is_present, NULL},
    {"IsString", 1, 1, 0, {ARG_WHOLE}, fn_is_string, NULL},
    {"Item", 2, 2, 0, {ARG_WHOLE, ARG_NUM}, fn_item, NULL},
    {"ItemOrNull", 2, 2, 0, {ARG_WHOLE, ARG_NUM}, fn_item_or_null, NULL},
    {"Join", 1, 2, 0, {ARG_WHOLE, ARG_STR}, fn_join, NULL},
    {"LCase", 1, 1, 0, {ARG_STR}, fn_lcase, NULL},
    {"LTrim", 1, 1, 0, {ARG_STR}, fn_ltrim, NULL},
    {"Left", 2, 2, 0, {ARG_STR, ARG_NUM}, fn_left, NULL},
    {"Len", 1, 1, 0, {ARG_STR}, fn_len, NULL},
    {"Mid", 2, 3, 0, {ARG_STR, ARG_NUM}, fn_mid, NULL},
    {"Now", 0, 0, 0, {ARG_WHOLE}, fn_now, NULL},
    {"NumFromDate", 1, 1, 0, {ARG_DT}, fn_num_from_date, NULL},
    {"PCase", 1, 1, 0, {ARG_STR}, fn_pcase, NULL},
    {"PadLeft", 3, 3, 0, {ARG_STR, ARG_NUM, ARG_STR}, fn_pad_left, NULL},
    {"PadRight", 3, 3, 0, {ARG_STR, ARG_NUM, ARG_STR}, fn_pad_right, NULL},
    {"RTrim", 1, 1, 0, {ARG_STR}, fn_rtrim, NULL},
    {"RandomNum", 2, 2, 0, {ARG_NUM}, fn_random_num, NULL},
    {"RemoveDuplicates", 1, 1, 0, {ARG_WHOLE}, fn_remove_duplicates, NULL},
    {"Replace", 3, 3, 0, {ARG_STR}, fn_replace, NULL},
    {"ReplaceChars", 2, 2, 0, {ARG_STR}, fn_replace_chars, NULL},
    {"Right", 2, 2, 0, {ARG_STR, ARG_NUM}, fn_right, NULL},
    {"Select", 3, 3, S | FUNC_BINDER, {ARG_WHOLE}, NULL, eval_select},
    {"Split", 2, 3, 0, {ARG_STR, ARG_STR, ARG_NUM}, fn_split, NULL},
    {"StringFromGuid", 1, 1, 0, {ARG_BIN}, fn_string_from_guid, NULL},
    {"StringFromSid", 1, 1, 0, {ARG_BIN}, fn_string_from_sid, NULL},
    {"Switch", 2, FUNC_ARGS_VARIADIC, S | FUNC_PAIRS, {ARG_WHOLE}, NULL, eval_switch},
    {"Trim", 1, 1, 0, {ARG_STR}, fn_trim, NULL},
    {"UCase", 1, 1, 0, {ARG_STR}, fn_ucase, NULL},
    {"ValueCount", 1, 1, S | FUNC_NAME_LITERAL, {ARG_WHOLE}, NULL, eval_value_count},
    {"Where", 3, 3, S | FUNC_BINDER, {ARG_WHOLE}, NULL, eval_where},
    {"With", 3, 3, S | FUNC_BINDER, {ARG_WHOLE}, NULL, eval_with},
    {"Word", 3, 3, 0, {ARG_STR, ARG_NUM, ARG_STR}, fn_word, NULL},
};

#define N_FUNCTIONS (sizeof(functions) / sizeof(functions[0]))

const struct expr_func *expr_func_lookup(const char *name, size_t len)
{
	for (size_t i = 0; i < N_FUNCTIONS; i++)
		if (strlen(functions[i].name) == len && memcmp(functions[i].name, name, len) == 0)
			return &functions[i];
	return NULL;
}

const struct expr_func *expr_func_lookup_casefold(const char *name, size_t len)
{
	for (size_t i = 0; i < N_FUNCTIONS; i++)
		if (strlen(functions[i].name) == len &&
		    strncasecmp(functions[i].name, name, len) == 0)
			return &functions[i];
	return NULL;
}

static unsigned edit_distance(const char *a, size_t al, const char *b, size_t bl)
{
	unsigned row[64], prev, tmp;

	if (al >= 64 || bl >= 64)
		return 99;
	for (size_t j = 0; j <= bl; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= al; i++) {
		prev = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= bl; j++) {
			unsigned cost = ((a[i - 1] | 0x20) == (b[j - 1] | 0x20)) ? 0 : 1;
			tmp = row[j];
			row[j] = row[j] + 1 < row[j - 1] + 1 ? row[j] + 1 : row[j - 1] + 1;
			if (prev + cost < row[j])
				row[j] = prev + cost;
			prev = tmp;
		}
	}
	return row[bl];
}

/* The closest supported name, when it is close enough to be a typo. */
const struct expr_func *expr_func_nearest(const char *name, size_t len)
{
	const struct expr_func *best = NULL;
	unsigned best_d = len <= 4 ? 2 : 3;

	for (size_t i = 0; i < N_FUNCTIONS; i++) {
		unsigned d;
		if (functions[i].flags & FUNC_UNSUPPORTED)
			continue;
		d = edit_distance(name, len, functions[i].name, strlen(functions[i].name));
		if (d < best_d) {
			best_d = d;
			best = &functions[i];
		}
	}
	return best;
}

enum arg_kind expr_func_arg_kind(const struct expr_func *f, size_t i)
{
	enum arg_kind k = f->args[0];

	for (size_t j = 1; j <= i && j < 4; j++)
		if (f->args[j] != ARG_NONE)
			k = f->args[j];
	return k;
}

const char *expr_function_name(size_t i, bool *ret_supported)
{
	if (i >= N_FUNCTIONS)
		return NULL;
	if (ret_supported)
		*ret_supported = !(functions[i].flags & FUNC_UNSUPPORTED);
	return functions[i].name;
}

/* ---- helpers for implementations ---------------------------------------------------------------
 */

bool func_is_null(const struct expr_value *v)
{
	return !v || v->type == EXPR_VALUE_NULL;
}

int func_return(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value *v,
                struct expr_value **ret)
{
	if (!v)
		return ctx_oom(ctx, call);
	*ret = v;
	return 0;
}

int func_null(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **ret)
{
	return func_return(ctx, call, expr_value_new_null(), ret);
}

int func_string(struct expr_ctx *ctx, const struct expr_node *call, const char *s, size_t len,
                struct expr_value **ret)
{
	return func_return(ctx, call, expr_value_new_string_len(s, len), ret);
}

int func_fail_value(struct expr_ctx *ctx, const struct expr_node *call, const char *fmt, ...)
{
	char msg[EXPR_ERROR_MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return ctx_fail(ctx, call, -EINVAL, EXPR_ERROR_VALUE, "%s: %s", call->call.func->name, msg);
}

int func_number_arg(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **args,
                    size_t i, int64_t *ret)
{
	if (func_is_null(args[i]))
		return func_fail_value(ctx, call, "argument %zu is NULL, a number is needed",
		                       i + 1);
	*ret = args[i]->number;
	return 0;
}

int func_sbuf_return(struct expr_ctx *ctx, const struct expr_node *call, struct sbuf *b,
                     struct expr_value **ret)
{
	int r = sbuf_finish(b, ret);

	if (r == -E2BIG)
		return ctx_fail(ctx, call, r, EXPR_ERROR_LIMIT, "%s: result longer than %u bytes",
		                call->call.func->name, EXPR_STRING_MAX);
	return r < 0 ? ctx_oom(ctx, call) : 0;
}

static int fail_type(struct expr_ctx *ctx, const struct expr_node *call, size_t i, const char *want,
                     const struct expr_value *v)
{
	char buf[64];

	return ctx_fail(ctx, call, -EINVAL, EXPR_ERROR_TYPE, "%s: argument %zu must be %s, got %s",
	                call->call.func->name, i + 1, want, value_preview(v, buf));
}

/* ---- conversion
 * ---------------------------------------------------------------------------------- */

FUNC_IMPL(fn_cbool)
{
	bool b;

	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	if (value_to_bool(args[0], &b) < 0)
		return fail_type(ctx, call, 0, "a boolean, a number or \"True\"/\"False\"",
		                 args[0]);
	return func_return(ctx, call, expr_value_new_boolean(b), ret);
}

FUNC_IMPL(fn_cdate)
{
	int64_t t;

	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	if (args[0]->type != EXPR_VALUE_STRING && args[0]->type != EXPR_VALUE_DATETIME)
		return fail_type(ctx, call, 0, "a string", args[0]);
	if (value_to_datetime(args[0], &t) < 0)
		return func_fail_value(ctx, call, "cannot read \"%.*s\" as a date",
		                       (int)(args[0]->string.len > 64 ? 64 : args[0]->string.len),
		                       args[0]->string.data);
	return func_return(ctx, call, expr_value_new_datetime(t), ret);
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* 00001111-aaaa-2222-bbbb-3333cccc4444 or the same in braces, to the binary layout of
 * objectGUID: the first three groups little-endian, the last two as written. */
int guid_parse(const char *s, size_t len, uint8_t out[16])
{
	static const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
	uint8_t raw[16];
	size_t i = 0, n = 0;

	if (len == 38 && s[0] == '{' && s[37] == '}')
		s++, len -= 2;
	if (len != 36)
		return -EINVAL;
	while (i < len) {
		int hi, lo;
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			i++;
			continue;
		}
		hi = hex_value(s[i]);
		lo = hex_value(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		raw[n++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	for (i = 0; i < 16; i++)
		out[i] = raw[order[i]];
	return 0;
}

FUNC_IMPL(fn_cguid)
{
	uint8_t g[16];

	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	if (guid_parse(args[0]->string.data, args[0]->string.len, g) < 0)
		return func_fail_value(ctx, call, "\"%.*s\" is not a GUID",
		                       (int)(args[0]->string.len > 64 ? 64 : args[0]->string.len),
		                       args[0]->string.data);
	return func_return(ctx, call, expr_value_new_binary(g, sizeof(g)), ret);
}

FUNC_IMPL(fn_convert_from_base64)
{
	const char *enc = nargs > 1 && !func_is_null(args[1]) ? args[1]->string.data : "Unicode";
	struct sbuf b = {0};
	uint8_t *bytes;
	size_t len, i = 0;

	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	if (strcasecmp(enc, "Unicode") != 0 && strcasecmp(enc, "ASCII") != 0 &&
	    strcasecmp(enc, "UTF8") != 0)
		return func_fail_value(ctx, call,
		                       "unknown encoding \"%.32s\" (Unicode, ASCII or UTF8)", enc);
	if (base64_decode(args[0]->string.data, args[0]->string.len, &bytes, &len) < 0)
		return func_fail_value(ctx, call, "the value is not base64");
	if (strcasecmp(enc, "Unicode") == 0) {
		/* UTF-16LE; an unpaired surrogate becomes U+FFFD */
		if (len % 2) {
			free(bytes);
			return func_fail_value(ctx, call,
			                       "odd number of bytes for Unicode (UTF-16LE)");
		}
		while (i < len) {
			uint32_t u = (uint32_t)bytes[i] | (uint32_t)bytes[i + 1] << 8;
			i += 2;
			if (u >= 0xd800 && u <= 0xdbff && i + 1 < len) {
				uint32_t lo = (uint32_t)bytes[i] | (uint32_t)bytes[i + 1] << 8;
				if (lo >= 0xdc00 && lo <= 0xdfff) {
					u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
					i += 2;
				}
			}
			sbuf_append_cp(&b, u >= 0xd800 && u <= 0xdfff ? 0xfffd : u);
		}
	} else if (strcasecmp(enc, "ASCII") == 0) {
		for (i = 0; i < len; i++)
			sbuf_append(&b, bytes[i] < 0x80 ? (const char *)&bytes[i] : "?", 1);
	} else {
		while (i < len)
			sbuf_append_cp(&b, utf8_next((const char *)bytes, len, &i));
	}
	free(bytes);
	return func_sbuf_return(ctx, call, &b, ret);
}

/* A string is encoded as UTF-16LE first (R8: "converts a string to a Unicode base64 string");
 * a binary value (objectGUID) is encoded as it is, which is how sourceAnchor is made (R6). */
FUNC_IMPL(fn_convert_to_base64)
{
	const struct expr_value *v = args[0];
	uint8_t *bytes;
	size_t len;
	int r;

	(void)nargs;
	if (func_is_null(v))
		return func_null(ctx, call, ret);
	if (v->type == EXPR_VALUE_BINARY)
		r = base64_encode(v->binary.data, v->binary.len, ret);
	else if (v->type == EXPR_VALUE_STRING || v->type == EXPR_VALUE_REFERENCE) {
		r = utf8_to_utf16le(v->string.data, v->string.len, &bytes, &len);
		if (r >= 0) {
			r = base64_encode(bytes, len, ret);
			free(bytes);
		}
	} else
		return fail_type(ctx, call, 0, "a string or a binary value", v);
	if (r == -E2BIG)
		return ctx_fail(ctx, call, r, EXPR_ERROR_LIMIT, "ConvertToBase64: value too large");
	return r < 0 ? ctx_oom(ctx, call) : 0;
}

FUNC_IMPL(fn_convert_from_utf8hex)
{
	const char *s = args[0] ? args[0]->string.data : NULL;
	size_t len, i = 0, n = 0;
	struct sbuf b = {0};
	uint8_t *bytes;

	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	len = args[0]->string.len;
	if (len % 2)
		return func_fail_value(ctx, call, "odd number of hex digits");
	bytes = malloc(len / 2 + 1);
	if (!bytes)
		return ctx_oom(ctx, call);
	for (i = 0; i < len; i += 2) {
		int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
		if (hi < 0 || lo < 0) {
			free(bytes);
			return func_fail_value(ctx, call, "invalid hex digit at position %zu",
			                       i + 1);
		}
		bytes[n++] = (uint8_t)(hi << 4 | lo);
	}
	i = 0;
	while (i < n)
		sbuf_append_cp(&b, utf8_next((const char *)bytes, n, &i));
	free(bytes);
	return func_sbuf_return(ctx, call, &b, ret);
}

FUNC_IMPL(fn_convert_to_utf8hex)
{
	static const char hex[] = "0123456789ABCDEF";
	struct sbuf b = {0};

	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	for (size_t i = 0; i < args[0]->string.len; i++) {
		unsigned char c = (unsigned char)args[0]->string.data[i];
		char pair[2] = {hex[c >> 4], hex[c & 15]};
		sbuf_append(&b, pair, 2);
	}
	return func_sbuf_return(ctx, call, &b, ret);
}

FUNC_IMPL(fn_cnum)
{
	int64_t n;

	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	if (args[0]->type != EXPR_VALUE_NUMBER && args[0]->type != EXPR_VALUE_STRING)
		return fail_type(ctx, call, 0, "a string", args[0]);
	if (value_to_number(args[0], &n) < 0)
		return func_fail_value(ctx, call, "\"%.*s\" is not a number",
		                       (int)(args[0]->string.len > 64 ? 64 : args[0]->string.len),
		                       args[0]->string.data);
	return func_return(ctx, call, expr_value_new_number(n), ret);
}

FUNC_IMPL(fn_cref)
{
	struct expr_value *v;

	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	v = expr_value_new_string_len(args[0]->string.data, args[0]->string.len);
	if (v)
		v->type = EXPR_VALUE_REFERENCE;
	return func_return(ctx, call, v, ret);
}

FUNC_IMPL(fn_cstr)
{
	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	if (args[0]->type == EXPR_VALUE_BINARY)
		return fail_type(ctx, call, 0, "a number, a reference, a boolean or a string",
		                 args[0]);
	return value_to_string(args[0], ret) < 0 ? ctx_oom(ctx, call) : 0;
}

/* No example in R8; the Windows StringFromGUID2 format: braces, upper case. */
FUNC_IMPL(fn_string_from_guid)
{
	const uint8_t *g;
	char buf[40];

	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	if (args[0]->binary.len != 16)
		return func_fail_value(ctx, call, "a GUID has 16 bytes, got %zu",
		                       args[0]->binary.len);
	g = args[0]->binary.data;
	snprintf(buf, sizeof(buf),
	         "{%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X}", g[3],
	         g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13],
	         g[14], g[15]);
	return func_string(ctx, call, buf, 38, ret);
}

/* S-R-I-S-S...: revision, 48-bit big-endian authority, little-endian 32-bit subauthorities. */
FUNC_IMPL(fn_string_from_sid)
{
	const uint8_t *p;
	struct sbuf b = {0};
	uint64_t auth = 0;
	size_t len, count;

	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	p = args[0]->binary.data;
	len = args[0]->binary.len;
	if (len < 8 || len != 8 + 4 * (size_t)p[1] || p[1] > 15)
		return func_fail_value(ctx, call, "%zu bytes are not a security identifier", len);
	count = p[1];
	for (int i = 2; i < 8; i++)
		auth = auth << 8 | p[i];
	if (auth >> 32)
		sbuf_printf(&b, "S-%u-0x%012" PRIX64, p[0], auth);
	else
		sbuf_printf(&b, "S-%u-%" PRIu64, p[0], auth);
	for (size_t i = 0; i < count; i++) {
		const uint8_t *s = p + 8 + 4 * i;
		uint32_t v = (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 |
		             (uint32_t)s[3] << 24;
		sbuf_printf(&b, "-%" PRIu32, v);
	}
	return func_sbuf_return(ctx, call, &b, ret);
}

/* ---- date / time
 * --------------------------------------------------------------------------------- */

FUNC_IMPL(fn_date_add)
{
	int64_t n = 0, t = 0;
	int r;

	(void)nargs;
	if (func_is_null(args[2]))
		return func_null(ctx, call, ret);
	if (func_is_null(args[0]))
		return func_fail_value(ctx, call, "the interval is NULL");
	r = func_number_arg(ctx, call, args, 1, &n);
	if (r < 0)
		return r;
	if (strlen(args[0]->string.data) != args[0]->string.len)
		return func_fail_value(ctx, call, "unknown interval");
	r = datetime_add(args[2]->datetime, args[0]->string.data, n, &t);
	if (r == -ERANGE)
		return func_fail_value(ctx, call, "the result is outside years 1 to 9999");
	if (r < 0)
		return func_fail_value(
		    ctx, call, "unknown interval \"%.16s\" (yyyy, q, m, y, d, w, ww, h, n or s)",
		    args[0]->string.data);
	return func_return(ctx, call, expr_value_new_datetime(t), ret);
}

FUNC_IMPL(fn_date_from_num)
{
	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	if (args[0]->number > DATETIME_MAX || args[0]->number < DATETIME_MIN)
		return func_fail_value(ctx, call, "%" PRId64 " is outside years 1 to 9999",
		                       args[0]->number);
	return func_return(ctx, call, expr_value_new_datetime(args[0]->number), ret);
}

FUNC_IMPL(fn_format_date_time)
{
	int r;

	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	if (func_is_null(args[1]))
		return func_fail_value(ctx, call, "the format is NULL");
	r = datetime_format(args[0]->datetime, args[1]->string.data, args[1]->string.len, ret);
	if (r == -EINVAL)
		return func_fail_value(ctx, call, "invalid format \"%.32s\"", args[1]->string.data);
	if (r == -E2BIG)
		return ctx_fail(ctx, call, r, EXPR_ERROR_LIMIT, "FormatDateTime: result too long");
	return r < 0 ? ctx_oom(ctx, call) : 0;
}

FUNC_IMPL(fn_now)
{
	int64_t t;
	int r;

	(void)args, (void)nargs;
	r = ctx_now(ctx, call, &t);
	if (r < 0)
		return r;
	return func_return(ctx, call, expr_value_new_datetime(t), ret);
}

FUNC_IMPL(fn_num_from_date)
{
	(void)nargs;
	if (func_is_null(args[0]))
		return func_null(ctx, call, ret);
	return func_return(ctx, call, expr_value_new_number(args[0]->datetime), ret);
}

/* ---- evaluation
 * ---------------------------------------------------------------------------------- */

FUNC_IMPL(fn_is_bit_set)
{
	(void)nargs;
	if (func_is_null(args[0]) || func_is_null(args[1]))
		return func_return(ctx, call, expr_value_new_boolean(false), ret);
	return func_return(ctx, call,
	                   expr_value_new_boolean((args[0]->number & args[1]->number) != 0), ret);
}

/* The Is* tests take the whole value: a multi-valued value passes when every value does. */
static int test_all(struct expr_ctx *ctx, const struct expr_node *call, const struct expr_value *v,
                    bool (*test)(const struct expr_value *), struct expr_value **ret)
{
	size_t n = expr_value_count(v);
	bool ok = n > 0;

	for (size_t i = 0; i < n && ok; i++)
		ok = test(expr_value_item(v, i));
	return func_return(ctx, call, expr_value_new_boolean(ok), ret);
}

static bool test_date(const struct expr_value *v)
{
	int64_t t;

	return (v->type == EXPR_VALUE_DATETIME || v->type == EXPR_VALUE_STRING) &&
	       value_to_datetime(v, &t) == 0;
}

static bool test_empty(const struct expr_value *v)
{
	return (v->type == EXPR_VALUE_STRING || v->type == EXPR_VALUE_REFERENCE) &&
	       v->string.len == 0;
}

static bool test_guid(const struct expr_value *v)
{
	uint8_t g[16];

	return v->type == EXPR_VALUE_STRING && guid_parse(v->string.data, v->string.len, g) == 0;
}

static bool test_numeric(const struct expr_value *v)
{
	int64_t n;

	return value_to_number(v, &n) == 0;
}

static bool test_string(const struct expr_value *v)
{
	return v->type != EXPR_VALUE_BINARY; /* CStr() accepts all the other kinds */
}

FUNC_IMPL(fn_is_date)
{
	(void)nargs;
	return test_all(ctx, call, args[0], test_date, ret);
}

FUNC_IMPL(fn_is_empty)
{
	(void)nargs;
	return test_all(ctx, call, args[0], test_empty, ret);
}

FUNC_IMPL(fn_is_guid)
{
	(void)nargs;
	return test_all(ctx, call, args[0], test_guid, ret);
}

FUNC_IMPL(fn_is_numeric)
{
	(void)nargs;
	return test_all(ctx, call, args[0], test_numeric, ret);
}

FUNC_IMPL(fn_is_string)
{
	(void)nargs;
	return test_all(ctx, call, args[0], test_string, ret);
}

FUNC_IMPL(fn_is_null)
{
	(void)nargs;
	return func_return(ctx, call, expr_value_new_boolean(expr_value_count(args[0]) == 0), ret);
}

static bool null_or_empty(const struct expr_value *v)
{
	size_t n = expr_value_count(v);

	for (size_t i = 0; i < n; i++)
		if (!test_empty(expr_value_item(v, i)))
			return false;
	return true;
}

FUNC_IMPL(fn_is_null_or_empty)
{
	(void)nargs;
	return func_return(ctx, call, expr_value_new_boolean(null_or_empty(args[0])), ret);
}

FUNC_IMPL(fn_is_present)
{
	(void)nargs;
	return func_return(ctx, call, expr_value_new_boolean(!null_or_empty(args[0])), ret);
}

/* ---- math
 * -------------------------------------------------------------------------------------------- */

FUNC_IMPL(fn_bit_and)
{
	(void)nargs;
	if (func_is_null(args[0]) || func_is_null(args[1]))
		return func_null(ctx, call, ret);
	return func_return(ctx, call, expr_value_new_number(args[0]->number & args[1]->number),
	                   ret);
}

FUNC_IMPL(fn_bit_or)
{
	(void)nargs;
	if (func_is_null(args[0]) || func_is_null(args[1]))
		return func_null(ctx, call, ret);
	return func_return(ctx, call, expr_value_new_number(args[0]->number | args[1]->number),
	                   ret);
}

/* Both ends included. */
FUNC_IMPL(fn_random_num)
{
	int64_t lo = 0, hi = 0;
	uint64_t span, x, limit;
	int r;

	(void)nargs;
	if ((r = func_number_arg(ctx, call, args, 0, &lo)) < 0 ||
	    (r = func_number_arg(ctx, call, args, 1, &hi)) < 0)
		return r;
	if (lo > hi)
		return func_fail_value(ctx, call, "start %" PRId64 " is greater than end %" PRId64,
		                       lo, hi);
	span = (uint64_t)hi - (uint64_t)lo + 1; /* 0: the whole int64 range */
	limit = span ? UINT64_MAX - UINT64_MAX % span : 0;
	do {
		r = ctx_random(ctx, call, &x, sizeof(x));
		if (r < 0)
			return r;
	} while (span && x >= limit);
	return func_return(
	    ctx, call, expr_value_new_number((int64_t)((uint64_t)lo + (span ? x % span : x))), ret);
}
