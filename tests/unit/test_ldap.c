/* Unit tests of the AD connector's pure helpers: DN normalization (one form whatever the
 * server's escaping), scope matching on RDN boundaries, entryUUID parsing. The imports
 * themselves are tested against real servers (tests/integration/040-042). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/lib/ldap_internal.h"
#include "check.h"

static void check_norm(const char *in, const char *want)
{
	char *out = NULL;
	int r = ldn_normalize(in, &out);

	CHECK_INT_EQ(r, 0);
	CHECK_STR_EQ(out, want);
	free(out);
}

static void test_normalize(void)
{
	char *out = NULL;

	/* slapd writes \2C, AD writes \, : both become one form. */
	check_norm("CN=Smith\\, John,OU=x,DC=ad", "CN=Smith\\2C John,OU=x,DC=ad");
	check_norm("cn=Smith\\2C John,ou=x", "cn=Smith\\2C John,ou=x");
	/* UTF-8 stays readable, hex-escaped UTF-8 becomes UTF-8. */
	check_norm("cn=Carl M\\C3\\BCller,ou=A", "cn=Carl Müller,ou=A");
	check_norm("cn=Carl Müller,ou=A", "cn=Carl Müller,ou=A");
	check_norm("cn = spaced , ou = x", "cn=spaced,ou=x");
	check_norm("", "");
	CHECK_INT_EQ(ldn_normalize("not a dn", &out), -EINVAL);
	CHECK(out == NULL);
}

/* libldap's own answer, which the fast path must reproduce exactly. */
static char *slow_norm(const char *in)
{
	LDAPDN d = NULL;
	char *out = NULL, *copy = NULL;

	if (ldap_str2dn(in, &d, LDAP_DN_FORMAT_LDAP) != LDAP_SUCCESS)
		return NULL;
	if (ldap_dn2str(d, &out, LDAP_DN_FORMAT_LDAPV3 | LDAP_DN_PRETTY) == LDAP_SUCCESS && out)
		copy = strdup(out);
	ldap_dnfree(d);
	ldap_memfree(out);
	return copy;
}

