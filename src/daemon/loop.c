/* hybridsyncd's event loop: one sd-event loop for the signals (SIGTERM/SIGINT stop, SIGHUP
 * reloads), the cycle timer, the control socket and the watchdog. Cycles run on a worker
 * thread that reports its end through an eventfd; the loop never waits on one. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "hybridsync/log.h"
#include "hybridsync/messages.h"
#include "hybridsync/status.h"

#define PROGRESS_TICK_USEC (2ULL * 1000000ULL)

static void *worker_main(void *userdata)
{
	struct daemon *d = userdata;
	struct cycle_result res;
	uint64_t one = 1;

	cycle_run(d, &d->req, &res);
	pthread_mutex_lock(&d->shared.lock);
	d->shared.result = res;
	d->shared.done = true;
	pthread_mutex_unlock(&d->shared.lock);
	while (write(d->done_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	return NULL;
}

static void write_next_cycle(struct daemon *d)
{
	char when[32];

	status_set_int(d->store, STATUS_KEY_NEXT_CYCLE, d->next_cycle);
	if (!d->cycle_running && !d->stopping) {
		struct tm tm;
		time_t t = (time_t)d->next_cycle;

		if (localtime_r(&t, &tm) && strftime(when, sizeof(when), "%H:%M:%S", &tm) > 0)
			notify_status("idle; next cycle at %s", when);
	}
}

static void schedule(struct daemon *d, unsigned seconds)
{
	int r;

	d->next_cycle = time(NULL) + seconds;
	r = sd_event_source_set_time_relative(d->cycle_timer, (uint64_t)seconds * 1000000ULL);
	if (r >= 0)
		r = sd_event_source_set_enabled(d->cycle_timer, SD_EVENT_ONESHOT);
	if (r < 0)
		log_error("Failed to schedule the next cycle: %s", strerror(-r));
	write_next_cycle(d);
}

static bool needs_initial(struct daemon *d)
{
	char *h = NULL;
	bool initial;

	if (store_state_get(d->store, STATUS_KEY_INITIAL_HASH, &h) < 0 || !h)
		return true;
	initial = strcmp(h, d->config_hash) != 0;
	free(h);
	return initial;
}

static void maybe_start_cycle(struct daemon *d)
{
	int r;

	if (d->cycle_running || d->stopping || !d->cycle_wanted)
		return;
	d->req.full = d->cycle_wanted_full || needs_initial(d);
	d->req.conf = d->conf;
	d->req.rules = d->rules;
	d->req.config_hash = d->config_hash;
	d->cycle_wanted = false;
	d->cycle_wanted_full = false;
	atomic_store(&d->cancel_export, false);
	pthread_mutex_lock(&d->shared.lock);
	d->shared.done = false;
	(void)snprintf(d->shared.state, sizeof(d->shared.state), "importing");
	pthread_mutex_unlock(&d->shared.lock);
	d->cycle_started = time(NULL);
	d->cycle_running = true;
	control_cycle_started(d);
	r = pthread_create(&d->thread, NULL, worker_main, d);
	if (r != 0) {
		d->cycle_running = false;
		log_error("Failed to start the cycle worker: %s", strerror(r));
		schedule(d, RETRY_FIRST_SECONDS);
		return;
	}
	(void)sd_event_source_set_enabled(d->progress_timer, SD_EVENT_ON);
}

void daemon_request_cycle(struct daemon *d, bool full)
{
	d->cycle_wanted = true;
	d->cycle_wanted_full = d->cycle_wanted_full || full;
	maybe_start_cycle(d);
}

static int on_cycle_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s;
	(void)usec;
	daemon_request_cycle(userdata, false);
	return 0;
}

static int on_progress_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct daemon *d = userdata;
	char step[DAEMON_STEP_MAX] = "";
	bool changed;

	pthread_mutex_lock(&d->shared.lock);
	changed = d->shared.step_changed;
	d->shared.step_changed = false;
	if (changed)
		memcpy(step, d->shared.step, sizeof(step));
	pthread_mutex_unlock(&d->shared.lock);
	if (changed)
		status_set(d->store, STATUS_KEY_STEP, step);
	(void)sd_event_source_set_time(s, usec + PROGRESS_TICK_USEC);
	return 0;
}

/* --- configuration: swap, reload ---------------------------------------------------------- */

static void record_reload(struct daemon *d, bool ok, const char *error)
{
	status_set_int(d->store, STATUS_KEY_RELOAD_TIME, time(NULL));
	status_set(d->store, STATUS_KEY_RELOAD_OK, ok ? "1" : "0");
	status_set(d->store, STATUS_KEY_RELOAD_ERROR, ok ? "" : error);
}

