/* The store's history: runs, their steps and per-object errors, audit events, config
 * snapshots and the last lease seen. */
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *store_run_type_to_string(enum store_run_type t)
{
	static const char *const names[STORE_RUN_TYPE_MAX] = {
	    [STORE_RUN_INITIAL] = "initial",
	    [STORE_RUN_DELTA] = "delta",
	};
	return (t >= 0 && t < STORE_RUN_TYPE_MAX) ? names[t] : NULL;
}

const char *store_step_type_to_string(enum store_step_type t)
{
	static const char *const names[STORE_STEP_TYPE_MAX] = {
	    [STORE_STEP_FULL_IMPORT] = "full-import", [STORE_STEP_DELTA_IMPORT] = "delta-import",
	    [STORE_STEP_FULL_SYNC] = "full-sync",     [STORE_STEP_DELTA_SYNC] = "delta-sync",
	    [STORE_STEP_EXPORT] = "export",
	};
	return (t >= 0 && t < STORE_STEP_TYPE_MAX) ? names[t] : NULL;
}

static int step_from_string(const unsigned char *s)
{
	int i;

	for (i = 0; s && i < STORE_STEP_TYPE_MAX; i++)
		if (strcmp((const char *)s, store_step_type_to_string(i)) == 0)
			return i;
	return 0;
}

static int exec_checked(struct store *s, sqlite3_stmt *st, const char *what, int64_t id)
{
	int r = store_exec_stmt(s, st);

	if (r >= 0 && sqlite3_changes(s->db) == 0)
		r = store_failf(s, -ENOENT, "no %s %lld", what, (long long)id);
	return r;
}

int store_run_begin(struct store *s, enum store_run_type type, const char *config_hash,
                    int64_t *ret_id)
{
	const char *t = store_run_type_to_string(type);
	sqlite3_stmt *st;
	int r;

	if (!s || !t || !ret_id)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(
		    s, "INSERT INTO runs(type, started, config_hash) VALUES (?1, ?2, ?3)", &st);
	if (r >= 0)
		r = store_bind(s, st, "tit", t, store_now(), config_hash);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0)
		*ret_id = sqlite3_last_insert_rowid(s->db);
	return r;
}

int store_run_step_begin(struct store *s, int64_t run_id, const char *connector,
                         enum store_step_type step, int64_t *ret_id)
{
	const char *t = store_step_type_to_string(step);
	sqlite3_stmt *st;
	int r;

	if (!s || !t || !ret_id)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(s,
		               "INSERT INTO run_steps(run_id, connector, step, started)"
		               " VALUES (?1, ?2, ?3, ?4)",
		               &st);
	if (r >= 0)
		r = store_bind(s, st, "itti", run_id, connector, t, store_now());
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0)
		*ret_id = sqlite3_last_insert_rowid(s->db);
	return r;
}

int store_run_step_end(struct store *s, int64_t step_id, const char *status,
                       const struct store_step_counters *c)
{
	struct store_step_counters zero = {0};
	sqlite3_stmt *st;
	int r;

	if (!s || !status)
		return -EINVAL;
	if (!c)
		c = &zero;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(
		    s,
		    "UPDATE run_steps SET status = ?2, finished = ?3, adds = ?4,"
		    " updates = ?5, deletes = ?6, errors = ?7, objects = ?8 WHERE id = ?1",
		    &st);
	if (r >= 0)
		r = store_bind(s, st, "itiiiiii", step_id, status, store_now(), (int64_t)c->adds,
		               (int64_t)c->updates, (int64_t)c->deletes, (int64_t)c->errors,
		               (int64_t)c->objects);
	if (r >= 0)
		r = exec_checked(s, st, "run step", step_id);
	return r;
}