/* DNs that skip parsing are printed by libldap exactly as they came; others are parsed. */
static void test_normal_form(void)
{
	static const char *normal[] = {
	    "cn=John Smith,OU=Corp,DC=x",
	    "Cn=A,Dc=X",
	    "cn=O'Brien,dc=x",
	    "cn=a#b,dc=x",
	    "cn=a*b(c)d/e|f!g~h`i^j{k}l[m]n?o@p$q%r&s,dc=x",
	    "cn=a_b-c.d:e,dc=x",
	    "dc=x",
	    "cn=Zo\xc3\xab,ou=\xc3\x84rzte,dc=x", /* UTF-8 is printed as it is */
	    "cn=\xe2\x82\xac \xf0\x9f\x98\x80,dc=x",
	};
	static const char *other[] = {
	    "",
	    "cn=a=b,dc=x",
	    "cn=#ab,dc=x",
	    "cn=a b ,dc=x",
	    "cn=a,  dc=x",
	    "cn = a,dc=x",
	    "1.2.3=a",
	    "cn=a+sn=b",
	    "cn=a\\,b",
	    "cn=a\\2Cb",
	    "cn=a,dc=x;ou=b",
	    "cn=a,",
	    "cn=",
	    "=a",
	    "cn=a,,dc=x",
	    "cn= a",
	    "cn=a\x01",
	    "cn=a\xff",        /* not UTF-8 */
	    "cn=\xc3",         /* cut short */
	    "cn=\xc0\xa1",     /* overlong */
	    "cn=\xed\xa0\x80", /* a surrogate */
	    "cn=a<b",
	    "cn=\"q\"",
	    "cn=a ",
	    "cn",
	    ",dc=x",
	};
	static const char *types[] = {"cn", "OU", "dc-2", "1.2.3", " cn", "cn ", "c_n"};
	static const char *seps[] = {",", ",", ",", ", ", ";", "+", " ,"};
	static const char *pieces[] = {"a",
	                               "b",
	                               "c",
	                               "d",
	                               "Z",
	                               "Z",
	                               "9",
	                               " ",
	                               "#",
	                               "=",
	                               "+",
	                               ",",
	                               "\\",
	                               ";",
	                               "<",
	                               ">",
	                               "\"",
	                               "'",
	                               ".",
	                               "-",
	                               "*",
	                               "\xc3\xa9",
	                               "\xc3\x84",
	                               "\xe2\x82\xac",
	                               "\xf0\x9f\x98\x80",
	                               "\xff",
	                               "\xc3",
	                               "\xed\xa0\x80",
	                               "\xc0\xa1"};
	unsigned seed = 12345, n_fast = 0, n_parsed = 0, n_utf8_fast = 0;

#define RND(n) ((seed = seed * 1103515245u + 12345u), (seed >> 16) % (n))
	for (size_t i = 0; i < sizeof(normal) / sizeof(normal[0]); i++) {
		char *slow = slow_norm(normal[i]);
		CHECK(ldn_is_normal(normal[i], strlen(normal[i])));
		CHECK_STR_EQ(slow ? slow : "(invalid)", normal[i]);
		free(slow);
	}
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		CHECK(!ldn_is_normal(other[i], strlen(other[i])));
	/* Random DNs made of the pieces that matter: whenever the fast path says "as it is",
	 * libldap must agree, and ldn_normalize must give libldap's answer either way. */
	for (int n = 0; n < 100000; n++) {
		char dn[192] = "", *mine = NULL, *slow;
		unsigned n_rdn = 1 + RND(3);
		for (unsigned k = 0; k < n_rdn; k++) {
			size_t vlen = RND(7);
			if (k > 0)
				strcat(dn, seps[RND(sizeof(seps) / sizeof(seps[0]))]);
			strcat(dn, types[RND(sizeof(types) / sizeof(types[0]))]);
			strcat(dn, "=");
			for (size_t v = 0; v < vlen; v++)
				strcat(dn, pieces[RND(sizeof(pieces) / sizeof(pieces[0]))]);
		}
		for (const unsigned char *p = (const unsigned char *)dn; *p; p++)
			if (*p >= 0x80) {
				n_utf8_fast += ldn_is_normal(dn, strlen(dn));
				break;
			}
		slow = slow_norm(dn);
		n_fast += ldn_is_normal(dn, strlen(dn));
		n_parsed += slow != NULL && !ldn_is_normal(dn, strlen(dn));
		if (ldn_is_normal(dn, strlen(dn)) && (!slow || strcmp(slow, dn) != 0)) {
			CHECK_STR_EQ(slow ? slow : "(invalid)", dn);
			free(slow);
			break;
		}
		if (ldn_normalize(dn, &mine) == 0) {
			CHECK_STR_EQ(mine, slow ? slow : "(invalid)");
		} else {
			CHECK(slow == NULL);
		}
		free(mine);
		free(slow);
	}
#undef RND
	/* Both paths were exercised. */
	CHECK(n_fast > 1000);
	CHECK(n_utf8_fast > 100);
	CHECK(n_parsed > 1000);
	printf("normal form: %u of 100000 random DNs took the fast path (%u with UTF-8), %u were "
	       "parsed\n",
	       n_fast, n_utf8_fast, n_parsed);
}

/* Includes: one inside another is searched by the outer one; two that name the same OU (in
 * any case) are searched once. */
static void test_scope_setup(void)
{
	char *inc[] = {"OU=\xc3\x84rzte,DC=x", "ou=\xc3\xa4rzte,dc=x", "ou=Sub,OU=Corp,DC=x",
	               "OU=Corp,DC=x"};
	struct conf_ad ad = {.base_dn = "DC=x", .include = {inc, 4}};
	struct ldap_import_result ret = {0};
	struct ldap_ctx c = {.conf = &ad, .ret = &ret};

	CHECK_INT_EQ(lctx_setup_scope(&c), 0);
	CHECK_INT_EQ(c.include.n, 2);
	if (c.include.n == 2) {
		CHECK_STR_EQ(c.include.v[0], "OU=\xc3\x84rzte,DC=x");
		CHECK_STR_EQ(c.include.v[1], "OU=Corp,DC=x");
	}
	CHECK(lscope_in(&c, "cn=a,OU=\xc3\xa4RZTE,dc=x"));
	CHECK(lscope_in(&c, "cn=a,ou=sub,ou=corp,dc=x"));
	CHECK(!lscope_in(&c, "cn=a,ou=Other,dc=x"));
	lstrv_clear(&c.include);
	lstrv_clear(&c.exclude);
}