static void write_config_keys(struct daemon *d)
{
	char *json = conf_export_json(d->conf, false, false);

	status_set(d->store, STATUS_KEY_STAGING, d->conf->sync.staging ? "1" : "0");
	status_set(d->store, STATUS_KEY_CONFIG_HASH, d->config_hash);
	if (json)
		(void)store_config_snapshot_put(d->store, d->config_hash, json);
	free(json);
}

/* Makes `c` and `rules` the running config; no cycle runs. */
static void apply_conf(struct daemon *d, struct conf *c, struct sync_rules *rules)
{
	char fp[STORE_FINGERPRINT_LEN + 1] = "", hash[CONF_HASH_HEX_SIZE], detail[256];
	bool was_staging = d->conf->sync.staging, promoted, hash_changed;
	unsigned old_interval = d->conf->sync.interval;
	int r;

	if (conf_hash(c, hash) < 0) {
		log_error("Failed to hash the new configuration, keeping the running one");
		conf_free(c);
		sync_rules_free(rules);
		return;
	}
	r = graph_set_conf(d->graph, c);
	if (r < 0) {
		log_full(LOG_ERR, r, HS_MSG_RELOAD_FAILED, NULL,
		         "Failed to apply the new configuration to the Graph client: %s; "
		         "keeping the running one",
		         strerror(-r));
		record_reload(d, false, "the Graph client refused the new configuration");
		conf_free(c);
		sync_rules_free(rules);
		return;
	}
	log_full(LOG_INFO, 0, HS_MSG_RELOAD_DONE, NULL,
	         "Configuration reloaded: config hash %s -> %s, staging = %s", d->config_hash, hash,
	         c->sync.staging ? "yes" : "no");
	(void)snprintf(detail, sizeof(detail), "config hash %.64s -> %.64s", d->config_hash, hash);
	(void)store_audit_add(d->store, "reload", -1, detail, NULL);
	hash_changed = strcmp(hash, d->config_hash) != 0;
	conf_free(d->conf);
	sync_rules_free(d->rules);
	d->conf = c;
	d->rules = rules;
	memcpy(d->config_hash, hash, sizeof(hash));
	write_config_keys(d);

	if (was_staging != c->sync.staging) {
		promoted = !c->sync.staging;
		if (store_pending_fingerprint(d->store, fp) < 0)
			fp[0] = '\0';
		log_full(LOG_NOTICE, 0, HS_MSG_STAGING_CHANGED, NULL,
		         "%s: staging %s -> %s (queue fingerprint %s, config hash %s)",
		         promoted ? "Promotion" : "Demotion", was_staging ? "yes" : "no",
		         c->sync.staging ? "yes" : "no", fp[0] ? fp : "unknown", hash);
		(void)snprintf(detail, sizeof(detail), "staging %s -> %s, config hash %.64s",
		               was_staging ? "yes" : "no", c->sync.staging ? "yes" : "no", hash);
		(void)store_audit_add(d->store, "staging-changed", -1, detail, fp[0] ? fp : NULL);
	}
	/* Before a cycle starts: the worker writes the same file. */
	(void)metrics_write(d, d->conf, d->config_hash, d->store);
	/* A promotion runs a delta cycle at once: the queue is made current, then the lease and
	 * the threshold are checked and the export runs. Changed rules or scope: an initial
	 * cycle at once. */
	if ((was_staging && !c->sync.staging) || hash_changed)
		daemon_request_cycle(d, false);
	else if (old_interval != c->sync.interval && !d->cycle_wanted)
		schedule(d, c->sync.interval);
}

/* "FILE:LINE: message" of the first problem, all of them logged. */
static void reload_failed(struct daemon *d, const char *first, size_t n)
{
	log_full(LOG_ERR, 0, HS_MSG_RELOAD_FAILED, NULL,
	         "config file %s has errors, not reloading: %s%s", d->conf_path, first,
	         n > 1 ? " (and more, see above)" : "");
	record_reload(d, false, first);
}

