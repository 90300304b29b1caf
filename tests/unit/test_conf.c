/* Unit tests for the conf module: value types, strictness, error collection with line numbers,
 * secrets, the config hash's coverage, the export (never a secret) and the import round trip. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "hybridsync/conf.h"

static char dir[256]; /* scratch directory with secrets and rules */

static void write_file(const char *path, const char *content, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		exit(1);
	}
	fputs(content, f);
	fclose(f);
	chmod(path, mode);
}

static const char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *pathf(const char *fmt, ...)
{
	static char bufs[64][4096];
	static int i;
	char *b = bufs[i++ % 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, sizeof(bufs[0]), fmt, ap);
	va_end(ap);
	return b;
}

/* A path kept across many pathf() calls. */
#define KEEP(name, ...)                                                                            \
	char name[1024];                                                                           \
	snprintf(name, sizeof(name), __VA_ARGS__)

/* A valid config; each part can be replaced through the arguments (NULL: the default part). */
static char *config(const char *sync, const char *ad, const char *graph)
{
	static char buf[8192];

	snprintf(buf, sizeof(buf),
	         "[sync]\n%s\n"
	         "[ad]\n%s\n"
	         "[graph]\n%s\n",
	         sync ? sync : "server_name = sync01",
	         ad ? ad
	            : pathf("uri = ldaps://dc1.corp.example.com\n"
	                    "bind_dn = CN=svc,OU=Service,DC=corp,DC=example,DC=com\n"
	                    "bind_password_file = %s/ad-password\n"
	                    "base_dn = DC=corp,DC=example,DC=com",
	                    dir),
	         graph ? graph
	               : pathf("tenant = 11111111-2222-3333-4444-555555555555\n"
	                       "client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n"
	                       "client_secret_file = %s/graph-secret",
	                       dir));
	return buf;
}

static const char *graph_with(const char *extra)
{
	return pathf("tenant = 11111111-2222-3333-4444-555555555555\n"
	             "client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n"
	             "client_secret_file = %s/graph-secret\n%s",
	             dir, extra);
}

static const char *ad_with(const char *extra)
{
	return pathf("uri = ldaps://dc1.corp.example.com\n"
	             "bind_dn = CN=svc,OU=Service,DC=corp,DC=example,DC=com\n"
	             "bind_password_file = %s/ad-password\n"
	             "base_dn = DC=corp,DC=example,DC=com\n%s",
	             dir, extra);
}

static const char *ad_pw(const char *password_file)
{
	return pathf("uri = ldaps://dc1.corp.example.com\n"
	             "bind_dn = CN=svc,OU=Service,DC=corp,DC=example,DC=com\n"
	             "bind_password_file = %s\n"
	             "base_dn = DC=corp,DC=example,DC=com",
	             password_file);
}

static struct conf *load_ok(const char *text)
{
	struct conf_errors *errors = NULL;
	struct conf *c = NULL;
	int r = conf_load_string("t.conf", text, &c, &errors);

	if (r < 0) {
		fprintf(stderr, "unexpected errors (%d) for:\n%s\n", r, text);
		for (size_t i = 0; errors && i < errors->n; i++)
			fprintf(stderr, "  %s\n", errors->v[i].text);
	}
	CHECK_INT_EQ(r, 0);
	CHECK(errors == NULL);
	conf_errors_free(errors);
	return c;
}

/* Expects the text to be refused with exactly one error, whose text contains `what`. */
static void load_bad1(int line, const char *text, const char *what)
{
	struct conf_errors *errors = NULL;
	struct conf *c = NULL;
	int r = conf_load_string("t.conf", text, &c, &errors);

	CHECK_INT_EQ(r, -EINVAL);
	CHECK(c == NULL);
	if (!errors || errors->n != 1 || !strstr(errors->v[0].text, what)) {
		fprintf(stderr, "test_conf.c:%d: expected one error with \"%s\", got:\n", line,
		        what);
		for (size_t i = 0; errors && i < errors->n; i++)
			fprintf(stderr, "  %s\n", errors->v[i].text);
		check_failed++;
	} else {
		check_passed++;
	}
	conf_errors_free(errors);
	conf_free(c);
}
#define LOAD_BAD(text, what) load_bad1(__LINE__, (text), (what))

static void hash_of(const char *text, char ret[CONF_HASH_HEX_SIZE])
{
	struct conf *c = load_ok(text);

	if (!c || conf_hash(c, ret) < 0)
		snprintf(ret, CONF_HASH_HEX_SIZE, "(none)");
	conf_free(c);
}

/* --- value types ------------------------------------------------------------------------- */

static void test_booleans(void)
{
	static const char *const yes[] = {"yes", "YES", "true", "on", "1"};
	static const char *const no[] = {"no", "False", "off", "0"};
	struct conf *c;

	for (size_t i = 0; i < 5; i++) {
		c = load_ok(config(pathf("server_name = s\nstaging = %s", yes[i]), NULL, NULL));
		CHECK(c && c->sync.staging);
		conf_free(c);
	}
	for (size_t i = 0; i < 4; i++) {
		c = load_ok(config(pathf("server_name = s\nstaging = %s", no[i]), NULL, NULL));
		CHECK(c && !c->sync.staging);
		conf_free(c);
	}
	c = load_ok(config(NULL, NULL, NULL));
	CHECK(c && c->sync.staging); /* default: a standby */
	CHECK(c && !c->sync.force_promotion);
	CHECK(c && c->graph.soft_match);
	conf_free(c);
	LOAD_BAD(config("staging = maybe", NULL, NULL),
	         "t.conf:2: invalid value 'maybe' for staging: expected yes or no");
	LOAD_BAD(config("staging =", NULL, NULL), "invalid value '' for staging");
}

static void test_durations(void)
{
	unsigned s = 0;
	struct conf *c;

	CHECK(conf_parse_duration("30s", &s) == 0 && s == 30);
	CHECK(conf_parse_duration("10min", &s) == 0 && s == 600);
	CHECK(conf_parse_duration("10m", &s) == 0 && s == 600);
	CHECK(conf_parse_duration("1h", &s) == 0 && s == 3600);
	CHECK(conf_parse_duration("2h30min", &s) == 0 && s == 9000);
	CHECK(conf_parse_duration("2h 30min", &s) == 0 && s == 9000);
	CHECK(conf_parse_duration("1d", &s) == 0 && s == 86400);
	CHECK(conf_parse_duration("90 sec", &s) == 0 && s == 90);
	CHECK(conf_parse_duration("30", &s) < 0);
	CHECK(conf_parse_duration("", &s) < 0);
	CHECK(conf_parse_duration("min", &s) < 0);
	CHECK(conf_parse_duration("5x", &s) < 0);
	CHECK(conf_parse_duration("-1s", &s) < 0);
	CHECK(conf_parse_duration("1.5h", &s) < 0);
	CHECK(conf_parse_duration("5MIN", &s) < 0);
	CHECK_INT_EQ(conf_parse_duration("99999999999s", &s), -ERANGE);
	CHECK_INT_EQ(conf_parse_duration("50000d", &s), -ERANGE);

	c = load_ok(config(NULL, NULL, NULL));
	CHECK(c && c->sync.interval == 1800);
	conf_free(c);
	c = load_ok(config("server_name = s\ninterval = 10s", NULL, NULL));
	CHECK(c && c->sync.interval == 10);
	conf_free(c);
	c = load_ok(config("server_name = s\ninterval = 7d", NULL, NULL));
	CHECK(c && c->sync.interval == 7 * 86400);
	conf_free(c);
	LOAD_BAD(config("interval = 9s", NULL, NULL), "from 10s to 7d");
	LOAD_BAD(config("interval = 8d", NULL, NULL), "from 10s to 7d");
	LOAD_BAD(config("interval = 30", NULL, NULL),
	         "invalid value '30' for interval: expected a duration such as 30s");
}

