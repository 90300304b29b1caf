/* hybridsync store: the one SQLite file that holds the connector spaces, the metaverse, pending
 * exports, run history and daemon state. Tables and their reasons: docs/store-schema.md.
 *
 * Conventions: functions return 0 (or a documented positive value) on success and a negative
 * errno on failure: -EINVAL bad argument, -ENOENT not found, -EEXIST unique key taken, -ENOMEM,
 * -EBUSY database locked past the busy timeout, -EROFS write on a read-only handle, -ENOSPC disk
 * or database full, -EBADMSG corrupt database or blob, -EPROTO schema version not supported,
 * -EIO anything else. SQLite's message for the last failure is kept: store_last_error().
 * Outputs named ret_* are written only on success. A handle is used by one thread at a time.
 * Iterations stream in bounded batches; a callback may modify the store (the batch it came
 * from is already read), and returning non-zero from it stops the iteration with that value.
 * Times are Unix seconds. Ids are > 0; 0 means "none" where an id is optional. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hybridsync/attr.h"

struct store;

/* --- open, close, transactions --------------------------------------------------------- */

enum store_open_flags {
	STORE_OPEN_READONLY = 1u << 0, /* never writes; the file must exist and be current */
	STORE_OPEN_NOCREATE = 1u << 1, /* read-write, but the file must exist */
};

/* Opens (creating and migrating as needed) the database at `path`. On failure a message is
 * written to `err` (may be NULL) when one is known: a newer schema than this code knows, a file
 * that is not a hybridsync database, corruption. */
int store_open(const char *path, unsigned flags, struct store **ret, char *err, size_t err_len);
struct store *store_close(struct store *s);
const char *store_last_error(struct store *s);
bool store_is_readonly(const struct store *s);
int store_schema_version(void); /* the version this code creates and reads */

/* Transactions nest: the outermost is BEGIN IMMEDIATE .. COMMIT, inner ones savepoints. Use one
 * around every batch of writes (one per page of an import): single writes outside a
 * transaction each commit on their own, which is slow. */
int store_begin(struct store *s);
int store_commit(struct store *s);
int store_rollback(struct store *s);

/* Full integrity_check (slow on big files) or quick_check, plus foreign_key_check.
 * -EBADMSG with the first problem in store_last_error() when the file is damaged. */
int store_check_integrity(struct store *s, bool full);
/* A consistent copy of the live database at `path` (written to path.tmp, then renamed), taken
 * with SQLite's online backup API; works on a read-only handle while a writer runs. */
int store_backup(struct store *s, const char *path);

struct store_stats {
	uint64_t cs_objects;
	uint64_t cs_pending_import;
	uint64_t mv_objects;
	uint64_t pending_exports;
	uint64_t runs;
	uint64_t file_bytes; /* pages in use * page size */
};
int store_get_stats(struct store *s, struct store_stats *ret);

/* A counter for "seen in this pass" marks (full imports, full syncs); never repeats. */
int store_next_generation(struct store *s, int64_t *ret_gen);

/* --- small state ------------------------------------------------------------------------ */

/* Key/value text. store_state_set(s, key, NULL) deletes. */
int store_state_get(struct store *s, const char *key, char **ret_value);
int store_state_set(struct store *s, const char *key, const char *value);

/* --- connectors and cursors ------------------------------------------------------------- */

/* The connectors 'ad' (type 'ldap') and 'graph' (type 'graph') always exist. */
int store_get_connector(struct store *s, const char *name, int64_t *ret_id);
int store_add_connector(struct store *s, const char *name, const char *type, int64_t *ret_id);

enum store_cursor_kind {
	STORE_CURSOR_DIRSYNC,   /* AD DirSync cookie (binary) */
	STORE_CURSOR_USN,       /* highest committed USN seen (decimal text) */
	STORE_CURSOR_SYNCREPL,  /* RFC 4533 cookie */
	STORE_CURSOR_DELTALINK, /* Graph @odata.deltaLink; partition = object type */
	STORE_CURSOR_MAX,
};
const char *store_cursor_kind_to_string(enum store_cursor_kind k);

