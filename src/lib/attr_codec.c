/* The bounded binary serialization of attribute sets and diffs, and their SHA-256 digests.
 * The only file of the project that talks to OpenSSL's EVP digest API. */
#include "attr_internal.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct attr_hash {
	EVP_MD_CTX *ctx;
	bool done;
	size_t len;
	uint8_t buf[4096];
};

/* --- serialization ------------------------------------------------------------------- *
 * Unsigned LEB128 varints (at most 5 bytes, minimal encoding) for every count and length. */

struct wbuf {
	uint8_t *p; /* NULL: only count */
	size_t len;
};

static void put_varint(struct wbuf *w, uint64_t v)
{
	do {
		uint8_t b = v & 0x7f;
		v >>= 7;
		if (v)
			b |= 0x80;
		if (w->p)
			w->p[w->len] = b;
		w->len++;
	} while (v);
}

static void put_bytes(struct wbuf *w, const void *data, size_t len)
{
	if (w->p && len)
		memcpy(w->p + w->len, data, len);
	w->len += len;
}

static void put_values(struct wbuf *w, const struct attr_vlist *vl)
{
	size_t i;

	put_varint(w, vl->n);
	for (i = 0; i < vl->n; i++) {
		put_varint(w, vl->v[i].len);
		put_bytes(w, vl->v[i].data, vl->v[i].len);
	}
}

static void put_name(struct wbuf *w, const char *name)
{
	size_t len = strlen(name);

	put_varint(w, len);
	put_bytes(w, name, len);
}

struct rbuf {
	const uint8_t *p;
	size_t left;
};

static int get_varint(struct rbuf *r, uint32_t max, uint32_t *ret)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < 5; i++) {
		uint8_t b;
		if (r->left == 0)
			return -EBADMSG;
		b = *r->p++;
		r->left--;
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			if (b == 0 && i > 0)
				return -EBADMSG; /* not minimal */
			if (v > max)
				return -EBADMSG;
			*ret = (uint32_t)v;
			return 0;
		}
	}
	return -EBADMSG;
}

static int get_bytes(struct rbuf *r, size_t len, const uint8_t **ret)
{
	if (len > r->left)
		return -EBADMSG;
	*ret = r->p;
	r->p += len;
	r->left -= len;
	return 0;
}

static int get_name(struct rbuf *r, char *buf)
{
	const uint8_t *p;
	uint32_t len;
	int e;

	e = get_varint(r, ATTR_NAME_MAX, &len);
	if (e < 0)
		return e;
	e = get_bytes(r, len, &p);
	if (e < 0)
		return e;
	if (!attr_name_valid_bytes(p, len))
		return -EBADMSG;
	memcpy(buf, p, len);
	buf[len] = 0;
	return 0;
}

/* Reads a value list; `min` is the least number of values allowed. */
static int get_values(struct rbuf *r, uint32_t min, struct attr_vlist *out)
{
	struct attr_vlist vl = {0};
	uint32_t n, i;
	int e;

	e = get_varint(r, ATTR_VALUES_MAX, &n);
	if (e < 0)
		return e;
	/* Each value needs at least its length byte: a tiny blob cannot claim a huge count. */
	if (n < min || n > r->left)
		return -EBADMSG;
	vl.v = calloc(n ? n : 1, sizeof(*vl.v));
	if (!vl.v)
		return -ENOMEM;
	vl.cap = n ? n : 1;
	for (i = 0; i < n; i++) {
		const uint8_t *p;
		uint32_t len;
		e = get_varint(r, ATTR_VALUE_MAX, &len);
		if (e >= 0)
			e = get_bytes(r, len, &p);
		if (e >= 0)
			e = attr_vlist_push(&vl, p, len);
		if (e < 0)
			goto fail;
	}
	e = attr_values_have_duplicates(vl.v, vl.n);
	if (e != 0) {
		e = e < 0 ? e : -EBADMSG;
		goto fail;
	}
	*out = vl;
	return 0;
fail:
	attr_vlist_free(&vl);
	return e;
}

static int check_serialized_size(size_t len)
{
	return len > ATTR_SERIALIZED_MAX ? -E2BIG : 0;
}

