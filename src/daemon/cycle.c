/* One sync cycle, on the worker thread: AD import, Graph import, sync, then (when not staging)
 * the lease, the deletion threshold and the export. Every step is recorded in the run history;
 * the run's status is the worst of its steps'. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "hybridsync/ldap_import.h"
#include "hybridsync/log.h"
#include "hybridsync/messages.h"
#include "hybridsync/status.h"

struct cycle {
	struct daemon *d;
	const struct cycle_request *req;
	struct store *s;
	int64_t run_id;
	char run_id_text[24];
	const char *status; /* worst so far (static strings or `status_buf`) */
	char status_buf[DAEMON_STATUS_MAX];
	uint64_t errors; /* per-object errors of all steps */
	bool retry;
	bool bind_refused; /* the AD import stopped on a refused bind: no quick retry */
	bool exported;
};

/* What a module's callbacks get: the step's label and whether demotion cancels it. */
struct step_ctx {
	struct daemon *d;
	const char *label;
	bool is_export;
};

/* How an import step ended, for what follows it. */
enum import_outcome {
	IMPORT_STOPPED,
	IMPORT_DELTA,
	IMPORT_FULL, /* asked for, or a fallback (expired cursor) */
};

static bool is_stopped(const char *status)
{
	return strncmp(status, "stopped-", 8) == 0;
}

static int status_rank(const char *s)
{
	if (strcmp(s, "success") == 0)
		return 0;
	if (strcmp(s, "completed-warnings") == 0)
		return 1;
	if (strcmp(s, "completed-sync-errors") == 0)
		return 2;
	if (strncmp(s, "completed-", 10) == 0)
		return 3;
	if (is_stopped(s))
		return 10;
	return 5;
}

const char *cycle_worse_status(const char *a, const char *b)
{
	/* Between two stopped-* statuses the first one is the cause: keep it. */
	return status_rank(b) > status_rank(a) ? b : a;
}

static void progress_cb(uint64_t done, uint64_t estimate, void *userdata)
{
	struct step_ctx *c = userdata;
	char a[32], b[32];

	format_count(a, sizeof(a), done);
	if (estimate > 0) {
		format_count(b, sizeof(b), estimate);
		notify_step(c->d, false, "%s: %s/%s objects", c->label, a, b);
	} else {
		notify_step(c->d, false, "%s: %s objects", c->label, a);
	}
}

static bool cancelled_cb(void *userdata)
{
	struct step_ctx *c = userdata;

	if (atomic_load(&c->d->stop))
		return true;
	return c->is_export && atomic_load(&c->d->cancel_export);
}

static void set_state(struct cycle *cy, const char *state, const char *label)
{
	pthread_mutex_lock(&cy->d->shared.lock);
	(void)snprintf(cy->d->shared.state, sizeof(cy->d->shared.state), "%s", state);
	pthread_mutex_unlock(&cy->d->shared.lock);
	status_set(cy->s, STATUS_KEY_STATE, state);
	status_set(cy->s, STATUS_KEY_STEP, label);
	notify_step(cy->d, true, "%s", label);
}

static int64_t step_begin(struct cycle *cy, const char *connector, enum store_step_type type)
{
	int64_t id = 0;
	int r;

	r = store_run_step_begin(cy->s, cy->run_id, connector, type, &id);
	if (r < 0)
		log_warning("Failed to record the %s step of run %" PRId64 ": %s",
		            store_step_type_to_string(type), cy->run_id, strerror(-r));
	return id;
}

/* The status of a step from its call's return and its result; err gets why it stopped. */
static const char *step_status(int r, const char *status, const char *error, const char *what,
                               char *err, size_t len)
{
	if (r < 0) {
		(void)snprintf(err, len, "%s failed: %s", what, strerror(-r));
		return "stopped-error";
	}
	(void)snprintf(err, len, "%s", error);
	return status[0] ? status : "stopped-error";
}

/* A delta import that ran as a full one is recorded as what it was. */
static void fell_back(struct cycle *cy, int64_t step_id, const char *label)
{
	int r;

	if (step_id <= 0)
		return;
	r = store_run_step_set_type(cy->s, step_id, STORE_STEP_FULL_IMPORT);
	if (r < 0)
		log_warning("Failed to record that step '%s' ran as a full import: %s", label,
		            strerror(-r));
}

