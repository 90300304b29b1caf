/* Shared by the expression tests: a sample directory object served through the expr_env
 * callbacks, a canonical rendering of results ("s:...", "n:...", "error:user:...") so that
 * cases are one line of a table, and the table runner. */
#pragma once

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hybridsync/expr.h"

/* One attribute of a test object. type: s string, n number, t boolean, r reference (DN),
 * x binary (hex), m multi-valued strings, M multi-valued references, N multi-valued numbers,
 * d datetime (FILETIME in decimal). */
struct tattr {
	const char *name;
	char type;
	const char *values[8];
};

/* The default object: a user with most kinds of attributes. */
static const struct tattr default_object[] = {
    {"cn", 's', {"John Doe"}},
    {"displayName", 's', {"John Doe"}},
    {"givenName", 's', {"John"}},
    {"sn", 's', {"Doe"}},
    {"sAMAccountName", 's', {"jdoe"}},
    {"userPrincipalName", 's', {"jdoe@contoso.com"}},
    {"mail", 's', {"John.Doe@contoso.com"}},
    {"userAccountControl", 's', {"512"}}, /* LDAP gives text */
    {"uacNumber", 'n', {"514"}},
    {"employeeID", 's', {"00042"}},
    {"department", 's', {"HRD Payroll"}},
    {"padded", 's', {"  Test  "}},
    {"emptyString", 's', {""}},
    {"notANumber", 's', {"abc"}},
    {"flagTrue", 's', {"TRUE"}},
    {"isEnabled", 't', {"1"}},
    {"proxyAddresses",
     'm',
     {"SMTP:john.doe@contoso.com", "smtp:jd@contoso.com", "SIP:jd@contoso.com"}},
    {"otherPhone", 'm', {"555-1234", "555-9876"}},
    {"spaced", 'm', {"  a ", " b"}},
    {"dupes", 'm', {"a", "b", "a", "c", "b"}},
    {"csv", 's', {"a,b,,c"}},
    {"nums", 'N', {"1", "2", "3"}},
    {"single", 'm', {"only"}},
    {"objectGUID", 'x', {"e004253f894fd3119a0c0305e82c3301"}},
    {"objectSid", 'x', {"010500000000000515000000dcf4dc3b833d2b46828ba62800020000"}},
    {"shortBin", 'x', {"0102"}},
    {"dn", 'r', {"CN=John Doe,OU=Atlanta,OU=GA,OU=US, DC=contoso,DC=com"}},
    {"manager", 'r', {"CN=Jane Boss,OU=Users,DC=contoso,DC=com"}},
    {"conflictDn",
     'r',
     {"CN=John\\0ACNF:5e2b0ba4-0a2b-4e1c-9d1f-1b8c2f3a4d5e,OU=US,DC=contoso,DC=com"}},
    {"memberOf",
     'M',
     {"CN=Sales,OU=Groups,DC=contoso,DC=com", "CN=All,OU=Groups,DC=contoso,DC=com"}},
    {"lastLogonTimestamp", 'n', {"129699324000000000"}},
    {"whenCreated", 's', {"20140905081453.0Z"}},
    {"created", 'd', {"129699324000000000"}},
    {NULL, 0, {NULL}},
};

struct tobject {
	const struct tattr *attrs;
	const struct tattr *imported;
};

static uint8_t *hex_bytes(const char *hex, size_t *ret_len)
{
	size_t n = strlen(hex) / 2;
	uint8_t *b = malloc(n ? n : 1);

	for (size_t i = 0; b && i < n; i++) {
		unsigned x;
		sscanf(hex + 2 * i, "%2x", &x);
		b[i] = (uint8_t)x;
	}
	*ret_len = n;
	return b;
}

static struct expr_value *tattr_scalar(char type, const char *s)
{
	struct expr_value *v;
	uint8_t *b;
	size_t n;