static void write_set(struct wbuf *w, const struct attr_set *s)
{
	size_t i, n = attr_set_count(s);

	put_bytes(w, ATTR_SET_MAGIC, ATTR_MAGIC_LEN);
	put_varint(w, n);
	for (i = 0; i < n; i++) {
		put_name(w, s->a[i].name);
		put_values(w, &s->a[i].vals);
	}
}

int attr_set_serialize(const struct attr_set *s, void **ret_buf, size_t *ret_len)
{
	struct wbuf w = {0};
	int r;

	if (!ret_buf || !ret_len)
		return -EINVAL;
	write_set(&w, s);
	r = check_serialized_size(w.len);
	if (r < 0)
		return r;
	w.p = malloc(w.len);
	if (!w.p)
		return -ENOMEM;
	w.len = 0;
	write_set(&w, s);
	*ret_buf = w.p;
	*ret_len = w.len;
	return 0;
}

static int check_magic(struct rbuf *r, const char *magic)
{
	const uint8_t *p;

	if (get_bytes(r, ATTR_MAGIC_LEN, &p) < 0 || memcmp(p, magic, ATTR_MAGIC_LEN) != 0)
		return -EBADMSG;
	return 0;
}

int attr_set_deserialize(const void *buf, size_t len, struct attr_set **ret)
{
	struct rbuf r = {buf, len};
	struct attr_set *s = NULL;
	char name[ATTR_NAME_MAX + 1];
	uint32_t n, i;
	int e;

	if ((!buf && len) || !ret)
		return -EINVAL;
	if (len > ATTR_SERIALIZED_MAX)
		return -EBADMSG;
	e = check_magic(&r, ATTR_SET_MAGIC);
	if (e >= 0)
		e = get_varint(&r, ATTR_ATTRS_MAX, &n);
	if (e < 0)
		return e;
	if (n > r.left / 4) /* name length, name, count, one value length */
		return -EBADMSG;
	s = attr_set_new();
	if (!s)
		return -ENOMEM;
	s->a = calloc(n ? n : 1, sizeof(*s->a));
	if (!s->a) {
		e = -ENOMEM;
		goto fail;
	}
	s->cap = n ? n : 1;
	for (i = 0; i < n; i++) {
		e = get_name(&r, name);
		if (e < 0)
			goto fail;
		if (i > 0 && attr_name_cmp(s->a[i - 1].name, name) >= 0) {
			e = -EBADMSG; /* out of order or duplicate */
			goto fail;
		}
		e = attr_set_insert_at(s, i, name, strlen(name));
		if (e >= 0)
			e = get_values(&r, 1, &s->a[i].vals);
		if (e < 0)
			goto fail;
	}
	if (r.left != 0) {
		e = -EBADMSG;
		goto fail;
	}
	*ret = s;
	return 0;
fail:
	attr_set_free(s);
	return e;
}

/* --- hashing ------------------------------------------------------------------------- */

/* SHA-256 fetched once: EVP_sha256() makes every EVP_DigestInit_ex look the algorithm up in
 * the provider (a fifth of the cost of hashing an imported object). */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_fetched;

static void sha256_fetch(void)
{
	sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256(void)
{
	(void)pthread_once(&sha256_once, sha256_fetch);
	return sha256_fetched ? sha256_fetched : EVP_sha256();
}

int attr_hash_new(struct attr_hash **ret)
{
	struct attr_hash *h;

	if (!ret)
		return -EINVAL;
	h = malloc(sizeof(*h)); /* not calloc: buf needs no zeroing */
	if (!h)
		return -ENOMEM;
	h->done = false;
	h->len = 0;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex(h->ctx, sha256(), NULL) != 1) {
		attr_hash_free(h);
		return -ENOMEM;
	}
	*ret = h;
	return 0;
}

struct attr_hash *attr_hash_free(struct attr_hash *h)
{
	if (!h)
		return NULL;
	EVP_MD_CTX_free(h->ctx);
	free(h);
	return NULL;
}

static int hash_flush(struct attr_hash *h)
{
	int r = 0;

	if (h->len && EVP_DigestUpdate(h->ctx, h->buf, h->len) != 1)
		r = -EIO;
	h->len = 0;
	return r;
}