static void test_under(void)
{
	CHECK(ldn_is_under("cn=a,ou=Corp,dc=x", "ou=Corp,dc=x"));
	CHECK(ldn_is_under("cn=a,OU=CORP,DC=X", "ou=Corp,dc=x"));
	CHECK(ldn_is_under("ou=Corp,dc=x", "ou=Corp,dc=x"));
	CHECK(!ldn_is_under("ou=NotCorp,dc=x", "ou=Corp,dc=x"));
	/* An escaped comma is not an RDN boundary. */
	CHECK(!ldn_is_under("cn=x\\,ou=Corp,dc=x", "ou=Corp,dc=x"));
	CHECK(ldn_is_under("cn=x\\\\,ou=Corp,dc=x", "ou=Corp,dc=x"));
	CHECK(!ldn_is_under("dc=x", "ou=Corp,dc=x"));
	CHECK(ldn_is_under("dc=x", ""));
	/* case beyond ASCII: an OU renamed from Ärzte to ärzte keeps its objects in scope */
	CHECK(ldn_is_under("cn=a,ou=\xc3\xa4rzte,dc=x", "OU=\xc3\x84rzte,DC=x"));
	CHECK(ldn_is_under("cn=a,ou=\xd0\xbe\xd1\x82\xd0\xb4\xd0\xb5\xd0\xbb,dc=x",
	                   "OU=\xd0\x9e\xd0\xa2\xd0\x94\xd0\x95\xd0\x9b,dc=x")); /* отдел */
	CHECK(!ldn_is_under("cn=a,ou=\xc3\xa4rzte,dc=x", "ou=Arzte,dc=x"));
	CHECK(!ldn_is_under("cn=a,ou=B\xc3\xa4rzte,dc=x", "ou=\xc3\x84rzte,dc=x"));
	CHECK(!ldn_is_under("cn=a,xou=\xc3\xa4rzte,dc=x", "ou=\xc3\x84rzte,dc=x"));
	CHECK(ldn_is_under("ou=\xc3\xa4rzte,dc=x", "OU=\xc3\x84RZTE,dc=x"));
	/* bytes that are not UTF-8 compare as themselves */
	CHECK(ldn_is_under("cn=a,ou=\xff\xc3,dc=x", "ou=\xff\xc3,dc=x"));
	CHECK(!ldn_is_under("cn=a,ou=\xfe,dc=x", "ou=\xff,dc=x"));
	CHECK(!ldn_is_under("cn=a,ou=\xc3\xa4,dc=x", "ou=\xa4,dc=x"));
	/* an overlong form is not the character it would spell; a surrogate matches only itself */
	CHECK(!ldn_is_under("cn=a,ou=\xc0\xa1,dc=x", "ou=!,dc=x"));
	CHECK(ldn_is_under("cn=a,ou=\xed\xa0\x80,dc=x", "ou=\xed\xa0\x80,dc=x"));
	CHECK(!ldn_is_under("cn=a,ou=\xed\xa0\x81,dc=x", "ou=\xed\xa0\x80,dc=x"));
}

static void test_uuid(void)
{
	uint8_t a[LDAP_IMPORT_ANCHOR_SIZE];
	static const uint8_t want[LDAP_IMPORT_ANCHOR_SIZE] = {0x9b, 0x36, 0x47, 0x8c, 0x7b, 0xac,
	                                                      0x10, 0x41, 0x97, 0xe7, 0x51, 0x67,
	                                                      0x90, 0x08, 0x76, 0x3b};
	const char *s = "9b36478c-7bac-1041-97e7-51679008763b";
	char hex[33];

	CHECK_INT_EQ(lanchor_from_uuid_text(s, strlen(s), a), 0);
	CHECK(memcmp(a, want, sizeof(want)) == 0);
	lanchor_hex(a, sizeof(a), hex, sizeof(hex));
	CHECK_STR_EQ(hex, "9b36478c7bac104197e751679008763b");
	CHECK_INT_EQ(lanchor_from_uuid_text("9B36478C-7BAC-1041-97E7-51679008763B", 36, a), 0);
	CHECK(memcmp(a, want, sizeof(want)) == 0);
	CHECK_INT_EQ(lanchor_from_uuid_text("9b36478c7bac104197e751679008763b", 32, a), -EINVAL);
	CHECK_INT_EQ(lanchor_from_uuid_text("9b36478c-7bac-1041-97e7-51679008763x", 36, a),
	             -EINVAL);
	CHECK_INT_EQ(lanchor_from_uuid_text("9b36478c+7bac-1041-97e7-51679008763b", 36, a),
	             -EINVAL);
}

int main(void)
{
	test_normalize();
	test_normal_form();
	test_under();
	test_scope_setup();
	test_uuid();
	return check_finish();
}
