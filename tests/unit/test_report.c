/* Unit tests for the report builders (report.h) on a real store file: the status document
 * (daemon state keys, stopped when the pid is gone, last cycle, queue totals and fingerprint),
 * the pending exports (single and multi-valued old/new, binary values, members, errors,
 * filters) and the run history (newest first, steps, counters, errors, limits). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "hybridsync/report.h"
#include "hybridsync/status.h"
#include "hybridsync/store.h"

static char tmpdir[256];

static const cJSON *get(const cJSON *o, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(o, name);
}

static const char *gets_(const cJSON *o, const char *name)
{
	const cJSON *v = get(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double getn(const cJSON *o, const char *name)
{
	const cJSON *v = get(o, name);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static struct store *open_store(unsigned flags)
{
	char path[512], err[256] = "";
	struct store *s = NULL;
	int r;

	snprintf(path, sizeof(path), "%s/report.db", tmpdir);
	r = store_open(path, flags, &s, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "store_open: %s (%s)\n", strerror(-r), err);
	CHECK_INT_EQ(r, 0);
	return s;
}

static void put_export(struct store *s, enum store_export_op op, const char *type,
                       const char *anchor, const struct attr_diff *d,
                       const struct store_member_change *m, size_t n_members, int64_t *ret_id)
{
	int64_t graph;
	struct store_export_spec spec = {
	    .op = op,
	    .object_type = type,
	    .anchor = anchor,
	    .dn = "CN=x,DC=corp",
	    .target_id = op == STORE_EXPORT_ADD ? NULL : "tid",
	    .changes = d,
	    .members = m,
	    .n_members = n_members,
	    .rules = "Out to AAD - User Identity",
	    .cause = "ad update",
	};

	CHECK_INT_EQ(store_get_connector(s, "graph", &graph), 0);
	spec.connector_id = graph;
	CHECK_INT_EQ(store_export_upsert(s, &spec, NULL, ret_id), 0);
}

static void fill(struct store *s)
{
	struct attr_diff *d = attr_diff_new();
	struct attr_value a = {"Alice A", 7}, b = {"Alice B", 7};
	struct attr_value p[3] = {{"smtp:a@x", 8}, {"SMTP:b@x", 8}, {"smtp:c@x", 8}};
	struct attr_value bin = {"\x01\x02\xff", 3};
	struct store_member_change m[2] = {
	    {STORE_MEMBER_ADD, "anc-1", "tid-1"},
	    {STORE_MEMBER_REMOVE, "anc-2", NULL},
	};
	struct store_step_counters k = {.adds = 3, .objects = 7};
	int64_t run, step, id;

	CHECK_INT_EQ(attr_diff_put(d, "displayName", &a, 1, &b, 1), 0);
	CHECK_INT_EQ(attr_diff_put(d, "proxyAddresses", p, 2, p + 1, 2), 0);
	CHECK_INT_EQ(attr_diff_put(d, "thumbnailPhoto", NULL, 0, &bin, 1), 0);
	put_export(s, STORE_EXPORT_UPDATE, "user", "anc-1", d, NULL, 0, NULL);
	attr_diff_free(d);
	put_export(s, STORE_EXPORT_ADD, "group", "grp-1", NULL, m, 2, NULL);
	put_export(s, STORE_EXPORT_DELETE, "user", "anc-3", NULL, NULL, 0, &id);
	CHECK_INT_EQ(store_export_set_state(s, id, STORE_EXPORT_ERROR,
	                                    "Authorization_RequestDenied",
	                                    "Insufficient privileges", "req-9"),
	             0);

	CHECK_INT_EQ(store_run_begin(s, STORE_RUN_INITIAL, "hash-1", &run), 0);
	CHECK_INT_EQ(store_run_step_begin(s, run, "ad", STORE_STEP_FULL_IMPORT, &step), 0);
	CHECK_INT_EQ(store_run_step_end(s, step, "success", &k), 0);
	CHECK_INT_EQ(store_run_end(s, run, "success"), 0);
	CHECK_INT_EQ(store_run_begin(s, STORE_RUN_DELTA, "hash-1", &run), 0);
	CHECK_INT_EQ(store_run_step_begin(s, run, "ad", STORE_STEP_DELTA_SYNC, &step), 0);
	for (int i = 0; i < 3; i++)
		CHECK_INT_EQ(store_run_add_error(s, run, step, "AAA=", "CN=Bob,DC=corp",
		                                 "expression-error", "no upn", NULL),
		             0);
	CHECK_INT_EQ(store_run_add_error(s, run, 0, NULL, NULL, "run-error", "whole run", NULL), 0);
	CHECK_INT_EQ(store_run_step_end(s, step, "completed-sync-errors", &k), 0);
	CHECK_INT_EQ(store_run_end(s, run, "completed-sync-errors"), 0);
}

static void test_pending_exports(struct store *s)
{
	const cJSON *e, *attrs, *dn, *pa, *ph, *members;
	cJSON *list = NULL;
	struct report_export_filter f = {0};

	CHECK_INT_EQ(report_pending_exports(s, NULL, &list), 0);
	CHECK_INT_EQ(cJSON_GetArraySize(list), 3);
	/* canonical order: object type, then anchor */
	e = cJSON_GetArrayItem(list, 0);
	CHECK_STR_EQ(gets_(e, "object_type"), "group");
	CHECK_STR_EQ(gets_(e, "operation"), "add");
	CHECK(cJSON_IsNull(get(e, "target_id")));
	members = get(e, "members");
	CHECK_INT_EQ(cJSON_GetArraySize(get(members, "add")), 1);
	CHECK_STR_EQ(gets_(cJSON_GetArrayItem(get(members, "add"), 0), "anchor"), "anc-1");
	CHECK_STR_EQ(gets_(cJSON_GetArrayItem(get(members, "add"), 0), "target_id"), "tid-1");
	CHECK_STR_EQ(gets_(cJSON_GetArrayItem(get(members, "remove"), 0), "anchor"), "anc-2");

	e = cJSON_GetArrayItem(list, 1);
	CHECK_STR_EQ(gets_(e, "anchor"), "anc-1");
	CHECK_STR_EQ(gets_(e, "target_id"), "tid");
	CHECK_STR_EQ(gets_(e, "rules"), "Out to AAD - User Identity");
	CHECK_STR_EQ(gets_(e, "state"), "pending");
	CHECK(cJSON_IsNull(get(e, "error")));
	attrs = get(e, "attributes");
	CHECK_INT_EQ(cJSON_GetArraySize(attrs), 3);
	dn = get(attrs, "displayName");
	CHECK_STR_EQ(gets_(dn, "old"), "Alice A"); /* single values are strings */
	CHECK_STR_EQ(gets_(dn, "new"), "Alice B");
	pa = get(attrs, "proxyAddresses");
	CHECK(cJSON_IsArray(get(pa, "old")) && cJSON_IsArray(get(pa, "new")));
	CHECK_STR_EQ(cJSON_GetArrayItem(get(pa, "old"), 0)->valuestring, "smtp:a@x");
	CHECK_STR_EQ(cJSON_GetArrayItem(get(pa, "new"), 1)->valuestring, "smtp:c@x");
	ph = get(attrs, "thumbnailPhoto");
	CHECK(cJSON_IsNull(get(ph, "old")));
	CHECK_STR_EQ(gets_(get(ph, "new"), "base64"), "AQL/");

	e = cJSON_GetArrayItem(list, 2);
	CHECK_STR_EQ(gets_(e, "operation"), "delete");
	CHECK_STR_EQ(gets_(e, "state"), "error");
	CHECK_STR_EQ(gets_(get(e, "error"), "code"), "Authorization_RequestDenied");
	CHECK_STR_EQ(gets_(get(e, "error"), "request_id"), "req-9");
	cJSON_Delete(list);

	f.op_mask = 1u << STORE_EXPORT_DELETE;
	CHECK_INT_EQ(report_pending_exports(s, &f, &list), 0);
	CHECK_INT_EQ(cJSON_GetArraySize(list), 1);
	cJSON_Delete(list);
	f = (struct report_export_filter){.object_type = "user"};
	CHECK_INT_EQ(report_pending_exports(s, &f, &list), 0);
	CHECK_INT_EQ(cJSON_GetArraySize(list), 2);
	cJSON_Delete(list);
	f = (struct report_export_filter){.object_type = "contact"};
	CHECK_INT_EQ(report_pending_exports(s, &f, &list), 0);
	CHECK_INT_EQ(cJSON_GetArraySize(list), 0);
	cJSON_Delete(list);
}