/* The value is returned NUL-terminated (not counted in ret_len). -ENOENT when unset.
 * ret_updated may be NULL. */
int store_get_cursor(struct store *s, int64_t connector_id, const char *partition,
                     enum store_cursor_kind kind, void **ret_value, size_t *ret_len,
                     int64_t *ret_updated);
/* value == NULL deletes the cursor. */
int store_set_cursor(struct store *s, int64_t connector_id, const char *partition,
                     enum store_cursor_kind kind, const void *value, size_t len);
/* Forgets every cursor of a connector: the next import is a full one. */
int store_delete_cursors(struct store *s, int64_t connector_id);

/* --- connector space -------------------------------------------------------------------- */

enum store_pending_import {
	STORE_PENDING_NONE,
	STORE_PENDING_ADD,
	STORE_PENDING_UPDATE, /* includes renames and reference changes */
	STORE_PENDING_DELETE,
	STORE_PENDING_DELETE_ADD, /* object class changed: resync the object from scratch */
	STORE_PENDING_MAX,
};
const char *store_pending_import_to_string(enum store_pending_import p);

enum store_cs_flags {
	STORE_CS_PLACEHOLDER = 1u << 0,        /* reserved: a referenced, never imported object */
	STORE_CS_TRANSIENT = 1u << 1,          /* anchor clash on DN; cleared by the next import */
	STORE_CS_OBSOLETE_CANDIDATE = 1u << 2, /* set by the caller; cleared by the next import */
};

enum store_upsert_result {
	STORE_UNCHANGED,
	STORE_ADDED,
	STORE_CHANGED,
	STORE_UPSERT_RESULT_MAX,
};
const char *store_upsert_result_to_string(enum store_upsert_result r);

/* What an import saw; pointers are borrowed for the call. */
struct store_cs_import {
	const void *anchor; /* required: objectGUID bytes, entryUUID, Graph id */
	size_t anchor_len;
	const char *dn;
	const char *object_class;     /* required: user, group, contact, ... */
	const struct attr_set *attrs; /* NULL: no attributes */
	int64_t run_id;               /* 0: not recorded */
	int64_t seen_gen;             /* full import generation; 0: not a full import */
	/* Optional: the attributes already encoded, as attr_set_serialize and attr_set_digest
	 * give them (both or neither); then `attrs` is not read. Lets a caller encode in another
	 * thread than the one that writes. */
	const void *attrs_blob;
	size_t attrs_blob_len;
	const uint8_t *attrs_digest;
};

/* A CS object as stored; owned by the caller (store_cs_object_free) unless handed to a
 * callback, where it lives until the callback returns. */
struct store_cs_object {
	int64_t id;
	int64_t connector_id;
	void *anchor;
	size_t anchor_len;
	char *dn;
	char *object_class;
	struct attr_set *attrs;
	uint8_t digest[ATTR_DIGEST_SIZE];
	enum store_pending_import pending_import;
	int64_t pending_import_since;
	int64_t mv_id;
	int64_t last_import_run;
	unsigned flags;
	int64_t seen_gen;
	int64_t created;
	int64_t updated;
};
struct store_cs_object *store_cs_object_free(struct store_cs_object *o);
typedef int (*store_cs_cb)(const struct store_cs_object *o, void *userdata);

/* Records an imported object by anchor. ADDED: new object, pending add. CHANGED: DN, class or
 * attribute digest differ (pending update, or delete-add when the class changed; a pending add
 * stays an add). UNCHANGED: only the seen generation and import run are refreshed. A rename
 * moves the DN of the references pointing at the object. ret_result, ret_id may be NULL. */
int store_cs_upsert(struct store *s, int64_t connector_id, const struct store_cs_import *in,
                    enum store_upsert_result *ret_result, int64_t *ret_id);