/* At most this many per-object errors of a step go to the journal; the rest are counted. */
#define JOURNAL_ERRORS_MAX 100u

struct step_errors {
	struct cycle *cy;
	uint64_t logged, more;
};

static int log_step_error(const struct store_run_error *e, void *userdata)
{
	struct step_errors *x = userdata;
	struct log_ctx ctx = {.run_id = x->cy->run_id_text,
	                      .connector = e->connector,
	                      .anchor = e->anchor,
	                      .dn = e->dn};
	const char *id = e->step == STORE_STEP_EXPORT ? HS_MSG_EXPORT_ERROR
	                 : e->step == STORE_STEP_FULL_SYNC || e->step == STORE_STEP_DELTA_SYNC
	                     ? HS_MSG_SYNC_ERROR
	                     : HS_MSG_IMPORT_ERROR;
	bool rid = e->request_id && *e->request_id;

	/* Only the objects' errors: a row naming no object is the step's own failure (its stop,
	 * or a request that failed as a whole), which is logged with the step. */
	if ((!e->anchor || !*e->anchor) && (!e->dn || !*e->dn))
		return 0;
	if (e->code && strncmp(e->code, "stopped-", 8) == 0)
		return 0;
	if (x->logged >= JOURNAL_ERRORS_MAX) {
		x->more++;
		return 0;
	}
	x->logged++;
	log_full(LOG_WARNING, 0, id, &ctx, "%s of %s failed: %s: %s%s%s%s",
	         store_step_type_to_string(e->step), e->dn && *e->dn ? e->dn : e->anchor,
	         e->code ? e->code : "error", e->message ? e->message : "",
	         rid ? " (request-id " : "", rid ? e->request_id : "", rid ? ")" : "");
	return 0;
}

/* The per-object errors a step recorded, to the journal, each with its MESSAGE_ID and the
 * object's fields: at most JOURNAL_ERRORS_MAX, then how many more. */
static void log_step_errors(struct cycle *cy, int64_t step_id, const char *connector,
                            const char *label)
{
	struct step_errors x = {.cy = cy};
	struct log_ctx ctx = {.run_id = cy->run_id_text, .connector = connector};
	int r = store_run_list_step_errors(cy->s, cy->run_id, step_id, 0, log_step_error, &x);

	if (r < 0)
		log_warning("Failed to read the errors of step '%s': %s", label, strerror(-r));
	if (x.more > 0)
		log_full(LOG_WARNING, 0, NULL, &ctx,
		         "%s: %" PRIu64
		         " more per-object errors; 'hybridsyncctl runs' lists them all",
		         label, x.more);
}

/* recorded: the connector put the step's stop in the run history itself (else it goes there
 * from here, once). */
static void step_end_ex(struct cycle *cy, int64_t step_id, const char *connector, const char *label,
                        const char *status, const struct store_step_counters *counters,
                        const char *error, bool recorded)
{
	struct log_ctx ctx = {.run_id = cy->run_id_text, .connector = connector};
	int r;

	if (step_id > 0) {
		r = store_run_step_end(cy->s, step_id, status, counters);
		if (r < 0)
			log_warning("Failed to record the end of step '%s': %s", label,
			            strerror(-r));
		if (is_stopped(status) && error && *error && !recorded)
			(void)store_run_add_error(cy->s, cy->run_id, step_id, NULL, NULL, status,
			                          error, NULL);
	}
	if (step_id > 0 && counters && counters->errors > 0)
		log_step_errors(cy, step_id, connector, label);
	cy->errors += counters ? counters->errors : 0;
	/* A refused bind is stopped-connectivity too, but it is no outage: retried soon, it
	 * only adds failed logons until AD locks the account out (for all its users). */
	if ((strcmp(status, "stopped-server-down") == 0 ||
	     strcmp(status, "stopped-connectivity") == 0) &&
	    !cy->bind_refused)
		cy->retry = true;
	if (status_rank(status) > status_rank(cy->status)) {
		(void)snprintf(cy->status_buf, sizeof(cy->status_buf), "%s", status);
		cy->status = cy->status_buf;
	}
	if (is_stopped(status))
		log_full(strcmp(status, "stopped-cancelled") == 0 ? LOG_NOTICE : LOG_WARNING, 0,
		         NULL, &ctx, "%s: %s%s%s", label, status, error && *error ? ": " : "",
		         error ? error : "");
	else if (counters)
		log_full(LOG_INFO, 0, NULL, &ctx,
		         "%s: %s (%" PRIu64 " objects, %" PRIu64 " adds, %" PRIu64
		         " updates, %" PRIu64 " deletes, %" PRIu64 " errors)",
		         label, status, counters->objects, counters->adds, counters->updates,
		         counters->deletes, counters->errors);
	(void)metrics_write(cy->d, cy->req->conf, cy->req->config_hash, cy->s);
}