	switch (type) {
	case 's':
	case 'm':
		return expr_value_new_string(s);
	case 'n':
	case 'N':
		return expr_value_new_number(strtoll(s, NULL, 10));
	case 't':
		return expr_value_new_boolean(s[0] == '1');
	case 'r':
	case 'M':
		return expr_value_new_reference(s);
	case 'd':
		return expr_value_new_datetime(strtoll(s, NULL, 10));
	case 'x':
		b = hex_bytes(s, &n);
		v = expr_value_new_binary(b, n);
		free(b);
		return v;
	default:
		return NULL;
	}
}

static int tattr_lookup(const struct tattr *attrs, const char *name, struct expr_value **ret)
{
	for (const struct tattr *a = attrs; a && a->name; a++) {
		struct expr_value *v;
		if (strcmp(a->name, name) != 0)
			continue;
		if (a->type == 'm' || a->type == 'M' || a->type == 'N') {
			v = expr_value_new_multi();
			for (size_t i = 0; v && i < 8 && a->values[i]; i++)
				expr_value_append(v, tattr_scalar(a->type, a->values[i]));
		} else {
			v = tattr_scalar(a->type, a->values[0]);
		}
		if (!v)
			return -ENOMEM;
		*ret = v;
		return 0;
	}
	return -ENOENT;
}

static int tobject_get_attr(void *userdata, const char *name, struct expr_value **ret)
{
	const struct tobject *o = userdata;

	if (strcmp(name, "failing") == 0)
		return -EIO;
	if (strcmp(name, "badValue") == 0) {
		/* a callback that breaks the rules: a multi-valued value inside a multi-valued one
		 */
		struct expr_value *outer = expr_value_new_multi(), *inner = expr_value_new_multi();
		expr_value_append(inner, expr_value_new_string("x"));
		outer->multi.items = calloc(1, sizeof(*outer->multi.items));
		outer->multi.items[0] = inner;
		outer->multi.count = 1;
		*ret = outer;
		return 0;
	}
	return tattr_lookup(o->attrs, name, ret);
}

static int tobject_get_imported(void *userdata, const char *name, struct expr_value **ret)
{
	const struct tobject *o = userdata;

	return tattr_lookup(o->imported, name, ret);
}

static const struct tattr test_params[] = {
    {"Domain.FQDN", 's', {"contoso.com"}},
    {"Domain.Netbios", 's', {"CONTOSO"}},
    {"Domain.LDAP", 's', {"DC=contoso,DC=com"}},
    {"Forest.FQDN", 's', {"contoso.com"}},
    {"Forest.Netbios", 's', {"CONTOSO"}},
    {"Forest.LDAP", 's', {"DC=contoso,DC=com"}},
    {"Connector.ID", 's', {"5e2b0ba4-0a2b-4e1c-9d1f-1b8c2f3a4d5e"}},
    {"ADS_UF_ACCOUNTDISABLE", 'n', {"2"}},
    {"ReplaceString",
     's',
     {"\xe2\x80\x99:,\xc3\x85:A,\xc3\x84:A,\xc3\x96:O,\xc3\xa5:a,\xc3\xa4:a,\xc3\xb6:o"}},
    {NULL, 0, {NULL}},
};

static int test_get_param(void *userdata, const char *name, struct expr_value **ret)
{
	(void)userdata;
	return tattr_lookup(test_params, name, ret);
}

static const struct tattr default_imported[] = {
    {"proxyAddresses", 'm', {"SMTP:john.doe@contoso.com"}},
    {NULL, 0, {NULL}},
};

static const struct tobject default_tobject = {default_object, default_imported};

/* 2024-05-17 12:34:56 UTC */
#define TEST_NOW 133604228960000000LL

static struct expr_env test_env(const struct tobject *o)
{
	struct expr_env env = {
	    .get_attr = tobject_get_attr,
	    .get_param = test_get_param,
	    .get_imported = tobject_get_imported,
	    .userdata = (void *)o,
	    .flags = EXPR_ENV_DETERMINISTIC,
	    .now = TEST_NOW,
	    .seed = 42,
	};
	return env;
}

