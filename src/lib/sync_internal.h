/* Private to the rule engine and the sync engine (rules*.c, sync*.c): compiled rules, their
 * evaluation against one source object, and the pieces of a sync run. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hybridsync/attr.h"
#include "hybridsync/conf.h"
#include "hybridsync/expr.h"
#include "hybridsync/store.h"
#include "hybridsync/sync.h"

#define RULES_NAME_MAX      256u
#define RULES_PER_SET_MAX   4096u
#define RULES_CLAUSES_MAX   256u
#define RULES_FLOWS_MAX     1024u
#define RULES_FILE_SIZE_MAX (4u << 20)

enum rule_direction {
	RULE_INBOUND,
	RULE_OUTBOUND,
	RULE_DIRECTION_MAX,
};

enum rule_link {
	RULE_LINK_JOIN,
	RULE_LINK_PROVISION,
	RULE_LINK_STICKY_JOIN,
	RULE_LINK_MAX,
};

enum rule_op {
	RULE_OP_EQUAL,
	RULE_OP_NOTEQUAL,
	RULE_OP_LESSTHAN,
	RULE_OP_LESSTHAN_OR_EQUAL,
	RULE_OP_GREATERTHAN,
	RULE_OP_GREATERTHAN_OR_EQUAL,
	RULE_OP_CONTAINS,
	RULE_OP_NOTCONTAINS,
	RULE_OP_STARTSWITH,
	RULE_OP_NOTSTARTSWITH,
	RULE_OP_ENDSWITH,
	RULE_OP_NOTENDSWITH,
	RULE_OP_ISNULL,
	RULE_OP_ISNOTNULL,
	RULE_OP_ISIN,
	RULE_OP_ISNOTIN,
	RULE_OP_ISBITSET,
	RULE_OP_ISNOTBITSET,
	RULE_OP_ISMEMBEROF,
	RULE_OP_ISNOTMEMBEROF,
	RULE_OP_MAX,
};

enum rule_flow_type {
	RULE_FLOW_DIRECT,
	RULE_FLOW_CONSTANT,
	RULE_FLOW_EXPRESSION,
	RULE_FLOW_TYPE_MAX,
};

enum rule_merge {
	RULE_MERGE_UPDATE,
	RULE_MERGE_MERGE,
	RULE_MERGE_MERGE_CI,
	RULE_MERGE_REPLACE,
	RULE_MERGE_MAX,
};

struct rule_clause {
	char *attribute;
	enum rule_op op;
	char *value; /* NULL for ISNULL/ISNOTNULL */
};

struct rule_group { /* clauses ANDed */
	struct rule_clause *v;
	size_t n;
};

struct rule_join_clause {
	char *source; /* attribute of the source object */
	char *target; /* attribute of the target (MV for inbound) */
	bool case_sensitive;
};

struct rule_join_group {
	struct rule_join_clause *v;
	size_t n;
};

struct rule_flow {
	enum rule_flow_type type;
	char *source;     /* Direct */
	char *constant;   /* Constant */
	char *expression; /* Expression text */
	struct expr *expr;
	char *target;
	bool apply_once;
	enum rule_merge merge;
};

struct sync_rule {
	char *name;
	char *file; /* NULL: built in */
	enum rule_direction direction;
	char *connector;   /* "ad" or "graph" */
	char *source_type; /* CS object class (inbound) or MV type (outbound) */
	char *target_type; /* MV type (inbound) or Graph type (outbound) */
	enum rule_link link;
	int precedence;
	bool disabled;
	struct rule_group *scope;
	size_t n_scope;
	struct rule_join_group *join;
	size_t n_join;
	struct rule_flow *flows;
	size_t n_flows;
};

/* Engine bookkeeping in the metaverse, hidden from rules and previews: per reference attribute
 * the CS id of each target with its anchor (inbound), and per group the Graph id of each member
 * (outbound), so that one membership change does not resolve every member again. */
#define SYNC_HIDDEN_PREFIX "hs:"
#define SYNC_HIDDEN_GRAPH  "hs:member.graph"

struct sync_rules {
	struct sync_rule **v; /* sorted by precedence, then name */
	size_t n;
	/* parameters of the expressions */
	char *domain_fqdn;
	char *domain_netbios;
	char *domain_ldap;
	char *anchor_extension;
	bool soft_match;
	char **read_ad, **read_graph; /* NULL-terminated, sorted */
	size_t n_read_ad, n_read_graph;
	char **index_attrs; /* MV join targets */
	size_t n_index_attrs;
};

