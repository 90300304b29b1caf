/* The sync engine: sync rules (built-in defaults and rule files, hybridsync.rules(5)), the
 * metaverse, full and delta sync, and pending exports for the Graph connector. Reads the
 * connector spaces the connectors fill (see ldap_import.h and graph.h for what they hold) and
 * writes the metaverse and the pending exports (store_export_*): one per target object, the
 * difference between what outbound rules want and what the Graph CS holds overlaid with the
 * export memory; an export whose difference became empty is deleted (unless in flight). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hybridsync/conf.h"
#include "hybridsync/store.h"

struct sync_rules;

/* Compiles the built-in rules and the rule files of `c` (c->rules, already valid JSON) with the
 * parameters the rules need from `c` (domains, soft_match, anchor_extension). -EINVAL with
 * every problem in *ret_errors ("FILE: rule NAME: column N: message"). */
int sync_rules_load(const struct conf *c, struct sync_rules **ret, struct conf_errors **ret_errors);
struct sync_rules *sync_rules_free(struct sync_rules *r);

/* The attributes inbound rules read from a connector's objects ("ad" or "graph"): what the
 * imports must fetch. A NULL-terminated, sorted list owned by the rules. */
const char *const *sync_rules_attributes(const struct sync_rules *r, const char *connector,
                                         size_t *ret_n);

typedef void (*sync_progress_cb)(uint64_t done, uint64_t estimate, void *userdata);
typedef bool (*sync_cancelled_cb)(void *userdata);

struct sync_opts {
	bool full; /* every CS object; else the pending imports and what their references touch */
	int64_t run_id;
	int64_t step_id;
	sync_progress_cb progress;
	sync_cancelled_cb cancelled;
	void *userdata;
};

#define SYNC_STATUS_MAX 48

struct sync_result {
	/* success, completed-sync-errors, stopped-cancelled, stopped-error */
	char status[SYNC_STATUS_MAX];
	struct store_step_counters counters; /* MV adds/updates/deletes, errors, objects */
	uint64_t exports_changed;            /* pending exports added, changed or removed */
};

/* One sync step over both connector spaces. Per-object errors (an expression's Error(), a
 * changed sourceAnchor of an exported object, an ambiguous join) go to the run history and
 * the others go on. Batched transactions; the store stays consistent when cancelled. */
int sync_run(struct store *s, const struct sync_rules *r, const struct sync_opts *o,
             struct sync_result *ret);

/* Preview of one object found by DN, anchor (text, base64 or GUID form), sourceAnchor or UPN:
 * its CS objects, MV object, each rule in scope with what it contributed, and the pending
 * export that results. JSON text (documented in hybridsyncctl(8), "show"), computed without
 * writing anything. -ENOENT when nothing matches. */
int sync_preview(struct store *s, const struct sync_rules *r, const char *key, char **ret_json);
