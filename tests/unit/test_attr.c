/* Unit tests for attribute sets and diffs: case-insensitive names, binary values, canonical
 * order, equality, digest stability, serialization round trips and rejection of corrupt blobs. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hybridsync/attr.h"

static struct attr_value val(const char *s)
{
	struct attr_value v = {s, strlen(s)};
	return v;
}

static void test_basics(void)
{
	struct attr_set *s = attr_set_new();
	const struct attr_value *v;
	const char *name;
	struct attr_value first;
	size_t n;
	static const uint8_t bin[] = {0x00, 0xff, 0x00, 0x41};

	CHECK(attr_set_free(NULL) == NULL);
	CHECK(s != NULL);
	CHECK_INT_EQ(attr_set_count(s), 0);
	CHECK_INT_EQ(attr_set_add_string(s, "sn", "Doe"), 1);
	CHECK_INT_EQ(attr_set_add_string(s, "givenName", "John"), 1);
	CHECK_INT_EQ(attr_set_add_string(s, "GIVENNAME", "Johnny"), 1);
	CHECK_INT_EQ(attr_set_add_string(s, "givenname", "John"), 0); /* already there */
	CHECK_INT_EQ(attr_set_add(s, "objectGUID", bin, sizeof(bin)), 1);
	CHECK_INT_EQ(attr_set_add(s, "empty", "", 0), 1);
	CHECK_INT_EQ(attr_set_count(s), 4);

	/* canonical name order, case-insensitive, first spelling kept */
	CHECK(attr_set_at(s, 0, &name, &v, &n) == 0);
	CHECK_STR_EQ(name, "empty");
	CHECK(attr_set_at(s, 1, &name, &v, &n) == 0);
	CHECK_STR_EQ(name, "givenName");
	CHECK_INT_EQ(n, 2);
	CHECK_STR_EQ(v[0].data, "John"); /* insertion order */
	CHECK_STR_EQ(v[1].data, "Johnny");
	CHECK(attr_set_at(s, 2, &name, NULL, NULL) == 0);
	CHECK_STR_EQ(name, "objectGUID");
	CHECK(attr_set_at(s, 4, &name, NULL, NULL) == -ENOENT);

	CHECK(attr_set_has(s, "OBJECTguid"));
	CHECK(attr_set_has_value(s, "objectguid", bin, sizeof(bin)));
	CHECK(!attr_set_has_value(s, "objectguid", bin, 3));
	CHECK(attr_set_get_first(s, "objectGUID", &first) == 0);
	CHECK_INT_EQ(first.len, 4);
	CHECK(memcmp(first.data, bin, 4) == 0);
	CHECK(attr_set_get_string(s, "objectGUID") == NULL); /* has a NUL byte */
	CHECK_STR_EQ(attr_set_get_string(s, "SN"), "Doe");
	CHECK(attr_set_get(s, "missing", &v, &n) == -ENOENT);

	/* bad names and bounds */
	CHECK_INT_EQ(attr_set_add_string(s, "", "x"), -EINVAL);
	CHECK_INT_EQ(attr_set_add_string(s, "has space", "x"), -EINVAL);
	CHECK_INT_EQ(attr_set_add_string(s, NULL, "x"), -EINVAL);
	{
		char longname[ATTR_NAME_MAX + 2];
		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = 0;
		CHECK_INT_EQ(attr_set_add_string(s, longname, "x"), -EINVAL);
		longname[ATTR_NAME_MAX] = 0;
		CHECK_INT_EQ(attr_set_add_string(s, longname, "x"), 1);
		CHECK_INT_EQ(attr_set_remove(s, longname), 1);
	}
	CHECK_INT_EQ(attr_set_add(s, "big", "x", (size_t)ATTR_VALUE_MAX + 1), -E2BIG);

	/* replace drops duplicates, keeps the first occurrence's order */
	{
		struct attr_value in[] = {val("b"), val("a"), val("b"), val("c"), val("a")};
		CHECK(attr_set_replace(s, "proxyAddresses", in, 5) == 0);
		CHECK(attr_set_get(s, "proxyaddresses", &v, &n) == 0);
		CHECK_INT_EQ(n, 3);
		CHECK_STR_EQ(v[0].data, "b");
		CHECK_STR_EQ(v[1].data, "a");
		CHECK_STR_EQ(v[2].data, "c");
		attr_set_sort_values(s);
		CHECK(attr_set_get(s, "proxyaddresses", &v, &n) == 0);
		CHECK_STR_EQ(v[0].data, "a");
		CHECK_STR_EQ(v[2].data, "c");
	}
	CHECK(attr_set_set_string(s, "sn", "Smith") == 0);
	CHECK_STR_EQ(attr_set_get_string(s, "sn"), "Smith");
	CHECK(attr_set_set_string(s, "sn", NULL) == 0);
	CHECK(!attr_set_has(s, "sn"));

	CHECK_INT_EQ(attr_set_remove_value(s, "givenName", "John", 4), 1);
	CHECK_INT_EQ(attr_set_remove_value(s, "givenName", "John", 4), 0);
	CHECK_INT_EQ(attr_set_remove_value(s, "givenName", "Johnny", 6), 1);
	CHECK(!attr_set_has(s, "givenName")); /* no attribute without values */
	CHECK_INT_EQ(attr_set_remove(s, "nothing"), 0);

	attr_set_free(s);
}

