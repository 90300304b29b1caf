/* Config values: one parser per type of the key table (booleans, durations, DNs, URIs, ...),
 * each normalizing what it accepts so equal settings compare and hash equal. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_internal.h"

#define DN_MAX       2048
#define URI_MAX      2048
#define PATH_MAX_LEN 4095

static int fail(char *err, size_t errsize, const char *msg)
{
	snprintf(err, errsize, "%s", msg);
	return -EINVAL;
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

void conf_quote(const char *s, char *buf, size_t size)
{
	size_t n = 0, len = strlen(s);

	if (size < 4) {
		if (size)
			buf[0] = '\0';
		return;
	}
	for (; *s && n < size - 1; s++)
		buf[n++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
	buf[n] = '\0';
	if (len > n && size > 4)
		memcpy(buf + size - 4, "...", 4);
}

/* --- lists ------------------------------------------------------------------------------- */

int conf_strv_add(struct conf_strv *l, char *s)
{
	char **v = reallocarray(l->v, l->n + 1, sizeof(*v));

	if (!v) {
		free(s);
		return -ENOMEM;
	}
	l->v = v;
	l->v[l->n++] = s;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void conf_strv_sort(struct conf_strv *l)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), cmp_str);
}

/* --- numbers, booleans, durations -------------------------------------------------------- */

/* Decimal digits only (no sign, no spaces), at most UINT_MAX. */
static int parse_uint(const char *s, const char **end, unsigned *ret)
{
	uint64_t v = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT_MAX)
			return -ERANGE;
	}
	if (end)
		*end = p;
	else if (*p)
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

int conf_parse_boolean(const char *s, bool *ret)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

int conf_parse_duration(const char *s, unsigned *ret_seconds)
{
	static const struct {
		const char *unit;
		unsigned seconds;
	} units[] = {
	    {"s", 1}, {"sec", 1}, {"m", 60}, {"min", 60}, {"h", 3600}, {"d", 86400},
	};
	uint64_t total = 0;
	bool any = false;

	while (*s) {
		const char *u;
		unsigned n, mult = 0;
		size_t ulen;
		int r;

		while (*s == ' ')
			s++;
		if (!*s)
			break;
		r = parse_uint(s, &u, &n);
		if (r < 0)
			return r;
		while (*u == ' ')
			u++;
		for (ulen = 0; islower((unsigned char)u[ulen]); ulen++)
			;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strlen(units[i].unit) == ulen && strncmp(u, units[i].unit, ulen) == 0)
				mult = units[i].seconds;
		if (!mult)
			return -EINVAL;
		total += (uint64_t)n * mult;
		if (total > UINT_MAX)
			return -ERANGE;
		s = u + ulen;
		any = true;
	}
	if (!any)
		return -EINVAL;
	*ret_seconds = (unsigned)total;
	return 0;
}

void conf_format_duration(unsigned seconds, char *buf, size_t size)
{
	if (seconds && seconds % 86400 == 0)
		snprintf(buf, size, "%ud", seconds / 86400);
	else if (seconds && seconds % 3600 == 0)
		snprintf(buf, size, "%uh", seconds / 3600);
	else if (seconds && seconds % 60 == 0)
		snprintf(buf, size, "%umin", seconds / 60);
	else
		snprintf(buf, size, "%us", seconds);
}