static void step_end(struct cycle *cy, int64_t step_id, const char *connector, const char *label,
                     const char *status, const struct store_step_counters *counters,
                     const char *error)
{
	step_end_ex(cy, step_id, connector, label, status, counters, error, false);
}

static const char *import_label(bool full, const char *connector, char *buf, size_t len)
{
	(void)snprintf(buf, len, "%s import %s", full ? "full" : "delta", connector);
	return buf;
}

static enum import_outcome step_ad_import(struct cycle *cy)
{
	const struct cycle_request *req = cy->req;
	struct step_ctx sc = {.d = cy->d};
	struct ldap_import_result res = {0};
	struct ldap_import_opts o = {0};
	char label[64], err[DAEMON_ERROR_MAX];
	const char *status;
	int64_t step;
	int r;

	sc.label = import_label(req->full, "ad", label, sizeof(label));
	set_state(cy, "importing", sc.label);
	step = step_begin(cy, LDAP_IMPORT_CONNECTOR,
	                  req->full ? STORE_STEP_FULL_IMPORT : STORE_STEP_DELTA_IMPORT);
	o.mode = req->full ? LDAP_IMPORT_FULL : LDAP_IMPORT_DELTA;
	o.attributes = sync_rules_attributes(req->rules, "ad", &o.n_attributes);
	o.run_id = cy->run_id;
	o.step_id = step;
	o.progress = progress_cb;
	o.cancelled = cancelled_cb;
	o.userdata = &sc;
	r = ldap_import(&req->conf->ad, cy->s, &o, &res);
	status = step_status(r, res.status, res.error, "import", err, sizeof(err));
	if (r >= 0) {
		if (res.note[0]) {
			struct log_ctx ctx = {.run_id = cy->run_id_text,
			                      .connector = LDAP_IMPORT_CONNECTOR};
			log_full(LOG_NOTICE, 0, NULL, &ctx, "%s: %s%s", sc.label,
			         res.full && !req->full ? "runs as a full import: " : "", res.note);
		}
		if (res.full && !req->full)
			fell_back(cy, step, sc.label);
		if (res.status[0] && !is_stopped(status))
			cy->d->last_import_ok[0] = time(NULL);
		cy->bind_refused = res.bind_refused;
	}
	/* The connector records its stops (lstop); a local failure (r < 0) is recorded here. */
	step_end_ex(cy, step, LDAP_IMPORT_CONNECTOR, sc.label, status, &res.counters, err, r >= 0);
	return is_stopped(status) ? IMPORT_STOPPED : (res.full ? IMPORT_FULL : IMPORT_DELTA);
}

static enum import_outcome step_graph_import(struct cycle *cy)
{
	const struct cycle_request *req = cy->req;
	struct step_ctx sc = {.d = cy->d};
	struct graph_step_result res = {0};
	struct graph_import_opts o = {0};
	char label[64], err[DAEMON_ERROR_MAX] = "";
	const char *status;
	int64_t step;
	int r;