static void reload(struct daemon *d)
{
	struct conf_errors *errors = NULL;
	struct sync_rules *rules = NULL;
	struct conf *c = NULL;
	char msg[DAEMON_ERROR_MAX];
	int r;

	notify_reloading();
	log_info("Reloading configuration %s", d->conf_path);
	r = conf_load(d->conf_path, &c, &errors);
	if (r < 0) {
		for (size_t i = 0; errors && i < errors->n; i++)
			log_error("%s", errors->v[i].text);
		if (errors && errors->n > 0)
			reload_failed(d, errors->v[0].text, errors->n);
		else {
			(void)snprintf(msg, sizeof(msg), "%s: %s", d->conf_path, strerror(-r));
			reload_failed(d, msg, 1);
		}
		goto out;
	}
	if (strcmp(c->sync.database, d->conf->sync.database) != 0) {
		(void)snprintf(msg, sizeof(msg),
		               "%s: [sync] database cannot change on reload (restart the daemon)",
		               d->conf_path);
		reload_failed(d, msg, 1);
		goto out;
	}
	r = sync_rules_load(c, &rules, &errors);
	if (r < 0) {
		for (size_t i = 0; errors && i < errors->n; i++)
			log_error("%s", errors->v[i].text);
		if (errors && errors->n > 0)
			reload_failed(d, errors->v[0].text, errors->n);
		else {
			(void)snprintf(msg, sizeof(msg), "%s: rules: %s", d->conf_path,
			               strerror(-r));
			reload_failed(d, msg, 1);
		}
		goto out;
	}
	record_reload(d, true, NULL);
	if (d->cycle_running) {
		/* Swapped when the cycle ends; a demotion stops its export now. */
		if (c->sync.staging && !d->conf->sync.staging) {
			atomic_store(&d->cancel_export, true);
			log_full(
			    LOG_NOTICE, 0, HS_MSG_STAGING_CHANGED, NULL,
			    "Demotion: stopping the running export at the next batch boundary");
		}
		conf_free(d->next_conf);
		sync_rules_free(d->next_rules);
		d->next_conf = c;
		d->next_rules = rules;
		c = NULL;
		rules = NULL;
		log_info("New configuration validated; it takes over when the running cycle ends");
	} else {
		apply_conf(d, c, rules);
		c = NULL;
		rules = NULL;
	}
out:
	conf_errors_free(errors);
	conf_free(c);
	sync_rules_free(rules);
	notify_ready();
	if (!d->cycle_running)
		write_next_cycle(d);
}

/* --- signals, cycle end ----------------------------------------------------------------- */

static void begin_stop(struct daemon *d)
{
	if (d->stopping)
		return;
	d->stopping = true;
	atomic_store(&d->stop, true);
	notify_stopping();
	log_full(LOG_INFO, 0, HS_MSG_DAEMON_STOPPING, NULL, "Stopping%s",
	         d->cycle_running ? " at the next batch boundary" : "");
	status_set(d->store, STATUS_KEY_STATE, "stopping");
	if (!d->cycle_running)
		(void)sd_event_exit(d->event, d->exit_code);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct daemon *d = userdata;

	(void)s;
	if (si->ssi_signo == SIGHUP) {
		if (!d->stopping)
			reload(d);
		return 0;
	}
	begin_stop(d);
	return 0;
}

static int on_cycle_done(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct daemon *d = userdata;
	struct cycle_result res;
	unsigned wait;
	uint64_t v;
	bool done;

	(void)s;
	(void)revents;
	if (read(fd, &v, sizeof(v)) < 0)
		return 0;
	pthread_mutex_lock(&d->shared.lock);
	done = d->shared.done;
	res = d->shared.result;
	pthread_mutex_unlock(&d->shared.lock);
	if (!done || !d->cycle_running)
		return 0;
	(void)pthread_join(d->thread, NULL);
	d->cycle_running = false;
	(void)sd_event_source_set_enabled(d->progress_timer, SD_EVENT_OFF);
	pthread_mutex_lock(&d->shared.lock);
	(void)snprintf(d->shared.state, sizeof(d->shared.state), "idle");
	(void)snprintf(d->shared.step, sizeof(d->shared.step), "last cycle %" PRId64 ": %s",
	               res.run_id, res.status);
	d->shared.step_changed = false;
	pthread_mutex_unlock(&d->shared.lock);
	status_set(d->store, STATUS_KEY_STATE, d->stopping ? "stopping" : "idle");
	status_set(d->store, STATUS_KEY_STEP, d->shared.step);
	control_cycle_finished(d, &res);

	if (d->once || d->stopping) {
		/* --once reports the cycle; a stopped daemon exits 0 (a clean stop). */
		d->exit_code = d->once && strncmp(res.status, "stopped-", 8) == 0 ? 1 : 0;
		(void)sd_event_exit(d->event, d->exit_code);
		return 0;
	}
	if (d->next_conf) {
		apply_conf(d, d->next_conf, d->next_rules);
		d->next_conf = NULL;
		d->next_rules = NULL;
		/* Demoted and promoted again while the cycle ran: its export was stopped, the
		 * config in force exports, so run the export's cycle now. */
		if (atomic_load(&d->cancel_export) && !d->conf->sync.staging)
			daemon_request_cycle(d, false);
	}
	if (res.retry) {
		d->retry_seconds = d->retry_seconds ? 2 * d->retry_seconds : RETRY_FIRST_SECONDS;
		if (d->retry_seconds > d->conf->sync.interval)
			d->retry_seconds = d->conf->sync.interval;
		wait = d->retry_seconds;
		log_full(LOG_INFO, 0, HS_MSG_PEER_RETRY, NULL,
		         "A peer was unreachable: next attempt in %u s", wait);
	} else {
		d->retry_seconds = 0;
		wait = d->conf->sync.interval;
		if (res.bind_refused)
			log_full(
			    LOG_NOTICE, 0, HS_MSG_BIND_REFUSED, NULL,
			    "The directory refused the bind: next attempt in %u s (interval), "
			    "not after %u s as for an outage, since each failed bind counts "
			    "towards the account's lockout; 'hybridsyncctl sync' tries at once",
			    wait, RETRY_FIRST_SECONDS);
	}
	schedule(d, wait);
	maybe_start_cycle(d);
	return 0;
}