static void test_threshold_budget_numbers(void)
{
	struct conf *c;

	c = load_ok(config(NULL, NULL, NULL));
	CHECK(c && c->sync.deletion_threshold.kind == CONF_THRESHOLD_COUNT);
	CHECK(c && c->sync.deletion_threshold.value == 500);
	CHECK(c && c->graph.write_budget.writes == 3000 && c->graph.write_budget.seconds == 150);
	CHECK(c && c->ad.page_size == 1000 && c->sync.history_days == 7);
	CHECK(c && c->ad.change_tracking == CONF_CHANGE_TRACKING_AUTO);
	conf_free(c);

	c = load_ok(config("server_name = s\ndeletion_threshold = 5%", NULL, NULL));
	CHECK(c && c->sync.deletion_threshold.kind == CONF_THRESHOLD_PERCENT);
	CHECK(c && c->sync.deletion_threshold.value == 5);
	conf_free(c);
	c = load_ok(config("server_name = s\ndeletion_threshold = 0", NULL, NULL));
	CHECK(c && c->sync.deletion_threshold.value == 0);
	conf_free(c);
	c = load_ok(config("server_name = s\ndeletion_threshold = 100%", NULL, NULL));
	CHECK(c && c->sync.deletion_threshold.value == 100);
	conf_free(c);
	LOAD_BAD(config("deletion_threshold = 101%", NULL, NULL),
	         "expected a count from 0 to 10000000 such as 500, or a percentage");
	LOAD_BAD(config("deletion_threshold = -1", NULL, NULL), "for deletion_threshold");
	LOAD_BAD(config("deletion_threshold = 5 %", NULL, NULL), "for deletion_threshold");
	LOAD_BAD(config("deletion_threshold = 10000001", NULL, NULL), "for deletion_threshold");
	LOAD_BAD(config("deletion_threshold = lots", NULL, NULL), "for deletion_threshold");

	c = load_ok(config(NULL, NULL, graph_with("write_budget = 100/1min")));
	CHECK(c && c->graph.write_budget.writes == 100 && c->graph.write_budget.seconds == 60);
	conf_free(c);
	LOAD_BAD(config(NULL, NULL, graph_with("write_budget = 3000")),
	         "expected WRITES/DURATION such as 3000/150s");
	LOAD_BAD(config(NULL, NULL, graph_with("write_budget = 0/150s")), "write_budget");
	LOAD_BAD(config(NULL, NULL, graph_with("write_budget = 3000/150")), "write_budget");
	LOAD_BAD(config(NULL, NULL, graph_with("write_budget = 3000/2d")), "write_budget");

	c = load_ok(config(NULL, ad_with("page_size = 1\nchange_tracking = SyncRepl"), NULL));
	CHECK(c && c->ad.page_size == 1);
	CHECK(c && c->ad.change_tracking == CONF_CHANGE_TRACKING_SYNCREPL);
	conf_free(c);
	LOAD_BAD(config(NULL, ad_with("page_size = 0"), NULL),
	         "invalid value '0' for page_size: expected a number from 1 to 10000");
	LOAD_BAD(config(NULL, ad_with("page_size = 10001"), NULL), "from 1 to 10000");
	LOAD_BAD(config(NULL, ad_with("page_size = +5"), NULL), "for page_size");
	LOAD_BAD(config("history_days = 0", NULL, NULL), "from 1 to 3650");
	LOAD_BAD(config(NULL, ad_with("change_tracking = fast"), NULL),
	         "expected auto, dirsync, usn, syncrepl or none");
	CHECK_STR_EQ(conf_change_tracking_to_string(CONF_CHANGE_TRACKING_USN), "usn");
	CHECK(conf_change_tracking_to_string(CONF_CHANGE_TRACKING_MAX) == NULL);
	CHECK_STR_EQ(conf_threshold_kind_to_string(CONF_THRESHOLD_PERCENT), "percent");
}

static void test_uris(void)
{
	struct conf *c;
	const char *base = "base_dn = DC=corp,DC=example,DC=com\n";

	c = load_ok(config(NULL, pathf("uri = LDAPS://DC1.Corp.Example.com:636/\n%s", base), NULL));
	CHECK(c && strcmp(c->ad.uri, "ldaps://dc1.corp.example.com:636") == 0);
	conf_free(c);
	c = load_ok(config(NULL, pathf("uri = ldapi://%%2Frun%%2Fslapd%%2Fldapi\n%s", base), NULL));
	CHECK(c && strcmp(c->ad.uri, "ldapi://%2Frun%2Fslapd%2Fldapi") == 0);
	conf_free(c);
	c = load_ok(config(NULL, pathf("uri = ldap://[::1]:3389\n%s", base), NULL));
	CHECK(c && strcmp(c->ad.uri, "ldap://[::1]:3389") == 0);
	conf_free(c);
	LOAD_BAD(config(NULL, pathf("uri = https://dc1\n%s", base), NULL),
	         "expected an ldaps://, ldap:// or ldapi:// URI");
	LOAD_BAD(config(NULL, pathf("uri = ldaps://dc1/DC=corp\n%s", base), NULL),
	         "the DN goes into base_dn");
	LOAD_BAD(config(NULL, pathf("uri = ldaps://admin:Pa55w0rd@dc1\n%s", base), NULL),
	         "t.conf:4: invalid value for uri: a URI must not carry a user name or password");
	{
		struct conf_errors *errors = NULL;
		struct conf *c2 = NULL;

		conf_load_string(
		    "t.conf",
		    config(NULL, pathf("uri = ldaps://admin:Pa55w0rd@dc1\n%s", base), NULL), &c2,
		    &errors);
		CHECK(errors && errors->n == 1 && !strstr(errors->v[0].text, "Pa55w0rd"));
		conf_errors_free(errors);
	}
	LOAD_BAD(config(NULL, pathf("uri = ldaps://dc1:0\n%s", base), NULL), "invalid port");
	LOAD_BAD(config(NULL, pathf("uri = ldaps://dc1:70000\n%s", base), NULL), "invalid port");
	LOAD_BAD(config(NULL, pathf("uri = ldaps://\n%s", base), NULL), "no host name");
	LOAD_BAD(config(NULL, pathf("uri = dc1.corp.example.com\n%s", base), NULL),
	         "expected an ldaps://");

	c = load_ok(config(NULL, NULL,
	                   graph_with("authority = https://127.0.0.1:8443/login/\n"
	                              "endpoint = HTTPS://Graph.Example.com")));
	CHECK(c && strcmp(c->graph.authority, "https://127.0.0.1:8443/login") == 0);
	CHECK(c && strcmp(c->graph.endpoint, "https://graph.example.com") == 0);
	conf_free(c);
	LOAD_BAD(config(NULL, NULL, graph_with("endpoint = https://g/v1.0?x=1")),
	         "without a query or fragment");
	LOAD_BAD(config(NULL, NULL, graph_with("endpoint = ldaps://g")), "expected an https://");
}

