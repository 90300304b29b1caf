/* Test driver of the sync engine: hs-sync -c CONF [--full] runs one sync step in a run and
 * prints its status and counters as one JSON line; --preview KEY prints sync_preview();
 * --load-cs FILE first loads connector-space fixtures (JSON lines, see load_line) into the
 * 'ad'/'graph' CS; --exports then prints the pending exports as readable, sorted text (for
 * golden files); --no-sync skips the sync; --attributes prints what the rules read. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "hybridsync/attr.h"
#include "hybridsync/conf.h"
#include "hybridsync/store.h"
#include "hybridsync/sync.h"

static int b64_decode(const char *in, unsigned char **ret, size_t *ret_len)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), j = 0;
	unsigned char *out = malloc(n / 4 * 3 + 4);
	unsigned acc = 0;
	int bits = 0;

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '=')
			break;
		const char *p = strchr(tbl, in[i]);
		if (!p || !in[i]) {
			free(out);
			return -EINVAL;
		}
		acc = (acc << 6) | (unsigned)(p - tbl);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[j++] = (unsigned char)(acc >> bits);
		}
	}
	*ret = out;
	*ret_len = j;
	return 0;
}

static int add_value(struct attr_set *a, const char *name, const char *v)
{
	if (strncmp(v, "b64:", 4) == 0) {
		unsigned char *b;
		size_t len;
		int r = b64_decode(v + 4, &b, &len);
		if (r < 0)
			return r;
		r = attr_set_add(a, name, b, len);
		free(b);
		return r < 0 ? r : 0;
	}
	return attr_set_add_string(a, name, v) < 0 ? -EINVAL : 0;
}

/* One line: {"connector":"ad","anchor":"b64:..."|"text","dn":...,"class":...,
 *  "attrs":{"name":"v"|["v",...]}, "refs":{"member":[dn,...]}, "delete":true} */
static int load_line(struct store *s, const char *line, unsigned lineno)
{
	cJSON *j = cJSON_Parse(line);
	struct attr_set *a = NULL;
	unsigned char *anchor = NULL;
	size_t anchor_len = 0;
	int r = -EINVAL;
	int64_t conn, id;

	if (!j) {
		fprintf(stderr, "line %u: not JSON\n", lineno);
		return -EINVAL;
	}
	const cJSON *c = cJSON_GetObjectItem(j, "connector");
	const cJSON *an = cJSON_GetObjectItem(j, "anchor");
	const cJSON *dn = cJSON_GetObjectItem(j, "dn");
	const cJSON *cls = cJSON_GetObjectItem(j, "class");
	if (!cJSON_IsString(c) || !cJSON_IsString(an)) {
		fprintf(stderr, "line %u: connector and anchor are required\n", lineno);
		goto out;
	}
	if ((r = store_get_connector(s, c->valuestring, &conn)) < 0)
		goto out;
	if (strncmp(an->valuestring, "b64:", 4) == 0) {
		if ((r = b64_decode(an->valuestring + 4, &anchor, &anchor_len)) < 0)
			goto out;
	} else {
		anchor = (unsigned char *)strdup(an->valuestring);
		anchor_len = strlen(an->valuestring);
	}
	if (cJSON_IsTrue(cJSON_GetObjectItem(j, "delete"))) {
		r = store_cs_mark_deleted(s, conn, anchor, anchor_len);
		goto out;
	}
	if (!cJSON_IsString(dn) || !cJSON_IsString(cls)) {
		fprintf(stderr, "line %u: dn and class are required\n", lineno);
		r = -EINVAL;
		goto out;
	}
	a = attr_set_new();
	const cJSON *attrs = cJSON_GetObjectItem(j, "attrs"), *it;
	cJSON_ArrayForEach(it, attrs)
	{
		if (cJSON_IsString(it)) {
			if ((r = add_value(a, it->string, it->valuestring)) < 0)
				goto out;
		} else if (cJSON_IsArray(it)) {
			const cJSON *v;
			cJSON_ArrayForEach(
			    v, it) if (cJSON_IsString(v) &&
			               (r = add_value(a, it->string, v->valuestring)) < 0) goto out;
		}
	}
	struct store_cs_import in = {.anchor = anchor,
	                             .anchor_len = anchor_len,
	                             .dn = dn->valuestring,
	                             .object_class = cls->valuestring,
	                             .attrs = a};
	if ((r = store_cs_upsert(s, conn, &in, NULL, &id)) < 0)
		goto out;
	const cJSON *refs = cJSON_GetObjectItem(j, "refs");
	cJSON_ArrayForEach(it, refs)
	{
		size_t n = (size_t)cJSON_GetArraySize(it), k = 0;
		const char **dns = calloc(n + 1, sizeof(*dns));
		const cJSON *v;
		cJSON_ArrayForEach(v, it) if (cJSON_IsString(v)) dns[k++] = v->valuestring;
		r = store_cs_set_refs(s, id, it->string, dns, k, NULL);
		free(dns);
		if (r < 0)
			goto out;
	}
	r = 0;
out:
	attr_set_free(a);
	free(anchor);
	cJSON_Delete(j);
	if (r < 0 && r != -EINVAL)
		fprintf(stderr, "line %u: %s (%s)\n", lineno, strerror(-r), store_last_error(s));
	return r;
}

