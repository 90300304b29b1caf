/* Unit tests of the AD connector's pure helpers: DN normalization (one form whatever the
 * server's escaping), scope matching on RDN boundaries, entryUUID parsing. The imports
 * themselves are tested against real servers (tests/integration/040-042). */
#include <errno.h>
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
	test_under();
	test_uuid();
	return check_finish();
}