/* rules.c */
const char *rule_op_to_string(enum rule_op op);
const char *rule_link_to_string(enum rule_link l);
const char *rule_flow_type_to_string(enum rule_flow_type t);
const char *rule_merge_to_string(enum rule_merge m);
struct sync_rule *sync_rule_free(struct sync_rule *r);
/* rules_default.c: the built-in rule set as JSON, with the conf-dependent parts filled in. */
char *rules_default_json(const struct conf *c);

/* rules_eval.c --------------------------------------------------------------------------------
 * A source object as rules see it: attributes, plus a few virtual ones. */
struct rule_source {
	const struct attr_set *attrs;
	const char *dn;     /* [dn] */
	const void *anchor; /* CS anchor: [objectGUID] fallback (ad), [id] (graph) */
	size_t anchor_len;
	const char *connector;           /* "ad", "graph" or NULL for the MV */
	const struct attr_set *imported; /* ImportedValue(); NULL: attrs */
	struct store *store;             /* ISMEMBEROF */
	int64_t cs_id;
	int64_t connector_id;
	const struct sync_rules *rules;
	/* values of a reference attribute (member, manager) as the anchors of the referenced
	 * objects' MV objects; NULL: references read as plain attributes */
	int (*get_refs)(void *userdata, const char *attr, struct attr_set *out, const char *as);
	void *refs_userdata;
};

bool rule_attr_is_binary(const char *name);
bool rule_attr_is_reference(const char *name);
int rule_in_scope(const struct sync_rule *r, const struct rule_source *src, bool *ret);

/* The outcome of one flow. */
enum flow_outcome {
	FLOW_VALUES, /* values (possibly none: NULL) */
	FLOW_IGNORE, /* IgnoreThisFlow */
	FLOW_AUTH_NULL,
	FLOW_ERROR,
};

/* Evaluates a flow; values go into *ret_values (a set with one attribute "v"). */
int rule_eval_flow(const struct sync_rule *r, const struct rule_flow *f,
                   const struct rule_source *src, struct attr_set **ret_values,
                   enum flow_outcome *ret_outcome, char *err, size_t err_len);

/* Contribution bookkeeping: computes the attributes of a target from the in-scope rules in
 * precedence order (lower wins; AuthoritativeNull stops lower rules; Merge unions). */
struct flow_merge;
struct flow_merge *flow_merge_new(void);
struct flow_merge *flow_merge_free(struct flow_merge *m);
/* Adds one contribution: returns 1 when taken, 0 when a higher-precedence rule already decided
 * the attribute. values may be NULL (NULL literal). */
int flow_merge_add(struct flow_merge *m, const char *target, enum flow_outcome oc,
                   enum rule_merge merge, const struct attr_set *values, const char *rule);
/* Writes the result into `out` for every target decided; targets that got only
 * IgnoreThisFlow keep the value in `current` (may be NULL). */
int flow_merge_apply(struct flow_merge *m, const struct attr_set *current, struct attr_set *out);
/* The rule that contributed `target`, NULL if none. */
const char *flow_merge_rule(const struct flow_merge *m, const char *target);
bool flow_merge_has(const struct flow_merge *m, const char *target);
/* The target got a value, NULL or AuthoritativeNull (not only IgnoreThisFlow). */
bool flow_merge_managed(const struct flow_merge *m, const char *target);
/* The i-th target, NULL past the end. */
const char *flow_merge_target(const struct flow_merge *m, size_t i);

/* JSON helpers shared by sync_preview and the tools. */
char *rules_attr_set_to_json_text(const struct attr_set *a);

/* --- the sync run (sync*.c) ------------------------------------------------------------------ */

struct id_set { /* open addressing set of int64 ids > 0 */
	int64_t *v;
	size_t n, cap;
};
static inline size_t id_hash(int64_t id, size_t cap)
{
	uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
	return (size_t)(h >> 17) & (cap - 1);
}
int id_set_add(struct id_set *s, int64_t id); /* 1 added, 0 present */
bool id_set_has(const struct id_set *s, int64_t id);
void id_set_remove(struct id_set *s, int64_t id);
void id_set_clear(struct id_set *s);