static struct attr_set *sample(bool reversed)
{
	struct attr_set *s = attr_set_new();
	static const uint8_t sid[] = {1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0};

	if (!reversed) {
		attr_set_add_string(s, "cn", "John Doe");
		attr_set_add_string(s, "member", "CN=a");
		attr_set_add_string(s, "member", "CN=b");
		attr_set_add(s, "objectSid", sid, sizeof(sid));
		attr_set_add_string(s, "mail", "john@example.com");
	} else {
		attr_set_add_string(s, "MAIL", "john@example.com");
		attr_set_add(s, "objectsid", sid, sizeof(sid));
		attr_set_add_string(s, "Member", "CN=b");
		attr_set_add_string(s, "Member", "CN=a");
		attr_set_add_string(s, "CN", "John Doe");
	}
	return s;
}

static void test_equal_and_digest(void)
{
	struct attr_set *a = sample(false), *b = sample(true), *c = NULL, *empty = attr_set_new();
	uint8_t da[ATTR_DIGEST_SIZE], db[ATTR_DIGEST_SIZE], dc[ATTR_DIGEST_SIZE],
	    de[ATTR_DIGEST_SIZE], dn[ATTR_DIGEST_SIZE];
	char hex[2 * ATTR_DIGEST_SIZE + 1];

	CHECK(attr_set_equal(a, b));
	CHECK(attr_set_digest(a, da) == 0);
	CHECK(attr_set_digest(b, db) == 0);
	CHECK(memcmp(da, db, sizeof(da)) == 0);

	CHECK(attr_set_copy(a, &c) == 0);
	CHECK(attr_set_equal(a, c));
	attr_set_add_string(c, "member", "CN=c");
	CHECK(!attr_set_equal(a, c));
	CHECK(attr_set_digest(c, dc) == 0);
	CHECK(memcmp(da, dc, sizeof(da)) != 0);

	/* a value moving between attributes changes the digest */
	attr_set_remove_value(c, "member", "CN=c", 4);
	attr_set_add_string(c, "cn", "CN=c");
	CHECK(attr_set_digest(c, dc) == 0);
	CHECK(memcmp(da, dc, sizeof(da)) != 0);

	CHECK(attr_set_equal(NULL, empty));
	CHECK(attr_set_digest(empty, de) == 0);
	CHECK(attr_set_digest(NULL, dn) == 0);
	CHECK(memcmp(de, dn, sizeof(de)) == 0);
	attr_digest_to_hex(de, hex);
	CHECK_INT_EQ(strlen(hex), 64);

	attr_set_free(a);
	attr_set_free(b);
	attr_set_free(c);
	attr_set_free(empty);
}