int store_cs_get(struct store *s, int64_t id, struct store_cs_object **ret);
int store_cs_get_by_anchor(struct store *s, int64_t connector_id, const void *anchor,
                           size_t anchor_len, struct store_cs_object **ret);
/* Case-insensitive (ASCII) DN lookup; a non-transient object wins over a transient one. */
int store_cs_get_by_dn(struct store *s, int64_t connector_id, const char *dn,
                       struct store_cs_object **ret);
int store_cs_get_by_mv(struct store *s, int64_t connector_id, int64_t mv_id,
                       struct store_cs_object **ret);
int store_cs_count(struct store *s, int64_t connector_id, uint64_t *ret_total,
                   uint64_t *ret_pending);

/* Full-import obsoletion: every object the import returns is marked with the import's
 * generation (by store_cs_upsert or here). Afterwards, and only when the caller has decided
 * the import was complete and successful, the objects of the connector not marked are set
 * pending delete. store_cs_count_unseen tells how many that would be, first. */
int store_cs_mark_seen(struct store *s, int64_t cs_id, int64_t gen);
int store_cs_count_unseen(struct store *s, int64_t connector_id, int64_t gen, uint64_t *ret_n);
int store_cs_mark_unseen_as_deleted(struct store *s, int64_t connector_id, int64_t gen,
                                    uint64_t *ret_n);
/* A delete seen by a delta import. -ENOENT when the anchor is unknown. */
int store_cs_mark_deleted(struct store *s, int64_t connector_id, const void *anchor,
                          size_t anchor_len);
/* Removes the object and everything hanging off it (refs, export memory): after sync has
 * processed its pending delete. */
int store_cs_delete(struct store *s, int64_t cs_id);
int store_cs_set_flags(struct store *s, int64_t cs_id, unsigned set, unsigned clear);

/* Streams, in id order, the objects of the connector with a pending import / all objects. */
int store_cs_iterate_pending_import(struct store *s, int64_t connector_id, store_cs_cb cb,
                                    void *userdata);
int store_cs_iterate(struct store *s, int64_t connector_id, store_cs_cb cb, void *userdata);
int store_cs_clear_pending_import(struct store *s, int64_t cs_id);
/* Joins the object to an MV object; mv_id 0 disjoins it. */
int store_cs_set_mv(struct store *s, int64_t cs_id, int64_t mv_id);

/* --- references (member, manager, ...) ----------------------------------------------------
 * One row per value, so one membership change is one row. target_cs_id is the referenced CS
 * object of the same connector when it is known (resolved by DN, also lazily on read; 0 when
 * nothing in the CS has that DN). Changing refs of an object without a pending import sets it
 * pending update. */
struct store_ref {
	int64_t cs_id;
	const char *attr;
	const char *target_dn;
	int64_t target_cs_id;
};
typedef int (*store_ref_cb)(const struct store_ref *r, void *userdata);

/* Replaces the values of one reference attribute, writing only the difference;
 * ret_changes (may be NULL) gets the number of rows added plus removed. */
int store_cs_set_refs(struct store *s, int64_t cs_id, const char *attr,
                      const char *const *target_dns, size_t n, size_t *ret_changes);
/* Incremental changes (DirSync reports linked values one by one): return 1 when a row was
 * added/removed, 0 when there was nothing to do. */
int store_cs_add_ref(struct store *s, int64_t cs_id, const char *attr, const char *target_dn);
int store_cs_remove_ref(struct store *s, int64_t cs_id, const char *attr, const char *target_dn);
/* What `cs_id` references (attr NULL: every reference attribute), by attr and DN. A resolved
 * reference's DN is its target's current DN. The references of one object are read at once
 * (memory of its largest attribute) before the first call of `cb`, which may write. */
int store_cs_get_refs(struct store *s, int64_t cs_id, const char *attr, store_ref_cb cb,
                      void *userdata);