static void test_runs(struct store *s)
{
	const cJSON *run, *st, *err;
	cJSON *runs = NULL;

	CHECK_INT_EQ(report_runs(s, 0, 0, &runs), 0);
	CHECK_INT_EQ(cJSON_GetArraySize(runs), 2);
	run = cJSON_GetArrayItem(runs, 0); /* newest first */
	CHECK_STR_EQ(gets_(run, "type"), "delta");
	CHECK_STR_EQ(gets_(run, "status"), "completed-sync-errors");
	CHECK_STR_EQ(gets_(run, "config_hash"), "hash-1");
	CHECK_INT_EQ(getn(run, "error_count"), 4);
	CHECK_INT_EQ(cJSON_GetArraySize(get(run, "errors")), 4);
	err = cJSON_GetArrayItem(get(run, "errors"), 0);
	CHECK_STR_EQ(gets_(err, "step"), "delta-sync");
	CHECK_STR_EQ(gets_(err, "dn"), "CN=Bob,DC=corp");
	CHECK_STR_EQ(gets_(err, "code"), "expression-error");
	err = cJSON_GetArrayItem(get(run, "errors"), 3);
	CHECK(cJSON_IsNull(get(err, "step"))); /* an error of the run as a whole */
	st = cJSON_GetArrayItem(get(run, "steps"), 0);
	CHECK_STR_EQ(gets_(st, "step"), "delta-sync");
	CHECK_INT_EQ(getn(st, "adds"), 3);
	CHECK_INT_EQ(getn(st, "objects"), 7);
	CHECK(getn(st, "finished") >= getn(st, "started") && getn(st, "started") > 0);
	CHECK_STR_EQ(gets_(cJSON_GetArrayItem(runs, 1), "type"), "initial");
	cJSON_Delete(runs);

	CHECK_INT_EQ(report_runs(s, 1, 2, &runs), 0);
	CHECK_INT_EQ(cJSON_GetArraySize(runs), 1);
	run = cJSON_GetArrayItem(runs, 0);
	CHECK_INT_EQ(cJSON_GetArraySize(get(run, "errors")), 2); /* bounded ... */
	CHECK_INT_EQ(getn(run, "error_count"), 4);               /* ... but the count is all */
	cJSON_Delete(runs);
}