static void test_insecure(void)
{
	struct conf *c;
	KEEP(pw,
	     "bind_dn = CN=svc,DC=corp,DC=example,DC=com\n"
	     "bind_password_file = %s/ad-password\n"
	     "base_dn = DC=corp,DC=example,DC=com\n",
	     dir);

	/* SPEC §3 invariant 6 */
	LOAD_BAD(config(NULL, pathf("uri = ldap://dc1\n%s", pw), NULL),
	         "t.conf:4: ldap:// would send the bind password in clear text");
	c = load_ok(config(NULL, pathf("uri = ldap://dc1\nstarttls = yes\n%s", pw), NULL));
	CHECK(c && c->ad.starttls);
	conf_free(c);
	c = load_ok(config(NULL, pathf("uri = ldap://dc1\nallow_insecure = yes\n%s", pw), NULL));
	CHECK(c && c->ad.allow_insecure);
	conf_free(c);
	c = load_ok(config(NULL, pathf("uri = ldapi://\n%s", pw), NULL)); /* a local socket */
	conf_free(c);
	c = load_ok(config(NULL, "uri = ldap://dc1\nbase_dn = DC=corp,DC=example,DC=com", NULL));
	CHECK(c && !c->ad.bind_dn && !c->ad.bind_password.value); /* no password at all */
	conf_free(c);
	LOAD_BAD(config(NULL, pathf("uri = ldaps://dc1\nstarttls = yes\n%s", pw), NULL),
	         "t.conf:5: starttls = yes needs an ldap:// uri");
	LOAD_BAD(config(NULL, pathf("uri = ldapi://\nstarttls = yes\n%s", pw), NULL),
	         "starttls = yes needs an ldap:// uri");

	LOAD_BAD(config(NULL, NULL, graph_with("endpoint = http://127.0.0.1:8080")),
	         "endpoint is plain http://: use https://, or allow_insecure = yes in [graph]");
	LOAD_BAD(config(NULL, NULL, graph_with("authority = http://127.0.0.1:8080")),
	         "authority is plain http://");
	/* allow_insecure of [ad] does not cover [graph] */
	LOAD_BAD(config(NULL, ad_with("allow_insecure = yes"),
	                graph_with("endpoint = http://127.0.0.1:8080")),
	         "endpoint is plain http://");
	c = load_ok(config(NULL, NULL,
	                   graph_with("endpoint = http://127.0.0.1:8080\n"
	                              "authority = http://127.0.0.1:8080\nallow_insecure = yes")));
	CHECK(c && strcmp(c->graph.endpoint, "http://127.0.0.1:8080") == 0);
	conf_free(c);
}

static void test_dns(void)
{
	struct conf *c;
	KEEP(head,
	     "uri = ldaps://dc1\nbind_dn = CN=svc,DC=corp,DC=example,DC=com\n"
	     "bind_password_file = %s/ad-password\n",
	     dir);

	c = load_ok(config(NULL,
	                   pathf("%sbase_dn =  DC=corp , DC=example,DC=com \n"
	                         "include = OU=Staff,DC=corp,DC=example,DC=com\n"
	                         "include = OU=A\\, B+CN=x,DC=corp,DC=example,DC=com\n"
	                         "exclude = OU=Old,OU=Staff,dc=CORP,DC=example,DC=com",
	                         head),
	                   NULL));
	CHECK(c && strcmp(c->ad.base_dn, "DC=corp,DC=example,DC=com") == 0);
	CHECK(c && c->ad.include.n == 2);
	CHECK(c && c->ad.include.n == 2 &&
	      strcmp(c->ad.include.v[0], "OU=A\\, B+CN=x,DC=corp,DC=example,DC=com") == 0);
	CHECK(c && c->ad.exclude.n == 1);
	conf_free(c);

	/* no include: the whole base_dn */
	c = load_ok(config(NULL, NULL, NULL));
	CHECK(c && c->ad.include.n == 1 && strcmp(c->ad.include.v[0], c->ad.base_dn) == 0);
	conf_free(c);

	LOAD_BAD(config(NULL, pathf("%sbase_dn = DC=corp,,DC=com", head), NULL),
	         "t.conf:7: invalid value 'DC=corp,,DC=com' for base_dn: attribute type expected");
	LOAD_BAD(config(NULL, pathf("%sbase_dn = DC=corp,DC=com,", head), NULL),
	         "DN ends with a separator");
	LOAD_BAD(config(NULL, pathf("%sbase_dn = DC=co;rp", head), NULL), "unescaped ';'");
	LOAD_BAD(config(NULL, pathf("%sbase_dn = DC=", head), NULL), "empty attribute value");
	LOAD_BAD(config(NULL, pathf("%sbase_dn = DC=a\\zz", head), NULL), "invalid escape");
	LOAD_BAD(config(NULL, pathf("%sbase_dn = corp", head), NULL), "'=' expected");
	LOAD_BAD(config(NULL,
	                pathf("%sbase_dn = DC=corp,DC=com\ninclude = OU=X,DC=other,DC=com", head),
	                NULL),
	         "t.conf:8: include 'OU=X,DC=other,DC=com' is not within base_dn 'DC=corp,DC=com'");
	LOAD_BAD(config(NULL,
	                pathf("%sbase_dn = DC=corp,DC=com\ninclude = OU=X,DC=corp,DC=com\n"
	                      "include = OU=Y,OU=X,DC=corp,DC=com",
	                      head),
	                NULL),
	         "t.conf:9: include 'OU=Y,OU=X,DC=corp,DC=com' lies within the include of line 8");
	LOAD_BAD(config(NULL,
	                pathf("%sbase_dn = DC=corp,DC=com\ninclude = OU=X,DC=corp,DC=com\n"
	                      "exclude = OU=Y,DC=corp,DC=com",
	                      head),
	                NULL),
	         "exclude 'OU=Y,DC=corp,DC=com' does not lie within any include");
	LOAD_BAD(config(NULL,
	                pathf("%sbase_dn = DC=corp,DC=com\ninclude = OU=X,DC=corp,DC=com\n"
	                      "include = ou=x, DC=corp,DC=com",
	                      head),
	                NULL),
	         "t.conf:9: include 'ou=x, DC=corp,DC=com' is listed twice (first at line 8)");
	LOAD_BAD(
	    config(NULL, pathf("%sbase_dn = DC=corp,DC=com\nexclude = DC=corp,DC=com", head), NULL),
	    "is base_dn itself");
	/* a suffix that is not at an RDN boundary is not "within" */
	LOAD_BAD(config(NULL, pathf("%sbase_dn = DC=com\ninclude = OU=X,DC=notcom", head), NULL),
	         "is not within base_dn");
	LOAD_BAD(config(NULL, ad_with("bind_dn = CN=again,DC=corp"), NULL),
	         "t.conf:8: duplicate key 'bind_dn' (first set at line 5)");
}