static int load_cs(struct store *s, const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0, n = 0;
	int r = 0;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -errno;
	}
	if ((r = store_begin(s)) < 0)
		goto out;
	while (getline(&line, &cap, f) > 0) {
		lineno++;
		if (line[0] == '\n' || line[0] == '#')
			continue;
		if ((r = load_line(s, line, lineno)) < 0) {
			store_rollback(s);
			goto out;
		}
		if (++n % 1000 == 0 && ((r = store_commit(s)) < 0 || (r = store_begin(s)) < 0))
			goto out;
	}
	r = store_commit(s);
out:
	free(line);
	if (f != stdin)
		fclose(f);
	return r;
}

static void print_values(const char *name, const struct attr_value *v, size_t n)
{
	printf("    %s:", name);
	for (size_t i = 0; i < n; i++) {
		const unsigned char *p = v[i].data;
		bool text = true;
		for (size_t k = 0; k < v[i].len; k++)
			if (p[k] < 0x20)
				text = false;
		if (text)
			printf(" %s%s", i ? "| " : "", (const char *)v[i].data);
		else
			printf(" %s(%zu bytes)", i ? "| " : "", v[i].len);
	}
	printf("\n");
}

struct mem_lines {
	char **v;
	size_t n;
};

static int member_cb(const struct store_member_change *m, void *userdata)
{
	struct mem_lines *l = userdata;
	char buf[512];
	snprintf(buf, sizeof(buf), "    member %s %s%s%s", store_member_op_to_string(m->op),
	         m->member_anchor, m->target_id ? " -> " : "", m->target_id ? m->target_id : "");
	char **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	l->v = nv;
	l->v[l->n++] = strdup(buf);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int export_cb(const struct store_export *e, void *userdata)
{
	struct store *s = userdata;
	struct mem_lines l = {0};

	printf("%s %s %s\n", store_export_op_to_string(e->op), e->object_type, e->anchor);
	if (e->dn)
		printf("    dn: %s\n", e->dn);
	if (e->target_id)
		printf("    targetId: %s\n", e->target_id);
	for (size_t i = 0; i < attr_diff_count(e->changes); i++) {
		struct attr_change c;
		attr_diff_at(e->changes, i, &c);
		if (c.n_old) {
			char nm[300];
			snprintf(nm, sizeof(nm), "%s (old)", c.name);
			print_values(nm, c.old_values, c.n_old);
		}
		if (c.n_new)
			print_values(c.name, c.new_values, c.n_new);
		else
			printf("    %s: (removed)\n", c.name);
	}
	store_export_list_members(s, e->id, member_cb, &l);
	if (l.n)
		qsort(l.v, l.n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < l.n; i++) {
		printf("%s\n", l.v[i]);
		free(l.v[i]);
	}
	free(l.v);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: hs-sync -c CONF [--full] [--preview KEY] [--load-cs FILE] "
	                "[--exports] [--attributes]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},  {"full", no_argument, NULL, 'f'},
	    {"preview", required_argument, NULL, 'p'}, {"load-cs", required_argument, NULL, 'l'},
	    {"exports", no_argument, NULL, 'e'},       {"no-sync", no_argument, NULL, 'n'},
	    {"attributes", no_argument, NULL, 'a'},    {NULL, 0, NULL, 0}};
	const char *conf_path = NULL, *preview = NULL, *load = NULL;
	bool full = false, exports = false, no_sync = false, attributes = false;
	struct conf *c = NULL;
	struct conf_errors *errs = NULL;
	struct sync_rules *rules = NULL;
	struct store *s = NULL;
	char err[512] = "";
	int r, opt, rc = 1;

	while ((opt = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			conf_path = optarg;
			break;
		case 'f':
			full = true;
			break;
		case 'p':
			preview = optarg;
			break;
		case 'l':
			load = optarg;
			break;
		case 'e':
			exports = true;
			break;
		case 'n':
			no_sync = true;
			break;
		case 'a':
			attributes = true;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (!conf_path) {
		usage();
		return 2;
	}
	r = conf_load(conf_path, &c, &errs);
	if (r < 0) {
		for (size_t i = 0; errs && i < errs->n; i++)
			fprintf(stderr, "%s\n", errs->v[i].text);
		if (!errs)
			fprintf(stderr, "%s: %s\n", conf_path, strerror(-r));
		conf_errors_free(errs);
		return 1;
	}
	r = sync_rules_load(c, &rules, &errs);
	if (r < 0) {
		for (size_t i = 0; errs && i < errs->n; i++)
			fprintf(stderr, "%s\n", errs->v[i].text);
		if (!errs)
			fprintf(stderr, "rules: %s\n", strerror(-r));
		goto out;
	}
	if (attributes) {
		const char *conns[] = {"ad", "graph"};
		for (int k = 0; k < 2; k++) {
			size_t n;
			const char *const *v = sync_rules_attributes(rules, conns[k], &n);
			printf("%s:", conns[k]);
			for (size_t i = 0; i < n; i++)
				printf(" %s", v[i]);
			printf("\n");
		}
		rc = 0;
		goto out;
	}
	r = store_open(c->sync.database, 0, &s, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "%s: %s %s\n", c->sync.database, strerror(-r), err);
		goto out;
	}
	if (load) {
		if (load_cs(s, load) < 0)
			goto out;
		if (!preview && !exports && no_sync) {
			rc = 0;
			goto out;
		}
	}
	if (preview) {
		char *json = NULL;
		r = sync_preview(s, rules, preview, &json);
		if (r < 0) {
			fprintf(stderr, "preview %s: %s\n", preview, strerror(-r));
			goto out;
		}
		printf("%s\n", json);
		free(json);
		rc = 0;
		goto out;
	}
	if (!no_sync) {
		int64_t run_id, step_id;
		struct sync_result res;
		struct timespec t0, t1;
		struct rusage ru;
		if ((r = store_run_begin(s, full ? STORE_RUN_INITIAL : STORE_RUN_DELTA, "test",
		                         &run_id)) < 0 ||
		    (r = store_run_step_begin(s, run_id, "ad",
		                              full ? STORE_STEP_FULL_SYNC : STORE_STEP_DELTA_SYNC,
		                              &step_id)) < 0) {
			fprintf(stderr, "run: %s\n", strerror(-r));
			goto out;
		}
		struct sync_opts o = {.full = full, .run_id = run_id, .step_id = step_id};
		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = sync_run(s, rules, &o, &res);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		store_run_step_end(s, step_id, res.status, &res.counters);
		store_run_end(s, run_id, res.status);
		getrusage(RUSAGE_SELF, &ru);
		printf(
		    "{\"status\":\"%s\",\"rc\":%d,\"adds\":%llu,\"updates\":%llu,\"deletes\":%llu,"
		    "\"errors\":%llu,\"objects\":%llu,\"exports_changed\":%llu,\"ms\":%.1f,"
		    "\"maxrss_kb\":%ld}\n",
		    res.status, r, (unsigned long long)res.counters.adds,
		    (unsigned long long)res.counters.updates,
		    (unsigned long long)res.counters.deletes,
		    (unsigned long long)res.counters.errors,
		    (unsigned long long)res.counters.objects,
		    (unsigned long long)res.exports_changed,
		    (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
		    ru.ru_maxrss);
		if (r < 0) {
			fprintf(stderr, "sync: %s (%s)\n", strerror(-r), store_last_error(s));
			goto out;
		}
	}
	if (exports) {
		struct store_export_filter f = {0};
		if ((r = store_export_list(s, &f, export_cb, s)) < 0)
			goto out;
	}
	rc = 0;
out:
	store_close(s);
	sync_rules_free(rules);
	conf_errors_free(errs);
	conf_free(c);
	return rc;
}
