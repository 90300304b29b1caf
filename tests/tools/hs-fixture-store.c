/* hs-fixture-store: fills a store from a JSON description, for the hybridsyncctl tests, until
 * the connectors and the sync engine fill real ones.
 *
 *   hs-fixture-store DB FIXTURE.json     create DB (or add to it) from the fixture
 *   hs-fixture-store --churn SECONDS DB  keep writing pending exports for SECONDS (a busy daemon)
 *
 * FIXTURE.json (every member optional):
 * {
 *   "state":   {"daemon.pid": "123", ...},                  store_state_set (null deletes)
 *   "cs":      [{"connector": "ad", "anchor": "...", "dn": "...", "class": "user",
 *                "attributes": {"cn": "x", "proxyAddresses": ["a", "b"]},
 *                "refs": {"member": ["CN=..."]}}],
 *   "runs":    [{"type": "delta", "status": "success", "config_hash": "...",
 *                "steps": [{"connector": "ad", "step": "delta-import", "status": "success",
 *                           "counters": {"adds": 1, "updates": 0, "deletes": 0, "errors": 0,
 *                                        "objects": 1},
 *                           "errors": [{"anchor", "dn", "code", "message", "request_id"}]}],
 *                "errors": [...run-level errors...]}],          status null: left running
 *   "exports": [{"connector": "graph", "op": "update", "type": "user", "anchor": "...",
 *                "dn": "...", "target_id": "...",
 *                "changes": {"displayName": {"old": ["A"], "new": ["B"]}},
 *                "members": [{"op": "add", "anchor": "...", "target_id": "..."}],
 *                "rules": "...", "cause": "...", "state": "error",
 *                "error": {"code": "...", "message": "...", "request_id": "..."}}],
 *   "audit":   [{"kind": "...", "uid": 0, "detail": "...", "fingerprint": "..."}],
 *   "lease":   {"holder": "...", "config_hash": "...", "renewed": 1700000000, "object_id": "..."}
 * }
 * Runs are written in order, so the last one is the newest. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "hybridsync/attr.h"
#include "hybridsync/store.h"

static const char *str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t num(const cJSON *o, const char *name, int64_t def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : def;
}

static int fail(const char *what, int r)
{
	fprintf(stderr, "hs-fixture-store: %s: %s\n", what, strerror(r < 0 ? -r : r));
	return -1;
}

/* A JSON string or array of strings into value list `out` (at most max). */
static size_t values(const cJSON *v, struct attr_value *out, size_t max)
{
	const cJSON *e;
	size_t n = 0;

	if (cJSON_IsString(v)) {
		out[0] = (struct attr_value){v->valuestring, strlen(v->valuestring)};
		return 1;
	}
	cJSON_ArrayForEach(e, v)
	{
		if (cJSON_IsString(e) && n < max)
			out[n++] = (struct attr_value){e->valuestring, strlen(e->valuestring)};
	}
	return n;
}

static int load_state(struct store *s, const cJSON *state)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, state)
	{
		int r = store_state_set(s, e->string, cJSON_IsString(e) ? e->valuestring : NULL);

		if (r < 0)
			return fail(e->string, r);
	}
	return 0;
}

static int load_cs(struct store *s, const cJSON *list)
{
	const cJSON *o, *e;

	cJSON_ArrayForEach(o, list)
	{
		const char *anchor = str(o, "anchor"), *conn = str(o, "connector");
		struct attr_set *a = attr_set_new();
		struct attr_value v[64];
		int64_t cid, id;
		int r;

		if (!a || !anchor)
			return fail("cs: anchor", EINVAL);
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(o, "attributes"))
		{
			attr_set_replace(a, e->string, v, values(e, v, 64));
		}
		r = store_get_connector(s, conn ? conn : "ad", &cid);
		if (r >= 0) {
			struct store_cs_import in = {
			    .anchor = anchor,
			    .anchor_len = strlen(anchor),
			    .dn = str(o, "dn"),
			    .object_class = str(o, "class") ? str(o, "class") : "user",
			    .attrs = a,
			};
			r = store_cs_upsert(s, cid, &in, NULL, &id);
		}
		attr_set_free(a);
		if (r < 0)
			return fail("cs", r);
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(o, "refs"))
		{
			const char *dns[64];
			const cJSON *d;
			size_t n = 0;

			cJSON_ArrayForEach(d, e)
			{
				if (cJSON_IsString(d) && n < 64)
					dns[n++] = d->valuestring;
			}
			r = store_cs_set_refs(s, id, e->string, dns, n, NULL);
			if (r < 0)
				return fail("cs refs", r);
		}
	}
	return 0;
}