static void test_hash_framing(void)
{
	uint8_t d1[ATTR_DIGEST_SIZE], d2[ATTR_DIGEST_SIZE];
	struct attr_hash *h;

	CHECK(attr_hash_new(&h) == 0);
	attr_hash_add_string(h, "ab");
	attr_hash_add_string(h, "c");
	CHECK(attr_hash_final(h, d1) == 0);
	CHECK(attr_hash_final(h, d2) == -EINVAL); /* finished */
	attr_hash_free(h);
	CHECK(attr_hash_new(&h) == 0);
	attr_hash_add_string(h, "a");
	attr_hash_add_string(h, "bc");
	CHECK(attr_hash_final(h, d2) == 0);
	attr_hash_free(h);
	CHECK(memcmp(d1, d2, sizeof(d1)) != 0);

	CHECK(attr_hash_new(&h) == 0);
	attr_hash_add_string(h, NULL);
	attr_hash_final(h, d1);
	attr_hash_free(h);
	CHECK(attr_hash_new(&h) == 0);
	attr_hash_add_string(h, "");
	attr_hash_final(h, d2);
	attr_hash_free(h);
	CHECK(memcmp(d1, d2, sizeof(d1)) != 0);
	CHECK(attr_hash_free(NULL) == NULL);
}

static void test_serialization(void)
{
	struct attr_set *a = sample(false), *b = NULL, *empty = attr_set_new();
	const struct attr_value *v;
	void *buf = NULL, *ebuf = NULL;
	size_t len = 0, elen = 0, i, n, rejected = 0, accepted = 0;
	uint8_t *copy;

	attr_set_add(a, "zero", "", 0);
	attr_set_add(a, "nul", "\0\0\0", 3);
	CHECK(attr_set_serialize(a, &buf, &len) == 0);
	CHECK(attr_set_deserialize(buf, len, &b) == 0);
	CHECK(attr_set_equal(a, b));
	CHECK(attr_set_get(b, "member", &v, &n) == 0);
	CHECK_INT_EQ(n, 2);
	CHECK_STR_EQ(v[0].data, "CN=a"); /* insertion order survives */
	CHECK(attr_set_get(b, "nul", &v, &n) == 0 && v[0].len == 3);
	attr_set_free(b);
	b = NULL;

	CHECK(attr_set_serialize(empty, &ebuf, &elen) == 0);
	CHECK(attr_set_deserialize(ebuf, elen, &b) == 0);
	CHECK_INT_EQ(attr_set_count(b), 0);
	b = attr_set_free(b);

	/* every truncation is rejected */
	for (i = 0; i < len; i++) {
		struct attr_set *t = NULL;
		int r = attr_set_deserialize(buf, i, &t);
		if (r == -EBADMSG && t == NULL)
			rejected++;
		attr_set_free(t);
	}
	CHECK_INT_EQ(rejected, len);

	/* trailing garbage, a wrong magic or version */
	copy = malloc(len + 1);
	memcpy(copy, buf, len);
	copy[len] = 0;
	CHECK_INT_EQ(attr_set_deserialize(copy, len + 1, &b), -EBADMSG);
	copy[3] = 2;
	CHECK_INT_EQ(attr_set_deserialize(copy, len, &b), -EBADMSG);
	memcpy(copy, buf, len);

	/* any single corrupted byte: an error or a valid set, never a crash */
	for (i = 0; i < len; i++) {
		static const uint8_t patterns[] = {0x00, 0xff, 0x80, 0x7f, 0x01};
		size_t p;
		for (p = 0; p < sizeof(patterns); p++) {
			struct attr_set *t = NULL;
			int r;
			memcpy(copy, buf, len);
			copy[i] ^= patterns[p] ? patterns[p] : 0x55;
			r = attr_set_deserialize(copy, len, &t);
			if (r == 0)
				accepted++;
			else
				CHECK_INT_EQ(r, -EBADMSG);
			attr_set_free(t);
		}
	}
	CHECK(accepted < len * 5);
	free(copy);

	/* crafted blobs */
	{
		/* huge attribute count in a tiny blob */
		static const uint8_t huge[] = {'H', 'S', 'A', 1, 0xff, 0xff, 0xff, 0xff, 0x0f};
		/* names out of order: "b" then "a" */
		static const uint8_t order[] = {'H', 'S', 'A', 1,   2, 1, 'b', 1,
		                                1,   'x', 1,   'a', 1, 1, 'y'};
		/* the same value twice */
		static const uint8_t dup[] = {'H', 'S', 'A', 1, 1, 1, 'a', 2, 1, 'x', 1, 'x'};
		/* a non-minimal varint (0x81 0x00 = 1) */
		static const uint8_t nonmin[] = {'H', 'S', 'A', 1, 0x81, 0x00, 1, 'a', 1, 1, 'x'};
		/* an attribute with no value */
		static const uint8_t novalue[] = {'H', 'S', 'A', 1, 1, 1, 'a', 0};
		/* a value length beyond the blob */
		static const uint8_t longval[] = {'H', 'S', 'A', 1, 1, 1, 'a', 1, 0xff, 0x7f, 'x'};
		/* a name with a control character */
		static const uint8_t badname[] = {'H', 'S', 'A', 1, 1, 1, '\n', 1, 1, 'x'};
		/* well formed: accepted */
		static const uint8_t good[] = {'H', 'S', 'A', 1, 1, 1, 'a', 1, 1, 'x'};
		struct attr_set *t = NULL;

		CHECK_INT_EQ(attr_set_deserialize(huge, sizeof(huge), &t), -EBADMSG);
		CHECK_INT_EQ(attr_set_deserialize(order, sizeof(order), &t), -EBADMSG);
		CHECK_INT_EQ(attr_set_deserialize(dup, sizeof(dup), &t), -EBADMSG);
		CHECK_INT_EQ(attr_set_deserialize(nonmin, sizeof(nonmin), &t), -EBADMSG);
		CHECK_INT_EQ(attr_set_deserialize(novalue, sizeof(novalue), &t), -EBADMSG);
		CHECK_INT_EQ(attr_set_deserialize(longval, sizeof(longval), &t), -EBADMSG);
		CHECK_INT_EQ(attr_set_deserialize(badname, sizeof(badname), &t), -EBADMSG);
		CHECK_INT_EQ(attr_set_deserialize(NULL, 0, &t), -EBADMSG);
		CHECK(t == NULL);
		CHECK_INT_EQ(attr_set_deserialize(good, sizeof(good), &t), 0);
		CHECK_STR_EQ(attr_set_get_string(t, "A"), "x");
		attr_set_free(t);
	}

	free(buf);
	free(ebuf);
	attr_set_free(a);
	attr_set_free(empty);
}

