/* Unit tests for the Graph connector's pure parts: Graph JSON values to attribute text and
 * back, OData filter literals, percent-encoding, generated passwords; and the guards that need
 * no server: an http:// endpoint without allow_insecure is refused, and a staging server's
 * export and lease write are refused before any request. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/lib/graph_internal.h"
#include "check.h"
#include "hybridsync/attr.h"
#include "hybridsync/conf.h"
#include "hybridsync/graph.h"
#include "hybridsync/store.h"

static char tmpdir[256];

static void test_json_to_attr(void)
{
	cJSON *j = cJSON_Parse("{\"s\":\"x\",\"b\":true,\"f\":false,\"n\":42,\"d\":1.5,\"z\":null,"
	                       "\"a\":[\"p\",\"q\"],\"o\":{\"k\":1}}");
	struct attr_set *a = attr_set_new();
	const struct attr_value *v;
	size_t n = 0;

	CHECK(j && a);
	for (cJSON *it = j->child; it; it = it->next)
		CHECK_INT_EQ(graph_json_to_attr(a, it->string, it), 0);
	CHECK_STR_EQ(attr_set_get_string(a, "s"), "x");
	CHECK_STR_EQ(attr_set_get_string(a, "b"), "true");
	CHECK_STR_EQ(attr_set_get_string(a, "f"), "false");
	CHECK_STR_EQ(attr_set_get_string(a, "n"), "42");
	CHECK_STR_EQ(attr_set_get_string(a, "d"), "1.5");
	CHECK(!attr_set_has(a, "z"));
	CHECK_INT_EQ(attr_set_get(a, "a", &v, &n), 0);
	CHECK_INT_EQ(n, 2);
	CHECK_STR_EQ(attr_set_get_string(a, "o"), "{\"k\":1}");
	/* a later null removes the attribute */
	cJSON *null = cJSON_CreateNull();
	CHECK_INT_EQ(graph_json_to_attr(a, "s", null), 0);
	CHECK(!attr_set_has(a, "s"));
	cJSON_Delete(null);
	attr_set_free(a);
	cJSON_Delete(j);
}

static void test_attr_to_json(void)
{
	struct attr_value t = {"true", 4}, s = {"Ann", 3}, phones[2] = {{"1", 1}, {"2", 1}};
	cJSON *j;
	char *out;

	j = graph_attr_to_json("accountEnabled", &t, 1);
	CHECK(cJSON_IsTrue(j));
	cJSON_Delete(j);
	j = graph_attr_to_json("displayName", &s, 1);
	CHECK(cJSON_IsString(j) && strcmp(j->valuestring, "Ann") == 0);
	cJSON_Delete(j);
	j = graph_attr_to_json("jobTitle", NULL, 0);
	CHECK(cJSON_IsNull(j));
	cJSON_Delete(j);
	j = graph_attr_to_json("businessPhones", phones, 2);
	out = cJSON_PrintUnformatted(j);
	CHECK_STR_EQ(out, "[\"1\",\"2\"]");
	cJSON_free(out);
	cJSON_Delete(j);
	j = graph_attr_to_json("businessPhones", NULL, 0);
	CHECK(cJSON_IsArray(j) && cJSON_GetArraySize(j) == 0);
	cJSON_Delete(j);
}

static void test_filter_and_escape(void)
{
	char *f = graph_filter_eq("userPrincipalName", "o'brien@x.test");
	char *e = http_escape("a b/c+d=~");

	CHECK_STR_EQ(f, "userPrincipalName%20eq%20%27o%27%27brien%40x.test%27");
	CHECK_STR_EQ(e, "a%20b%2Fc%2Bd%3D~");
	free(f);
	free(e);
	const char *vals[] = {"QUFB", "it's"};
	f = graph_filter_in("onPremisesImmutableId", vals, 2);
	CHECK_STR_EQ(f, "onPremisesImmutableId%20in%20%28%27QUFB%27%2C%27it%27%27s%27%29");
	free(f);
}