	sc.label = import_label(req->full, "graph", label, sizeof(label));
	set_state(cy, "importing", sc.label);
	step = step_begin(cy, GRAPH_CONNECTOR,
	                  req->full ? STORE_STEP_FULL_IMPORT : STORE_STEP_DELTA_IMPORT);
	o.full = req->full;
	/* The rules name Graph properties of both types in one list: the connector's default
	 * set already covers what the built-in rules read, so it is not narrowed here. */
	o.run_id = cy->run_id;
	o.step_id = step;
	o.progress = progress_cb;
	o.cancelled = cancelled_cb;
	o.userdata = &sc;
	r = graph_import(cy->d->graph, cy->s, &o, &res);
	status = step_status(r, res.status, res.error, "import", err, sizeof(err));
	if (r >= 0) {
		if (res.status[0] && !is_stopped(status))
			cy->d->last_import_ok[1] = time(NULL);
	}
	if (r >= 0 && res.full && !req->full)
		fell_back(cy, step, sc.label);
	step_end(cy, step, GRAPH_CONNECTOR, sc.label, status, &res.counters, err);
	if (is_stopped(status))
		return IMPORT_STOPPED;
	/* A fallback full import that changed nothing (an empty tenant keeps no delta cursor, so
	 * each of its imports is a full one) asks for no full sync: what it saw is unchanged. */
	if (res.full && !req->full && res.counters.adds == 0 && res.counters.updates == 0 &&
	    res.counters.deletes == 0)
		return IMPORT_DELTA;
	return res.full ? IMPORT_FULL : IMPORT_DELTA;
}

static bool step_sync(struct cycle *cy, bool full)
{
	struct step_ctx sc = {.d = cy->d, .label = full ? "full sync" : "delta sync"};
	struct sync_result res = {0};
	struct sync_opts o = {0};
	char err[DAEMON_ERROR_MAX] = "";
	const char *status;
	int64_t step;
	int r;

	set_state(cy, "syncing", sc.label);
	step = step_begin(cy, NULL, full ? STORE_STEP_FULL_SYNC : STORE_STEP_DELTA_SYNC);
	o.full = full;
	o.run_id = cy->run_id;
	o.step_id = step;
	o.progress = progress_cb;
	o.cancelled = cancelled_cb;
	o.userdata = &sc;
	r = sync_run(cy->s, cy->req->rules, &o, &res);
	status = step_status(r, res.status, "", "sync", err, sizeof(err));
	step_end(cy, step, NULL, sc.label, status, &res.counters, err);
	return !is_stopped(status);
}

/* Reads the lease. 0: no conflict, the lease may be written (lease_write); 1: another server's
 * fresh lease blocks the export (recorded); negative: the lease could not be read (error text
 * in `err`). `l` gets what was read. */
static int lease_check(struct cycle *cy, struct graph_lease *l, char *err, size_t err_len)
{
	const struct conf *c = cy->req->conf;
	struct log_ctx ctx = {.run_id = cy->run_id_text, .connector = GRAPH_CONNECTOR};
	int64_t now = time(NULL), fresh;
	char alert[512];
	int r;

	fresh = 2 * (int64_t)c->sync.interval;
	if (fresh < LEASE_FRESH_MIN_SECONDS)
		fresh = LEASE_FRESH_MIN_SECONDS;
	r = graph_lease_read(cy->d->graph, l);
	if (r < 0) {
		(void)snprintf(err, err_len, "Failed to read the lease: %s", strerror(-r));
		return r;
	}
	if (r == 1) {
		(void)store_lease_set(cy->s, l->holder, l->config_hash, l->renewed, l->object_id);
		if (strcmp(l->holder, c->sync.server_name) != 0 && now - l->renewed < fresh) {
			if (!c->sync.force_promotion) {
				(void)snprintf(alert, sizeof(alert),
				               "server '%s' holds a fresh lease (renewed %" PRId64
				               " s ago, config hash %.12s); not exporting",
				               l->holder, now - l->renewed, l->config_hash);
				status_set(cy->s, STATUS_KEY_LEASE_ALERT, alert);
				cy->d->lease_conflict = true;
				log_full(LOG_ERR, 0, HS_MSG_LEASE_CONFLICT, &ctx,
				         "Lease conflict: %s", alert);
				(void)snprintf(err, err_len, "%s", alert);
				return 1;
			}
			log_full(LOG_WARNING, 0, HS_MSG_LEASE_CONFLICT, &ctx,
			         "force_promotion = yes: taking over the lease of server '%s' "
			         "(renewed %" PRId64 " s ago)",
			         l->holder, now - l->renewed);
		}
	}
	return 0;
}

/* Writes (renews or takes over) this server's lease, after lease_check() and the deletion
 * threshold allowed the export: a stopped export writes nothing, not even the lease. */
