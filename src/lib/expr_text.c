/* Text helpers for the expression module: a bounded string builder, UTF-8 walking, simple case
 * mapping that does not depend on the process locale, base64 and UTF-16LE conversion. */
#include "expr_internal.h"
#include "utf8_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- bounded string builder ------------------------------------------------------------------ */

void sbuf_append(struct sbuf *b, const void *s, size_t n)
{
	size_t need, cap;
	char *p;

	if (b->error || n == 0)
		return;
	if (n > EXPR_STRING_MAX || b->len > EXPR_STRING_MAX - n) {
		b->error = -E2BIG;
		return;
	}
	need = b->len + n + 1;
	if (need > b->cap) {
		cap = b->cap ? b->cap : 64;
		while (cap < need)
			cap *= 2;
		p = realloc(b->data, cap);
		if (!p) {
			b->error = -ENOMEM;
			return;
		}
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/* `s` (n bytes) `times` times: one allocation, then copies that double what is there. */
void sbuf_append_repeat(struct sbuf *b, const void *s, size_t n, size_t times)
{
	size_t total, start, done;
	char *p;

	if (b->error || n == 0 || times == 0)
		return;
	if (times > EXPR_STRING_MAX / n || b->len > EXPR_STRING_MAX - n * times) {
		b->error = -E2BIG;
		return;
	}
	total = n * times;
	if (b->len + total + 1 > b->cap) {
		p = realloc(b->data, b->len + total + 1);
		if (!p) {
			b->error = -ENOMEM;
			return;
		}
		b->data = p;
		b->cap = b->len + total + 1;
	}
	start = b->len;
	memcpy(b->data + start, s, n);
	for (done = n; done < total; done *= 2)
		memcpy(b->data + start + done, b->data + start,
		       done <= total - done ? done : total - done);
	b->len += total;
	b->data[b->len] = '\0';
}

void sbuf_append_cp(struct sbuf *b, uint32_t cp)
{
	char out[4];

	sbuf_append(b, out, utf8_encode(cp, out));
}

void sbuf_append_str(struct sbuf *b, const char *s)
{
	sbuf_append(b, s, strlen(s));
}

void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		if (!b->error)
			b->error = -EINVAL; /* only used for short numeric fields */
		return;
	}
	sbuf_append(b, tmp, (size_t)n);
}