int store_run_step_set_type(struct store *s, int64_t step_id, enum store_step_type step)
{
	sqlite3_stmt *st;
	int r;

	if (!s || step < 0 || step >= STORE_STEP_TYPE_MAX)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(s, "UPDATE run_steps SET step = ?2 WHERE id = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "it", step_id, store_step_type_to_string(step));
	if (r >= 0)
		r = exec_checked(s, st, "run step", step_id);
	return r;
}

int store_run_end(struct store *s, int64_t run_id, const char *status)
{
	sqlite3_stmt *st;
	int r;

	if (!s || !status)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(s, "UPDATE runs SET status = ?2, finished = ?3 WHERE id = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "iti", run_id, status, store_now());
	if (r >= 0)
		r = exec_checked(s, st, "run", run_id);
	return r;
}

int store_run_add_error(struct store *s, int64_t run_id, int64_t step_id, const char *anchor,
                        const char *dn, const char *code, const char *message,
                        const char *request_id)
{
	sqlite3_stmt *st;
	int r;

	if (!s)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(
		    s,
		    "INSERT INTO run_errors(run_id, step_id, time, anchor, dn, code,"
		    " message, request_id) VALUES (?1, nullif(?2, 0), ?3, ?4, ?5, ?6, ?7, ?8)",
		    &st);
	if (r >= 0)
		r = store_bind(s, st, "iiittttt", run_id, step_id, store_now(), anchor, dn, code,
		               message, request_id);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	return r;
}

int store_run_list(struct store *s, unsigned last_n, store_run_cb cb, void *userdata)
{
	int64_t before = INT64_MAX;
	unsigned seen = 0;
	int r;

	if (!s || !cb)
		return -EINVAL;
	/* Keyset pages of STORE_BATCH runs, newest first, so a callback may use the store. */
	for (;;) {
		int64_t ids[STORE_BATCH];
		unsigned n = 0, i, want = STORE_BATCH;
		sqlite3_stmt *st;
		int rc;
		if (last_n && last_n - seen < want)
			want = last_n - seen;
		if (want == 0)
			return 0;
		r = store_stmt(s, "SELECT id FROM runs WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
		               &st);
		if (r >= 0)
			r = store_bind(s, st, "ii", before, (int64_t)want);
		if (r < 0)
			return r;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			ids[n++] = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return store_fail(s, rc);
		for (i = 0; i < n; i++) {
			r = store_run_get(s, ids[i], cb, userdata);
			if (r == -ENOENT) /* purged meanwhile */
				continue;
			if (r != 0)
				return r;
		}
		seen += n;
		if (n < want)
			return 0;
		before = ids[n - 1];
	}
}

int store_run_get(struct store *s, int64_t run_id, store_run_cb cb, void *userdata)
{
	struct store_run run = {0};
	char *status = NULL, *hash = NULL;
	sqlite3_stmt *st;
	int rc, r;

	if (!s || !cb)
		return -EINVAL;
	r = store_stmt(s,
	               "SELECT r.id, r.type, r.status, r.started, r.finished, r.config_hash,"
	               " (SELECT count(*) FROM run_errors e WHERE e.run_id = r.id)"
	               " FROM runs r WHERE r.id = ?1",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "i", run_id);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		run.id = sqlite3_column_int64(st, 0);
		run.type = strcmp((const char *)sqlite3_column_text(st, 1), "initial") == 0
		               ? STORE_RUN_INITIAL
		               : STORE_RUN_DELTA;
		run.started = sqlite3_column_int64(st, 3);
		run.finished = sqlite3_column_int64(st, 4);
		run.error_count = (uint64_t)sqlite3_column_int64(st, 6);
		r = store_col_text(s, st, 2, &status);
		if (r >= 0)
			r = store_col_text(s, st, 5, &hash);
	} else if (rc == SQLITE_DONE) {
		r = -ENOENT;
	} else {
		r = store_fail(s, rc);
	}
	/* Reset before the callback: it may use the store. */
	sqlite3_reset(st);
	if (r >= 0) {
		run.status = status;
		run.config_hash = hash;
		r = cb(&run, userdata);
	}
	free(status);
	free(hash);
	return r;
}

int store_run_list_steps(struct store *s, int64_t run_id, store_step_cb cb, void *userdata)
{
	struct store_step steps[STORE_BATCH];
	char *strs[STORE_BATCH][2];
	sqlite3_stmt *st;
	size_t n = 0, i;
	int rc = SQLITE_DONE, r;

	if (!s || !cb)
		return -EINVAL;
	/* A run has a handful of steps (5 per connector at most); STORE_BATCH bounds it. */
	r = store_stmt(s,
	               "SELECT id, run_id, connector, step, status, started, finished, adds,"
	               " updates, deletes, errors, objects FROM run_steps WHERE run_id = ?1"
	               " ORDER BY id LIMIT ?2",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "ii", run_id, (int64_t)STORE_BATCH);
	if (r < 0)
		return r;
	while (n < STORE_BATCH && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_step *x = &steps[n];
		memset(x, 0, sizeof(*x));
		strs[n][0] = strs[n][1] = NULL;
		x->id = sqlite3_column_int64(st, 0);
		x->run_id = sqlite3_column_int64(st, 1);
		x->step = (enum store_step_type)step_from_string(sqlite3_column_text(st, 3));
		x->started = sqlite3_column_int64(st, 5);
		x->finished = sqlite3_column_int64(st, 6);
		x->counters.adds = (uint64_t)sqlite3_column_int64(st, 7);
		x->counters.updates = (uint64_t)sqlite3_column_int64(st, 8);
		x->counters.deletes = (uint64_t)sqlite3_column_int64(st, 9);
		x->counters.errors = (uint64_t)sqlite3_column_int64(st, 10);
		x->counters.objects = (uint64_t)sqlite3_column_int64(st, 11);
		n++;
		r = store_col_text(s, st, 2, &strs[n - 1][0]);
		if (r >= 0)
			r = store_col_text(s, st, 4, &strs[n - 1][1]);
		if (r < 0)
			break;
		x->connector = strs[n - 1][0];
		x->status = strs[n - 1][1];
	}
	if (r >= 0 && n < STORE_BATCH && rc != SQLITE_DONE)
		r = store_fail(s, rc);
	sqlite3_reset(st);
	for (i = 0; i < n; i++) {
		if (r == 0)
			r = cb(&steps[i], userdata);
		free(strs[i][0]);
		free(strs[i][1]);
	}
	return r;
}

struct error_row {
	struct store_run_error e;
	char *str[6];
};

static int list_errors(struct store *s, int64_t run_id, int64_t step_id, unsigned limit,
                       store_run_error_cb cb, void *userdata);

int store_run_list_errors(struct store *s, int64_t run_id, unsigned limit, store_run_error_cb cb,
                          void *userdata)
{
	return list_errors(s, run_id, 0, limit, cb, userdata);
}

int store_run_list_step_errors(struct store *s, int64_t run_id, int64_t step_id, unsigned limit,
                               store_run_error_cb cb, void *userdata)
{
	if (step_id <= 0)
		return -EINVAL;
	return list_errors(s, run_id, step_id, limit, cb, userdata);
}

#define ERROR_ROWS                                                                                 \
	"SELECT e.id, e.run_id, coalesce(e.step_id, 0), e.time, p.step, p.connector, e.anchor,"    \
	" e.dn, e.code, e.message, e.request_id"                                                   \
	" FROM run_errors e LEFT JOIN run_steps p ON p.id = e.step_id WHERE "

/* step_id 0: every error of the run. */
static int list_errors(struct store *s, int64_t run_id, int64_t step_id, unsigned limit,
                       store_run_error_cb cb, void *userdata)
{
	struct error_row batch[STORE_BATCH];
	int64_t last = 0;
	unsigned seen = 0;
	size_t n, i;
	int rc = SQLITE_DONE, r = 0;

	if (!s || !cb)
		return -EINVAL;
	for (;;) {
		unsigned want = STORE_BATCH;
		sqlite3_stmt *st;
		if (limit && limit - seen < want)
			want = limit - seen;
		if (want == 0)
			break;
		/* Two statements: one filter for both could not use the step's index. */
		r = store_stmt(s,
		               step_id ? ERROR_ROWS "e.step_id = ?4 AND e.run_id = ?1 AND e.id > ?2"
		                                    " ORDER BY e.id LIMIT ?3"
		                       : ERROR_ROWS "e.run_id = ?1 AND e.id > ?2 AND ?4 = 0"
		                                    " ORDER BY e.id LIMIT ?3",
		               &st);
		if (r >= 0)
			r = store_bind(s, st, "iiii", run_id, last, (int64_t)want, step_id);
		if (r < 0)
			break;
		n = 0;
		while (n < want && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct error_row *x = &batch[n++];
			int k;
			memset(x, 0, sizeof(*x));
			x->e.id = sqlite3_column_int64(st, 0);
			x->e.run_id = sqlite3_column_int64(st, 1);
			x->e.step_id = sqlite3_column_int64(st, 2);
			x->e.time = sqlite3_column_int64(st, 3);
			x->e.step =
			    (enum store_step_type)step_from_string(sqlite3_column_text(st, 4));
			for (k = 0; k < 6 && r >= 0; k++)
				r = store_col_text(s, st, 5 + k, &x->str[k]);
			if (r < 0)
				break;
			x->e.connector = x->str[0];
			x->e.anchor = x->str[1];
			x->e.dn = x->str[2];
			x->e.code = x->str[3];
			x->e.message = x->str[4];
			x->e.request_id = x->str[5];
		}
		if (r >= 0 && n < want && rc != SQLITE_DONE)
			r = store_fail(s, rc);
		sqlite3_reset(st);
		if (n > 0)
			last = batch[n - 1].e.id;
		for (i = 0; i < n; i++) {
			int k;
			if (r == 0)
				r = cb(&batch[i].e, userdata);
			for (k = 0; k < 6; k++)
				free(batch[i].str[k]);
		}
		seen += (unsigned)n;
		if (r != 0 || n < want)
			break;
	}
	return r;
}

int store_run_purge(struct store *s, int64_t before, uint64_t *ret_n)
{
	sqlite3_stmt *st;
	int r;

	if (!s)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(s, "DELETE FROM runs WHERE started < ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "i", before);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0 && ret_n)
		*ret_n = (uint64_t)sqlite3_changes(s->db);
	return r;
}

int store_run_end_unfinished(struct store *s, const char *status, uint64_t *ret_n)
{
	sqlite3_stmt *st;
	uint64_t n = 0;
	int r;

	if (!s || !status)
		return -EINVAL;
	r = store_tx_begin(s);
	if (r < 0)
		return r;
	r = store_stmt(s, "UPDATE run_steps SET status = ?1, finished = ?2 WHERE finished IS NULL",
	               &st);
	if (r >= 0)
		r = store_bind(s, st, "ti", status, store_now());
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0)
		r = store_stmt(
		    s, "UPDATE runs SET status = ?1, finished = ?2 WHERE finished IS NULL", &st);
	if (r >= 0)
		r = store_bind(s, st, "ti", status, store_now());
	if (r >= 0)
		r = store_exec_stmt(s, st);
	if (r >= 0)
		n = (uint64_t)sqlite3_changes(s->db);
	if (r >= 0)
		r = store_tx_commit(s);
	if (r < 0) {
		store_tx_rollback(s);
		return r;
	}
	if (ret_n)
		*ret_n = n;
	return 0;
}

/* --- audit, config snapshots, lease ------------------------------------------------------- */

int store_audit_add(struct store *s, const char *kind, int64_t uid, const char *detail,
                    const char *fingerprint)
{
	sqlite3_stmt *st;
	int r;

	if (!s || !kind || !*kind)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(s,
		               "INSERT INTO audit_events(time, kind, uid, detail, fingerprint)"
		               " VALUES (?1, ?2, CASE WHEN ?3 < 0 THEN NULL ELSE ?3 END, ?4, ?5)",
		               &st);
	if (r >= 0)
		r = store_bind(s, st, "ititt", store_now(), kind, uid, detail, fingerprint);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	return r;
}

struct audit_row {
	struct store_audit_event e;
	char *str[3];
};

int store_audit_list(struct store *s, unsigned last_n, store_audit_cb cb, void *userdata)
{
	struct audit_row batch[STORE_BATCH];
	int64_t before = INT64_MAX;
	unsigned seen = 0;
	size_t n, i;
	int rc = SQLITE_DONE, r = 0;

	if (!s || !cb)
		return -EINVAL;
	for (;;) {
		unsigned want = STORE_BATCH;
		sqlite3_stmt *st;
		if (last_n && last_n - seen < want)
			want = last_n - seen;
		if (want == 0)
			break;
		r = store_stmt(s,
		               "SELECT id, time, coalesce(uid, -1), kind, detail, fingerprint"
		               " FROM audit_events WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
		               &st);
		if (r >= 0)
			r = store_bind(s, st, "ii", before, (int64_t)want);
		if (r < 0)
			break;
		n = 0;
		while (n < want && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct audit_row *x = &batch[n++];
			int k;
			memset(x, 0, sizeof(*x));
			x->e.id = sqlite3_column_int64(st, 0);
			x->e.time = sqlite3_column_int64(st, 1);
			x->e.uid = sqlite3_column_int64(st, 2);
			for (k = 0; k < 3 && r >= 0; k++)
				r = store_col_text(s, st, 3 + k, &x->str[k]);
			if (r < 0)
				break;
			x->e.kind = x->str[0];
			x->e.detail = x->str[1];
			x->e.fingerprint = x->str[2];
		}
		if (r >= 0 && n < want && rc != SQLITE_DONE)
			r = store_fail(s, rc);
		sqlite3_reset(st);
		if (n > 0)
			before = batch[n - 1].e.id;
		for (i = 0; i < n; i++) {
			int k;
			if (r == 0)
				r = cb(&batch[i].e, userdata);
			for (k = 0; k < 3; k++)
				free(batch[i].str[k]);
		}
		seen += (unsigned)n;
		if (r != 0 || n < want)
			break;
	}
	return r;
}

int store_config_snapshot_put(struct store *s, const char *hash, const char *json)
{
	sqlite3_stmt *st;
	int r;

	if (!s || !hash || !*hash || !json)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(s,
		               "INSERT OR IGNORE INTO config_snapshots(hash, created, json)"
		               " VALUES (?1, ?2, ?3)",
		               &st);
	if (r >= 0)
		r = store_bind(s, st, "tit", hash, store_now(), json);
	if (r >= 0)
		r = store_exec_stmt(s, st);
	return r;
}

int store_config_snapshot_get(struct store *s, const char *hash, char **ret_json,
                              int64_t *ret_created)
{
	sqlite3_stmt *st;
	char *json = NULL;
	int64_t created = 0;
	int rc, r;

	if (!s || !hash || !ret_json)
		return -EINVAL;
	r = store_stmt(s, "SELECT json, created FROM config_snapshots WHERE hash = ?1", &st);
	if (r >= 0)
		r = store_bind(s, st, "t", hash);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = store_col_text(s, st, 0, &json);
		created = sqlite3_column_int64(st, 1);
	} else if (rc == SQLITE_DONE) {
		r = -ENOENT;
	} else {
		r = store_fail(s, rc);
	}
	sqlite3_reset(st);
	if (r < 0)
		return r;
	*ret_json = json;
	if (ret_created)
		*ret_created = created;
	return 0;
}

