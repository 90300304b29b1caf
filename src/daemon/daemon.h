/* hybridsyncd's private interfaces: the daemon state shared by the event loop (loop.c), the
 * cycle worker (cycle.c), the control socket (control.c), the metrics file (metrics.c) and the
 * systemd notifications (notify.c).
 *
 * Threads: the sd-event loop runs on the main thread and owns `store` (status keys, audit,
 * allow-deletes). A cycle runs on a worker thread that owns `wstore` and, while it runs, the
 * Graph client, the running config and rules: those are swapped only when no cycle runs. The
 * two threads share only `struct worker_shared` (under its mutex) and the atomic flags. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "hybridsync/conf.h"
#include "hybridsync/graph.h"
#include "hybridsync/store.h"
#include "hybridsync/sync.h"

#define DAEMON_STATUS_MAX 48
#define DAEMON_STEP_MAX   256
#define DAEMON_ERROR_MAX  512

/* A lease renewed less than this long ago is fresh: max(2 x interval, 10 min). */
#define LEASE_FRESH_MIN_SECONDS 600u

/* Retry after a stopped-server-down/connectivity cycle: 30 s doubling, capped at interval. Not
 * after a bind the directory refused (cycle_result.bind_refused): that waits for the interval. */
#define RETRY_FIRST_SECONDS 30u

/* What a cycle is asked to do; filled by the loop, read by the worker. */
struct cycle_request {
	bool full;               /* an initial cycle: full imports and full sync */
	const struct conf *conf; /* the running config (not swapped while the cycle runs) */
	const struct sync_rules *rules;
	const char *config_hash;
};

/* What a finished cycle reports to the loop. */
struct cycle_result {
	int64_t run_id;
	char status[DAEMON_STATUS_MAX]; /* the run status: worst step status */
	bool initial;                   /* ran as an initial cycle */
	bool retry;                     /* stopped by an unreachable peer: retry with back-off */
	bool exported;                  /* an export step ran */
	/* The directory refused the bind (a wrong password...): no quick retry, each one would
	 * count a failed logon against the account. */
	bool bind_refused;
};

/* Shared by the loop and the worker (under `lock`). */
struct worker_shared {
	pthread_mutex_t lock;
	char state[DAEMON_STATUS_MAX]; /* idle, importing, syncing, exporting */
	char step[DAEMON_STEP_MAX];    /* human text, as in STATUS= */
	bool step_changed;
	bool done;
	struct cycle_result result;
};

struct client;

struct daemon {
	const char *conf_path;
	bool once;
	int exit_code;
	sd_event *event;

	/* Loop thread's store handle; `wstore` is the worker's. */
	struct store *store;
	struct store *wstore;
	struct graph *graph;

	/* The running configuration. */
	struct conf *conf;
	struct sync_rules *rules;
	char config_hash[CONF_HASH_HEX_SIZE];
	/* A validated reload waiting for the running cycle to end. */
	struct conf *next_conf;
	struct sync_rules *next_rules;

	/* Scheduling. */
	bool cycle_running;
	bool cycle_wanted;      /* run one as soon as possible */
	bool cycle_wanted_full; /* ... as an initial cycle */
	bool stopping;
	unsigned retry_seconds; /* back-off after an unreachable peer, 0: none */
	int64_t next_cycle;     /* Unix seconds of the next scheduled delta cycle */
	sd_event_source *cycle_timer;
	sd_event_source *progress_timer;

	/* The worker. */
	pthread_t thread;
	int done_fd; /* eventfd the worker writes when the cycle ends */
	sd_event_source *done_source;
	struct worker_shared shared;
	struct cycle_request req;
	atomic_bool stop;          /* SIGTERM: stop at the next batch boundary */
	atomic_bool cancel_export; /* demotion: stop the export at the next batch boundary */
	int64_t cycle_started;     /* Unix seconds, for the status verb */

	/* Control socket. */
	int listen_fd;
	char *socket_path;
	sd_event_source *listen_source;
	struct client *clients;
	unsigned n_clients;

	/* Metrics memory (worker thread while a cycle runs, loop thread otherwise). */
	int64_t last_cycle_started, last_cycle_finished, last_good_cycle, last_export_ok;
	int64_t last_import_ok[2]; /* ad, graph */
	char last_cycle_status[DAEMON_STATUS_MAX];
	uint64_t last_cycle_errors;
	bool threshold_hit, lease_conflict, drift;
};

/* loop.c */
int daemon_run(struct daemon *d);
/* Frees what daemon_run() set up. */
void daemon_done(struct daemon *d);
/* Asks for a cycle (coalesced with one already asked for). */
void daemon_request_cycle(struct daemon *d, bool full);

/* cycle.c: runs one cycle on the calling thread with d->wstore and d->graph. */
void cycle_run(struct daemon *d, const struct cycle_request *req, struct cycle_result *ret);
/* The worse of two run statuses (success < completed-* < stopped-*). */
const char *cycle_worse_status(const char *a, const char *b);

/* control.c */
int control_open(struct daemon *d);
void control_close(struct daemon *d);
/* Answers the clients that wait for the cycle that just ended. */
void control_cycle_finished(struct daemon *d, const struct cycle_result *res);
/* Moves the clients waiting for the next cycle to the running one. */
void control_cycle_started(struct daemon *d);

/* metrics.c: rewrites conf->sync.metrics_file (if set) atomically with `s`. */
int metrics_write(struct daemon *d, const struct conf *c, const char *config_hash, struct store *s);

/* notify.c */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void notify_ready(void);
void notify_reloading(void);
void notify_stopping(void);
/* Sets the human step text (for STATUS= and the status key); throttled notification. */
void notify_step(struct daemon *d, bool force, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes one status key, logging (debug) a failure: status keys are best effort. */
void status_set(struct store *s, const char *key, const char *value);
void status_set_int(struct store *s, const char *key, int64_t value);
/* "40,000": thousands separated by commas. */
void format_count(char *buf, size_t len, uint64_t n);