int daemon_run(struct daemon *d)
{
	sigset_t mask;
	int r;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return log_error_errno(errno, "Failed to block signals: %s", strerror(errno));
	r = sd_event_default(&d->event);
	if (r < 0)
		return log_error_errno(r, "Failed to create the event loop: %s", strerror(-r));
	if ((r = sd_event_add_signal(d->event, NULL, SIGTERM, on_signal, d)) < 0 ||
	    (r = sd_event_add_signal(d->event, NULL, SIGINT, on_signal, d)) < 0 ||
	    (r = sd_event_add_signal(d->event, NULL, SIGHUP, on_signal, d)) < 0)
		return log_error_errno(r, "Failed to watch signals: %s", strerror(-r));
	r = sd_event_set_watchdog(d->event, true);
	if (r < 0)
		log_warning("Failed to enable the watchdog: %s", strerror(-r));
	else if (r > 0)
		log_debug("Watchdog enabled");
	d->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->done_fd < 0)
		return log_error_errno(errno, "Failed to create an eventfd: %s", strerror(errno));
	r = sd_event_add_io(d->event, &d->done_source, d->done_fd, EPOLLIN, on_cycle_done, d);
	if (r >= 0)
		r = sd_event_add_time_relative(d->event, &d->cycle_timer, CLOCK_MONOTONIC,
		                               (uint64_t)d->conf->sync.interval * 1000000ULL, 0,
		                               on_cycle_timer, d);
	if (r >= 0)
		r = sd_event_add_time_relative(d->event, &d->progress_timer, CLOCK_MONOTONIC,
		                               PROGRESS_TICK_USEC, 0, on_progress_tick, d);
	if (r < 0)
		return log_error_errno(r, "Failed to set up the event loop: %s", strerror(-r));
	(void)sd_event_source_set_enabled(d->progress_timer, SD_EVENT_OFF);
	(void)sd_event_source_set_enabled(d->cycle_timer, SD_EVENT_OFF);

	r = control_open(d);
	if (r < 0 && !d->once)
		return r;

	status_set_int(d->store, STATUS_KEY_PID, getpid());
	status_set(d->store, STATUS_KEY_STATE, "idle");
	write_config_keys(d);
	(void)metrics_write(d, d->conf, d->config_hash, d->store);
	log_full(LOG_INFO, 0, HS_MSG_DAEMON_STARTED, NULL,
	         "hybridsyncd %s started: server %s, staging = %s, config hash %s, interval %u s",
	         HYBRIDSYNC_VERSION, d->conf->sync.server_name,
	         d->conf->sync.staging ? "yes" : "no", d->config_hash, d->conf->sync.interval);
	notify_ready();

	/* The first cycle runs at once: an initial one when the rules or scope changed. */
	d->next_cycle = time(NULL);
	status_set_int(d->store, STATUS_KEY_NEXT_CYCLE, d->next_cycle);
	daemon_request_cycle(d, false);

	r = sd_event_loop(d->event);
	if (r < 0) {
		log_error("Event loop failed: %s", strerror(-r));
		atomic_store(&d->stop, true);
		if (d->cycle_running)
			(void)pthread_join(d->thread, NULL);
		d->exit_code = 1;
	} else {
		d->exit_code = r;
	}
	control_close(d);
	status_set(d->store, STATUS_KEY_PID, NULL);
	status_set(d->store, STATUS_KEY_NEXT_CYCLE, NULL);
	status_set(d->store, STATUS_KEY_STATE, "stopped");
	status_set(d->store, STATUS_KEY_STEP, "stopped");
	log_info("Stopped");
	return d->exit_code;
}

void daemon_done(struct daemon *d)
{
	sd_event_source_disable_unref(d->done_source);
	sd_event_source_disable_unref(d->cycle_timer);
	sd_event_source_disable_unref(d->progress_timer);
	if (d->done_fd >= 0)
		close(d->done_fd);
	d->event = sd_event_unref(d->event);
	conf_free(d->next_conf);
	sync_rules_free(d->next_rules);
}
