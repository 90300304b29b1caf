/* hybridsync reports: the JSON documents hybridsyncctl prints (status, pending-exports, runs),
 * built from a store and a config so that the daemon can serve the same documents. Shapes are
 * documented in hybridsyncctl(8), "JSON OUTPUT". Times are Unix seconds, null when unknown.
 * Nothing here writes to the store: a read-only handle is enough. No secret is ever included. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "hybridsync/conf.h"
#include "hybridsync/store.h"

/* Whether a process with this pid exists (kill(pid, 0); EPERM counts as alive). */
bool report_pid_alive(int64_t pid);

/* The status document: daemon state (from the state keys of status.h; "stopped" when the pid
 * key is absent or that process is gone), staging flag and config hash (the daemon's while it
 * runs, else the config file's), last and current cycle, next cycle, pending export totals and
 * the queue fingerprint, last reload, deletion threshold, lease, object counts.
 * `c` may be NULL (then only what the store knows). */
int report_status(struct store *s, const struct conf *c, cJSON **ret);

/* {"add","update","delete","total","pending","in_flight","error","done","fingerprint"}. */
int report_export_summary(struct store *s, cJSON **ret);

/* Which exports report_pending_exports lists; zero/NULL fields match everything. */
struct report_export_filter {
	unsigned op_mask;        /* 1u << enum store_export_op */
	const char *object_type; /* user, group, contact */
};

/* The array of pending exports in canonical order (connector, object type, anchor), each:
 * {"id","connector","operation","object_type","anchor","dn","target_id",
 *  "attributes": {NAME: {"old": V, "new": V}},
 *  "members": {"add": [{"anchor","target_id"}], "remove": [...]},
 *  "state","attempts","error": null | {"code","message","request_id"},
 *  "rules","run_id","cause","created","updated"}.
 * V is a string for an attribute with at most one value on both sides (null for none), and an
 * array of strings on both sides as soon as one side has several values. A value that is not
 * printable UTF-8 text is given as {"base64": "..."}. */
int report_pending_exports(struct store *s, const struct report_export_filter *f, cJSON **ret);

/* The array of runs, newest first (last_n 0: all), each:
 * {"id","type","status" ("running" while unfinished),"started","finished","config_hash",
 *  "steps": [{"id","connector","step","status","started","finished",
 *             "adds","updates","deletes","errors","objects"}],
 *  "error_count","errors": [{"step","connector","anchor","dn","code","message","request_id",
 *                            "time"}]}.
 * errors_limit bounds the errors listed per run (0: all); error_count is always the total. */
int report_runs(struct store *s, unsigned last_n, unsigned errors_limit, cJSON **ret);

/* One attribute value as JSON: a string, or {"base64": "..."} when it is not printable UTF-8.
 * Shared with the CSV and text writers (report_value_text gives "base64:..." for those). */
cJSON *report_value_json(const void *data, size_t len);
/* The value as text for tables and CSV: the value itself, or "base64:<base64>". A fresh
 * string; NULL on ENOMEM. */
char *report_value_text(const void *data, size_t len);