static int step_type(const char *name)
{
	for (int i = 0; i < STORE_STEP_TYPE_MAX; i++)
		if (name && strcmp(store_step_type_to_string((enum store_step_type)i), name) == 0)
			return i;
	return -EINVAL;
}

static int add_errors(struct store *s, int64_t run, int64_t step, const cJSON *list)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, list)
	{
		int r =
		    store_run_add_error(s, run, step, str(e, "anchor"), str(e, "dn"),
		                        str(e, "code"), str(e, "message"), str(e, "request_id"));
		if (r < 0)
			return fail("run error", r);
	}
	return 0;
}

static int load_runs(struct store *s, const cJSON *list)
{
	const cJSON *o, *st;

	cJSON_ArrayForEach(o, list)
	{
		const char *type = str(o, "type");
		int64_t run;
		int r = store_run_begin(
		    s, type && strcmp(type, "initial") == 0 ? STORE_RUN_INITIAL : STORE_RUN_DELTA,
		    str(o, "config_hash"), &run);

		if (r < 0)
			return fail("run", r);
		cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(o, "steps"))
		{
			const cJSON *c = cJSON_GetObjectItemCaseSensitive(st, "counters");
			struct store_step_counters k = {
			    .adds = (uint64_t)num(c, "adds", 0),
			    .updates = (uint64_t)num(c, "updates", 0),
			    .deletes = (uint64_t)num(c, "deletes", 0),
			    .errors = (uint64_t)num(c, "errors", 0),
			    .objects = (uint64_t)num(c, "objects", 0),
			};
			int t = step_type(str(st, "step"));
			int64_t step;

			if (t < 0)
				return fail("step type", t);
			r = store_run_step_begin(s, run,
			                         str(st, "connector") ? str(st, "connector") : "ad",
			                         (enum store_step_type)t, &step);
			if (r >= 0 &&
			    add_errors(s, run, step,
			               cJSON_GetObjectItemCaseSensitive(st, "errors")) < 0)
				return -1;
			if (r >= 0 && str(st, "status"))
				r = store_run_step_end(s, step, str(st, "status"), &k);
			if (r < 0)
				return fail("step", r);
		}
		if (add_errors(s, run, 0, cJSON_GetObjectItemCaseSensitive(o, "errors")) < 0)
			return -1;
		if (str(o, "status")) {
			r = store_run_end(s, run, str(o, "status"));
			if (r < 0)
				return fail("run end", r);
		}
	}
	return 0;
}

static int load_export(struct store *s, const cJSON *o)
{
	struct store_member_change m[64];
	struct attr_value ov[64], nv[64];
	struct attr_diff *d = attr_diff_new();
	const cJSON *e;
	const char *conn = str(o, "connector"), *state = str(o, "state");
	size_t n_members = 0;
	int64_t cid, id;
	int op = store_export_op_from_string(str(o, "op") ? str(o, "op") : "update"), r;

	if (!d || op < 0)
		return fail("export op", EINVAL);
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(o, "changes"))
	{
		size_t n_old = values(cJSON_GetObjectItemCaseSensitive(e, "old"), ov, 64);
		size_t n_new = values(cJSON_GetObjectItemCaseSensitive(e, "new"), nv, 64);

		r = attr_diff_put(d, e->string, ov, n_old, nv, n_new);
		if (r < 0)
			return attr_diff_free(d), fail(e->string, r);
	}
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(o, "members"))
	{
		const char *mop = str(e, "op");

		if (n_members < 64)
			m[n_members++] = (struct store_member_change){
			    .op = mop && strcmp(mop, "remove") == 0 ? STORE_MEMBER_REMOVE
			                                            : STORE_MEMBER_ADD,
			    .member_anchor = str(e, "anchor"),
			    .target_id = str(e, "target_id"),
			};
	}
	r = store_get_connector(s, conn ? conn : "graph", &cid);
	if (r >= 0) {
		struct store_export_spec spec = {
		    .connector_id = cid,
		    .op = (enum store_export_op)op,
		    .object_type = str(o, "type") ? str(o, "type") : "user",
		    .anchor = str(o, "anchor"),
		    .dn = str(o, "dn"),
		    .target_id = str(o, "target_id"),
		    .changes = d,
		    .members = m,
		    .n_members = n_members,
		    .rules = str(o, "rules"),
		    .cause = str(o, "cause"),
		};
		r = store_export_upsert(s, &spec, NULL, &id);
	}
	attr_diff_free(d);
	if (r < 0)
		return fail("export", r);
	if (state) {
		const cJSON *err = cJSON_GetObjectItemCaseSensitive(o, "error");
		int st = store_export_state_from_string(state);

		if (st < 0)
			return fail(state, EINVAL);
		r = store_export_set_state(s, id, (enum store_export_state)st, str(err, "code"),
		                           str(err, "message"), str(err, "request_id"));
		if (r < 0)
			return fail("export state", r);
	}
	return 0;
}