void sbuf_done(struct sbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int sbuf_finish(struct sbuf *b, struct expr_value **ret)
{
	struct expr_value *v;
	int r = b->error;

	if (r < 0) {
		sbuf_done(b);
		return r;
	}
	if (!b->data)
		v = expr_value_new_string_len("", 0);
	else
		v = value_new_string_owned(b->data, b->len);
	b->data = NULL;
	b->len = b->cap = 0;
	if (!v)
		return -ENOMEM;
	*ret = v;
	return 0;
}

/* ---- UTF-8 --------------------------------------------------------------------------------------
 */

uint32_t utf8_next(const char *s, size_t len, size_t *i)
{
	uint32_t cp;
	size_t n = utf8_decode((const unsigned char *)s + *i, len - *i, &cp);

	*i += n ? n : 1;
	return n ? cp : 0xfffd;
}

size_t utf8_encode(uint32_t cp, char out[4])
{
	if (cp >= 0xd800 && cp <= 0xdfff)
		cp = 0xfffd;
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	if (cp > 0x10ffff)
		return utf8_encode(0xfffd, out);
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

size_t utf8_length(const char *s, size_t len)
{
	size_t i = 0, n = 0;

	while (i < len) {
		utf8_next(s, len, &i);
		n++;
	}
	return n;
}

size_t utf8_offset(const char *s, size_t len, size_t chars)
{
	size_t i = 0;

	while (i < len && chars > 0) {
		utf8_next(s, len, &i);
		chars--;
	}
	return i;
}

bool utf8_valid(const char *s, size_t len)
{
	size_t i = 0, before;
	uint32_t cp;

	while (i < len) {
		before = i;
		cp = utf8_next(s, len, &i);
		/* U+FFFD is only valid when it was spelled as its three bytes */
		if (cp == 0xfffd && i - before != 3)
			return false;
	}
	return true;
}

/* Case pairs outside ASCII: Latin-1, Latin Extended-A, Greek and Cyrillic. Enough for the names
 * found in directories; characters outside these blocks keep their case. */
uint32_t cp_lower(uint32_t cp)
{
	if (cp >= 'A' && cp <= 'Z')
		return cp + 32;
	if (cp < 0xc0)
		return cp;
	if (cp == 0x130)
		return 'i';
	if (cp >= 0xc0 && cp <= 0xde && cp != 0xd7)
		return cp + 32;
	if (cp >= 0x100 && cp <= 0x137 && !(cp & 1))
		return cp + 1;
	if (cp >= 0x139 && cp <= 0x148 && (cp & 1))
		return cp + 1;
	if (cp >= 0x14a && cp <= 0x177 && !(cp & 1))
		return cp + 1;
	if (cp == 0x178)
		return 0xff;
	if (cp >= 0x179 && cp <= 0x17e && (cp & 1))
		return cp + 1;
	if (cp >= 0x391 && cp <= 0x3ab && cp != 0x3a2)
		return cp + 32;
	if (cp >= 0x410 && cp <= 0x42f)
		return cp + 32;
	if (cp >= 0x400 && cp <= 0x40f)
		return cp + 80;
	return cp;
}

uint32_t cp_upper(uint32_t cp)
{
	if (cp >= 'a' && cp <= 'z')
		return cp - 32;
	if (cp < 0xe0)
		return cp;
	if (cp >= 0xe0 && cp <= 0xfe && cp != 0xf7)
		return cp - 32;
	if (cp == 0xff)
		return 0x178;
	if (cp == 0x131)
		return 'I';
	if (cp >= 0x101 && cp <= 0x137 && (cp & 1))
		return cp - 1;
	if (cp >= 0x13a && cp <= 0x148 && !(cp & 1))
		return cp - 1;
	if (cp >= 0x14b && cp <= 0x177 && (cp & 1))
		return cp - 1;
	if (cp >= 0x17a && cp <= 0x17e && !(cp & 1))
		return cp - 1;
	if (cp >= 0x3b1 && cp <= 0x3cb && cp != 0x3c2)
		return cp - 32;
	if (cp == 0x3c2)
		return 0x3a3; /* final sigma */
	if (cp >= 0x430 && cp <= 0x44f)
		return cp - 32;
	if (cp >= 0x450 && cp <= 0x45f)
		return cp - 80;
	return cp;
}

bool cp_is_space(uint32_t cp)
{
	return cp == ' ' || (cp >= '\t' && cp <= '\r') || cp == 0xa0 || cp == 0x3000 ||
	       (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
	       cp == 0x205f || cp == 0x1680 || cp == 0x85;
}

/* ---- base64 ------------------------------------------------------------------------------------
 */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_encode(const uint8_t *in, size_t len, struct expr_value **ret)
{
	size_t out_len, o = 0;
	char *out;
	struct expr_value *v;

	if (len > (EXPR_STRING_MAX / 4) * 3)
		return -E2BIG;
	out_len = (len + 2) / 3 * 4;
	out = malloc(out_len + 1);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t w = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			w |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			w |= in[i + 2];
		out[o++] = b64_alphabet[(w >> 18) & 63];
		out[o++] = b64_alphabet[(w >> 12) & 63];
		out[o++] = i + 1 < len ? b64_alphabet[(w >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64_alphabet[w & 63] : '=';
	}
	out[o] = '\0';
	v = value_new_string_owned(out, o);
	if (!v)
		return -ENOMEM;
	*ret = v;
	return 0;
}

static int b64_digit(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict but forgiving about layout: whitespace is skipped, padding may be left out. */
int base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len)
{
	uint8_t *out;
	size_t o = 0, pad = 0, ndig = 0;
	uint32_t acc = 0;

	out = malloc(len / 4 * 3 + 3);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		int d;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		d = b64_digit(c);
		if (d < 0 || pad > 0)
			goto fail;
		acc = (acc << 6) | (uint32_t)d;
		if (++ndig % 4 == 0) {
			out[o++] = (uint8_t)(acc >> 16);
			out[o++] = (uint8_t)(acc >> 8);
			out[o++] = (uint8_t)acc;
			acc = 0;
		}
	}
	switch (ndig % 4) {
	case 0:
		if (pad != 0)
			goto fail;
		break;
	case 2:
		if (pad != 0 && pad != 2)
			goto fail;
		out[o++] = (uint8_t)(acc >> 4);
		break;
	case 3:
		if (pad > 1)
			goto fail;
		out[o++] = (uint8_t)(acc >> 10);
		out[o++] = (uint8_t)(acc >> 2);
		break;
	default:
		goto fail;
	}
	*ret = out;
	*ret_len = o;
	return 0;
fail:
	free(out);
	return -EINVAL;
}

/* ---- UTF-16LE -----------------------------------------------------------------------------------
 */

int utf8_to_utf16le(const char *s, size_t len, uint8_t **ret, size_t *ret_len)
{
	uint8_t *out;
	size_t i = 0, o = 0;

	if (len > EXPR_STRING_MAX / 4)
		return -E2BIG;
	out = malloc(len * 4 + 1); /* every byte is at most one UTF-16 unit of 2 bytes, ×2 slack */
	if (!out)
		return -ENOMEM;
	while (i < len) {
		uint32_t cp = utf8_next(s, len, &i);
		if (cp >= 0x10000) {
			uint32_t v = cp - 0x10000;
			uint16_t hi = (uint16_t)(0xd800 | (v >> 10)),
			         lo = (uint16_t)(0xdc00 | (v & 0x3ff));
			out[o++] = (uint8_t)hi;
			out[o++] = (uint8_t)(hi >> 8);
			out[o++] = (uint8_t)lo;
			out[o++] = (uint8_t)(lo >> 8);
		} else {
			out[o++] = (uint8_t)cp;
			out[o++] = (uint8_t)(cp >> 8);
		}
	}
	*ret = out;
	*ret_len = o;
	return 0;
}