/* Input is gathered in a buffer: one EVP update per few KiB, not per small field. */
static int hash_raw(struct attr_hash *h, const void *data, size_t len)
{
	if (!h || h->done)
		return -EINVAL;
	if (h->len + len > sizeof(h->buf)) {
		int r = hash_flush(h);
		if (r < 0)
			return r;
		if (len > sizeof(h->buf))
			return EVP_DigestUpdate(h->ctx, data, len) == 1 ? 0 : -EIO;
	}
	if (len)
		memcpy(h->buf + h->len, data, len);
	h->len += len;
	return 0;
}

/* A tag byte and an unsigned LEB128 number. */
static int hash_frame(struct attr_hash *h, uint8_t tag, uint64_t v)
{
	uint8_t b[11];
	size_t n = 0;

	b[n++] = tag;
	do {
		b[n] = v & 0x7f;
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	return hash_raw(h, b, n);
}

/* Frames: 0x00 = NULL; 0x01 + length + bytes; 0x02 + 64-bit two's complement integer. */
int attr_hash_add(struct attr_hash *h, const void *data, size_t len)
{
	int r;

	if (!data) {
		uint8_t tag = 0;
		return hash_raw(h, &tag, 1);
	}
	r = hash_frame(h, 1, len);
	if (r < 0)
		return r;
	return hash_raw(h, data, len);
}

int attr_hash_add_string(struct attr_hash *h, const char *s)
{
	return attr_hash_add(h, s, s ? strlen(s) : 0);
}

int attr_hash_add_int(struct attr_hash *h, int64_t v)
{
	return hash_frame(h, 2, (uint64_t)v);
}

int attr_hash_final(struct attr_hash *h, uint8_t ret[ATTR_DIGEST_SIZE])
{
	unsigned len = 0;
	int r;

	if (!h || h->done || !ret)
		return -EINVAL;
	r = hash_flush(h);
	h->done = true;
	if (r < 0)
		return r;
	if (EVP_DigestFinal_ex(h->ctx, ret, &len) != 1 || len != ATTR_DIGEST_SIZE)
		return -EIO;
	return 0;
}

void attr_digest_to_hex(const uint8_t digest[ATTR_DIGEST_SIZE], char out[2 * ATTR_DIGEST_SIZE + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < ATTR_DIGEST_SIZE; i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 0xf];
	}
	out[2 * ATTR_DIGEST_SIZE] = 0;
}

static int hash_name(struct attr_hash *h, const char *name)
{
	char lower[ATTR_NAME_MAX + 1];
	size_t i;

	for (i = 0; name[i] && i < ATTR_NAME_MAX; i++)
		lower[i] = (char)attr_fold((unsigned char)name[i]);
	return attr_hash_add(h, lower, i);
}

/* A value list in canonical (sorted) order, preceded by its count. */
static int hash_values(struct attr_hash *h, const struct attr_vlist *vl)
{
	const struct attr_value *small[ATTR_SMALL_SORT], **p;
	size_t i;
	int r;

	r = attr_hash_add_int(h, (int64_t)vl->n);
	if (r < 0 || vl->n == 0)
		return r;
	p = attr_sorted_view(vl->v, vl->n, small);
	if (!p)
		return -ENOMEM;
	for (i = 0; i < vl->n && r >= 0; i++)
		r = attr_hash_add(h, p[i]->data, p[i]->len);
	attr_sorted_view_free(p, small);
	return r;
}

int attr_hash_reset(struct attr_hash *h)
{
	h->done = false;
	h->len = 0;
	/* The same algorithm again: OpenSSL reinitialises the context it has. */
	return EVP_DigestInit_ex(h->ctx, sha256(), NULL) == 1 ? 0 : -EIO;
}

int attr_set_digest_with(struct attr_hash *h, const struct attr_set *s,
                         uint8_t ret[ATTR_DIGEST_SIZE])
{
	size_t i, n = attr_set_count(s);
	int r;

	r = attr_hash_add_string(h, "hybridsync attr_set v1");
	if (r >= 0)
		r = attr_hash_add_int(h, (int64_t)n);
	for (i = 0; i < n && r >= 0; i++) {
		r = hash_name(h, s->a[i].name);
		if (r >= 0)
			r = hash_values(h, &s->a[i].vals);
	}
	if (r >= 0)
		r = attr_hash_final(h, ret);
	return r;
}