struct store_lease *store_lease_free(struct store_lease *l)
{
	if (!l)
		return NULL;
	free(l->holder);
	free(l->config_hash);
	free(l->graph_object_id);
	free(l);
	return NULL;
}

int store_lease_get(struct store *s, struct store_lease **ret)
{
	struct store_lease *l = NULL;
	sqlite3_stmt *st;
	int rc, r;

	if (!s || !ret)
		return -EINVAL;
	r = store_stmt(s,
	               "SELECT holder, config_hash, renewed, graph_object_id, seen FROM lease"
	               " WHERE id = 1",
	               &st);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		l = calloc(1, sizeof(*l));
		if (!l)
			r = store_failf(s, -ENOMEM, "out of memory");
		if (r >= 0)
			r = store_col_text(s, st, 0, &l->holder);
		if (r >= 0)
			r = store_col_text(s, st, 1, &l->config_hash);
		if (r >= 0)
			r = store_col_text(s, st, 3, &l->graph_object_id);
		if (r >= 0) {
			l->renewed = sqlite3_column_int64(st, 2);
			l->seen = sqlite3_column_int64(st, 4);
		}
	} else if (rc == SQLITE_DONE) {
		r = -ENOENT;
	} else {
		r = store_fail(s, rc);
	}
	sqlite3_reset(st);
	if (r < 0) {
		store_lease_free(l);
		return r;
	}
	*ret = l;
	return 0;
}

int store_lease_set(struct store *s, const char *holder, const char *config_hash, int64_t renewed,
                    const char *graph_object_id)
{
	sqlite3_stmt *st;
	int r;

	if (!s || !holder || !*holder)
		return -EINVAL;
	r = store_writable(s);
	if (r >= 0)
		r = store_stmt(
		    s,
		    "INSERT INTO lease(id, holder, config_hash, renewed, graph_object_id,"
		    " seen) VALUES (1, ?1, ?2, ?3, ?4, ?5) ON CONFLICT(id) DO UPDATE SET"
		    " holder = excluded.holder, config_hash = excluded.config_hash,"
		    " renewed = excluded.renewed, graph_object_id = excluded.graph_object_id,"
		    " seen = excluded.seen",
		    &st);
	if (r >= 0)
		r = store_bind(s, st, "ttiti", holder, config_hash, renewed, graph_object_id,
		               store_now());
	if (r >= 0)
		r = store_exec_stmt(s, st);
	return r;
}