/* Who references `target_cs_id` (by id, or by its DN while unresolved). */
int store_cs_get_referrers(struct store *s, int64_t target_cs_id, store_ref_cb cb, void *userdata);
/* Resolves, in one statement, the connector's references whose target has appeared since. */
int store_cs_resolve_refs(struct store *s, int64_t connector_id, uint64_t *ret_n);

/* Bulk loading: a full import into an EMPTY connector space (the first one). Between
 * store_cs_bulk_begin and store_cs_bulk_end the results are the same as without, only faster:
 * store_cs_upsert of that connector inserts without looking the anchor up first (an anchor
 * that exists takes the usual path), the first store_cs_set_refs of an attribute of the
 * object just added writes its rows without a merge, resolving targets imported before it
 * from memory, foreign-key checks are off (every row points at an object just inserted),
 * and the index of resolved references is dropped and rebuilt by
 * store_cs_bulk_end, which also resolves the rest (as store_cs_resolve_refs; ret_resolved
 * may be NULL). Begin returns 1 when bulk loading, 0 when the space is not empty (nothing
 * changes). Call both outside a transaction; end always (also after a failure or rollback).
 * A crash in between leaves only the index missing: the next read-write open rebuilds it. */
int store_cs_bulk_begin(struct store *s, int64_t connector_id);
int store_cs_bulk_end(struct store *s, uint64_t *ret_resolved);

/* --- export memory (Graph CS objects) ----------------------------------------------------
 * What was exported to an object and not yet confirmed by an import: per attribute the value
 * before (old) and the value sent (new), and membership adds/removes by member id. Pending
 * exports are computed against the imported state overlaid with this. */
enum store_member_op {
	STORE_MEMBER_ADD,
	STORE_MEMBER_REMOVE,
	STORE_MEMBER_OP_MAX,
};
const char *store_member_op_to_string(enum store_member_op op);

struct store_export_member {
	int64_t cs_id;
	const char *member; /* the member's Graph id */
	enum store_member_op op;
	int64_t exported;
};
typedef int (*store_export_member_cb)(const struct store_export_member *m, void *userdata);

int store_cs_get_export_memory(struct store *s, int64_t cs_id, struct attr_diff **ret,
                               int64_t *ret_exported);
/* Replaces the attribute memory; NULL or an empty diff clears it. */
int store_cs_set_export_memory(struct store *s, int64_t cs_id, const struct attr_diff *d,
                               int64_t run_id);
int store_cs_set_export_member(struct store *s, int64_t cs_id, const char *member,
                               enum store_member_op op);
/* An import confirmed the membership: forget it. Returns 1 when something was forgotten. */
int store_cs_confirm_export_member(struct store *s, int64_t cs_id, const char *member);
int store_cs_list_export_members(struct store *s, int64_t cs_id, store_export_member_cb cb,
                                 void *userdata);
int store_cs_clear_export_memory(struct store *s, int64_t cs_id);

/* --- metaverse ---------------------------------------------------------------------------- */

struct store_mv_object {
	int64_t id;
	char *object_type; /* person, group */
	char *source_anchor;
	struct attr_set *attrs;
	uint8_t digest[ATTR_DIGEST_SIZE];
	int64_t created;
	int64_t updated;
};
struct store_mv_object *store_mv_object_free(struct store_mv_object *o);
typedef int (*store_mv_cb)(const struct store_mv_object *o, void *userdata);

/* source_anchor may be NULL; -EEXIST when another MV object has it. */
int store_mv_create(struct store *s, const char *object_type, const char *source_anchor,
                    const struct attr_set *attrs, int64_t *ret_id);
int store_mv_get(struct store *s, int64_t id, struct store_mv_object **ret);
int store_mv_get_by_source_anchor(struct store *s, const char *source_anchor,
                                  struct store_mv_object **ret);