static void test_password(void)
{
	char a[32], b[32];

	CHECK_INT_EQ(graph_random_password(a, 8), -EINVAL);
	CHECK_INT_EQ(graph_random_password(a, sizeof(a)), 0);
	CHECK_INT_EQ(graph_random_password(b, sizeof(b)), 0);
	CHECK_INT_EQ(strlen(a), 16);
	CHECK(strcmp(a, b) != 0);
	for (int k = 0; k < 200; k++) {
		int up = 0, lo = 0, dig = 0, sym = 0;
		CHECK_INT_EQ(graph_random_password(a, sizeof(a)), 0);
		for (const char *p = a; *p; p++) {
			if (*p >= 'A' && *p <= 'Z')
				up = 1;
			else if (*p >= 'a' && *p <= 'z')
				lo = 1;
			else if (*p >= '0' && *p <= '9')
				dig = 1;
			else
				sym = 1;
		}
		CHECK_INT_EQ(up + lo + dig + sym, 4);
	}
}

static struct conf *load(const char *endpoint, bool insecure, bool staging)
{
	char text[2048], secret[512];
	struct conf *c = NULL;
	struct conf_errors *errors = NULL;
	int fd, r;

	snprintf(secret, sizeof(secret), "%s/secret", tmpdir);
	fd = open(secret, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, "s3cret\n", 7) == 7);
	close(fd);
	snprintf(text, sizeof(text),
	         "[sync]\nstaging = %s\ndatabase = %s/db.sqlite\nserver_name = t\n"
	         "[ad]\nuri = ldaps://127.0.0.1:1\nbase_dn = dc=example,dc=test\n"
	         "[graph]\ntenant = 5f1d7e0e-3b1a-4f5e-9d55-1a2b3c4d5e6f\n"
	         "client_id = 9a8b7c6d-1111-2222-3333-444455556666\nclient_secret_file = %s\n"
	         "authority = %s\nendpoint = %s\nallow_insecure = %s\n",
	         staging ? "yes" : "no", tmpdir, secret, endpoint, endpoint,
	         insecure ? "yes" : "no");
	r = conf_load_string("t.conf", text, &c, &errors);
	if (r < 0 && errors)
		for (size_t i = 0; i < errors->n; i++)
			fprintf(stderr, "%s\n", errors->v[i].text);
	conf_errors_free(errors);
	return r < 0 ? NULL : c;
}

static void test_guards(void)
{
	struct conf *c;
	struct graph *g = NULL;
	struct store *s = NULL;
	struct graph_step_result res;
	struct graph_export_opts o = {0};
	char err[256], db[512];
	int r;

	/* http:// with allow_insecure is accepted; staging refuses export and lease writes */
	c = load("http://127.0.0.1:9", true, true);
	CHECK(c != NULL);
	if (!c)
		return;
	CHECK_INT_EQ(graph_new(c, &g, err, sizeof(err)), 0);
	snprintf(db, sizeof(db), "%s/db.sqlite", tmpdir);
	r = store_open(db, 0, &s, err, sizeof(err));
	CHECK_INT_EQ(r, 0);
	CHECK_INT_EQ(graph_export(g, s, &o, &res), -EPERM);
	CHECK_STR_EQ(res.status, "stopped-error");
	CHECK_INT_EQ(res.write_requests, 0);
	CHECK_INT_EQ(graph_lease_write(g, "me", "hash", 1), -EPERM);
	struct graph_budget b;
	graph_get_budget(g, &b);
	CHECK_INT_EQ(b.budget, 3000);
	CHECK_INT_EQ(b.window, 150);
	CHECK_INT_EQ(b.writes_total, 0);
	/* Below the export: any write reaching the request engine while staging aborts. */
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		struct gop op = {0};
		if (gop_set(&op, "POST", "/users", cJSON_CreateObject()) == 0)
			graph_run(g, &op, 1, true);
		_exit(0);
	}
	int st = 0;
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
	/* reads are allowed while staging (they fail here: nothing listens) */
	struct gop get = {0};
	CHECK_INT_EQ(gop_set(&get, "GET", "/users", NULL), 0);
	CHECK(graph_run(g, &get, 1, false) <= 0);
	gop_clear(&get);
	g = graph_free(g);
	store_close(s);
	conf_free(c);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_graph.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_json_to_attr();
	test_attr_to_json();
	test_filter_and_escape();
	test_password();
	test_guards();
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
	return check_finish();
}