struct str_map;
struct str_map *str_map_free(struct str_map *m);

struct anchor_cache_entry {
	int64_t cs_id;
	char *anchor; /* NULL: no MV object */
	int64_t mv_id;
};

struct sync_ctx {
	struct store *s;
	const struct sync_rules *rules;
	const struct sync_opts *o;
	struct sync_result *res;
	int64_t ad_id, graph_id;
	int64_t gen; /* full sync generation, 0 in a delta sync */
	bool full;
	bool preview; /* no writes: record what would be done */
	unsigned batch;
	struct id_set touched; /* MV objects for the outbound pass */
	struct id_set retry;   /* AD CS objects whose references must be resolved again */
	struct id_set done_retry;
	struct id_set invalid; /* CS objects whose MV join or anchor changed in this run */
	bool in_retry;
	/* cs id -> anchor of its MV object, for reference resolution within a run */
	struct anchor_cache_entry *cache;
	size_t cache_cap, cache_n;
	char cause[320];
	uint64_t evaluated; /* CS and MV objects evaluated */
	uint64_t estimate;  /* CS objects this step will go through, for progress */
	uint64_t resolved;  /* reference lookups that missed the cache */
	/* preview output (cJSON objects, opaque here) */
	void *pv_rules;
	void *pv_export;
	int64_t pv_mv;             /* the MV object previewed, 0 when new or deleted */
	struct attr_set *pv_attrs; /* its attributes after the sync */
	const char *pv_type;       /* its type when it would be projected */
	int64_t pv_exclude;        /* a CS object that would be deleted or disjoined */
	struct str_map *members;   /* member anchor -> Graph id or "" (exportable) */
	struct str_map
	    *changed_anchors; /* MV objects created, deleted or (dis)joined in this run */
	bool join_changed;    /* set before sync_recompute_mv: record its anchor */
};

int sync_batch_tick(struct sync_ctx *x);
int sync_object_error(struct sync_ctx *x, const char *anchor, const char *dn, const char *code,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* sync_cache.c */
void sync_cache_clear(struct sync_ctx *x);
/* The CS object's join or anchor changed: resolve it again in this run. */
void sync_cache_forget(struct sync_ctx *x, int64_t cs_id);
int sync_resolve_anchor(struct sync_ctx *x, int64_t cs_id, const char **ret_anchor,
                        int64_t *ret_mv);
int sync_recompute_mv(struct sync_ctx *x, int64_t mv_id);
int sync_cs_object(struct sync_ctx *x, const struct store_cs_object *o, const char *connector);
/* store_cs_get_referrers() callback: the referrer resolves its references again (x->retry). */
int sync_referrer_cb(const struct store_ref *r, void *userdata);
/* sync_run.c */
int sync_ctx_init(struct sync_ctx *x, struct store *s, const struct sync_rules *r,
                  const struct sync_opts *o, struct sync_result *res);
void sync_ctx_done(struct sync_ctx *x);
/* sync_out.c */
int sync_outbound(struct sync_ctx *x, int64_t mv_id);
/* The same for an MV object in memory (a preview). */
int sync_outbound_obj(struct sync_ctx *x, const struct store_mv_object *mv);
/* The pending export of a deprovisioned MV object (its Graph object joined or not). */
int sync_deprovision(struct sync_ctx *x, const struct store_mv_object *mv,
                     const struct store_cs_object *graph_cs);
/* Refreshes the DELETE export of a Graph disconnector during a full sync. */
int sync_keep_delete(struct sync_ctx *x, const struct store_cs_object *g);
/* The Graph object carries a sourceAnchor (onPremisesImmutableId or the anchor extension). */
bool sync_graph_is_ours(struct sync_ctx *x, const struct store_cs_object *g);
/* The MV object with this anchor was created, deleted or joined another Graph object: cached
 * member resolutions naming it are not trusted in this run. */
int sync_anchor_changed(struct sync_ctx *x, const char *anchor);
/* A new MV object whose anchor has a Graph object of ours being deleted (its previous MV
 * object went in this run or before): joins that Graph object to it instead. */
int sync_rejoin(struct sync_ctx *x, int64_t mv_id, const char *mv_type, const char *anchor,
                const struct attr_set *attrs);