static void test_status(struct store *rw, struct store *s)
{
	char pid[32], fp[STORE_FINGERPRINT_LEN + 1];
	const cJSON *pe, *lc;
	cJSON *doc = NULL;

	/* no daemon pid: stopped, whatever the state key says */
	CHECK_INT_EQ(store_state_set(rw, STATUS_KEY_STATE, "syncing"), 0);
	CHECK_INT_EQ(report_status(s, NULL, &doc), 0);
	CHECK_STR_EQ(gets_(doc, "state"), "stopped");
	CHECK(cJSON_IsNull(get(doc, "pid")));
	CHECK(cJSON_IsTrue(get(doc, "staging"))); /* no config: a standby until told otherwise */
	lc = get(doc, "last_cycle");
	CHECK_STR_EQ(gets_(lc, "status"), "completed-sync-errors");
	CHECK_STR_EQ(gets_(lc, "type"), "delta");
	CHECK(cJSON_IsNull(get(doc, "current_cycle")));
	pe = get(doc, "pending_exports");
	CHECK_INT_EQ(getn(pe, "add"), 1);
	CHECK_INT_EQ(getn(pe, "update"), 1);
	CHECK_INT_EQ(getn(pe, "delete"), 1);
	CHECK_INT_EQ(getn(pe, "total"), 3);
	CHECK_INT_EQ(getn(pe, "error"), 1);
	CHECK_INT_EQ(store_pending_fingerprint(s, fp), 0);
	CHECK_STR_EQ(gets_(pe, "fingerprint"), fp);
	CHECK(cJSON_IsNull(get(get(doc, "last_reload"), "ok")));
	cJSON_Delete(doc);

	/* a live pid (ours): the daemon's keys count */
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	CHECK_INT_EQ(store_state_set(rw, STATUS_KEY_PID, pid), 0);
	CHECK_INT_EQ(store_state_set(rw, STATUS_KEY_STAGING, "0"), 0);
	CHECK_INT_EQ(store_state_set(rw, STATUS_KEY_CONFIG_HASH, "feed"), 0);
	CHECK_INT_EQ(store_state_set(rw, STATUS_KEY_NEXT_CYCLE, "2000000000"), 0);
	CHECK_INT_EQ(store_state_set(rw, STATUS_KEY_RELOAD_TIME, "1700000000"), 0);
	CHECK_INT_EQ(store_state_set(rw, STATUS_KEY_RELOAD_OK, "0"), 0);
	CHECK_INT_EQ(store_state_set(rw, STATUS_KEY_RELOAD_ERROR, "/etc/h.conf:4: bad value"), 0);
	CHECK_INT_EQ(store_state_set(rw, STATUS_KEY_THRESHOLD, "600 deletes > limit 500"), 0);
	CHECK_INT_EQ(report_status(s, NULL, &doc), 0);
	CHECK_STR_EQ(gets_(doc, "state"), "syncing");
	CHECK_INT_EQ(getn(doc, "pid"), getpid());
	CHECK(cJSON_IsFalse(get(doc, "staging")));
	CHECK_STR_EQ(gets_(doc, "config_hash"), "feed");
	CHECK_INT_EQ(getn(doc, "next_cycle"), 2000000000);
	CHECK_INT_EQ(getn(get(doc, "last_reload"), "time"), 1700000000);
	CHECK(cJSON_IsFalse(get(get(doc, "last_reload"), "ok")));
	CHECK_STR_EQ(gets_(get(doc, "last_reload"), "error"), "/etc/h.conf:4: bad value");
	CHECK_STR_EQ(gets_(get(doc, "deletion_threshold"), "exceeded"), "600 deletes > limit 500");
	cJSON_Delete(doc);

	/* a pid that is gone: stopped again */
	CHECK_INT_EQ(store_state_set(rw, STATUS_KEY_PID, "2147483646"), 0);
	CHECK_INT_EQ(report_status(s, NULL, &doc), 0);
	CHECK_STR_EQ(gets_(doc, "state"), "stopped");
	CHECK(cJSON_IsNull(get(doc, "next_cycle")));
	cJSON_Delete(doc);
}