static int load_rest(struct store *s, const cJSON *doc)
{
	const cJSON *e, *lease = cJSON_GetObjectItemCaseSensitive(doc, "lease");

	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "exports"))
	{
		if (load_export(s, e) < 0)
			return -1;
	}
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "audit"))
	{
		int r = store_audit_add(s, str(e, "kind") ? str(e, "kind") : "test",
		                        num(e, "uid", -1), str(e, "detail"), str(e, "fingerprint"));
		if (r < 0)
			return fail("audit", r);
	}
	if (cJSON_IsObject(lease)) {
		int r = store_lease_set(s, str(lease, "holder"), str(lease, "config_hash"),
		                        num(lease, "renewed", (int64_t)time(NULL)),
		                        str(lease, "object_id"));
		if (r < 0)
			return fail("lease", r);
	}
	return 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	do {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 65536);
			if (!nb || cap > (64u << 20))
				return free(nb ? nb : buf), fclose(f), NULL;
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

static int churn(const char *db, const char *seconds)
{
	struct store *s = NULL;
	char err[256] = "", anchor[64], name[64];
	time_t end = time(NULL) + strtol(seconds, NULL, 10);
	int64_t cid;
	unsigned long n = 0;
	int r = store_open(db, 0, &s, err, sizeof(err));

	if (r < 0)
		return fprintf(stderr, "hs-fixture-store: %s: %s\n", db, err), 1;
	r = store_get_connector(s, "graph", &cid);
	while (r >= 0 && time(NULL) < end) {
		r = store_begin(s);
		for (int i = 0; r >= 0 && i < 50; i++, n++) {
			struct attr_value ov = {"old", 3}, nv = {name, 0};
			struct attr_diff *d = attr_diff_new();
			struct store_export_spec spec = {
			    .connector_id = cid,
			    .op = STORE_EXPORT_UPDATE,
			    .object_type = "user",
			    .anchor = anchor,
			    .changes = d,
			};

			snprintf(anchor, sizeof(anchor), "churn-%lu", n % 2000);
			snprintf(name, sizeof(name), "value %lu", n);
			nv.len = strlen(name);
			r = d ? attr_diff_put(d, "displayName", &ov, 1, &nv, 1) : -ENOMEM;
			if (r >= 0)
				r = store_export_upsert(s, &spec, NULL, NULL);
			attr_diff_free(d);
		}
		r = r >= 0 ? store_commit(s) : (store_rollback(s), r);
	}
	store_close(s);
	if (r < 0)
		return fail("churn", r), 1;
	printf("%lu writes\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	struct store *s = NULL;
	char err[256] = "", *text;
	cJSON *doc;
	int r;

	if (argc == 4 && strcmp(argv[1], "--churn") == 0)
		return churn(argv[3], argv[2]);
	if (argc != 3) {
		fprintf(stderr, "usage: hs-fixture-store DB FIXTURE.json | --churn SECONDS DB\n");
		return 2;
	}
	text = slurp(argv[2]);
	doc = text ? cJSON_Parse(text) : NULL;
	free(text);
	if (!doc)
		return fprintf(stderr, "hs-fixture-store: %s: cannot read or parse\n", argv[2]), 1;
	r = store_open(argv[1], 0, &s, err, sizeof(err));
	if (r < 0) {
		cJSON_Delete(doc);
		return fprintf(stderr, "hs-fixture-store: %s: %s\n", argv[1], err), 1;
	}
	r = store_begin(s);
	if (r >= 0 && (load_state(s, cJSON_GetObjectItemCaseSensitive(doc, "state")) < 0 ||
	               load_cs(s, cJSON_GetObjectItemCaseSensitive(doc, "cs")) < 0 ||
	               load_runs(s, cJSON_GetObjectItemCaseSensitive(doc, "runs")) < 0 ||
	               load_rest(s, doc) < 0))
		r = -1;
	r = r >= 0 ? store_commit(s) : (store_rollback(s), r);
	store_close(s);
	cJSON_Delete(doc);
	return r < 0 ? 1 : 0;
}
