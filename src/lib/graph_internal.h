/* Private parts of the Graph connector shared by graph*.c. */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hybridsync/graph.h"
#include "http_internal.h"

#define GRAPH_BATCH_MAX     20 /* requests in one $batch (Graph's limit) */
#define GRAPH_BIND_MAX      20 /* link changes in one PATCH (Graph's limit) */
#define GRAPH_PARALLEL      4  /* concurrent HTTP requests */
#define GRAPH_ATTEMPTS_MAX  10 /* per request, throttling and transient failures */
#define GRAPH_BACKOFF_MAX_S 30.0
#define GRAPH_CODE_MAX      96
#define GRAPH_MESSAGE_MAX   512
#define GRAPH_LEASE_NICK    "hybridsync-lease"

struct graph {
	char *tenant, *client_id, *authority, *endpoint, *ca_file, *anchor_extension;
	struct conf_secret_ref client_secret, certificate, key;
	bool allow_insecure, soft_match, staging;
	struct conf_write_budget budget;
	struct http *http;
	/* access token and when to renew it (monotonic seconds) */
	char *token;
	size_t token_len;
	double token_renew;
	/* write budget: send times of the writes in the current window (ring) */
	double *wtimes;
	size_t wcap, whead, wcount;
	uint64_t writes_total, throttled_total;
	unsigned parallel;
	/* the last failure that stops a step, for graph_step_result.error */
	char error[GRAPH_ERROR_MAX];
	const char *stop_status; /* NULL, or the step status the failure means */
};

/* One Graph request. `path` is relative to the version ("/users?$filter=..."), or an absolute
 * URL (a nextLink or deltaLink: never sent inside $batch). */
struct gop {
	const char *method;
	char *path;  /* owned */
	cJSON *body; /* owned, NULL: none */
	bool write;
	bool idempotent; /* may be resent after a 5xx or a lost answer */
	bool eventual;   /* ConsistencyLevel: eventual */
	/* out */
	long status; /* 0: no answer after every attempt */
	cJSON *json; /* owned: the response body, when JSON */
	char request_id[HTTP_REQUEST_ID_MAX];
	char code[GRAPH_CODE_MAX];
	char message[GRAPH_MESSAGE_MAX];
	unsigned attempts;
	bool settled;
	long retry_after;
	double not_before;
	void *userdata;
	size_t tag;
};

void gop_clear(struct gop *op);
int gop_set(struct gop *op, const char *method, const char *path, cJSON *body);

/* Sends the requests (in $batch of up to 20 when `batch` and more than one is pending, up to
 * GRAPH_PARALLEL HTTP requests at a time), honouring Retry-After, retrying throttled and
 * transient failures with capped exponential back-off and jitter, pacing writes to the budget.
 * Returns 0 when every op has a final status (which may be an error), -EACCES when no token
 * could be had (g->error says why), -ENOMEM. Aborts on a write while staging. */
int graph_run(struct graph *g, struct gop *ops, size_t n, bool batch);

/* The token (cached, renewed before expiry); force: renew now. */
int graph_token(struct graph *g, bool force);

/* Helpers */
double graph_now(void);
void graph_sleep(double seconds);
void graph_fail(struct graph *g, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool graph_transient(long status);
/* Graph property value types known to the connector (booleans, string collections). */
bool graph_prop_is_bool(const char *name);
bool graph_prop_is_collection(const char *name);
/* A Graph JSON value into attribute values (text); returns 0 and adds nothing for null. */
int graph_json_to_attr(struct attr_set *set, const char *name, const cJSON *v);
/* Attribute values into a JSON value for a Graph property (NULL values: JSON null). */
cJSON *graph_attr_to_json(const char *name, const struct attr_value *values, size_t n);
/* A random password Entra accepts (16 characters, 4 classes) into buf (>= 17 bytes). */
int graph_random_password(char *buf, size_t len);
/* OData string literal in a $filter: the value quoted with '' doubled, then percent-encoded
 * with the rest of the expression; NULL on ENOMEM. */
char *graph_filter_eq(const char *prop, const char *value);
/* prop in ('v1','v2',...), percent-encoded; NULL on ENOMEM. */
char *graph_filter_in(const char *prop, const char *const *values, size_t n);

/* --- export (graph_export*.c) ------------------------------------------------------------- */

#define GRAPH_EXPORT_CHUNK (GRAPH_PARALLEL * GRAPH_BATCH_MAX) /* exports per round trip */

struct xmember {
	enum store_member_op op;
	char *anchor;
	char *target;
	bool done, failed;
};

struct xitem {
	struct store_export *e;
	struct xmember *m;
	size_t n_m;
	char *target_id;
	int64_t cs_id;
	bool is_group;
	bool sent;     /* something was sent: stays in flight unless settled */
	bool finished; /* settled (done or error) or deferred */
	bool ambiguous;
	bool adopt;
	struct gop *op; /* the op in the current round, NULL: none */
};

struct xp {
	struct graph *g;
	struct store *s;
	const struct graph_export_opts *o;
	struct graph_step_result *ret;
	int64_t conn;
	struct xitem *items;
	size_t n;
	uint64_t done;
	bool stop;
};

static inline bool graph_export_has_member_work(const struct xitem *it)
{
	return it->is_group && it->n_m > 0;
}

const char *graph_export_coll_of(const struct xitem *it);
void graph_export_item_error(struct xp *x, struct xitem *it, const struct gop *op, const char *code,
                             const char *message);
int graph_export_item_done(struct xp *x, struct xitem *it);
bool graph_export_stop_requested(struct xp *x);
void graph_export_progress(struct xp *x);
/* Stops the step: Graph did not answer after every retry. */
void graph_export_server_down(struct xp *x, const struct gop *op);
int graph_export_add_prop(cJSON *body, const char *name, const struct attr_value *v, size_t n);
void graph_export_ops_free(struct gop *ops, size_t n);
int graph_export_resolve_target(struct xp *x, struct xitem *it);
int graph_export_creates(struct xp *x);
int graph_export_members(struct xp *x);
