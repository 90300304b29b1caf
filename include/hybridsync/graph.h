/* The Graph connector: OAuth2 client credentials, import of users and groups from Microsoft
 * Graph into the 'graph' connector space, export of pending exports, and the lease object.
 * The only module (with http*.c) that includes curl/curl.h.
 *
 * What lands in the store (the contract the sync engine reads and writes):
 *  - anchor and dn: the Graph object id (text, no NUL counted);
 *  - object_class: "user" or "group";
 *  - attrs: the selected Graph properties as text (booleans "true"/"false", numbers in
 *    decimal, null = absent, string collections multi-valued), the anchor extension of groups
 *    under its full property name;
 *  - references: a group's members as store refs of attribute "member" whose target DN is the
 *    member's Graph id.
 * Pending exports (written by sync, read here) name Graph properties the same way; member
 * changes carry the member's sourceAnchor and, when known, its Graph id. A member without a
 * Graph id yet (created in the same export) is resolved through the metaverse: its MV object
 * by source anchor, then the Graph CS object joined to it.
 * After a create the exporter upserts the new Graph CS object (anchor = new id, attributes as
 * sent) and joins it to the export's MV object; after an update it records export memory;
 * after a delete it removes the CS object. A later import confirms and clears the memory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hybridsync/conf.h"
#include "hybridsync/store.h"

#define GRAPH_CONNECTOR "graph"

struct graph;

/* Builds a client from the [graph] section and the staging flag of `c` (copied). Secrets are
 * read when a token is needed, never kept longer than the request that uses them. */
int graph_new(const struct conf *c, struct graph **ret, char *err, size_t err_len);
struct graph *graph_free(struct graph *g);
/* A reload: takes the new config (staging flag included) between batches. */
int graph_set_conf(struct graph *g, const struct conf *c);

typedef void (*graph_progress_cb)(uint64_t done, uint64_t estimate, void *userdata);
typedef bool (*graph_cancelled_cb)(void *userdata);

#define GRAPH_STATUS_MAX 48
#define GRAPH_ERROR_MAX  512

struct graph_step_result {
	/* success, completed-warnings, completed-export-errors, stopped-server-down,
	 * stopped-connectivity, stopped-cancelled, stopped-error */
	char status[GRAPH_STATUS_MAX];
	bool full; /* import: a full import ran */
	struct store_step_counters counters;
	uint64_t write_requests; /* export: HTTP write requests sent (inside $batch counted each) */
	uint64_t throttled;      /* 429/503 answers seen */
	char error[GRAPH_ERROR_MAX];
};

struct graph_import_opts {
	bool full;
	/* Graph properties the rules read, per type; NULL: the default set. */
	const char *const *user_properties;
	size_t n_user_properties;
	const char *const *group_properties;
	size_t n_group_properties;
	int64_t run_id;
	int64_t step_id;
	graph_progress_cb progress;
	graph_cancelled_cb cancelled;
	void *userdata;
};
/* Returns 0 when the step ran, however it ended (ret->status says how: a stopped step is not a
 * negative return); a negative errno only when it could not run (-EINVAL, -ENOMEM). */
int graph_import(struct graph *g, struct store *s, const struct graph_import_opts *o,
                 struct graph_step_result *ret);

struct graph_export_opts {
	int64_t run_id;
	int64_t step_id;
	graph_progress_cb progress;
	/* Polled at every batch boundary: SIGTERM, a demotion. Stops with "stopped-cancelled";
	 * what was not sent stays pending. */
	graph_cancelled_cb cancelled;
	void *userdata;
};
/* Sends the pending exports. In staging this is a bug: it writes nothing, logs an error and
 * returns -EPERM. The deletion threshold and the lease are the caller's checks. Otherwise as
 * graph_import: 0 and the outcome in ret->status. */
int graph_export(struct graph *g, struct store *s, const struct graph_export_opts *o,
                 struct graph_step_result *ret);

/* The lease of the active server: one object in the tenant (see hybridsyncd(8)): a security
 * group with the fixed mailNickname "hybridsync-lease" (displayName "hybridsync lease") whose
 * description holds {"holder","config_hash","renewed"} as compact JSON. A group because it
 * needs no licence, no extra permission beyond Group.ReadWrite.All and no schema extension,
 * and it is found with one indexed $filter. The Graph import leaves it out of the connector
 * space, so sync never sees it. */
struct graph_lease {
	char holder[256];
	char config_hash[65];
	int64_t renewed; /* Unix seconds */
	char object_id[128];
};
/* 1 and *ret when a lease exists, 0 when none, negative errno on failure. */
int graph_lease_read(struct graph *g, struct graph_lease *ret);
/* Creates or renews this server's lease (a write: refused with -EPERM in staging). */
int graph_lease_write(struct graph *g, const char *holder, const char *config_hash, int64_t now);

struct graph_budget {
	unsigned budget;       /* writes allowed per window */
	unsigned window;       /* seconds */
	uint64_t used_window;  /* writes in the current window */
	uint64_t writes_total; /* since start */
	uint64_t throttled_total;
};
void graph_get_budget(const struct graph *g, struct graph_budget *ret);