static void test_values(void)
{
	cJSON *v = report_value_json("caf\xc3\xa9", 5);
	char *t;

	CHECK(cJSON_IsString(v) && strcmp(v->valuestring, "caf\xc3\xa9") == 0);
	cJSON_Delete(v);
	v = report_value_json("\xc3", 1); /* truncated UTF-8 */
	CHECK_STR_EQ(gets_(v, "base64"), "ww==");
	cJSON_Delete(v);
	t = report_value_text("a\0b", 3);
	CHECK_STR_EQ(t, "base64:YQBi");
	free(t);
	t = report_value_text("line\ttab", 8);
	CHECK_STR_EQ(t, "line\ttab");
	free(t);
	CHECK(!report_pid_alive(0));
	CHECK(report_pid_alive(getpid()));
}

int main(void)
{
	struct store *rw, *ro;
	char cmd[300];

	snprintf(tmpdir, sizeof(tmpdir), "%s/test_report.XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir))
		return perror("mkdtemp"), 1;
	rw = open_store(0);
	if (rw) {
		fill(rw);
		ro = open_store(STORE_OPEN_READONLY); /* the CLI reads beside the daemon */
		if (ro) {
			test_pending_exports(ro);
			test_runs(ro);
			test_status(rw, ro);
		}
		store_close(ro);
	}
	store_close(rw);
	test_values();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return check_finish();
}