/* Replaces the attributes; returns 1 when they changed, 0 when the digest is the same. */
int store_mv_update(struct store *s, int64_t id, const struct attr_set *attrs);
int store_mv_set_source_anchor(struct store *s, int64_t id, const char *source_anchor);
/* Deletes the object; joined CS objects become disjoined. */
int store_mv_delete(struct store *s, int64_t id);
/* object_type NULL: all types. */
int store_mv_iterate(struct store *s, const char *object_type, store_mv_cb cb, void *userdata);

/* The join index: (attribute, value) -> MV objects for a small set of attributes. Values of a
 * case_insensitive attribute are matched ASCII-case-insensitively. The set is persisted;
 * changing it rebuilds the index. Default: sourceAnchor, cloudAnchor, objectSid,
 * userPrincipalName (case-insensitive), mail (case-insensitive). */
struct store_mv_index_attr {
	const char *name;
	bool case_insensitive;
};
int store_mv_set_index_attrs(struct store *s, const struct store_mv_index_attr *attrs, size_t n);
/* Up to `max` matching MV ids (ascending) in ret_ids, the number found in *ret_n (which may
 * exceed max: ambiguity is visible). -EINVAL when `attr` is not indexed. */
int store_mv_find_by_index(struct store *s, const char *attr, const void *value, size_t len,
                           int64_t *ret_ids, size_t max, size_t *ret_n);
int store_mv_count(struct store *s, uint64_t *ret_n);

/* --- pending exports ---------------------------------------------------------------------- */

enum store_export_op {
	STORE_EXPORT_ADD,
	STORE_EXPORT_UPDATE,
	STORE_EXPORT_DELETE,
	STORE_EXPORT_OP_MAX,
};
const char *store_export_op_to_string(enum store_export_op op);
int store_export_op_from_string(const char *s); /* -EINVAL when unknown */

enum store_export_state {
	STORE_EXPORT_PENDING,
	STORE_EXPORT_IN_FLIGHT, /* sent, outcome unknown: look it up before sending again */
	STORE_EXPORT_ERROR,
	STORE_EXPORT_DONE, /* sent and acknowledged, awaiting confirmation by an import */
	STORE_EXPORT_STATE_MAX,
};
const char *store_export_state_to_string(enum store_export_state st);
int store_export_state_from_string(const char *s);

/* A membership change of a group export: the member's anchor (stable across servers) and its
 * Graph id when known. */
struct store_member_change {
	enum store_member_op op;
	const char *member_anchor;
	const char *target_id;
};
typedef int (*store_member_change_cb)(const struct store_member_change *m, void *userdata);

/* What sync wants exported to one target object; pointers borrowed for the call. The target is
 * identified by (connector, object_type, anchor): one pending export per target. */
struct store_export_spec {
	int64_t connector_id;
	enum store_export_op op;
	const char *object_type; /* user, group, contact */
	const char *anchor;      /* the sourceAnchor (or another stable key) of the target */
	int64_t cs_id;           /* the target's Graph CS object, 0 for an add */
	int64_t mv_id;           /* 0 when none (a deprovisioned object) */
	const char *dn;
	const char *target_id;           /* Graph object id, NULL until known */
	const struct attr_diff *changes; /* NULL: none */
	const struct store_member_change *members;
	size_t n_members;
	const char *rules; /* provenance: the rule name(s) */
	int64_t run_id;    /* provenance: the run that computed it */
	const char *cause; /* provenance: the import change, e.g. "ad update <anchor>" */
	int64_t sync_gen;  /* full sync generation (store_export_delete_stale) */
};

struct store_export {
	int64_t id;
	int64_t connector_id;
	enum store_export_op op;
	char *object_type;
	char *anchor;
	int64_t cs_id;
	int64_t mv_id;
	char *dn;
	char *target_id;
	struct attr_diff *changes; /* never NULL */
	uint64_t n_members;
	char *rules;
	int64_t run_id;
	char *cause;
	enum store_export_state state;
	int64_t state_since;
	unsigned attempts;
	char *error_code;
	char *error_message;
	char *request_id;
	int64_t sync_gen;
	int64_t created;
	int64_t updated;
};
struct store_export *store_export_free(struct store_export *e);
typedef int (*store_export_cb)(const struct store_export *e, void *userdata);