static int lease_write(struct cycle *cy, const struct graph_lease *l, char *err, size_t err_len)
{
	const struct conf *c = cy->req->conf;
	int64_t now = time(NULL);
	int r;

	r = graph_lease_write(cy->d->graph, c->sync.server_name, cy->req->config_hash, now);
	if (r < 0) {
		(void)snprintf(err, err_len, "Failed to write the lease: %s", strerror(-r));
		return r;
	}
	(void)store_lease_set(cy->s, c->sync.server_name, cy->req->config_hash, now,
	                      l->object_id[0] ? l->object_id : NULL);
	status_set(cy->s, STATUS_KEY_LEASE_ALERT, NULL);
	cy->d->lease_conflict = false;
	return 0;
}

/* 0: the export may go on; 1: the threshold stops it (recorded). */
static int threshold_check(struct cycle *cy, int64_t graph_id, char *err, size_t err_len)
{
	const struct conf_threshold *t = &cy->req->conf->sync.deletion_threshold;
	struct log_ctx ctx = {.run_id = cy->run_id_text, .connector = GRAPH_CONNECTOR};
	struct store_export_totals tot = {0};
	char fp[STORE_FINGERPRINT_LEN + 1], dfp[STORE_FINGERPRINT_LEN + 1], text[256];
	uint64_t limit, cs_total = 0, cs_pending;
	char *allowed = NULL;
	int r;

	r = store_export_counts(cy->s, graph_id, &tot);
	if (r < 0) {
		(void)snprintf(err, err_len, "Failed to count the pending exports: %s",
		               strerror(-r));
		return r;
	}
	if (t->kind == CONF_THRESHOLD_PERCENT) {
		(void)store_cs_count(cy->s, graph_id, &cs_total, &cs_pending);
		limit = cs_total * t->value / 100;
	} else {
		limit = t->value;
	}
	if (tot.delete <= limit) {
		status_set(cy->s, STATUS_KEY_THRESHOLD, NULL);
		cy->d->threshold_hit = false;
		return 0;
	}
	r = store_pending_fingerprint(cy->s, fp);
	if (r >= 0)
		r = store_pending_deletes_fingerprint(cy->s, dfp);
	if (r < 0) {
		(void)snprintf(err, err_len, "Failed to compute the queue fingerprint: %s",
		               strerror(-r));
		return r;
	}
	/* The allowance covers exactly the pending deletes it was given for: other changes
	 * imported meanwhile do not void it, one more or one fewer delete does. */
	if (store_state_get(cy->s, STATUS_KEY_ALLOW_DELETES, &allowed) >= 0 && allowed &&
	    strcmp(allowed, dfp) == 0) {
		free(allowed);
		log_full(LOG_NOTICE, 0, HS_MSG_DELETES_ALLOWED, &ctx,
		         "%" PRIu64 " deletes exceed the threshold (%" PRIu64
		         ") but were allowed by an administrator (fingerprint %s): exporting",
		         tot.delete, limit, fp);
		status_set(cy->s, STATUS_KEY_ALLOW_DELETES, NULL);
		status_set(cy->s, STATUS_KEY_THRESHOLD, NULL);
		cy->d->threshold_hit = false;
		return 0;
	}
	free(allowed);
	(void)snprintf(text, sizeof(text), "%" PRIu64 " deletes > limit %" PRIu64, tot.delete,
	               limit);
	status_set(cy->s, STATUS_KEY_THRESHOLD, text);
	cy->d->threshold_hit = true;
	log_full(LOG_ERR, 0, HS_MSG_THRESHOLD_EXCEEDED, &ctx,
	         "Deletion threshold exceeded: %s (deletion_threshold = %u%s); nothing exported. "
	         "Review with 'hybridsyncctl pending-exports --op delete', allow with "
	         "'hybridsyncctl allow-deletes' (fingerprint %s)",
	         text, t->value, t->kind == CONF_THRESHOLD_PERCENT ? "%" : "", fp);
	(void)snprintf(err, err_len, "%s", text);
	return 1;
}

