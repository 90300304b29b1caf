/* hs-graph: runs one Graph connector step against the store named in a config, for integration
 * tests and benchmarks. Prints one JSON line; exit 0 when the step completed, 1 when it stopped.
 *
 *   hs-graph -c CONF import [--full]
 *   hs-graph -c CONF export
 *   hs-graph -c CONF lease-read
 *   hs-graph -c CONF lease-write HOLDER HASH [NOW]
 *   hs-graph -c CONF seed-export FILE   pending exports from JSON (what sync would queue)
 *   hs-graph -c CONF cs                 the Graph connector space as JSON
 *   hs-graph -c CONF exports            the Graph pending exports and their states as JSON
 * HS_GRAPH_DEBUG=1: debug logging; HS_GRAPH_CANCEL_AFTER=N: cancel the step at its N+1-th
 * cancellation poll. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hybridsync/conf.h"
#include "hybridsync/graph.h"
#include "hybridsync/log.h"
#include "hybridsync/store.h"

static void usage(void)
{
	fprintf(stderr, "usage: hs-graph -c CONF import [--full] | export | lease-read | "
	                "lease-write HOLDER HASH [NOW] | seed-export FILE | cs | exports\n");
	exit(2);
}

static void print_result(const char *step, const struct graph_step_result *res,
                         const struct graph *g)
{
	struct graph_budget b;
	cJSON *j = cJSON_CreateObject();
	char *s;

	graph_get_budget(g, &b);
	cJSON_AddStringToObject(j, "step", step);
	cJSON_AddStringToObject(j, "status", res->status);
	cJSON_AddBoolToObject(j, "full", res->full);
	cJSON_AddNumberToObject(j, "adds", (double)res->counters.adds);
	cJSON_AddNumberToObject(j, "updates", (double)res->counters.updates);
	cJSON_AddNumberToObject(j, "deletes", (double)res->counters.deletes);
	cJSON_AddNumberToObject(j, "errors", (double)res->counters.errors);
	cJSON_AddNumberToObject(j, "objects", (double)res->counters.objects);
	cJSON_AddNumberToObject(j, "write_requests", (double)res->write_requests);
	cJSON_AddNumberToObject(j, "throttled", (double)res->throttled);
	cJSON_AddNumberToObject(j, "budget_used_window", (double)b.used_window);
	cJSON_AddNumberToObject(j, "budget", (double)b.budget);
	cJSON_AddNumberToObject(j, "budget_window", (double)b.window);
	cJSON_AddStringToObject(j, "error", res->error);
	s = cJSON_PrintUnformatted(j);
	printf("%s\n", s);
	cJSON_free(s);
	cJSON_Delete(j);
}

static bool completed(const char *status)
{
	return strcmp(status, "success") == 0 || strncmp(status, "completed", 9) == 0;
}

/* HS_GRAPH_CANCEL_AFTER=N: the step is cancelled at the N+1-th poll (a SIGTERM, a demotion). */
static bool cancelled_cb(void *userdata)
{
	long *polls = userdata;
	const char *v = getenv("HS_GRAPH_CANCEL_AFTER");

	if (!v)
		return false;
	return ++*polls > strtol(v, NULL, 10);
}

static int run_step(struct conf *c, struct store *s, const char *what, bool full)
{
	char err[512] = "", hash[CONF_HASH_HEX_SIZE];
	struct graph_step_result res = {0};
	struct graph *g = NULL;
	int64_t run = 0, step = 0;
	long polls = 0;
	bool export = strcmp(what, "export") == 0;
	enum store_step_type type =
	    export ? STORE_STEP_EXPORT : (full ? STORE_STEP_FULL_IMPORT : STORE_STEP_DELTA_IMPORT);
	int r;

	r = graph_new(c, &g, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "hs-graph: graph_new: %s: %s\n", strerror(-r), err);
		return 1;
	}
	if (conf_hash(c, hash) < 0)
		hash[0] = '\0';
	r = store_run_begin(s, STORE_RUN_DELTA, hash, &run);
	if (r >= 0)
		r = store_run_step_begin(s, run, GRAPH_CONNECTOR, type, &step);
	if (r < 0) {
		fprintf(stderr, "hs-graph: store: %s\n", strerror(-r));
		graph_free(g);
		return 1;
	}
	if (export) {
		struct graph_export_opts o = {.run_id = run, .step_id = step};
		o.cancelled = cancelled_cb;
		o.userdata = &polls;
		r = graph_export(g, s, &o, &res);
	} else {
		struct graph_import_opts o = {.full = full, .run_id = run, .step_id = step};
		o.cancelled = cancelled_cb;
		o.userdata = &polls;
		r = graph_import(g, s, &o, &res);
	}
	if (r < 0 && !res.status[0])
		snprintf(res.status, sizeof(res.status), "stopped-error");
	if (r < 0 && !res.error[0])
		snprintf(res.error, sizeof(res.error), "%s", strerror(-r));
	store_run_step_end(s, step, res.status, &res.counters);
	store_run_end(s, run, res.status);
	print_result(what, &res, g);
	graph_free(g);
	return completed(res.status) && r >= 0 ? 0 : 1;
}