/* Inserts or updates the target's pending export. UNCHANGED when operation, DN, target id,
 * ids, attribute changes and membership are the same (provenance and sync_gen are refreshed).
 * A changed export goes back to pending, unless in flight (its state is kept: the exporter
 * must settle what was sent first). */
int store_export_upsert(struct store *s, const struct store_export_spec *spec,
                        enum store_upsert_result *ret_result, int64_t *ret_id);
int store_export_get(struct store *s, int64_t id, struct store_export **ret);
int store_export_get_by_anchor(struct store *s, int64_t connector_id, const char *object_type,
                               const char *anchor, struct store_export **ret);

/* Any field 0/NULL matches everything; masks are (1u << enum value) bits. */
struct store_export_filter {
	int64_t connector_id;
	unsigned op_mask;
	unsigned state_mask;
	const char *object_type;
};
/* Streams in canonical order: connector, object type, anchor. */
int store_export_list(struct store *s, const struct store_export_filter *f, store_export_cb cb,
                      void *userdata);
int store_export_list_members(struct store *s, int64_t export_id, store_member_change_cb cb,
                              void *userdata);
int store_export_delete(struct store *s, int64_t id);
/* Deletes the connector's exports a full sync did not produce again (sync_gen < gen), except
 * those in flight. */
int store_export_delete_stale(struct store *s, int64_t connector_id, int64_t gen, uint64_t *ret_n);
/* in_flight: since = now, attempts + 1; error: code, message, request_id recorded (others
 * clear them); pending resets attempts. */
int store_export_set_state(struct store *s, int64_t id, enum store_export_state state,
                           const char *code, const char *message, const char *request_id);

/* Counts of what is not done yet, by operation and state. connector_id 0: all. */
struct store_export_totals {
	uint64_t add, update, delete, total;
	uint64_t pending, in_flight, error, done;
};
int store_export_counts(struct store *s, int64_t connector_id, struct store_export_totals *ret);

#define STORE_FINGERPRINT_LEN (2 * ATTR_DIGEST_SIZE) /* hex digits */
/* SHA-256 over the not-done pending exports in canonical order (connector name, object type,
 * anchor), each as operation, type, anchor, target id, attribute changes (canonical) and
 * membership changes; ids, times, states and provenance are left out, so two servers with the
 * same pending set compute the same fingerprint. `ret` gets STORE_FINGERPRINT_LEN + 1 bytes. */
int store_pending_fingerprint(struct store *s, char ret[STORE_FINGERPRINT_LEN + 1]);
/* The same over the pending deletes only: what allow-deletes binds to, so that other changes
 * imported meanwhile do not void an allowance. */
int store_pending_deletes_fingerprint(struct store *s, char ret[STORE_FINGERPRINT_LEN + 1]);

/* --- run history --------------------------------------------------------------------------- */

enum store_run_type {
	STORE_RUN_INITIAL,
	STORE_RUN_DELTA,
	STORE_RUN_TYPE_MAX,
};
const char *store_run_type_to_string(enum store_run_type t);

enum store_step_type {
	STORE_STEP_FULL_IMPORT,
	STORE_STEP_DELTA_IMPORT,
	STORE_STEP_FULL_SYNC,
	STORE_STEP_DELTA_SYNC,
	STORE_STEP_EXPORT,
	STORE_STEP_TYPE_MAX,
};
const char *store_step_type_to_string(enum store_step_type t);

struct store_step_counters {
	uint64_t adds, updates, deletes, errors, objects;
};