static void step_export(struct cycle *cy)
{
	struct step_ctx sc = {.d = cy->d, .label = "export graph", .is_export = true};
	struct store_step_counters zero = {0};
	struct graph_step_result res = {0};
	struct graph_export_opts o = {0};
	struct graph_lease lease = {0};
	char err[DAEMON_ERROR_MAX] = "";
	int64_t step, graph_id = 0;
	const char *status;
	int r;

	if (atomic_load(&cy->d->cancel_export) || atomic_load(&cy->d->stop))
		return; /* demoted or stopping before the export began: nothing to record */
	set_state(cy, "exporting", sc.label);
	step = step_begin(cy, GRAPH_CONNECTOR, STORE_STEP_EXPORT);
	cy->exported = true;
	r = store_get_connector(cy->s, GRAPH_CONNECTOR, &graph_id);
	if (r < 0) {
		(void)snprintf(err, sizeof(err), "Failed to find the graph connector: %s",
		               strerror(-r));
		step_end(cy, step, GRAPH_CONNECTOR, sc.label, "stopped-error", &zero, err);
		return;
	}
	r = lease_check(cy, &lease, err, sizeof(err));
	if (r != 0) {
		status = r > 0 ? "stopped-lease-conflict" : "stopped-connectivity";
		step_end(cy, step, GRAPH_CONNECTOR, sc.label, status, &zero, err);
		return;
	}
	r = threshold_check(cy, graph_id, err, sizeof(err));
	if (r != 0) {
		status = r > 0 ? "stopped-deletion-threshold-exceeded" : "stopped-error";
		step_end(cy, step, GRAPH_CONNECTOR, sc.label, status, &zero, err);
		return;
	}
	r = lease_write(cy, &lease, err, sizeof(err));
	if (r != 0) {
		step_end(cy, step, GRAPH_CONNECTOR, sc.label, "stopped-connectivity", &zero, err);
		return;
	}
	o.run_id = cy->run_id;
	o.step_id = step;
	o.progress = progress_cb;
	o.cancelled = cancelled_cb;
	o.userdata = &sc;
	r = graph_export(cy->d->graph, cy->s, &o, &res);
	status = step_status(r, res.status, res.error, "export", err, sizeof(err));
	if (r >= 0) {
		if (!is_stopped(status))
			cy->d->last_export_ok = time(NULL);
		log_info("export: %" PRIu64 " write requests, %" PRIu64 " throttled answers",
		         res.write_requests, res.throttled);
	}
	step_end(cy, step, GRAPH_CONNECTOR, sc.label, status, &res.counters, err);
}

/* A staging server reads the lease (never writes it) and reports config drift. */
static void staging_lease_check(struct cycle *cy)
{
	struct log_ctx ctx = {.run_id = cy->run_id_text, .connector = GRAPH_CONNECTOR};
	const char *own = cy->req->config_hash;
	struct graph_lease l = {0};
	char *old = NULL;
	int r;

	r = graph_lease_read(cy->d->graph, &l);
	if (r < 0) {
		log_full(LOG_WARNING, r, NULL, &ctx, "Failed to read the active server's lease: %s",
		         strerror(-r));
		return;
	}
	if (r == 1)
		(void)store_lease_set(cy->s, l.holder, l.config_hash, l.renewed, l.object_id);
	if (r == 0 || strcmp(l.holder, cy->req->conf->sync.server_name) == 0 ||
	    strcmp(l.config_hash, own) == 0) {
		status_set(cy->s, STATUS_KEY_DRIFT, NULL);
		cy->d->drift = false;
		return;
	}
	cy->d->drift = true;
	if (store_state_get(cy->s, STATUS_KEY_DRIFT, &old) < 0 || !old ||
	    strcmp(old, l.config_hash) != 0)
		log_full(LOG_WARNING, 0, HS_MSG_CONFIG_DRIFT, &ctx,
		         "Configuration drift: the active server '%s' runs config hash %s, this "
		         "server %s",
		         l.holder, l.config_hash, own);
	free(old);
	status_set(cy->s, STATUS_KEY_DRIFT, l.config_hash);
}