static int lease(struct conf *c, int argc, char **argv, bool write)
{
	char err[512] = "";
	struct graph *g = NULL;
	struct graph_lease l;
	int r;

	r = graph_new(c, &g, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "hs-graph: graph_new: %s\n", err);
		return 1;
	}
	if (write) {
		if (argc < 2)
			usage();
		int64_t now = argc > 2 ? strtoll(argv[2], NULL, 10) : (int64_t)time(NULL);
		r = graph_lease_write(g, argv[0], argv[1], now);
		printf("{\"lease_write\":%d}\n", r);
	} else {
		r = graph_lease_read(g, &l);
		cJSON *j = cJSON_CreateObject();
		cJSON_AddBoolToObject(j, "found", r == 1);
		cJSON_AddNumberToObject(j, "result", r);
		if (r == 1) {
			cJSON_AddStringToObject(j, "holder", l.holder);
			cJSON_AddStringToObject(j, "config_hash", l.config_hash);
			cJSON_AddNumberToObject(j, "renewed", (double)l.renewed);
			cJSON_AddStringToObject(j, "object_id", l.object_id);
		}
		char *s = cJSON_PrintUnformatted(j);
		printf("%s\n", s);
		cJSON_free(s);
		cJSON_Delete(j);
	}
	graph_free(g);
	return r < 0 ? 1 : 0;
}

/* --- seed-export ------------------------------------------------------------------------------ */

static int values_of(const cJSON *v, struct attr_value **ret, size_t *ret_n)
{
	size_t n = 0;
	struct attr_value *a;

	*ret = NULL;
	*ret_n = 0;
	if (!v || cJSON_IsNull(v))
		return 0;
	a = calloc(cJSON_IsArray(v) ? (size_t)cJSON_GetArraySize(v) + 1 : 1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	if (cJSON_IsArray(v)) {
		const cJSON *it;
		cJSON_ArrayForEach(it, v)
		{
			if (cJSON_IsString(it))
				a[n++] =
				    (struct attr_value){it->valuestring, strlen(it->valuestring)};
		}
	} else if (cJSON_IsString(v)) {
		a[n++] = (struct attr_value){v->valuestring, strlen(v->valuestring)};
	} else if (cJSON_IsBool(v)) {
		const char *b = cJSON_IsTrue(v) ? "true" : "false";
		a[n++] = (struct attr_value){b, strlen(b)};
	}
	*ret = a;
	*ret_n = n;
	return 0;
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int seed_one(struct store *s, int64_t conn, const cJSON *e)
{
	const char *op = jstr(e, "op"), *type = jstr(e, "type"), *anchor = jstr(e, "anchor");
	const char *target = jstr(e, "target_id");
	const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(e, "attrs");
	const cJSON *old = cJSON_GetObjectItemCaseSensitive(e, "old");
	const cJSON *members = cJSON_GetObjectItemCaseSensitive(e, "members"), *it;
	struct store_export_spec spec = {0};
	struct store_member_change *mc = NULL;
	struct attr_diff *d = attr_diff_new();
	struct store_mv_object *mv = NULL;
	struct store_cs_object *cs = NULL;
	size_t n_mc = 0;
	int r;

	if (!op || !type || !anchor || !d)
		return -EINVAL;
	cJSON_ArrayForEach(it, attrs)
	{
		struct attr_value *nv, *ov;
		size_t nn, on;
		static const struct attr_value unknown = {"(unknown)", 9};
		values_of(it, &nv, &nn);
		values_of(cJSON_GetObjectItemCaseSensitive(old, it->string), &ov, &on);
		r = attr_diff_put(d, it->string, on ? ov : (nn ? NULL : &unknown), on ? on : !nn,
		                  nv, nn);
		free(nv);
		free(ov);
		if (r < 0)
			goto out;
	}
	mc = calloc((size_t)cJSON_GetArraySize(members) + 1, sizeof(*mc));
	cJSON_ArrayForEach(it, members)
	{
		const char *mop = jstr(it, "op");
		mc[n_mc].op =
		    mop && strcmp(mop, "remove") == 0 ? STORE_MEMBER_REMOVE : STORE_MEMBER_ADD;
		mc[n_mc].member_anchor = jstr(it, "anchor");
		mc[n_mc].target_id = jstr(it, "target_id");
		n_mc++;
	}
	spec.connector_id = conn;
	spec.op = (enum store_export_op)store_export_op_from_string(op);
	spec.object_type = type;
	spec.anchor = anchor;
	spec.dn = anchor;
	spec.target_id = target;
	spec.changes = d;
	spec.members = mc;
	spec.n_members = n_mc;
	spec.rules = "hs-graph seed";
	spec.cause = "hs-graph seed-export";
	if (target && store_cs_get_by_anchor(s, conn, target, strlen(target), &cs) == 0)
		spec.cs_id = cs->id;
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "mv"))) {
		int64_t id = 0;
		r = store_mv_get_by_source_anchor(s, anchor, &mv);
		if (r == 0)
			id = mv->id;
		else
			r = store_mv_create(s, strcmp(type, "group") == 0 ? "group" : "person",
			                    anchor, NULL, &id);
		if (r < 0)
			goto out;
		spec.mv_id = id;
		if (cs)
			store_cs_set_mv(s, cs->id, id);
	}
	r = store_export_upsert(s, &spec, NULL, NULL);