int attr_set_digest(const struct attr_set *s, uint8_t ret[ATTR_DIGEST_SIZE])
{
	struct attr_hash *h = NULL;
	int r;

	if (!ret)
		return -EINVAL;
	r = attr_hash_new(&h);
	if (r < 0)
		return r;
	r = attr_set_digest_with(h, s, ret);
	attr_hash_free(h);
	return r;
}

/* --- diffs ------------------------------------------------------------------------- */

static void write_diff(struct wbuf *w, const struct attr_diff *d)
{
	size_t i, n = attr_diff_count(d);

	put_bytes(w, ATTR_DIFF_MAGIC, ATTR_MAGIC_LEN);
	put_varint(w, n);
	for (i = 0; i < n; i++) {
		put_name(w, d->c[i].name);
		put_values(w, &d->c[i].old);
		put_values(w, &d->c[i].new);
	}
}

int attr_diff_serialize(const struct attr_diff *d, void **ret_buf, size_t *ret_len)
{
	struct wbuf w = {0};
	int r;

	if (!ret_buf || !ret_len)
		return -EINVAL;
	write_diff(&w, d);
	r = check_serialized_size(w.len);
	if (r < 0)
		return r;
	w.p = malloc(w.len);
	if (!w.p)
		return -ENOMEM;
	w.len = 0;
	write_diff(&w, d);
	*ret_buf = w.p;
	*ret_len = w.len;
	return 0;
}

int attr_diff_deserialize(const void *buf, size_t len, struct attr_diff **ret)
{
	struct rbuf r = {buf, len};
	struct attr_diff *d = NULL;
	char name[ATTR_NAME_MAX + 1];
	uint32_t n, i;
	int e;

	if ((!buf && len) || !ret)
		return -EINVAL;
	if (len > ATTR_SERIALIZED_MAX)
		return -EBADMSG;
	e = check_magic(&r, ATTR_DIFF_MAGIC);
	if (e >= 0)
		e = get_varint(&r, ATTR_ATTRS_MAX, &n);
	if (e < 0)
		return e;
	if (n > r.left / 4) /* name length, name, two counts */
		return -EBADMSG;
	d = attr_diff_new();
	if (!d)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct attr_vlist old = {0}, new = {0};
		e = get_name(&r, name);
		if (e < 0)
			goto fail;
		if (i > 0 && attr_name_cmp(d->c[i - 1].name, name) >= 0) {
			e = -EBADMSG;
			goto fail;
		}
		e = get_values(&r, 0, &old);
		if (e >= 0)
			e = get_values(&r, 0, &new);
		if (e >= 0 && old.n == 0 && new.n == 0)
			e = -EBADMSG;
		if (e >= 0)
			e = attr_diff_insert_at(d, i, name, &old, &new);
		attr_vlist_free(&old);
		attr_vlist_free(&new);
		if (e < 0)
			goto fail;
	}
	if (r.left != 0) {
		e = -EBADMSG;
		goto fail;
	}
	*ret = d;
	return 0;
fail:
	attr_diff_free(d);
	return e;
}

int attr_diff_digest(const struct attr_diff *d, uint8_t ret[ATTR_DIGEST_SIZE])
{
	struct attr_hash *h = NULL;
	size_t i, n = attr_diff_count(d);
	int r;

	if (!ret)
		return -EINVAL;
	r = attr_hash_new(&h);
	if (r < 0)
		return r;
	r = attr_hash_add_string(h, "hybridsync attr_diff v1");
	if (r >= 0)
		r = attr_hash_add_int(h, (int64_t)n);
	for (i = 0; i < n && r >= 0; i++) {
		r = hash_name(h, d->c[i].name);
		if (r >= 0)
			r = hash_values(h, &d->c[i].old);
		if (r >= 0)
			r = hash_values(h, &d->c[i].new);
	}
	if (r >= 0)
		r = attr_hash_final(h, ret);
	attr_hash_free(h);
	return r;
}