static void test_guids_domains_extension(void)
{
	struct conf *c;

	c = load_ok(config(NULL, NULL,
	                   pathf("tenant = 11111111-2222-3333-4444-55555555AAAA\n"
	                         "client_id = AAAAAAAA-bbbb-cccc-dddd-eeeeeeeeeeee\n"
	                         "client_secret_file = %s/graph-secret\n"
	                         "domains = Corp.Example.COM\ndomains = b.example.com",
	                         dir)));
	CHECK(c && strcmp(c->graph.tenant, "11111111-2222-3333-4444-55555555aaaa") == 0);
	CHECK(c && strcmp(c->graph.client_id, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee") == 0);
	CHECK(c && strcmp(c->graph.anchor_extension,
	                  "extension_aaaaaaaabbbbccccddddeeeeeeeeeeee_hybridsyncAnchor") == 0);
	CHECK(c && c->graph.domains.n == 2 && strcmp(c->graph.domains.v[0], "b.example.com") == 0 &&
	      strcmp(c->graph.domains.v[1], "corp.example.com") == 0);
	conf_free(c);
	c = load_ok(config(NULL, NULL,
	                   graph_with("anchor_extension = "
	                              "extension_0123456789ABCDEF0123456789abcdef_myAnchor")));
	CHECK(c && strcmp(c->graph.anchor_extension,
	                  "extension_0123456789abcdef0123456789abcdef_myAnchor") == 0);
	conf_free(c);
	LOAD_BAD(config(NULL, NULL,
	                pathf("tenant = contoso.onmicrosoft.com\n"
	                      "client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n"
	                      "client_secret_file = %s/graph-secret",
	                      dir)),
	         "expected a GUID such as 00000000-0000-0000-0000-000000000000");
	LOAD_BAD(config(NULL, NULL,
	                pathf("tenant = 11111111-2222-3333-4444-555555555555\n"
	                      "client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeeg\n"
	                      "client_secret_file = %s/graph-secret",
	                      dir)),
	         "for client_id: expected a GUID");
	LOAD_BAD(config(NULL, NULL, graph_with("domains = -x.com")), "expected a DNS domain name");
	LOAD_BAD(config(NULL, NULL, graph_with("domains = a..com")), "expected a DNS domain name");
	LOAD_BAD(config(NULL, NULL, graph_with("domains = a.com\ndomains = A.com")),
	         "listed twice");
	LOAD_BAD(config(NULL, NULL, graph_with("anchor_extension = hybridsyncAnchor")),
	         "expected extension_<application id without dashes>_<name>");
	LOAD_BAD(config("server_name = bad name", NULL, NULL), "expected a server name");
}

static void test_graph_auth(void)
{
	struct conf *c;
	const char *ids = "tenant = 11111111-2222-3333-4444-555555555555\n"
	                  "client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n";

	c = load_ok(config(
	    NULL, NULL,
	    pathf("%scertificate_file = %s/cert.pem\nkey_file = %s/key.pem", ids, dir, dir)));
	CHECK(c && c->graph.certificate.value && c->graph.key.value &&
	      !c->graph.client_secret.value);
	CHECK(c && !c->graph.certificate.check_mode && c->graph.key.check_mode);
	conf_free(c);
	LOAD_BAD(config(NULL, NULL, ids),
	         "t.conf: [graph]: missing client_secret_file, or certificate_file and key_file");
	LOAD_BAD(config(NULL, NULL, graph_with(pathf("certificate_file = %s/cert.pem", dir))),
	         "client_secret_file and certificate_file/key_file exclude each other");
	LOAD_BAD(config(NULL, NULL, pathf("%scertificate_file = %s/cert.pem", ids, dir)),
	         "t.conf:11: certificate_file needs key_file");
	LOAD_BAD(config(NULL, NULL, pathf("%skey_file = %s/key.pem", ids, dir)),
	         "t.conf:11: key_file needs certificate_file");
	LOAD_BAD(config(NULL, "uri = ldaps://dc1\nbind_dn = CN=x,DC=y\nbase_dn = DC=y", NULL),
	         "t.conf:5: bind_dn needs bind_password_file");
	LOAD_BAD(config(NULL,
	                pathf("uri = ldaps://dc1\nbind_password_file = %s/ad-password\n"
	                      "base_dn = DC=y",
	                      dir),
	                NULL),
	         "t.conf:5: bind_password_file needs bind_dn");
}

/* --- syntax and strictness --------------------------------------------------------------- */

static void test_syntax(void)
{
	struct conf *c;

	/* comments, blanks, CRLF, a repeated section header */
	c = load_ok(pathf("# hybridsync\r\n; another comment\r\n\r\n  [ sync ]  \r\n"
	                  "\tstaging=no   # inline\r\nserver_name = s ; inline too\r\n"
	                  "[ad]\nuri = ldaps://dc1 #c\nbase_dn = DC=a\\#b,DC=y\n"
	                  "[graph]\ntenant = 11111111-2222-3333-4444-555555555555\n"
	                  "client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n"
	                  "client_secret_file = %s/graph-secret\n[sync]\nhistory_days = 30\n",
	                  dir));
	CHECK(c && !c->sync.staging && c->sync.history_days == 30);
	CHECK(c && strcmp(c->sync.server_name, "s") == 0);
	CHECK(c && strcmp(c->ad.base_dn, "DC=a\\#b,DC=y") == 0);
	conf_free(c);

	LOAD_BAD(config("colour = blue", NULL, NULL),
	         "t.conf:2: unknown key 'colour' in section [sync]");
	LOAD_BAD(pathf("%s[extra]\nx = 1\ny = 2\n", config(NULL, NULL, NULL)),
	         "unknown section [extra] (expected [sync], [ad] or [graph])");
	LOAD_BAD(pathf("stray = 1\n%s", config(NULL, NULL, NULL)),
	         "t.conf:1: key 'stray' is outside of any section");
	LOAD_BAD(config("server_name = s\nstaging yes", NULL, NULL),
	         "t.conf:3: expected 'key = value' or '[section]'");
	LOAD_BAD(config("server_name = s\n= yes", NULL, NULL), "missing key name before '='");
	LOAD_BAD(pathf("[sync\n%s", config(NULL, NULL, NULL)), "t.conf:1: invalid section header");
	LOAD_BAD(config("server_name = a\nserver_name = b", NULL, NULL),
	         "t.conf:3: duplicate key 'server_name' (first set at line 2)");
	LOAD_BAD(config("STAGING = yes", NULL, NULL), "unknown key 'STAGING'");
}

static void test_missing_required(void)
{
	struct conf_errors *errors = NULL;
	struct conf *c = NULL;
	int r;

	r = conf_load_string("t.conf", "[sync]\nserver_name = s\n", &c, &errors);
	CHECK_INT_EQ(r, -EINVAL);
	CHECK(errors && errors->n == 5);
	if (errors && errors->n == 5) {
		CHECK_STR_EQ(errors->v[0].text, "t.conf: [ad]: missing required key 'uri'");
		CHECK_STR_EQ(errors->v[1].text, "t.conf: [ad]: missing required key 'base_dn'");
		CHECK_STR_EQ(errors->v[2].text, "t.conf: [graph]: missing required key 'tenant'");
		CHECK_STR_EQ(errors->v[3].text,
		             "t.conf: [graph]: missing required key 'client_id'");
		CHECK_STR_EQ(errors->v[4].text,
		             "t.conf: [graph]: missing client_secret_file, or certificate_file and "
		             "key_file");
		CHECK_INT_EQ(errors->v[0].line, 0);
		CHECK_STR_EQ(errors->v[0].file, "t.conf");
		CHECK_STR_EQ(errors->v[0].message, "[ad]: missing required key 'uri'");
	}
	errors = conf_errors_free(errors);
	CHECK(errors == NULL);
	CHECK(conf_free(NULL) == NULL);
}

/* Every error is reported, in line order, with its line, file-level errors last. */
static void test_all_errors_collected(void)
{
	static const char text[] = "[sync]\n"                 /* 1 */
	                           "staging = perhaps\n"      /* 2 */
	                           "interval = 1 fortnight\n" /* 3 */
	                           "\n"                       /* 4 */
	                           "[ad]\n"                   /* 5 */
	                           "uri = ldaps://dc1\n"      /* 6 */
	                           "page_size = many\n"       /* 7 */
	                           "uri = ldaps://dc2\n"      /* 8 */
	                           "colour = blue\n"          /* 9 */
	                           "[nowhere]\n"              /* 10 */
	                           "tenant = x\n"             /* 11 */
	                           "[graph]\n"                /* 12 */
	                           "tenant = not-a-guid\n"    /* 13 */
	                           "write_budget = fast\n";   /* 14 */
	static const unsigned lines[] = {2, 3, 7, 8, 9, 10, 13, 14, 0, 0, 0};
	struct conf_errors *errors = NULL;
	struct conf *c = NULL;
	int r;

	r = conf_load_string("many.conf", text, &c, &errors);
	CHECK_INT_EQ(r, -EINVAL);
	CHECK(c == NULL);
	CHECK(errors && errors->n == sizeof(lines) / sizeof(lines[0]));
	for (size_t i = 0; errors && i < errors->n && i < sizeof(lines) / sizeof(lines[0]); i++) {
		CHECK_INT_EQ(errors->v[i].line, lines[i]);
		CHECK(strncmp(errors->v[i].text, "many.conf", 9) == 0);
	}
	if (errors && errors->n == 11) {
		CHECK_STR_EQ(errors->v[8].text, "many.conf: [ad]: missing required key 'base_dn'");
		CHECK_STR_EQ(errors->v[9].text,
		             "many.conf: [graph]: missing required key 'client_id'");
		CHECK(strstr(errors->v[10].text, "missing client_secret_file") != NULL);
	}
	conf_errors_free(errors);
}

static void test_too_many_errors(void)
{
	char *text = malloc(200 * 16 + 16);
	struct conf_errors *errors = NULL;
	struct conf *c = NULL;
	size_t n = 0;

	n += (size_t)snprintf(text, 16, "[sync]\n");
	for (int i = 0; i < 200; i++)
		n += (size_t)snprintf(text + n, 16, "bogus%d = 1\n", i);
	CHECK_INT_EQ(conf_load_string("t.conf", text, &c, &errors), -EINVAL);
	CHECK(errors && errors->n == 101);
	if (errors && errors->n == 101)
		CHECK(strstr(errors->v[100].text, "too many errors") != NULL);
	conf_errors_free(errors);
	free(text);
}

static void test_empty_and_paths(void)
{
	struct conf *c;

	c = load_ok(config(NULL, NULL, NULL));
	CHECK(c && strcmp(c->sync.database, HYBRIDSYNC_STATEDIR "/hybridsync.db") == 0);
	CHECK(c && strcmp(c->sync.metrics_file, HYBRIDSYNC_STATEDIR "/metrics.prom") == 0);
	CHECK(c && c->sync.rules == NULL && c->n_rules == 0);
	CHECK(c && strcmp(c->graph.authority, "https://login.microsoftonline.com") == 0);
	CHECK(c && strcmp(c->graph.endpoint, "https://graph.microsoft.com") == 0);
	conf_free(c);
	c = load_ok(config("server_name = s\nmetrics_file =\nrules =\ndatabase = /srv/hs/db//",
	                   NULL, NULL));
	CHECK(c && c->sync.metrics_file == NULL && c->sync.rules == NULL);
	CHECK(c && strcmp(c->sync.database, "/srv/hs/db") == 0);
	conf_free(c);
	LOAD_BAD(config("database = hybridsync.db", NULL, NULL),
	         "invalid value 'hybridsync.db' for database: expected an absolute path");
	LOAD_BAD(config("database =", NULL, NULL), "for database: expected an absolute path");
	LOAD_BAD(config("metrics_file =\nmetrics_file = /x", NULL, NULL), "duplicate key");
	LOAD_BAD(config(NULL, ad_with("ca_file = /nonexistent/ca.pem"), NULL),
	         "ca_file '/nonexistent/ca.pem': No such file or directory");
	LOAD_BAD(config(NULL, ad_with(pathf("ca_file = %s", dir)), NULL), "is not a regular file");
	c = load_ok(config(NULL, ad_with(pathf("ca_file = %s/cert.pem", dir)), NULL));
	CHECK(c && c->ad.ca_file && strstr(c->ad.ca_file, "/cert.pem"));
	conf_free(c);

	/* the host name stands in for server_name */
	c = load_ok(config("staging = yes", NULL, NULL));
	if (c) {
		char host[256] = "";

		gethostname(host, sizeof(host) - 1);
		CHECK_STR_EQ(c->sync.server_name, host);
	}
	conf_free(c);
}

static void test_load_file(void)
{
	struct conf_errors *errors = NULL;
	struct conf *c = NULL;
	const char *path = pathf("%s/hybridsync.conf", dir);
	char hash[CONF_HASH_HEX_SIZE];
	int r;

	r = conf_load(pathf("%s/nonexistent.conf", dir), &c, &errors);
	CHECK_INT_EQ(r, -ENOENT);
	CHECK(errors && errors->n == 1 &&
	      strstr(errors->v[0].text, "nonexistent.conf: No such file"));
	errors = conf_errors_free(errors);
	r = conf_load(dir, &c, &errors);
	CHECK_INT_EQ(r, -EISDIR);
	errors = conf_errors_free(errors);

	write_file(path, config(NULL, NULL, NULL), 0644);
	r = conf_load(path, &c, &errors);
	CHECK_INT_EQ(r, 0);
	CHECK(errors == NULL);
	CHECK(c && strcmp(c->path, path) == 0);
	CHECK(c && conf_hash(c, hash) == 0 && strlen(hash) == 64);
	conf_free(c);
}

/* --- secrets ----------------------------------------------------------------------------- */

static void test_secret_reading(void)
{
	struct conf *c;
	char *s = NULL;
	size_t len = 0;

	c = load_ok(config(NULL, NULL, NULL));
	if (!c)
		return;
	CHECK(!c->ad.bind_password.credential && c->ad.bind_password.check_mode);
	CHECK_INT_EQ(conf_read_secret(&c->ad.bind_password, &s, &len), 0);
	CHECK(s && len == 11 && strcmp(s, "AD-PASSWORD") == 0); /* one newline stripped */
	s = secret_free(s, len);
	CHECK(s == NULL);
	CHECK(secret_free(NULL, 0) == NULL);
	CHECK_INT_EQ(conf_read_secret(&c->graph.client_secret, &s, &len), 0);
	CHECK(s && len == 19 && strcmp(s, "line1\nGRAPH-SECRET\n") == 0); /* only one */
	s = secret_free(s, len);

	/* the mode is checked again when read */
	chmod(pathf("%s/graph-secret", dir), 0640);
	CHECK_INT_EQ(conf_read_secret(&c->graph.client_secret, &s, &len), -EPERM);
	chmod(pathf("%s/graph-secret", dir), 0600);
	CHECK_INT_EQ(conf_read_secret(NULL, &s, &len), -ENOENT);
	CHECK_INT_EQ(conf_read_secret(&c->graph.key, &s, &len), -ENOENT); /* not configured */
	CHECK(s == NULL);
	conf_free(c);

	write_file(pathf("%s/crlf", dir), "abc\r\n", 0600);
	c = load_ok(config(NULL, ad_pw(pathf("%s/crlf", dir)), NULL));
	CHECK(c && conf_read_secret(&c->ad.bind_password, &s, &len) == 0);
	CHECK(s && len == 3 && strcmp(s, "abc") == 0);
	s = secret_free(s, len);
	conf_free(c);

	write_file(pathf("%s/newline-only", dir), "\n", 0600);
	c = load_ok(config(NULL, ad_pw(pathf("%s/newline-only", dir)), NULL));
	CHECK(c && conf_read_secret(&c->ad.bind_password, &s, &len) == -ENODATA);
	CHECK(s == NULL);
	conf_free(c);

	/* the file grew past the limit after the load */
	write_file(pathf("%s/growing", dir), "x\n", 0600);
	c = load_ok(config(NULL, ad_pw(pathf("%s/growing", dir)), NULL));
	if (c) {
		FILE *f = fopen(pathf("%s/growing", dir), "w");

		for (unsigned i = 0; f && i <= CONF_SECRET_MAX; i++)
			fputc('y', f);
		if (f)
			fclose(f);
		CHECK_INT_EQ(conf_read_secret(&c->ad.bind_password, &s, &len), -EFBIG);
	}
	conf_free(c);
}

static void test_secret_files(void)
{
	struct conf *c;

	write_file(pathf("%s/pw-0640", dir), "x\n", 0640);
	write_file(pathf("%s/pw-0644", dir), "x\n", 0644);
	write_file(pathf("%s/pw-0602", dir), "x\n", 0602);
	write_file(pathf("%s/pw-empty", dir), "", 0600);
	c = load_ok(config(NULL, ad_pw(pathf("%s/ad-password", dir)), NULL)); /* 0600 */
	conf_free(c);
	write_file(pathf("%s/pw-0400", dir), "x\n", 0400);
	c = load_ok(config(NULL, ad_pw(pathf("%s/pw-0400", dir)), NULL));
	conf_free(c);
	LOAD_BAD(config(NULL, ad_pw(pathf("%s/pw-0640", dir)), NULL),
	         pathf("t.conf:6: bind_password_file '%s/pw-0640' is accessible by group or "
	               "others (mode 0640): chmod 600 it",
	               dir));
	LOAD_BAD(config(NULL, ad_pw(pathf("%s/pw-0644", dir)), NULL), "(mode 0644)");
	LOAD_BAD(config(NULL, ad_pw(pathf("%s/pw-0602", dir)), NULL), "(mode 0602)");
	LOAD_BAD(config(NULL, ad_pw(pathf("%s/pw-empty", dir)), NULL), "is empty");
	LOAD_BAD(config(NULL, ad_pw(pathf("%s/pw-missing", dir)), NULL),
	         pathf("bind_password_file '%s/pw-missing' does not exist", dir));
	LOAD_BAD(config(NULL, ad_pw(dir), NULL), "is not a regular file");
	LOAD_BAD(config(NULL, ad_pw("relative/pw"), NULL),
	         "expected an absolute path or a systemd credential name");
	LOAD_BAD(config(NULL, NULL,
	                pathf("tenant = 11111111-2222-3333-4444-555555555555\n"
	                      "client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n"
	                      "certificate_file = %s/cert.pem\nkey_file = %s/pw-0644",
	                      dir, dir)),
	         "key_file");
	/* a certificate is public: 0644 is fine for certificate_file */
	c = load_ok(config(NULL, NULL,
	                   pathf("tenant = 11111111-2222-3333-4444-555555555555\n"
	                         "client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n"
	                         "certificate_file = %s/pw-0644\nkey_file = %s/key.pem",
	                         dir, dir)));
	conf_free(c);
}

static void test_credentials(void)
{
	KEEP(creds, "%s/creds", dir);
	struct conf *c;
	char *s = NULL;
	size_t len = 0;

	mkdir(creds, 0700);
	write_file(pathf("%s/ad-password", creds), "CRED-PASSWORD\n", 0400);
	unsetenv("CREDENTIALS_DIRECTORY");
	LOAD_BAD(config(NULL, ad_pw("ad-password"), NULL),
	         "t.conf:6: bind_password_file names a systemd credential, but "
	         "$CREDENTIALS_DIRECTORY is not set");
	setenv("CREDENTIALS_DIRECTORY", creds, 1);
	c = load_ok(config(NULL, ad_pw("ad-password"), NULL));
	CHECK(c && c->ad.bind_password.credential);
	CHECK(c && strcmp(c->ad.bind_password.value, "ad-password") == 0);
	CHECK(c && strcmp(c->ad.bind_password.path, pathf("%s/ad-password", creds)) == 0);
	CHECK(c && conf_read_secret(&c->ad.bind_password, &s, &len) == 0);
	CHECK(s && strcmp(s, "CRED-PASSWORD") == 0 && len == 13);
	s = secret_free(s, len);
	conf_free(c);
	LOAD_BAD(config(NULL, ad_pw("other-name"), NULL),
	         "t.conf:6: bind_password_file names a credential that is not in "
	         "$CREDENTIALS_DIRECTORY");
	/* a password written where its file belongs is never repeated in a message */
	{
		static const char *const values[] = {"Secr3t-Pa55", "Secr3t/Pa55"};

		for (size_t i = 0; i < 2; i++) {
			struct conf_errors *errors = NULL;
			struct conf *c2 = NULL;

			conf_load_string("t.conf", config(NULL, ad_pw(values[i]), NULL), &c2,
			                 &errors);
			CHECK(c2 == NULL && errors && errors->n == 1);
			CHECK(errors && errors->n == 1 && !strstr(errors->v[0].text, "Pa55"));
			conf_errors_free(errors);
		}
	}
	LOAD_BAD(config(NULL, ad_pw(".."), NULL), "expected an absolute path or a systemd");
	unsetenv("CREDENTIALS_DIRECTORY");
}

/* --- rules directory --------------------------------------------------------------------- */

static void test_rules(void)
{
	KEEP(rd, "%s/rules.d", dir);
	KEEP(bad, "%s/bad-rules.d", dir);
	struct conf_errors *errors = NULL;
	struct conf *c = NULL;
	int r;

	mkdir(rd, 0755);
	write_file(pathf("%s/20-groups.json", rd), "{\"z\": 1, \"a\": {\"y\": [true, null]}}\n",
	           0644);
	write_file(pathf("%s/10-users.json", rd), "[ 1.5, \"x\\u00e9\" ]", 0644);
	write_file(pathf("%s/README", rd), "not json", 0644);
	write_file(pathf("%s/.hidden.json", rd), "not json", 0644);
	c = load_ok(config(pathf("server_name = s\nrules = %s", rd), NULL, NULL));
	CHECK(c && c->n_rules == 2);
	if (c && c->n_rules == 2) {
		CHECK_STR_EQ(c->rules[0].name, "10-users.json");
		CHECK_STR_EQ(c->rules[1].name, "20-groups.json");
		CHECK_STR_EQ(c->rules[0].canonical, "[1.5,\"x\xc3\xa9\"]");
		CHECK_STR_EQ(c->rules[1].canonical, "{\"a\":{\"y\":[true,null]},\"z\":1}");
		CHECK_STR_EQ(c->rules[1].path, pathf("%s/20-groups.json", rd));
	}
	conf_free(c);

	mkdir(bad, 0755);
	write_file(pathf("%s/10-broken.json", bad), "{\n  \"a\": 1,\n  \"b\": [1, 2,, 3]\n}\n",
	           0644);
	write_file(pathf("%s/20-dup.json", bad), "{\"a\": 1, \"a\": 2}", 0644);
	write_file(pathf("%s/30-ok.json", bad), "{}", 0644);
	r = conf_load_string(
	    "t.conf", config(pathf("server_name = s\nrules = %s", bad), NULL, NULL), &c, &errors);
	CHECK_INT_EQ(r, -EINVAL);
	CHECK(errors && errors->n == 2);
	if (errors && errors->n == 2) {
		CHECK_STR_EQ(errors->v[0].text, pathf("%s/10-broken.json:3:14: invalid JSON", bad));
		CHECK_INT_EQ(errors->v[0].line, 3);
		CHECK_INT_EQ(errors->v[0].column, 14);
		CHECK_STR_EQ(errors->v[1].text,
		             pathf("%s/20-dup.json: duplicate key \"a\" in an object", bad));
	}
	errors = conf_errors_free(errors);

	LOAD_BAD(config(pathf("server_name = s\nrules = %s/nonexistent", dir), NULL, NULL),
	         pathf("t.conf:3: rules directory '%s/nonexistent' does not exist", dir));
	LOAD_BAD(config(pathf("server_name = s\nrules = %s/ad-password", dir), NULL, NULL),
	         "Not a directory");
	LOAD_BAD(config("server_name = s\nrules = rules.d", NULL, NULL),
	         "expected an absolute path");
}

/* --- hash, export, import ---------------------------------------------------------------- */

static void test_hash_coverage(void)
{
	KEEP(rd, "%s/rules.d", dir);
	KEEP(rd2, "%s/rules-copy.d", dir);
	KEEP(rd3, "%s/rules-changed.d", dir);
	KEEP(sync, "server_name = sync01\nrules = %s/rules.d", dir);
	char base[CONF_HASH_HEX_SIZE], h[CONF_HASH_HEX_SIZE];

	mkdir(rd2, 0755);
	mkdir(rd3, 0755);
	write_file(pathf("%s/10-users.json", rd2), "[1.5,\n \"x\\u00e9\"]", 0644); /* same JSON */
	write_file(pathf("%s/20-groups.json", rd2), "{\"a\":{\"y\":[true,null]},\"z\":1.0}", 0644);
	write_file(pathf("%s/10-users.json", rd3), "[1.5, \"x\"]", 0644);
	write_file(pathf("%s/20-groups.json", rd3), "{\"a\":{\"y\":[true,null]},\"z\":1}", 0644);
	write_file(pathf("%s/ad-password-2", dir), "other\n", 0600);

	hash_of(config(sync, NULL, NULL), base);
	CHECK(strlen(base) == 64);

	/* what differs by nature between an active server and its standby */
	static const char *const same_sync[] = {
	    "staging = no",
	    "staging = yes",
	    "server_name = other",
	    "interval = 5min",
	    "database = /srv/other.db",
	    "metrics_file = /srv/m.prom",
	    "metrics_file =",
	    "force_promotion = yes",
	};
	for (size_t i = 0; i < sizeof(same_sync) / sizeof(same_sync[0]); i++) {
		const char *t = strncmp(same_sync[i], "server_name", 11) == 0
		                    ? pathf("%s\nrules = %s", same_sync[i], rd)
		                    : pathf("%s\n%s", sync, same_sync[i]);
		hash_of(config(t, NULL, NULL), h);
		if (strcmp(h, base) != 0)
			fprintf(stderr, "hash changed with '%s'\n", same_sync[i]);
		CHECK_STR_EQ(h, base);
	}
	hash_of(config(pathf("server_name = sync01\nrules = %s", rd2), NULL, NULL), h);
	CHECK_STR_EQ(h, base); /* another rules path, the same content */
	hash_of(config(sync, ad_pw(pathf("%s/ad-password-2", dir)), NULL), h);
	CHECK_STR_EQ(h, base); /* another secret file */
	hash_of(config(sync, ad_with(pathf("ca_file = %s/cert.pem", dir)),
	               graph_with(pathf("ca_file = %s/cert.pem", dir))),
	        h);
	CHECK_STR_EQ(h, base); /* CA files */
	hash_of(config(sync, ad_with("include = DC=corp,DC=example,DC=com"), NULL), h);
	CHECK_STR_EQ(h, base); /* the default include written out */
	hash_of(config(pathf("%s\n# a comment\n", sync), NULL, NULL), h);
	CHECK_STR_EQ(h, base);

	/* include order does not matter */
	{
		char h1[CONF_HASH_HEX_SIZE], h2[CONF_HASH_HEX_SIZE];

		hash_of(config(sync,
		               ad_with("include = OU=A,DC=corp,DC=example,DC=com\n"
		                       "include = OU=B,DC=corp,DC=example,DC=com"),
		               NULL),
		        h1);
		hash_of(config(sync,
		               ad_with("include = OU=B,DC=corp,DC=example,DC=com\n"
		                       "include = OU=A,DC=corp,DC=example,DC=com"),
		               NULL),
		        h2);
		CHECK_STR_EQ(h1, h2);
		CHECK(strcmp(h1, base) != 0);
	}

	/* what decides the outcome */
	static const char *const ad_changes[] = {
	    "include = OU=Staff,DC=corp,DC=example,DC=com",
	    "exclude = OU=Old,DC=corp,DC=example,DC=com",
	    "page_size = 500",
	    "change_tracking = usn",
	};
	for (size_t i = 0; i < sizeof(ad_changes) / sizeof(ad_changes[0]); i++) {
		hash_of(config(sync, ad_with(ad_changes[i]), NULL), h);
		CHECK(strcmp(h, base) != 0);
	}
	static const char *const graph_changes[] = {
	    "soft_match = no",
	    "domains = corp.example.com",
	    "anchor_extension = extension_00000000000000000000000000000000_x",
	    "write_budget = 1000/150s",
	    "endpoint = https://graph.example.com",
	};
	for (size_t i = 0; i < sizeof(graph_changes) / sizeof(graph_changes[0]); i++) {
		hash_of(config(sync, NULL, graph_with(graph_changes[i])), h);
		CHECK(strcmp(h, base) != 0);
	}
	hash_of(config(pathf("%s\ndeletion_threshold = 501", sync), NULL, NULL), h);
	CHECK(strcmp(h, base) != 0);
	hash_of(config(pathf("%s\ndeletion_threshold = 5%%", sync), NULL, NULL), h);
	CHECK(strcmp(h, base) != 0);
	hash_of(config(pathf("server_name = sync01\nrules = %s", rd3), NULL, NULL), h);
	CHECK(strcmp(h, base) != 0); /* one rule file changed */
	hash_of(config("server_name = sync01", NULL, NULL), h);
	CHECK(strcmp(h, base) != 0); /* no rules at all */
	hash_of(config(sync,
	               pathf("uri = ldaps://dc1.corp.example.com\n"
	                     "bind_dn = CN=svc,OU=Service,DC=corp,DC=example,DC=com\n"
	                     "bind_password_file = %s/ad-password\n"
	                     "base_dn = DC=example,DC=com",
	                     dir),
	               NULL),
	        h);
	CHECK(strcmp(h, base) != 0); /* base_dn */

	CHECK(!conf_key_in_hash("sync", "staging"));
	CHECK(!conf_key_in_hash("sync", "interval"));
	CHECK(!conf_key_in_hash("sync", "rules"));
	CHECK(!conf_key_in_hash("ad", "bind_password_file"));
	CHECK(!conf_key_in_hash("graph", "ca_file"));
	CHECK(conf_key_in_hash("sync", "deletion_threshold"));
	CHECK(conf_key_in_hash("ad", "base_dn"));
	CHECK(conf_key_in_hash("graph", "soft_match"));
	CHECK(conf_key_in_hash("rules", NULL));
	CHECK(!conf_key_in_hash("graph", "nonexistent"));
	CHECK(!conf_key_in_hash(NULL, "staging"));
}

static void test_export(void)
{
	KEEP(rd, "%s/rules.d", dir);
	char hash[CONF_HASH_HEX_SIZE];
	char *full, *pretty, *hashed;
	struct conf *c;

	c = load_ok(config(pathf("server_name = sync01\nrules = %s", rd), NULL,
	                   pathf("tenant = 11111111-2222-3333-4444-555555555555\n"
	                         "client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n"
	                         "certificate_file = %s/cert.pem\nkey_file = %s/key.pem",
	                         dir, dir)));
	if (!c)
		return;
	full = conf_export_json(c, false, false);
	pretty = conf_export_json(c, false, true);
	hashed = conf_export_json(c, true, false);
	CHECK(full && pretty && hashed && conf_hash(c, hash) == 0);
	if (full && pretty && hashed) {
		/* no secret value in any form of the export (SPEC §3 invariant 5) */
		CHECK(strstr(full, "AD-PASSWORD") == NULL && strstr(pretty, "AD-PASSWORD") == NULL);
		CHECK(strstr(full, "KEY-MARKER") == NULL && strstr(pretty, "KEY-MARKER") == NULL);
		CHECK(strstr(hashed, "AD-PASSWORD") == NULL &&
		      strstr(hashed, "KEY-MARKER") == NULL);
		/* references: in the export, not in the hashed part */
		CHECK(strstr(full, "\"bind_password_file\":\"") != NULL);
		CHECK(strstr(hashed, "bind_password_file") == NULL);
		CHECK(strstr(hashed, dir) == NULL); /* no local path at all */
		CHECK(strstr(hashed, "staging") == NULL && strstr(hashed, "server_name") == NULL);
		CHECK(strstr(hashed, "interval") == NULL && strstr(hashed, "config_hash") == NULL);
		CHECK(strncmp(full, "{\"ad\":{\"allow_insecure\":false,\"base_dn\":", 40) == 0);
		CHECK(strstr(full, pathf("\"config_hash\":\"%s\"", hash)) != NULL);
		CHECK(strstr(full, "\"deletion_threshold\":{\"count\":500}") != NULL);
		CHECK(strstr(full, "\"interval\":1800") != NULL);
		CHECK(strstr(full, "\"write_budget\":{\"seconds\":150,\"writes\":3000}") != NULL);
		CHECK(strstr(full, "\"hybridsync_config\":1") != NULL);
		CHECK(strstr(full, "\"rules\":[{\"content\":[1.5,\"x\xc3\xa9\"],\"file\":"
		                   "\"10-users.json\"}") != NULL);
		CHECK(strstr(full, "\"client_secret_file\":null") != NULL);
		CHECK(strstr(pretty, "{\n  \"ad\": {\n    \"allow_insecure\": false,\n") == pretty);
		CHECK(pretty[strlen(pretty) - 1] == '\n');
	}
	free(full);
	free(pretty);
	free(hashed);
	CHECK(conf_export_json(NULL, false, false) == NULL);
	conf_free(c);
}

static int write_import(const struct conf_import *imp, const char *conf_path, const char *rules)
{
	mkdir(rules, 0755);
	write_file(conf_path, imp->conf_text, 0644);
	for (size_t i = 0; i < imp->n_rules; i++)
		write_file(pathf("%s/%s", rules, imp->rules[i].name), imp->rules[i].content, 0644);
	return 0;
}

static void test_import_round_trip(void)
{
	KEEP(rd, "%s/rules.d", dir);
	KEEP(rules2, "%s/imported-rules", dir);
	KEEP(conf2, "%s/imported.conf", dir);
	char h1[CONF_HASH_HEX_SIZE], h2[CONF_HASH_HEX_SIZE];
	struct conf_errors *errors = NULL;
	struct conf_import *imp = NULL;
	struct conf *c, *c2 = NULL;
	char *json;
	int r;

	c = load_ok(config(pathf("server_name = primary\nstaging = no\nforce_promotion = yes\n"
	                         "interval = 2h30min\nrules = %s\ndeletion_threshold = 7%%\n"
	                         "metrics_file =",
	                         rd),
	                   ad_with("include = OU=B,DC=corp,DC=example,DC=com\n"
	                           "include = OU=A,DC=corp,DC=example,DC=com\n"
	                           "exclude = OU=X,OU=A,DC=corp,DC=example,DC=com\n"
	                           "page_size = 250\nchange_tracking = dirsync"),
	                   graph_with("domains = corp.example.com\nsoft_match = no\n"
	                              "write_budget = 100/90s")));
	if (!c)
		return;
	json = conf_export_json(c, false, true);
	CHECK(json && conf_hash(c, h1) == 0);
	r = conf_import_json(json, rules2, &imp, &errors);
	CHECK_INT_EQ(r, 0);
	for (size_t i = 0; errors && i < errors->n; i++)
		fprintf(stderr, "import: %s\n", errors->v[i].text);
	errors = conf_errors_free(errors);
	if (imp) {
		CHECK(strstr(imp->conf_text, "\n[sync]\nstaging = yes\n") != NULL);
		CHECK(strstr(imp->conf_text, "server_name") == NULL ||
		      strstr(imp->conf_text, "server_name =") == NULL);
		CHECK(strstr(imp->conf_text, "force_promotion =") == NULL);
		CHECK(strstr(imp->conf_text, "interval = 150min\n") != NULL);
		CHECK(strstr(imp->conf_text, "metrics_file =\n") != NULL);
		CHECK(strstr(imp->conf_text, pathf("rules = %s\n", rules2)) != NULL);
		CHECK(strstr(imp->conf_text, "AD-PASSWORD") == NULL);
		CHECK(imp->n_rules == 2);
		write_import(imp, conf2, rules2);
		r = conf_load(conf2, &c2, &errors);
		CHECK_INT_EQ(r, 0);
		for (size_t i = 0; errors && i < errors->n; i++)
			fprintf(stderr, "reload: %s\n", errors->v[i].text);
		errors = conf_errors_free(errors);
		if (c2) {
			CHECK(conf_hash(c2, h2) == 0);
			CHECK_STR_EQ(h1, h2);
			CHECK(c2->sync.staging && !c2->sync.force_promotion);
			CHECK(c2->sync.interval == 9000 && c2->sync.metrics_file == NULL);
			CHECK(c2->graph.write_budget.seconds == 90);
		}
		conf_free(c2);
	}
	imp = conf_import_free(imp);
	CHECK(imp == NULL);

	r = conf_import_json(json, "rules.d", &imp, &errors);
	CHECK_INT_EQ(r, -EINVAL);
	CHECK(errors && errors->n == 1 && strstr(errors->v[0].text, "absolute path"));
	errors = conf_errors_free(errors);

	/* keeping the exported rules path */
	r = conf_import_json(json, NULL, &imp, &errors);
	CHECK_INT_EQ(r, 0);
	CHECK(imp && strstr(imp->conf_text, pathf("rules = %s\n", rd)) != NULL);
	imp = conf_import_free(imp);
	free(json);

	/* refused: changed content, injection, unknown keys, unsafe rule names, other versions */
	json = conf_export_json(c, false, false);
	if (json) {
		static const struct {
			const char *from, *to, *error;
		} tamper[] = {
		    {"DC=corp,DC=example,DC=com\",\"bind_dn",
		     "DC=evil,DC=example,DC=com\",\"bind_dn", "does not match the content"},
		    {"\"uri\":\"ldaps://dc1.corp.example.com\"",
		     "\"uri\":\"ldaps://x\\n[sync]\\nstaging = no\"", "ad.uri"},
		    {"\"page_size\":250", "\"page_size\":250,\"colour\":1",
		     "unknown key \"colour\""},
		    {"\"10-users.json\"", "\"../10-users.json\"", "rules[0]"},
		    {"\"hybridsync_config\":1", "\"hybridsync_config\":2", "version 1"},
		    {"\"page_size\":250", "\"page_size\":\"250\"", "ad.page_size"},
		    {"{\"ad\"", "[{\"ad\"", "invalid JSON"},
		};
		for (size_t i = 0; i < sizeof(tamper) / sizeof(tamper[0]); i++) {
			char *p = strstr(json, tamper[i].from), *t = NULL;

			CHECK(p != NULL);
			if (!p)
				continue;
			CHECK(asprintf(&t, "%.*s%s%s", (int)(p - json), json, tamper[i].to,
			               p + strlen(tamper[i].from)) > 0);
			r = conf_import_json(t, rules2, &imp, &errors);
			CHECK_INT_EQ(r, -EINVAL);
			CHECK(imp == NULL);
			CHECK(errors && errors->n >= 1);
			if (errors && errors->n >= 1) {
				bool found = false;

				for (size_t j = 0; j < errors->n; j++)
					found = found || strstr(errors->v[j].text, tamper[i].error);
				if (!found)
					fprintf(stderr, "tamper %zu: got '%s'\n", i,
					        errors->v[0].text);
				CHECK(found);
			}
			errors = conf_errors_free(errors);
			free(t);
		}
	}
	free(json);
	conf_free(c);
}

int main(void)
{
	char tmpl[] = "/tmp/hs-test-conf.XXXXXX";

	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(dir, sizeof(dir), "%s", tmpl);
	unsetenv("CREDENTIALS_DIRECTORY");
	write_file(pathf("%s/ad-password", dir), "AD-PASSWORD\n", 0600);
	write_file(pathf("%s/graph-secret", dir), "line1\nGRAPH-SECRET\n\n", 0600);
	write_file(pathf("%s/cert.pem", dir), "-----BEGIN CERTIFICATE-----\n", 0644);
	write_file(pathf("%s/key.pem", dir), "KEY-MARKER\n", 0600);

	test_booleans();
	test_durations();
	test_threshold_budget_numbers();
	test_uris();
	test_insecure();
	test_dns();
	test_guids_domains_extension();
	test_graph_auth();
	test_syntax();
	test_missing_required();
	test_all_errors_collected();
	test_too_many_errors();
	test_empty_and_paths();
	test_load_file();
	test_secret_reading();
	test_secret_files();
	test_credentials();
	test_rules();
	test_hash_coverage();
	test_export();
	test_import_round_trip();

	if (getenv("HS_KEEP") == NULL) {
		char *cmd = NULL;

		if (asprintf(&cmd, "rm -rf '%s'", dir) > 0 && system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
		free(cmd);
	}
	return check_finish();
}