/* Handed to callbacks; strings live until the callback returns. */
struct store_run {
	int64_t id;
	enum store_run_type type;
	const char *status; /* NULL while running */
	int64_t started;
	int64_t finished; /* 0 while running */
	const char *config_hash;
	uint64_t error_count;
};
struct store_step {
	int64_t id;
	int64_t run_id;
	const char *connector;
	enum store_step_type step;
	const char *status;
	int64_t started;
	int64_t finished;
	struct store_step_counters counters;
};
struct store_run_error {
	int64_t id;
	int64_t run_id;
	int64_t step_id;
	enum store_step_type step;
	const char *connector;
	const char *anchor, *dn, *code, *message, *request_id;
	int64_t time;
};
typedef int (*store_run_cb)(const struct store_run *r, void *userdata);
typedef int (*store_step_cb)(const struct store_step *st, void *userdata);
typedef int (*store_run_error_cb)(const struct store_run_error *e, void *userdata);

int store_run_begin(struct store *s, enum store_run_type type, const char *config_hash,
                    int64_t *ret_id);
int store_run_step_begin(struct store *s, int64_t run_id, const char *connector,
                         enum store_step_type step, int64_t *ret_id);
int store_run_step_end(struct store *s, int64_t step_id, const char *status,
                       const struct store_step_counters *counters);
/* The step ran as another type than it began as: a delta import that fell back to a full
 * import (its cursor was missing or refused). */
int store_run_step_set_type(struct store *s, int64_t step_id, enum store_step_type step);
int store_run_end(struct store *s, int64_t run_id, const char *status);
/* step_id 0: an error of the run as a whole. */
int store_run_add_error(struct store *s, int64_t run_id, int64_t step_id, const char *anchor,
                        const char *dn, const char *code, const char *message,
                        const char *request_id);
/* Newest first; last_n 0: all. */
int store_run_list(struct store *s, unsigned last_n, store_run_cb cb, void *userdata);
int store_run_get(struct store *s, int64_t run_id, store_run_cb cb, void *userdata);
int store_run_list_steps(struct store *s, int64_t run_id, store_step_cb cb, void *userdata);
/* At most `limit` errors (0: all), oldest first. */
int store_run_list_errors(struct store *s, int64_t run_id, unsigned limit, store_run_error_cb cb,
                          void *userdata);
/* The same for the errors of one step. */
int store_run_list_step_errors(struct store *s, int64_t run_id, int64_t step_id, unsigned limit,
                               store_run_error_cb cb, void *userdata);
/* Deletes the runs started before `before` with their steps and errors. */
int store_run_purge(struct store *s, int64_t before, uint64_t *ret_n);
/* Closes runs and steps a crash left open with `status` (e.g. "stopped-server-down"). */
int store_run_end_unfinished(struct store *s, const char *status, uint64_t *ret_n);

/* --- audit, config snapshots, lease --------------------------------------------------------- */

struct store_audit_event {
	int64_t id;
	int64_t time;
	const char *kind; /* staging-changed, deletes-allowed, reload, ... */
	int64_t uid;      /* -1 when unknown */
	const char *detail;
	const char *fingerprint;
};
typedef int (*store_audit_cb)(const struct store_audit_event *e, void *userdata);
int store_audit_add(struct store *s, const char *kind, int64_t uid, const char *detail,
                    const char *fingerprint);
/* Newest first; last_n 0: all. */
int store_audit_list(struct store *s, unsigned last_n, store_audit_cb cb, void *userdata);

/* Keeps the canonical JSON of every config hash seen (no-op when the hash is known). */
int store_config_snapshot_put(struct store *s, const char *hash, const char *json);
int store_config_snapshot_get(struct store *s, const char *hash, char **ret_json,
                              int64_t *ret_created);

/* The last lease seen in the tenant (or written by this server). */
struct store_lease {
	char *holder;
	char *config_hash;
	int64_t renewed;
	char *graph_object_id;
	int64_t seen; /* when this server last read or wrote it */
};
struct store_lease *store_lease_free(struct store_lease *l);
int store_lease_get(struct store *s, struct store_lease **ret);
int store_lease_set(struct store *s, const char *holder, const char *config_hash, int64_t renewed,
                    const char *graph_object_id);