static void test_many_values(void)
{
	enum { N = 50000 };
	struct attr_value *in = calloc(N + 1, sizeof(*in));
	char(*text)[32] = calloc(N, sizeof(*text));
	struct attr_set *s = attr_set_new(), *t = NULL;
	void *buf = NULL;
	size_t len, n, i;

	for (i = 0; i < N; i++) {
		snprintf(text[i], sizeof(text[i]), "CN=user%zu,OU=Staff", i);
		in[i] = val(text[i]);
	}
	in[N] = in[0]; /* a duplicate */
	CHECK(attr_set_replace(s, "member", in, N + 1) == 0);
	CHECK(attr_set_get(s, "member", NULL, &n) == 0);
	CHECK_INT_EQ(n, N);
	CHECK(attr_set_serialize(s, &buf, &len) == 0);
	CHECK(attr_set_deserialize(buf, len, &t) == 0);
	CHECK(attr_set_equal(s, t));
	free(buf);
	attr_set_free(s);
	attr_set_free(t);
	free(in);
	free(text);
}

static void test_diff(void)
{
	struct attr_set *old = attr_set_new(), *new = attr_set_new();
	struct attr_diff *d = NULL, *d2 = NULL, *e = NULL;
	struct attr_change c;
	uint8_t x[ATTR_DIGEST_SIZE], y[ATTR_DIGEST_SIZE];
	void *buf = NULL;
	size_t len, i;

	attr_set_add_string(old, "displayName", "John");
	attr_set_add_string(old, "mail", "j@example.com");
	attr_set_add_string(old, "proxyAddresses", "smtp:a");
	attr_set_add_string(old, "proxyAddresses", "smtp:b");
	attr_set_add_string(old, "title", "Engineer");

	attr_set_add_string(new, "DISPLAYNAME", "Johnny");    /* changed */
	attr_set_add_string(new, "mail", "j@example.com");    /* same */
	attr_set_add_string(new, "proxyaddresses", "smtp:b"); /* same set, other order */
	attr_set_add_string(new, "proxyaddresses", "smtp:a");
	attr_set_add_string(new, "department", "R&D"); /* added */
	/* title removed */

	CHECK(attr_set_diff(old, new, &d) == 0);
	CHECK_INT_EQ(attr_diff_count(d), 3);
	CHECK(attr_diff_at(d, 0, &c) == 0);
	CHECK_STR_EQ(c.name, "department");
	CHECK(c.n_old == 0 && c.n_new == 1);
	CHECK(attr_diff_at(d, 1, &c) == 0);
	CHECK_STR_EQ(c.name, "DISPLAYNAME");
	CHECK(c.n_old == 1 && c.n_new == 1);
	CHECK_STR_EQ(c.old_values[0].data, "John");
	CHECK_STR_EQ(c.new_values[0].data, "Johnny");
	CHECK(attr_diff_get(d, "title", &c) == 0);
	CHECK(c.n_old == 1 && c.n_new == 0);
	CHECK(attr_diff_get(d, "mail", &c) == -ENOENT);

	/* put, remove, round trip, digest */
	{
		struct attr_value nv[] = {val("2"), val("1")};
		CHECK(attr_diff_put(d, "extensionAttribute1", NULL, 0, nv, 2) == 0);
		CHECK(attr_diff_put(d, "bad", NULL, 0, NULL, 0) == -EINVAL);
	}
	CHECK_INT_EQ(attr_diff_count(d), 4);
	CHECK(attr_diff_serialize(d, &buf, &len) == 0);
	CHECK(attr_diff_deserialize(buf, len, &d2) == 0);
	CHECK(attr_diff_equal(d, d2));
	CHECK(attr_diff_digest(d, x) == 0);
	for (i = 0; i < len; i++) {
		struct attr_diff *t = NULL;
		CHECK_INT_EQ(attr_diff_deserialize(buf, i, &t), -EBADMSG);
	}
	free(buf);
	{
		struct attr_value nv[] = {val("1"), val("2")}; /* other order: same digest */
		CHECK(attr_diff_put(d2, "EXTENSIONATTRIBUTE1", NULL, 0, nv, 2) == 0);
		CHECK(attr_diff_digest(d2, y) == 0);
		CHECK(memcmp(x, y, sizeof(x)) == 0);
		CHECK(attr_diff_equal(d, d2));
	}
	CHECK_INT_EQ(attr_diff_remove(d2, "title"), 1);
	CHECK(!attr_diff_equal(d, d2));
	CHECK(attr_diff_digest(d2, y) == 0);
	CHECK(memcmp(x, y, sizeof(x)) != 0);

	/* nothing changed: an empty diff, which still serializes */
	CHECK(attr_set_diff(old, old, &e) == 0);
	CHECK_INT_EQ(attr_diff_count(e), 0);
	attr_diff_free(e);
	CHECK(attr_set_diff(NULL, new, &e) == 0);
	CHECK_INT_EQ(attr_diff_count(e), attr_set_count(new));
	attr_diff_free(e);
	CHECK(attr_diff_serialize(NULL, &buf, &len) == 0);
	CHECK(attr_diff_deserialize(buf, len, &e) == 0);
	CHECK_INT_EQ(attr_diff_count(e), 0);
	free(buf);
	attr_diff_free(e);
	{
		/* a change with neither old nor new values is corrupt */
		static const uint8_t nothing[] = {'H', 'S', 'D', 1, 1, 1, 'a', 0, 0};
		CHECK_INT_EQ(attr_diff_deserialize(nothing, sizeof(nothing), &e), -EBADMSG);
	}

	CHECK(attr_diff_free(NULL) == NULL);
	attr_diff_free(d);
	attr_diff_free(d2);
	attr_set_free(old);
	attr_set_free(new);
}