static int parse_duration_bounded(const char *s, unsigned min, unsigned max, unsigned *ret,
                                  char *err, size_t errsize)
{
	char a[32], b[32];
	unsigned v;

	conf_format_duration(min, a, sizeof(a));
	conf_format_duration(max, b, sizeof(b));
	if (conf_parse_duration(s, &v) < 0 || v < min || v > max) {
		snprintf(err, errsize,
		         "expected a duration such as 30s, 10min, 1h or 2h30min, from %s to %s", a,
		         b);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

static int parse_threshold(const char *s, struct conf_threshold *ret, char *err, size_t errsize)
{
	const char *end;
	unsigned v;

	if (parse_uint(s, &end, &v) == 0) {
		if (*end == '\0' && v <= CONF_THRESHOLD_COUNT_MAX) {
			*ret = (struct conf_threshold){CONF_THRESHOLD_COUNT, v};
			return 0;
		}
		if (strcmp(end, "%") == 0 && v <= 100) {
			*ret = (struct conf_threshold){CONF_THRESHOLD_PERCENT, v};
			return 0;
		}
	}
	snprintf(err, errsize,
	         "expected a count from 0 to %u such as 500, or a percentage from 0%% to 100%% "
	         "such as 5%%",
	         CONF_THRESHOLD_COUNT_MAX);
	return -EINVAL;
}

static int parse_write_budget(const char *s, struct conf_write_budget *ret, char *err,
                              size_t errsize)
{
	const char *end;
	unsigned writes, secs;

	if (parse_uint(s, &end, &writes) == 0 && *end == '/' && writes >= 1 &&
	    writes <= CONF_WRITE_BUDGET_MAX && conf_parse_duration(end + 1, &secs) == 0 &&
	    secs >= 1 && secs <= CONF_WRITE_WINDOW_MAX) {
		*ret = (struct conf_write_budget){writes, secs};
		return 0;
	}
	snprintf(err, errsize,
	         "expected WRITES/DURATION such as 3000/150s, with 1 to %u writes in 1s to 1d",
	         CONF_WRITE_BUDGET_MAX);
	return -EINVAL;
}

/* --- names ------------------------------------------------------------------------------- */

static int parse_guid(const char *s, char **ret, char *err, size_t errsize)
{
	char g[37];

	if (strlen(s) != 36)
		goto bad;
	for (size_t i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			goto bad;
		g[i] = (char)tolower((unsigned char)s[i]);
	}
	g[36] = '\0';
	*ret = strdup(g);
	return *ret ? 0 : -ENOMEM;
bad:
	return fail(err, errsize, "expected a GUID such as 00000000-0000-0000-0000-000000000000");
}

static int parse_host_name(const char *s, char **ret, char *err, size_t errsize)
{
	size_t len = strlen(s);

	if (len == 0 || len > 253 || s[0] == '-' || s[0] == '.')
		goto bad;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
			goto bad;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
bad:
	return fail(err, errsize,
	            "expected a server name of 1 to 253 letters, digits, '.', '-' or '_'");
}

static int parse_domain(const char *s, char **ret, char *err, size_t errsize)
{
	size_t len = strlen(s), label = 0;
	char *d;

	if (len == 0 || len > 253)
		goto bad;
	for (size_t i = 0; i <= len; i++) {
		if (s[i] == '.' || s[i] == '\0') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				goto bad;
			label = 0;
		} else if (isalnum((unsigned char)s[i]) || (s[i] == '-' && label > 0)) {
			label++;
		} else {
			goto bad;
		}
	}
	d = strdup(s);
	if (!d)
		return -ENOMEM;
	for (char *p = d; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	*ret = d;
	return 0;
bad:
	return fail(err, errsize, "expected a DNS domain name such as corp.example.com");
}

static int parse_extension(const char *s, char **ret, char *err, size_t errsize)
{
	const size_t pre = strlen("extension_");
	size_t len = strlen(s);
	char *e;

	if (len <= pre + 33 || len > 120 || strncmp(s, "extension_", pre) != 0 ||
	    s[pre + 32] != '_')
		goto bad;
	for (size_t i = pre; i < pre + 32; i++)
		if (!isxdigit((unsigned char)s[i]))
			goto bad;
	for (size_t i = pre + 33; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			goto bad;
	e = strdup(s);
	if (!e)
		return -ENOMEM;
	for (size_t i = pre; i < pre + 32; i++)
		e[i] = (char)tolower((unsigned char)e[i]);
	*ret = e;
	return 0;
bad:
	return fail(err, errsize,
	            "expected extension_<application id without dashes>_<name>, such as "
	            "extension_0123456789abcdef0123456789abcdef_hybridsyncAnchor");
}

static int parse_path(const char *s, char **ret, char *err, size_t errsize)
{
	size_t len = strlen(s);
	char *p;

	if (s[0] != '/' || len > PATH_MAX_LEN || has_control(s))
		return fail(err, errsize, "expected an absolute path");
	while (len > 1 && s[len - 1] == '/')
		len--;
	p = strndup(s, len);
	if (!p)
		return -ENOMEM;
	*ret = p;
	return 0;
}

/* An absolute path, or a systemd credential name (a plain file name). */
static int parse_secret(const char *s, bool check_mode, struct conf_secret_ref *ret, char *err,
                        size_t errsize)
{
	char *v = NULL;
	int r;

	if (s[0] == '/') {
		r = parse_path(s, &v, err, errsize);
		if (r < 0)
			return r;
		ret->credential = false;
	} else {
		/* not repeated in the message: it may be a password written in the wrong place */
		if (!*s || strchr(s, '/') || strlen(s) > NAME_MAX || strcmp(s, ".") == 0 ||
		    strcmp(s, "..") == 0 || has_control(s)) {
			fail(err, errsize,
			     "expected an absolute path or a systemd credential name");
			return -EPERM;
		}
		v = strdup(s);
		if (!v)
			return -ENOMEM;
		ret->credential = true;
	}
	ret->value = v;
	ret->check_mode = check_mode;
	return 0;
}

/* --- DNs --------------------------------------------------------------------------------- */

static bool dn_special(char c)
{
	return strchr(" \"#+,;<=>\\", c) != NULL;
}

struct dn {
	const char *s;
	size_t pos;
	char out[DN_MAX + 1];
	size_t n;
	char *err;
	size_t errsize;
};

static int dn_put(struct dn *d, char c)
{
	if (d->n >= DN_MAX)
		return fail(d->err, d->errsize, "DN too long");
	d->out[d->n++] = c;
	return 0;
}

static int dn_bad(struct dn *d, const char *what, size_t pos)
{
	snprintf(d->err, d->errsize, "%s at position %zu of the DN", what, pos + 1);
	return -EINVAL;
}

static void dn_skip_blanks(struct dn *d)
{
	while (d->s[d->pos] == ' ')
		d->pos++;
}

/* A keyword (cn, OU, msDS-x) or a numeric OID, then '='. */
static int dn_type(struct dn *d)
{
	const char *s = d->s;
	int r = 0;

	dn_skip_blanks(d);
	if (isalpha((unsigned char)s[d->pos])) {
		while (r >= 0 && (isalnum((unsigned char)s[d->pos]) || s[d->pos] == '-'))
			r = dn_put(d, s[d->pos++]);
	} else if (isdigit((unsigned char)s[d->pos])) {
		while (r >= 0 && (isdigit((unsigned char)s[d->pos]) ||
		                  (s[d->pos] == '.' && isdigit((unsigned char)s[d->pos + 1]))))
			r = dn_put(d, s[d->pos++]);
	} else {
		return dn_bad(d, "attribute type expected", d->pos);
	}
	if (r < 0)
		return r;
	dn_skip_blanks(d);
	if (s[d->pos] != '=')
		return dn_bad(d, "'=' expected", d->pos);
	d->pos++;
	dn_skip_blanks(d);
	return dn_put(d, '=');
}

/* "#" and hex pairs (a BER value). */
static int dn_hex_value(struct dn *d)
{
	const char *s = d->s;
	int r = dn_put(d, s[d->pos++]);

	if (r >= 0 && !isxdigit((unsigned char)s[d->pos]))
		return dn_bad(d, "hex digits expected after '#'", d->pos);
	while (r >= 0 && isxdigit((unsigned char)s[d->pos]) &&
	       isxdigit((unsigned char)s[d->pos + 1])) {
		r = dn_put(d, s[d->pos++]);
		if (r >= 0)
			r = dn_put(d, s[d->pos++]);
	}
	return r;
}

/* Up to an unescaped ',' or '+'; unescaped trailing blanks are not part of the value. */
static int dn_string_value(struct dn *d)
{
	const char *s = d->s;
	size_t last = d->n;
	int r = 0;

	while (r >= 0 && s[d->pos] && s[d->pos] != ',' && s[d->pos] != '+') {
		char c = s[d->pos];

		if (c == '\\') {
			size_t len;

			if (isxdigit((unsigned char)s[d->pos + 1]) &&
			    isxdigit((unsigned char)s[d->pos + 2]))
				len = 3;
			else if (s[d->pos + 1] && dn_special(s[d->pos + 1]))
				len = 2;
			else
				return dn_bad(d, "invalid escape", d->pos);
			for (size_t i = 0; i < len && r >= 0; i++)
				r = dn_put(d, s[d->pos++]);
			last = d->n;
			continue;
		}
		if (c == '"' || c == ';' || c == '<' || c == '>') {
			char what[32];

			snprintf(what, sizeof(what), "unescaped '%c'", c);
			return dn_bad(d, what, d->pos);
		}
		if ((unsigned char)c < 0x20 || c == 0x7f)
			return dn_bad(d, "control character", d->pos);
		r = dn_put(d, c);
		d->pos++;
		if (c != ' ')
			last = d->n;
	}
	d->n = last;
	return r;
}

/* RFC 4514 string syntax: RDNs separated by ',', AVAs by '+', "type=value" with types as
 * keywords or OIDs, values escaped with '\' (a special or two hex digits) or '#' and hex.
 * Blanks around separators are dropped; everything else is kept as written. */
int conf_dn_normalize(const char *s, char **ret, char *err, size_t errsize)
{
	struct dn d = {.s = s, .err = err, .errsize = errsize};
	int r;

	if (!*s)
		return fail(err, errsize,
		            "expected a DN such as OU=Staff,DC=corp,DC=example,DC=com");
	for (;;) {
		size_t value_start;

		r = dn_type(&d);
		if (r < 0)
			return r;
		value_start = d.n;
		r = s[d.pos] == '#' ? dn_hex_value(&d) : dn_string_value(&d);
		if (r < 0)
			return r;
		dn_skip_blanks(&d);
		if (s[d.pos] && s[d.pos] != ',' && s[d.pos] != '+') {
			char what[32];

			snprintf(what, sizeof(what), "unexpected '%c'", s[d.pos]);
			return dn_bad(&d, what, d.pos);
		}
		if (d.n == value_start)
			return dn_bad(&d, "empty attribute value before", d.pos);
		if (!s[d.pos])
			break;
		r = dn_put(&d, s[d.pos++]);
		if (r < 0)
			return r;
		dn_skip_blanks(&d);
		if (!s[d.pos])
			return fail(err, errsize, "DN ends with a separator");
	}
	d.out[d.n] = '\0';
	*ret = strdup(d.out);
	return *ret ? 0 : -ENOMEM;
}

bool conf_dn_is_within(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), bs = 0;

	if (la < lb || strcasecmp(a + la - lb, b) != 0)
		return false;
	if (la == lb)
		return true;
	if (a[la - lb - 1] != ',')
		return false;
	/* the ',' must be a separator, not an escaped comma */
	for (size_t i = la - lb - 1; i > 0 && a[i - 1] == '\\'; i--)
		bs++;
	return bs % 2 == 0;
}

/* --- URIs -------------------------------------------------------------------------------- */

static bool host_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

/* scheme://host[:port][path]; ldap: no path (a DN belongs in base_dn); https: a path prefix
 * for test endpoints. ldapi: a percent-encoded socket path. Normalized: scheme and host in
 * lower case, no trailing '/'. */
static int parse_uri(const char *s, bool ldap, char **ret, char *err, size_t errsize)
{
	const char *sep = strstr(s, "://"), *p, *host, *host_end;
	char scheme[8], out[URI_MAX + 1];
	size_t slen, n;
	const char *expected = ldap
	                           ? "expected an ldaps://, ldap:// or ldapi:// URI such as "
	                             "ldaps://dc1.corp.example.com"
	                           : "expected an https:// URI such as https://graph.microsoft.com";

	if (!sep || strlen(s) > URI_MAX || has_control(s) || strchr(s, ' '))
		return fail(err, errsize, expected);
	slen = (size_t)(sep - s);
	if (slen == 0 || slen >= sizeof(scheme))
		return fail(err, errsize, expected);
	for (size_t i = 0; i < slen; i++)
		scheme[i] = (char)tolower((unsigned char)s[i]);
	scheme[slen] = '\0';
	if (ldap ? strcmp(scheme, "ldap") && strcmp(scheme, "ldaps") && strcmp(scheme, "ldapi")
	         : strcmp(scheme, "https") && strcmp(scheme, "http"))
		return fail(err, errsize, expected);
	p = sep + 3;

	if (strcmp(scheme, "ldapi") == 0) {
		host = p;
		while (*p && (isalnum((unsigned char)*p) || strchr("%._~-", *p)))
			p++;
		host_end = p;
		if (*p && strcmp(p, "/") != 0)
			return fail(err, errsize,
			            "expected ldapi:// with a percent-encoded socket path, such as "
			            "ldapi://%2Frun%2Fslapd%2Fldapi");
	} else {
		host = p;
		if (strcspn(p, "/?#") > strcspn(p, "@")) {
			fail(err, errsize, "a URI must not carry a user name or password");
			return -EPERM; /* the value is not repeated in the message */
		}
		if (*p == '[') {
			p++;
			while (isxdigit((unsigned char)*p) || *p == ':' || *p == '.')
				p++;
			if (*p != ']' || p == host + 1)
				return fail(err, errsize, "invalid IPv6 address in the URI");
			p++;
		} else {
			while (host_char(*p))
				p++;
			if (p == host)
				return fail(err, errsize, "the URI has no host name");
		}
		if (*p == ':') {
			unsigned port;
			const char *e;

			if (parse_uint(p + 1, &e, &port) < 0 || port < 1 || port > 65535)
				return fail(err, errsize, "invalid port in the URI (1 to 65535)");
			p = e;
		}
		host_end = p;
		if (ldap && *p && strcmp(p, "/") != 0)
			return fail(err, errsize,
			            "expected scheme://host[:port] without a DN, filter or options "
			            "(the DN goes into base_dn)");
		if (!ldap) {
			for (const char *q = p; *q; q++)
				if (!isalnum((unsigned char)*q) && !strchr("/._~%-", *q))
					return fail(
					    err, errsize,
					    "expected https://host[:port][/path] without a query "
					    "or fragment");
			if (*p && *p != '/')
				return fail(err, errsize, "invalid character after the host name");
		}
	}

	n = (size_t)snprintf(out, sizeof(out), "%s://", scheme);
	for (const char *q = host; q < host_end && n < URI_MAX; q++)
		out[n++] = strcmp(scheme, "ldapi") ? (char)tolower((unsigned char)*q) : *q;
	for (const char *q = host_end; *q && n < URI_MAX; q++)
		out[n++] = *q;
	while (n > slen + 3 && out[n - 1] == '/')
		n--;
	out[n] = '\0';
	*ret = strdup(out);
	return *ret ? 0 : -ENOMEM;
}

/* --- dispatch ---------------------------------------------------------------------------- */

int conf_value_parse(const struct conf_key *k, const char *value, void *field, char *err,
                     size_t errsize)
{
	char *s = NULL;
	int r;

	switch (k->type) {
	case CONF_TYPE_BOOL:
		if (conf_parse_boolean(value, field) < 0)
			return fail(err, errsize,
			            "expected yes or no (or true/false, on/off, 1/0)");
		return 0;
	case CONF_TYPE_DURATION:
		return parse_duration_bounded(value, k->min, k->max, field, err, errsize);
	case CONF_TYPE_UINT: {
		unsigned v;

		if (parse_uint(value, NULL, &v) < 0 || v < k->min || v > k->max) {
			snprintf(err, errsize, "expected a number from %u to %u", k->min, k->max);
			return -EINVAL;
		}
		*(unsigned *)field = v;
		return 0;
	}
	case CONF_TYPE_THRESHOLD:
		return parse_threshold(value, field, err, errsize);
	case CONF_TYPE_WRITE_BUDGET:
		return parse_write_budget(value, field, err, errsize);
	case CONF_TYPE_CHANGE_TRACKING:
		for (int i = 0; i < CONF_CHANGE_TRACKING_MAX; i++)
			if (strcasecmp(value, conf_change_tracking_to_string(i)) == 0) {
				*(enum conf_change_tracking *)field = i;
				return 0;
			}
		return fail(err, errsize, "expected auto, dirsync, usn, syncrepl or none");
	case CONF_TYPE_SECRET:
		return parse_secret(value, k->flags & CONF_KEY_SECRET_FILE, field, err, errsize);
	case CONF_TYPE_NAME:
		r = parse_host_name(value, &s, err, errsize);
		break;
	case CONF_TYPE_PATH:
		r = parse_path(value, &s, err, errsize);
		break;
	case CONF_TYPE_LDAP_URI:
		r = parse_uri(value, true, &s, err, errsize);
		break;
	case CONF_TYPE_HTTP_URI:
		r = parse_uri(value, false, &s, err, errsize);
		break;
	case CONF_TYPE_DN:
	case CONF_TYPE_DN_LIST:
		r = conf_dn_normalize(value, &s, err, errsize);
		break;
	case CONF_TYPE_DOMAIN_LIST:
		r = parse_domain(value, &s, err, errsize);
		break;
	case CONF_TYPE_GUID:
		r = parse_guid(value, &s, err, errsize);
		break;
	case CONF_TYPE_EXTENSION:
		r = parse_extension(value, &s, err, errsize);
		break;
	default:
		return fail(err, errsize, "internal error: unknown type");
	}
	if (r < 0)
		return r;
	if (k->flags & CONF_KEY_REPEAT)
		return conf_strv_add(field, s);
	free(*(char **)field);
	*(char **)field = s;
	return 0;
}

void conf_value_free(const struct conf_key *k, void *field)
{
	switch (k->type) {
	case CONF_TYPE_BOOL:
	case CONF_TYPE_DURATION:
	case CONF_TYPE_UINT:
	case CONF_TYPE_THRESHOLD:
	case CONF_TYPE_WRITE_BUDGET:
	case CONF_TYPE_CHANGE_TRACKING:
	case CONF_TYPE_MAX:
		break;
	case CONF_TYPE_SECRET: {
		struct conf_secret_ref *ref = field;

		free(ref->value);
		free(ref->path);
		*ref = (struct conf_secret_ref){0};
		break;
	}
	case CONF_TYPE_DN_LIST:
	case CONF_TYPE_DOMAIN_LIST: {
		struct conf_strv *l = field;

		for (size_t i = 0; i < l->n; i++)
			free(l->v[i]);
		free(l->v);
		*l = (struct conf_strv){0};
		break;
	}
	default:
		free(*(char **)field);
		*(char **)field = NULL;
		break;
	}
}