/* ---- rendering ------------------------------------------------------------------------------ */

static void render_scalar(const struct expr_value *v, char *buf, size_t size)
{
	char *s = NULL;

	switch (v->type) {
	case EXPR_VALUE_STRING:
		snprintf(buf, size, "s:%s", v->string.data);
		break;
	case EXPR_VALUE_REFERENCE:
		snprintf(buf, size, "r:%s", v->string.data);
		break;
	case EXPR_VALUE_NUMBER:
		snprintf(buf, size, "n:%" PRId64, v->number);
		break;
	case EXPR_VALUE_BOOLEAN:
		snprintf(buf, size, "b:%s", v->boolean ? "True" : "False");
		break;
	case EXPR_VALUE_BINARY:
	case EXPR_VALUE_DATETIME:
		expr_value_to_string(v, &s);
		snprintf(buf, size, "%s:%s", v->type == EXPR_VALUE_BINARY ? "x" : "d", s ? s : "?");
		free(s);
		break;
	case EXPR_VALUE_NULL:
		snprintf(buf, size, "null");
		break;
	default:
		snprintf(buf, size, "%s", expr_value_type_to_string(v->type));
		break;
	}
}

/* "mv[s:a|s:b]" for multi-valued values. */
static void render(const struct expr_value *v, char *buf, size_t size)
{
	size_t n;

	if (v->type != EXPR_VALUE_MULTI) {
		render_scalar(v, buf, size);
		return;
	}
	n = (size_t)snprintf(buf, size, "mv[");
	for (size_t i = 0; i < v->multi.count && n < size; i++) {
		if (i)
			n += (size_t)snprintf(buf + n, size - n, "|");
		if (n < size)
			render_scalar(v->multi.items[i], buf + n, size - n);
		n = strlen(buf);
	}
	if (n < size)
		snprintf(buf + n, size - n, "]");
}

/* Parses and evaluates `text` against `o`; the result or the error, rendered. Errors render as
 * "parse:<message>" or "error:<kind>:<message>". */
static const char *eval_render(const char *text, const struct tobject *o, char *buf, size_t size)
{
	struct expr_env env = test_env(o);
	struct expr_error err = {0};
	struct expr_value *v = NULL;
	struct expr *e = NULL;
	int r;

	r = expr_parse(text, &e, &err);
	if (r < 0) {
		snprintf(buf, size, "parse:%s", err.message);
		return buf;
	}
	r = expr_eval(e, &env, &v, &err);
	if (r < 0)
		snprintf(buf, size, "error:%s:%s", expr_error_kind_to_string(err.kind),
		         err.message);
	else
		render(v, buf, size);
	expr_value_free(v);
	expr_free(e);
	return buf;
}

struct tcase {
	const char *expr;
	const char *want;
};

#define CHECK_CASE(text, want_str, object)                                                         \
	do {                                                                                       \
		char _buf[2048];                                                                   \
		const char *_got = eval_render((text), (object), _buf, sizeof(_buf));              \
		if (strcmp(_got, (want_str)) == 0) {                                               \
			check_passed++;                                                            \
		} else {                                                                           \
			check_failed++;                                                            \
			fprintf(stderr, "%s:%d: %s\n    want %s\n    got  %s\n", __FILE__,         \
			        __LINE__, (text), (want_str), _got);                               \
		}                                                                                  \
	} while (0)

static void run_cases(const char *group, const struct tcase *cases, size_t n,
                      const struct tobject *o)
{
	int failed_before = check_failed;

	for (size_t i = 0; i < n; i++)
		CHECK_CASE(cases[i].expr, cases[i].want, o);
	if (check_failed != failed_before)
		fprintf(stderr, "  (in group %s)\n", group);
}

#define RUN_CASES(cases, object) run_cases(#cases, cases, sizeof(cases) / sizeof(cases[0]), object)
