/* libFuzzer target for the expression language: parse the input, and when it parses, evaluate
 * it against a fixed object (strings, numbers, a binary GUID, DNs, multi-valued attributes) in
 * deterministic mode. Any crash, leak, sanitizer report or hang is a bug.
 *
 * Not part of the default build. To build and run it (clang with libFuzzer):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -std=gnu17 \
 *         -Iinclude tests/fuzz/fuzz_expr.c src/lib/expr*.c -o fuzz_expr
 *   mkdir -p /tmp/expr-corpus
 *   ./fuzz_expr -max_len=4096 -timeout=10 -rss_limit_mb=2048 /tmp/expr-corpus
 *
 * Seeding the corpus with the expressions of tests/unit/test_expr*.c (one per file) and giving
 * -dict= a file of function names ("IIF", "Select", ...) gets it deep quickly.
 *
 * The input is the expression text, truncated at its first NUL byte. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hybridsync/expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t guid[16] = {0xe0, 0x04, 0x25, 0x3f, 0x89, 0x4f, 0xd3, 0x11,
                                 0x9a, 0x0c, 0x03, 0x05, 0xe8, 0x2c, 0x33, 0x01};
static const uint8_t sid[28] = {1,    5,    0,    0,    0,    0,    0,    5,    21,   0,
                                0,    0,    0xdc, 0xf4, 0xdc, 0x3b, 0x83, 0x3d, 0x2b, 0x46,
                                0x82, 0x8b, 0xa6, 0x28, 0x00, 0x02, 0x00, 0x00};

static struct expr_value *multi(const char *const *values, bool refs)
{
	struct expr_value *m = expr_value_new_multi();

	for (size_t i = 0; m && values[i]; i++)
		expr_value_append(m, refs ? expr_value_new_reference(values[i])
		                          : expr_value_new_string(values[i]));
	return m;
}

static int get_attr(void *userdata, const char *name, struct expr_value **ret)
{
	static const char *const proxies[] = {"SMTP:a@contoso.com", "smtp:b@contoso.com",
	                                      " SIP:c@contoso.com ", NULL};
	static const char *const groups[] = {"CN=G1,OU=Groups,DC=contoso,DC=com",
	                                     "CN=G\\2C2,DC=contoso,DC=com", NULL};
	static const char *const numbers[] = {"1", "-2", "&H10", NULL};
	struct expr_value *v = NULL;

	(void)userdata;
	if (!strcmp(name, "cn"))
		v = expr_value_new_string("John Doe");
	else if (!strcmp(name, "sAMAccountName"))
		v = expr_value_new_string("jdoe");
	else if (!strcmp(name, "userAccountControl"))
		v = expr_value_new_string("514");
	else if (!strcmp(name, "n"))
		v = expr_value_new_number(-9223372036854775807LL - 1);
	else if (!strcmp(name, "empty"))
		v = expr_value_new_string("");
	else if (!strcmp(name, "objectGUID"))
		v = expr_value_new_binary(guid, sizeof(guid));
	else if (!strcmp(name, "objectSid"))
		v = expr_value_new_binary(sid, sizeof(sid));
	else if (!strcmp(name, "dn"))
		v = expr_value_new_reference("CN=John\\0ACNF:x,OU=A,OU=B, DC=contoso,DC=com");
	else if (!strcmp(name, "when"))
		v = expr_value_new_datetime(129699324000000000LL);
	else if (!strcmp(name, "flag"))
		v = expr_value_new_boolean(true);
	else if (!strcmp(name, "proxyAddresses"))
		v = multi(proxies, false);
	else if (!strcmp(name, "memberOf"))
		v = multi(groups, true);
	else if (!strcmp(name, "nums"))
		v = multi(numbers, false);
	else if (!strcmp(name, "failing"))
		return -EIO;
	else
		return -ENOENT;
	if (!v)
		return -ENOMEM;
	*ret = v;
	return 0;
}

static int get_param(void *userdata, const char *name, struct expr_value **ret)
{
	(void)userdata;
	if (strcmp(name, "Domain.FQDN") != 0)
		return -ENOENT;
	*ret = expr_value_new_string("contoso.com");
	return *ret ? 0 : -ENOMEM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct expr_env env = {
	    .get_attr = get_attr,
	    .get_param = get_param,
	    .get_imported = get_attr,
	    .flags = EXPR_ENV_DETERMINISTIC,
	    .now = 133604228960000000LL,
	    .seed = 1,
	};
	struct expr_error err;
	struct expr_value *v = NULL;
	struct expr *e = NULL;
	char *text, *s = NULL;

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (expr_parse(text, &e, &err) == 0) {
		if (expr_eval(e, &env, &v, &err) == 0) {
			/* exercise the value API on whatever came out */
			struct expr_value *c = NULL;
			if (expr_value_copy(v, &c) == 0) {
				if (!expr_value_equal(v, c))
					abort();
				expr_value_free(c);
			}
			if (expr_value_to_string(v, &s) == 0)
				free(s);
			expr_value_free(v);
		} else if (err.kind != EXPR_ERROR_USER && err.message[0] == '\0') {
			abort(); /* every failure explains itself */
		}
		expr_free(e);
	} else if (err.message[0] == '\0') {
		abort();
	}
	free(text);
	return 0;
}