out:
	attr_diff_free(d);
	free(mc);
	store_mv_object_free(mv);
	store_cs_object_free(cs);
	return r;
}

static int seed(struct store *s, const char *file)
{
	FILE *f = fopen(file, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	cJSON *j, *it;
	int64_t conn;
	int r = 0, count = 0;

	if (!f) {
		perror(file);
		return 1;
	}
	do {
		if (len + 65536 > cap) {
			cap = cap ? 2 * cap : 131072;
			buf = realloc(buf, cap);
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	j = cJSON_Parse(buf);
	free(buf);
	if (!cJSON_IsArray(j)) {
		fprintf(stderr, "hs-graph: %s: not a JSON array\n", file);
		cJSON_Delete(j);
		return 1;
	}
	store_get_connector(s, GRAPH_CONNECTOR, &conn);
	store_begin(s);
	cJSON_ArrayForEach(it, j)
	{
		r = seed_one(s, conn, it);
		if (r < 0) {
			fprintf(stderr, "hs-graph: seed %d: %s\n", count, strerror(-r));
			break;
		}
		count++;
	}
	if (r < 0)
		store_rollback(s);
	else
		store_commit(s);
	cJSON_Delete(j);
	printf("{\"seeded\":%d}\n", count);
	return r < 0 ? 1 : 0;
}

/* --- dumps ------------------------------------------------------------------------------------ */

static int ref_cb(const struct store_ref *r, void *userdata)
{
	cJSON_AddItemToArray(userdata, cJSON_CreateString(r->target_dn));
	return 0;
}

static int mem_cb(const struct store_export_member *m, void *userdata)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "member", m->member);
	cJSON_AddStringToObject(o, "op", store_member_op_to_string(m->op));
	cJSON_AddItemToArray(userdata, o);
	return 0;
}

struct dump {
	struct store *s;
	cJSON *arr;
};

static int cs_cb(const struct store_cs_object *o, void *userdata)
{
	struct dump *d = userdata;
	cJSON *j = cJSON_CreateObject(), *a = cJSON_AddObjectToObject(j, "attrs");
	cJSON *refs = cJSON_AddArrayToObject(j, "members");
	cJSON *mm = cJSON_AddArrayToObject(j, "member_memory");
	struct attr_diff *mem = NULL;

	cJSON_AddStringToObject(j, "id", o->dn);
	cJSON_AddStringToObject(j, "class", o->object_class);
	cJSON_AddStringToObject(j, "pending", store_pending_import_to_string(o->pending_import));
	cJSON_AddNumberToObject(j, "mv_id", (double)o->mv_id);
	for (size_t i = 0; i < attr_set_count(o->attrs); i++) {
		const char *name;
		const struct attr_value *v;
		size_t n;
		attr_set_at(o->attrs, i, &name, &v, &n);
		cJSON *vals = cJSON_AddArrayToObject(a, name);
		for (size_t k = 0; k < n; k++)
			cJSON_AddItemToArray(vals, cJSON_CreateString(v[k].data));
	}
	store_cs_get_refs(d->s, o->id, "member", ref_cb, refs);
	store_cs_list_export_members(d->s, o->id, mem_cb, mm);
	int n_mem = 0;
	if (store_cs_get_export_memory(d->s, o->id, &mem, NULL) == 0 && mem)
		n_mem = (int)attr_diff_count(mem);
	attr_diff_free(mem);
	cJSON_AddNumberToObject(j, "attr_memory", n_mem);
	cJSON_AddItemToArray(d->arr, j);
	return 0;
}

static int exp_cb(const struct store_export *e, void *userdata)
{
	cJSON *j = cJSON_CreateObject();

	cJSON_AddStringToObject(j, "op", store_export_op_to_string(e->op));
	cJSON_AddStringToObject(j, "type", e->object_type);
	cJSON_AddStringToObject(j, "anchor", e->anchor);
	cJSON_AddStringToObject(j, "state", store_export_state_to_string(e->state));
	cJSON_AddNumberToObject(j, "attempts", e->attempts);
	if (e->error_code)
		cJSON_AddStringToObject(j, "error_code", e->error_code);
	if (e->error_message)
		cJSON_AddStringToObject(j, "error_message", e->error_message);
	cJSON_AddItemToArray(userdata, j);
	return 0;
}

static int dump(struct store *s, bool cs)
{
	struct dump d = {.s = s, .arr = cJSON_CreateArray()};
	int64_t conn;
	char *out;

	store_get_connector(s, GRAPH_CONNECTOR, &conn);
	if (cs) {
		store_cs_iterate(s, conn, cs_cb, &d);
	} else {
		struct store_export_filter f = {.connector_id = conn};
		store_export_list(s, &f, exp_cb, d.arr);
	}
	out = cJSON_PrintUnformatted(d.arr);
	printf("%s\n", out);
	cJSON_free(out);
	cJSON_Delete(d.arr);
	return 0;
}

int main(int argc, char **argv)
{
	struct conf_errors *errs = NULL;
	struct conf *c = NULL;
	struct store *s = NULL;
	char err[512] = "";
	const char *conf_path = NULL, *cmd;
	int i = 1, r, rc = 1;

	log_setup("hs-graph", LOG_TARGET_STDERR);
	if (getenv("HS_GRAPH_DEBUG"))
		log_set_max_level(LOG_DEBUG);
	if (argc > 2 && strcmp(argv[1], "-c") == 0) {
		conf_path = argv[2];
		i = 3;
	}
	if (!conf_path || i >= argc)
		usage();
	cmd = argv[i++];
	r = conf_load(conf_path, &c, &errs);
	if (r < 0) {
		for (size_t k = 0; errs && k < errs->n; k++)
			fprintf(stderr, "%s\n", errs->v[k].text);
		conf_errors_free(errs);
		return 1;
	}
	if (strcmp(cmd, "lease-read") == 0 || strcmp(cmd, "lease-write") == 0) {
		rc = lease(c, argc - i, argv + i, cmd[6] == 'w');
		goto out;
	}
	r = store_open(c->sync.database, 0, &s, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "hs-graph: cannot open %s: %s %s\n", c->sync.database, strerror(-r),
		        err);
		goto out;
	}
	if (strcmp(cmd, "import") == 0)
		rc = run_step(c, s, "import", i < argc && strcmp(argv[i], "--full") == 0);
	else if (strcmp(cmd, "export") == 0)
		rc = run_step(c, s, "export", false);
	else if (strcmp(cmd, "seed-export") == 0 && i < argc)
		rc = seed(s, argv[i]);
	else if (strcmp(cmd, "cs") == 0)
		rc = dump(s, true);
	else if (strcmp(cmd, "exports") == 0)
		rc = dump(s, false);
	else
		usage();
out:
	store_close(s);
	conf_free(c);
	return rc;
}