static void cycle_end(struct cycle *cy, bool initial_done)
{
	const struct conf *c = cy->req->conf;
	struct log_ctx ctx = {.run_id = cy->run_id_text};
	int64_t now = time(NULL);
	uint64_t purged = 0;
	int r;

	r = store_run_end(cy->s, cy->run_id, cy->status);
	if (r < 0)
		log_warning("Failed to record the end of run %" PRId64 ": %s", cy->run_id,
		            strerror(-r));
	if (initial_done)
		status_set(cy->s, STATUS_KEY_INITIAL_HASH, cy->req->config_hash);
	r = store_run_purge(cy->s, now - (int64_t)c->sync.history_days * 86400, &purged);
	if (r < 0)
		log_warning("Failed to purge the run history: %s", strerror(-r));
	else if (purged > 0)
		log_info("Purged %" PRIu64 " runs older than %u days", purged,
		         c->sync.history_days);
	cy->d->last_cycle_finished = now;
	cy->d->last_cycle_errors = cy->errors;
	(void)snprintf(cy->d->last_cycle_status, sizeof(cy->d->last_cycle_status), "%s",
	               cy->status);
	if (!is_stopped(cy->status))
		cy->d->last_good_cycle = now;
	log_full(is_stopped(cy->status) ? LOG_WARNING : LOG_INFO, 0, HS_MSG_CYCLE_FINISHED, &ctx,
	         "%s cycle %" PRId64 " finished: %s (%" PRId64 " s, %" PRIu64 " per-object errors)",
	         cy->req->full ? "Initial" : "Delta", cy->run_id, cy->status,
	         now - cy->d->last_cycle_started, cy->errors);
	(void)metrics_write(cy->d, c, cy->req->config_hash, cy->s);
}

void cycle_run(struct daemon *d, const struct cycle_request *req, struct cycle_result *ret)
{
	struct cycle cy = {.d = d, .req = req, .s = d->wstore, .status = "success"};
	const struct conf *c = req->conf;
	struct log_ctx ctx = {0};
	enum import_outcome ad, graph = IMPORT_STOPPED;
	bool synced = false, full_sync;
	int r;

	memset(ret, 0, sizeof(*ret));
	ret->initial = req->full;
	d->last_cycle_started = time(NULL);
	r = store_run_begin(cy.s, req->full ? STORE_RUN_INITIAL : STORE_RUN_DELTA, req->config_hash,
	                    &cy.run_id);
	if (r < 0) {
		log_error("Failed to start a run in the database: %s (%s)", strerror(-r),
		          store_last_error(cy.s));
		(void)snprintf(ret->status, sizeof(ret->status), "stopped-error");
		return;
	}
	(void)snprintf(cy.run_id_text, sizeof(cy.run_id_text), "%" PRId64, cy.run_id);
	ctx.run_id = cy.run_id_text;
	log_full(LOG_INFO, 0, HS_MSG_CYCLE_STARTED, &ctx,
	         "%s cycle %" PRId64 " started (staging = %s, config hash %.12s)",
	         req->full ? "Initial" : "Delta", cy.run_id, c->sync.staging ? "yes" : "no",
	         req->config_hash);

	/* Without a complete AD import nothing can be synced: the Graph import waits too. */
	ad = step_ad_import(&cy);
	if (ad != IMPORT_STOPPED && !atomic_load(&d->stop))
		graph = step_graph_import(&cy);

	/* Sync only over two complete imports: a stopped import leaves its pending imports
	 * for the next cycle. A fallback to a full import asks for a full sync. */
	if (ad != IMPORT_STOPPED && graph != IMPORT_STOPPED && !atomic_load(&d->stop)) {
		full_sync = req->full || ad == IMPORT_FULL || graph == IMPORT_FULL;
		synced = step_sync(&cy, full_sync);
	}
	if (synced && !atomic_load(&d->stop)) {
		if (c->sync.staging)
			staging_lease_check(&cy);
		else
			step_export(&cy);
	}
	if (atomic_load(&d->stop) && !is_stopped(cy.status)) {
		(void)snprintf(cy.status_buf, sizeof(cy.status_buf), "stopped-cancelled");
		cy.status = cy.status_buf;
	}
	cycle_end(&cy, req->full && synced);

	ret->run_id = cy.run_id;
	(void)snprintf(ret->status, sizeof(ret->status), "%s", cy.status);
	ret->retry = cy.retry;
	ret->bind_refused = cy.bind_refused;
	ret->exported = cy.exported;
}