/* The builder against attr_set_add fed the same calls: the same set, blob and digest, over
 * random objects (names differing in case, duplicate values, lists past the small-sort size,
 * binary values), and reused from object to object. */
static void test_builder(void)
{
	static const char *names[] = {"cn",          "CN",   "mail", "member",     "proxyAddresses",
	                              "objectClass", "Mail", "sn",   "objectGUID", "description"};
	struct attr_builder *b = NULL;
	unsigned seed = 12345;
	int mismatches = 0, objects = 0;

	CHECK_INT_EQ(attr_builder_new(&b), 0);
	for (int round = 0; round < 300; round++) {
		struct attr_set *ref = attr_set_new();
		const struct attr_set *view = NULL;
		void *blob1 = NULL, *blob2 = NULL;
		size_t len1 = 0, len2 = 0;
		uint8_t d1[ATTR_DIGEST_SIZE], d2[ATTR_DIGEST_SIZE];
		int n_adds = (int)(rand_r(&seed) % 120);

		attr_builder_reset(b);
		for (int i = 0; i < n_adds; i++) {
			const char *name = names[rand_r(&seed) % 10];
			char v[8];
			size_t len = rand_r(&seed) % 4;
			int a;
			for (size_t k = 0; k < len; k++)
				v[k] = (char)(rand_r(&seed) % 3); /* binary, few distinct values */
			a = attr_builder_attr(b, name, strlen(name));
			if (a < 0 || attr_builder_add(b, a, v, len) < 0 ||
			    attr_set_add(ref, name, v, len) < 0)
				mismatches++;
		}
		if (round % 7 == 0) /* an attribute named but given no value is left out */
			(void)attr_builder_attr(b, "unused", 6);
		if (attr_builder_view(b, &view) < 0 || !attr_set_equal(view, ref) ||
		    attr_set_count(view) != attr_set_count(ref))
			mismatches++;
		/* the same names (first spelling) and values in the same order */
		for (size_t i = 0; view && i < attr_set_count(ref); i++) {
			const char *n1, *n2;
			const struct attr_value *v1, *v2;
			size_t c1, c2;
			if (attr_set_at(view, i, &n1, &v1, &c1) < 0 ||
			    attr_set_at(ref, i, &n2, &v2, &c2) < 0 || strcmp(n1, n2) != 0 ||
			    c1 != c2) {
				mismatches++;
				continue;
			}
			for (size_t k = 0; k < c1; k++)
				if (attr_value_compare(&v1[k], &v2[k]) != 0 ||
				    ((const char *)v1[k].data)[v1[k].len])
					mismatches++;
		}
		if (attr_builder_encode(b, &blob1, &len1, d1) < 0 ||
		    attr_set_serialize(ref, &blob2, &len2) < 0 || attr_set_digest(ref, d2) < 0 ||
		    len1 != len2 || memcmp(blob1, blob2, len1) != 0 ||
		    memcmp(d1, d2, sizeof(d1)) != 0)
			mismatches++;
		free(blob1);
		free(blob2);
		attr_set_free(ref);
		objects++;
	}
	CHECK_INT_EQ(objects, 300);
	CHECK_INT_EQ(mismatches, 0);

	/* bounds and bad input, as attr_set_add */
	attr_builder_reset(b);
	CHECK_INT_EQ(attr_builder_attr(b, "bad name", 8), -EINVAL);
	CHECK_INT_EQ(attr_builder_attr(b, "", 0), -EINVAL);
	CHECK_INT_EQ(attr_builder_add(b, 0, "x", 1), -EINVAL); /* no such attribute */
	CHECK_INT_EQ(attr_builder_attr(b, "cn;x", 2), 0);      /* the first len bytes */
	CHECK_INT_EQ(attr_builder_add(b, 0, NULL, ATTR_VALUE_MAX + 1u), -EINVAL);
	{
		char *big = calloc(1, ATTR_VALUE_MAX + 1u);
		CHECK(big != NULL);
		if (big)
			CHECK_INT_EQ(attr_builder_add(b, 0, big, ATTR_VALUE_MAX + 1u), -E2BIG);
		free(big);
	}
	{
		const struct attr_set *view = NULL;
		CHECK_INT_EQ(attr_builder_view(b, &view), 0);
		CHECK_INT_EQ(attr_set_count(view), 0);
	}
	/* a name whose first add failed takes the spelling of the first value added, as in
	 * attr_set_add */
	attr_builder_reset(b);
	{
		const struct attr_set *view = NULL;
		const char *name = NULL;
		const struct attr_value *v = NULL;
		size_t n = 0;
		int a = attr_builder_attr(b, "CN", 2);
		CHECK_INT_EQ(attr_builder_add(b, a, NULL, 1), -EINVAL);
		CHECK_INT_EQ(attr_builder_attr(b, "cn", 2), a);
		char big[100];
		memset(big, 'x', sizeof(big));
		big[sizeof(big) - 1] = 0;
		CHECK_INT_EQ(attr_builder_add(b, a, big, strlen(big)), 0);
		/* a value taken from the view, added to another attribute (the buffer under it
		 * grows meanwhile) */
		for (int i = 0; i < 200; i++) {
			char nm[16];
			int k;
			snprintf(nm, sizeof(nm), "a%d", i);
			k = attr_builder_attr(b, nm, strlen(nm));
			CHECK_INT_EQ(attr_builder_view(b, &view), 0);
			CHECK_INT_EQ(attr_set_get(view, "cn", &v, &n), 0);
			CHECK(attr_builder_add(b, k, v[0].data, v[0].len) == 0);
		}
		CHECK_INT_EQ(attr_builder_view(b, &view), 0);
		CHECK_INT_EQ(attr_set_count(view), 201);
		CHECK_STR_EQ(attr_set_get_string(view, "a199"), big);
		CHECK_INT_EQ(attr_set_at(view, 200, &name, &v, &n), 0);
		CHECK_STR_EQ(name, "cn");
	}
	/* ATTR_ATTRS_MAX counts attributes with values */
	attr_builder_reset(b);
	{
		int r = 0, i;
		char nm[16];
		for (i = 0; i < (int)ATTR_ATTRS_MAX + 10 && r >= 0; i++) { /* names only */
			snprintf(nm, sizeof(nm), "n%d", i);
			r = attr_builder_attr(b, nm, strlen(nm));
		}
		CHECK(r >= 0);
		for (i = 0; i < (int)ATTR_ATTRS_MAX && r >= 0; i++)
			r = attr_builder_add(b, i, "v", 1);
		CHECK_INT_EQ(r, 0);
		CHECK_INT_EQ(attr_builder_add(b, (int)ATTR_ATTRS_MAX, "v", 1), -E2BIG);
		CHECK_INT_EQ(attr_builder_add(b, 0, "w", 1), 0); /* an attribute it has */
	}
	CHECK(attr_builder_free(b) == NULL);
	CHECK(attr_builder_free(NULL) == NULL);
}

int main(void)
{
	test_basics();
	test_equal_and_digest();
	test_hash_framing();
	test_serialization();
	test_many_values();
	test_diff();
	test_builder();
	return check_finish();
}
