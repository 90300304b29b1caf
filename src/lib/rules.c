/* Sync rules: the JSON rule files of hybridsync.rules(5) and the built-in defaults compiled into
 * struct sync_rules, with every problem reported as "FILE: rule NAME: column N: message". */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sync_internal.h"

#define RULES_ERRORS_MAX 100

static const char *const op_names[RULE_OP_MAX] = {
    "EQUAL",       "NOTEQUAL",
    "LESSTHAN",    "LESSTHAN_OR_EQUAL",
    "GREATERTHAN", "GREATERTHAN_OR_EQUAL",
    "CONTAINS",    "NOTCONTAINS",
    "STARTSWITH",  "NOTSTARTSWITH",
    "ENDSWITH",    "NOTENDSWITH",
    "ISNULL",      "ISNOTNULL",
    "ISIN",        "ISNOTIN",
    "ISBITSET",    "ISNOTBITSET",
    "ISMEMBEROF",  "ISNOTMEMBEROF",
};
static const char *const link_names[RULE_LINK_MAX] = {"Join", "Provision", "StickyJoin"};
static const char *const flow_names[RULE_FLOW_TYPE_MAX] = {"Direct", "Constant", "Expression"};
static const char *const merge_names[RULE_MERGE_MAX] = {"Update", "Merge", "MergeCaseInsensitive",
                                                        "Replace"};

const char *rule_op_to_string(enum rule_op op)
{
	return op < RULE_OP_MAX ? op_names[op] : NULL;
}
const char *rule_link_to_string(enum rule_link l)
{
	return l < RULE_LINK_MAX ? link_names[l] : NULL;
}
const char *rule_flow_type_to_string(enum rule_flow_type t)
{
	return t < RULE_FLOW_TYPE_MAX ? flow_names[t] : NULL;
}
const char *rule_merge_to_string(enum rule_merge m)
{
	return m < RULE_MERGE_MAX ? merge_names[m] : NULL;
}

static int lookup_name(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

struct sync_rule *sync_rule_free(struct sync_rule *r)
{
	if (!r)
		return NULL;
	free(r->name);
	free(r->file);
	free(r->connector);
	free(r->source_type);
	free(r->target_type);
	for (size_t i = 0; i < r->n_scope; i++) {
		for (size_t j = 0; j < r->scope[i].n; j++) {
			free(r->scope[i].v[j].attribute);
			free(r->scope[i].v[j].value);
		}
		free(r->scope[i].v);
	}
	free(r->scope);
	for (size_t i = 0; i < r->n_join; i++) {
		for (size_t j = 0; j < r->join[i].n; j++) {
			free(r->join[i].v[j].source);
			free(r->join[i].v[j].target);
		}
		free(r->join[i].v);
	}
	free(r->join);
	for (size_t i = 0; i < r->n_flows; i++) {
		struct rule_flow *f = &r->flows[i];
		free(f->source);
		free(f->constant);
		free(f->expression);
		expr_free(f->expr);
		free(f->target);
	}
	free(r->flows);
	free(r);
	return NULL;
}

static void strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

struct sync_rules *sync_rules_free(struct sync_rules *r)
{
	if (!r)
		return NULL;
	for (size_t i = 0; i < r->n; i++)
		sync_rule_free(r->v[i]);
	free(r->v);
	free(r->domain_fqdn);
	free(r->domain_netbios);
	free(r->domain_ldap);
	free(r->anchor_extension);
	strv_free(r->read_ad, r->n_read_ad);
	strv_free(r->read_graph, r->n_read_graph);
	strv_free(r->index_attrs, r->n_index_attrs);
	free(r);
	return NULL;
}

/* --- errors ----------------------------------------------------------------------------------- */

struct errs {
	struct conf_errors *e;
	bool oom;
};

static void errs_add(struct errs *el, const char *file, const char *rule, unsigned column,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void errs_add(struct errs *el, const char *file, const char *rule, unsigned column,
                     const char *fmt, ...)
{
	char msg[1024], text[1600];
	va_list ap;

	if (el->oom)
		return;
	if (!el->e) {
		el->e = calloc(1, sizeof(*el->e));
		if (!el->e) {
			el->oom = true;
			return;
		}
	}
	if (el->e->n >= RULES_ERRORS_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (rule && column)
		snprintf(text, sizeof(text), "%s: rule %s: column %u: %s", file, rule, column, msg);
	else if (rule)
		snprintf(text, sizeof(text), "%s: rule %s: %s", file, rule, msg);
	else
		snprintf(text, sizeof(text), "%s: %s", file, msg);
	struct conf_error *nv = realloc(el->e->v, (el->e->n + 1) * sizeof(*nv));
	if (!nv) {
		el->oom = true;
		return;
	}
	el->e->v = nv;
	struct conf_error *ce = &nv[el->e->n];
	memset(ce, 0, sizeof(*ce));
	ce->file = strdup(file);
	ce->column = column;
	ce->message = strdup(text + strlen(file) + 2);
	ce->text = strdup(text);
	if (!ce->file || !ce->message || !ce->text) {
		free(ce->file);
		free(ce->message);
		free(ce->text);
		el->oom = true;
		return;
	}
	el->e->n++;
}

/* --- parsing ---------------------------------------------------------------------------------- */

struct pctx {
	struct errs *errs;
	const char *file; /* for messages */
	bool builtin;
	const char *rule; /* name, for messages */
};

static char *dupstr(const char *s)
{
	return s ? strdup(s) : NULL;
}

static const char *get_string(struct pctx *p, const cJSON *o, const char *key, bool required,
                              bool *bad)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!v) {
		if (required) {
			errs_add(p->errs, p->file, p->rule, 0, "\"%s\" is required", key);
			*bad = true;
		}
		return NULL;
	}
	if (!cJSON_IsString(v)) {
		errs_add(p->errs, p->file, p->rule, 0, "\"%s\" must be a string", key);
		*bad = true;
		return NULL;
	}
	return v->valuestring;
}

static bool check_keys(struct pctx *p, const cJSON *o, const char *const *allowed, const char *what)
{
	bool ok = true;
	const cJSON *it;

	cJSON_ArrayForEach(it, o)
	{
		bool found = false;
		for (size_t i = 0; allowed[i]; i++)
			if (strcmp(allowed[i], it->string) == 0)
				found = true;
		if (!found) {
			errs_add(p->errs, p->file, p->rule, 0, "unknown key \"%s\" in %s",
			         it->string, what);
			ok = false;
		}
	}
	return ok;
}

/* The shape scopingFilter and joinRules share: `key` is an array of at most
 * RULES_CLAUSES_MAX groups. The number of groups, or -EINVAL with the problem recorded. */
static int groups_size(struct pctx *p, const cJSON *arr, const char *key, const char *what)
{
	if (!cJSON_IsArray(arr)) {
		errs_add(p->errs, p->file, p->rule, 0,
		         "\"%s\" must be an array of groups (arrays of clauses)", key);
		return -EINVAL;
	}
	int ng = cJSON_GetArraySize(arr);
	if ((size_t)ng > RULES_CLAUSES_MAX) {
		errs_add(p->errs, p->file, p->rule, 0, "too many %s groups", what);
		return -EINVAL;
	}
	return ng;
}

/* One group: an array of at most RULES_CLAUSES_MAX clauses, non-empty when asked. The number
 * of clauses, or -EINVAL with the problem recorded. */
static int group_size(struct pctx *p, const cJSON *g, const char *what, bool nonempty)
{
	if (!cJSON_IsArray(g) || (nonempty && cJSON_GetArraySize(g) == 0)) {
		errs_add(p->errs, p->file, p->rule, 0, "a %s group must be a %sarray of clauses",
		         what, nonempty ? "non-empty " : "");
		return -EINVAL;
	}
	int nc = cJSON_GetArraySize(g);
	if ((size_t)nc > RULES_CLAUSES_MAX) {
		errs_add(p->errs, p->file, p->rule, 0, "too many clauses in a %s group", what);
		return -EINVAL;
	}
	return nc;
}

static int parse_scope(struct pctx *p, const cJSON *arr, struct sync_rule *r)
{
	static const char *const keys[] = {"attribute", "operator", "value", NULL};
	bool bad = false;
	const cJSON *g;

	int ng = groups_size(p, arr, "scopingFilter", "scoping");
	if (ng < 0)
		return ng;
	r->scope = calloc(ng ? (size_t)ng : 1, sizeof(*r->scope));
	if (!r->scope)
		return -ENOMEM;
	cJSON_ArrayForEach(g, arr)
	{
		struct rule_group *rg = &r->scope[r->n_scope++];
		const cJSON *c;
		int nc = group_size(p, g, "scoping", false);
		if (nc < 0) {
			bad = true;
			continue;
		}
		rg->v = calloc(nc ? (size_t)nc : 1, sizeof(*rg->v));
		if (!rg->v)
			return -ENOMEM;
		cJSON_ArrayForEach(c, g)
		{
			if (!cJSON_IsObject(c)) {
				errs_add(p->errs, p->file, p->rule, 0,
				         "a scoping clause must be an object");
				bad = true;
				continue;
			}
			if (!check_keys(p, c, keys, "a scoping clause"))
				bad = true;
			const char *a = get_string(p, c, "attribute", true, &bad);
			const char *op = get_string(p, c, "operator", true, &bad);
			const cJSON *val = cJSON_GetObjectItemCaseSensitive(c, "value");
			if (!a || !op)
				continue;
			int k = lookup_name(op_names, RULE_OP_MAX, op);
			if (k < 0) {
				errs_add(p->errs, p->file, p->rule, 0,
				         "unknown scoping operator \"%s\" (one of EQUAL, NOTEQUAL, "
				         "LESSTHAN, ..., ISMEMBEROF, ISNOTMEMBEROF)",
				         op);
				bad = true;
				continue;
			}
			char *vs = NULL;
			if (k != RULE_OP_ISNULL && k != RULE_OP_ISNOTNULL) {
				if (cJSON_IsString(val))
					vs = strdup(val->valuestring);
				else if (cJSON_IsBool(val))
					vs = strdup(cJSON_IsTrue(val) ? "true" : "false");
				else if (cJSON_IsNumber(val)) {
					char nb[32];
					snprintf(nb, sizeof(nb), "%.0f", val->valuedouble);
					vs = strdup(nb);
				} else {
					errs_add(p->errs, p->file, p->rule, 0,
					         "operator %s on \"%s\" needs a \"value\"", op, a);
					bad = true;
					continue;
				}
				if (!vs)
					return -ENOMEM;
			}
			struct rule_clause *cl = &rg->v[rg->n++];
			cl->attribute = strdup(a);
			cl->op = (enum rule_op)k;
			cl->value = vs;
			if (!cl->attribute)
				return -ENOMEM;
		}
	}
	return bad ? -EINVAL : 0;
}

static int parse_join(struct pctx *p, const cJSON *arr, struct sync_rule *r)
{
	static const char *const keys[] = {"source", "target", "caseSensitive", NULL};
	bool bad = false;
	const cJSON *g;

	int ng = groups_size(p, arr, "joinRules", "join");
	if (ng < 0)
		return ng;
	r->join = calloc(ng ? (size_t)ng : 1, sizeof(*r->join));
	if (!r->join)
		return -ENOMEM;
	cJSON_ArrayForEach(g, arr)
	{
		struct rule_join_group *jg = &r->join[r->n_join++];
		const cJSON *c;
		int nc = group_size(p, g, "join", true);
		if (nc < 0) {
			bad = true;
			continue;
		}
		jg->v = calloc((size_t)nc, sizeof(*jg->v));
		if (!jg->v)
			return -ENOMEM;
		cJSON_ArrayForEach(c, g)
		{
			if (!cJSON_IsObject(c)) {
				errs_add(p->errs, p->file, p->rule, 0,
				         "a join clause must be an object");
				bad = true;
				continue;
			}
			if (!check_keys(p, c, keys, "a join clause"))
				bad = true;
			const char *s = get_string(p, c, "source", true, &bad);
			const char *t = get_string(p, c, "target", true, &bad);
			const cJSON *cs = cJSON_GetObjectItemCaseSensitive(c, "caseSensitive");
			if (cs && !cJSON_IsBool(cs)) {
				errs_add(p->errs, p->file, p->rule, 0,
				         "\"caseSensitive\" must be true or false");
				bad = true;
			}
			if (!s || !t)
				continue;
			struct rule_join_clause *jc = &jg->v[jg->n++];
			jc->source = strdup(s);
			jc->target = strdup(t);
			jc->case_sensitive = cs ? cJSON_IsTrue(cs) : false;
			if (!jc->source || !jc->target)
				return -ENOMEM;
		}
	}
	return bad ? -EINVAL : 0;
}

static int parse_flows(struct pctx *p, const cJSON *arr, struct sync_rule *r)
{
	static const char *const keys[] = {"source",    "expression",  "constant",
	                                   "target",    "flowType",    "applyOnce",
	                                   "mergeType", "description", NULL};
	bool bad = false;
	const cJSON *f;

	if (!cJSON_IsArray(arr)) {
		errs_add(p->errs, p->file, p->rule, 0, "\"attributeFlows\" must be an array");
		return -EINVAL;
	}
	size_t nf = (size_t)cJSON_GetArraySize(arr);
	if (nf > RULES_FLOWS_MAX) {
		errs_add(p->errs, p->file, p->rule, 0, "too many attribute flows");
		return -EINVAL;
	}
	r->flows = calloc(nf ? nf : 1, sizeof(*r->flows));
	if (!r->flows)
		return -ENOMEM;
	cJSON_ArrayForEach(f, arr)
	{
		if (!cJSON_IsObject(f)) {
			errs_add(p->errs, p->file, p->rule, 0,
			         "an attribute flow must be an object");
			bad = true;
			continue;
		}
		if (!check_keys(p, f, keys, "an attribute flow"))
			bad = true;
		const char *src = get_string(p, f, "source", false, &bad);
		const char *ex = get_string(p, f, "expression", false, &bad);
		const char *tgt = get_string(p, f, "target", true, &bad);
		const char *ft = get_string(p, f, "flowType", false, &bad);
		const char *mt = get_string(p, f, "mergeType", false, &bad);
		const cJSON *cv = cJSON_GetObjectItemCaseSensitive(f, "constant");
		const cJSON *ao = cJSON_GetObjectItemCaseSensitive(f, "applyOnce");
		int kinds = !!src + !!ex + !!cv;

		if (!tgt)
			continue;
		if (kinds != 1) {
			errs_add(p->errs, p->file, p->rule, 0,
			         "flow to \"%s\": exactly one of \"source\", \"expression\", "
			         "\"constant\" is needed",
			         tgt);
			bad = true;
			continue;
		}
		enum rule_flow_type type = src  ? RULE_FLOW_DIRECT
		                           : ex ? RULE_FLOW_EXPRESSION
		                                : RULE_FLOW_CONSTANT;
		if (ft) {
			int k = lookup_name(flow_names, RULE_FLOW_TYPE_MAX, ft);
			if (k < 0 || (enum rule_flow_type)k != type) {
				errs_add(p->errs, p->file, p->rule, 0,
				         "flow to \"%s\": flowType \"%s\" does not match its %s",
				         tgt, ft,
				         src  ? "source"
				         : ex ? "expression"
				              : "constant");
				bad = true;
				continue;
			}
		}
		enum rule_merge merge = RULE_MERGE_UPDATE;
		if (mt) {
			int k = lookup_name(merge_names, RULE_MERGE_MAX, mt);
			if (k < 0) {
				errs_add(p->errs, p->file, p->rule, 0,
				         "flow to \"%s\": unknown mergeType \"%s\" (Update, Merge, "
				         "MergeCaseInsensitive, Replace)",
				         tgt, mt);
				bad = true;
				continue;
			}
			merge = (enum rule_merge)k;
		}
		if (ao && !cJSON_IsBool(ao)) {
			errs_add(p->errs, p->file, p->rule, 0,
			         "flow to \"%s\": \"applyOnce\" must be true or false", tgt);
			bad = true;
			continue;
		}
		char *cs = NULL;
		if (cv) {
			if (cJSON_IsString(cv))
				cs = strdup(cv->valuestring);
			else if (cJSON_IsBool(cv))
				cs = strdup(cJSON_IsTrue(cv) ? "true" : "false");
			else if (cJSON_IsNumber(cv)) {
				char nb[32];
				snprintf(nb, sizeof(nb), "%.0f", cv->valuedouble);
				cs = strdup(nb);
			} else {
				errs_add(p->errs, p->file, p->rule, 0,
				         "flow to \"%s\": \"constant\" must be a string, number or "
				         "boolean",
				         tgt);
				bad = true;
				continue;
			}
			if (!cs)
				return -ENOMEM;
		}
		struct expr *e = NULL;
		if (ex) {
			struct expr_error ee = {0};
			int q = expr_parse(ex, &e, &ee);
			if (q == -ENOMEM) {
				free(cs);
				return q;
			}
			if (q < 0) {
				const char *m = ee.message;
				/* the message starts with "column N: " already */
				if (strncmp(m, "column ", 7) == 0) {
					const char *colon = strstr(m, ": ");
					if (colon)
						m = colon + 2;
				}
				errs_add(p->errs, p->file, p->rule, ee.column ? ee.column : 1,
				         "expression of flow to \"%s\": %s", tgt, m);
				bad = true;
				continue;
			}
		}
		struct rule_flow *rf = &r->flows[r->n_flows++];
		rf->type = type;
		rf->source = dupstr(src);
		rf->expression = dupstr(ex);
		rf->constant = cs;
		rf->expr = e;
		rf->target = strdup(tgt);
		rf->apply_once = ao && cJSON_IsTrue(ao);
		rf->merge = merge;
		if ((src && !rf->source) || (ex && !rf->expression) || !rf->target)
			return -ENOMEM;
	}
	/* all flows of one rule to one target must agree on the merge type */
	for (size_t i = 0; i < r->n_flows; i++)
		for (size_t j = i + 1; j < r->n_flows; j++)
			if (strcasecmp(r->flows[i].target, r->flows[j].target) == 0) {
				errs_add(p->errs, p->file, p->rule, 0,
				         "two flows to the same target \"%s\"", r->flows[i].target);
				bad = true;
			}
	return bad ? -EINVAL : 0;
}

static bool valid_connector(const char *c)
{
	return strcmp(c, "ad") == 0 || strcmp(c, "graph") == 0;
}

static int parse_rule(struct pctx *p, const cJSON *o, struct sync_rule **ret, bool *ret_override)
{
	static const char *const keys[] = {"name",
	                                   "description",
	                                   "direction",
	                                   "connector",
	                                   "sourceObjectType",
	                                   "targetObjectType",
	                                   "linkType",
	                                   "precedence",
	                                   "disabled",
	                                   "scopingFilter",
	                                   "joinRules",
	                                   "attributeFlows",
	                                   NULL};
	struct sync_rule *r = NULL;
	bool bad = false;
	int ret_r = -EINVAL, q;

	*ret_override = false;
	if (!cJSON_IsObject(o)) {
		errs_add(p->errs, p->file, NULL, 0, "a rule must be a JSON object");
		return -EINVAL;
	}
	const char *name = get_string(p, o, "name", true, &bad);
	if (!name)
		return -EINVAL;
	if (strlen(name) == 0 || strlen(name) > RULES_NAME_MAX) {
		errs_add(p->errs, p->file, NULL, 0, "a rule name must have 1 to %u bytes",
		         RULES_NAME_MAX);
		return -EINVAL;
	}
	p->rule = name;
	if (!check_keys(p, o, keys, "a rule"))
		bad = true;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->name = strdup(name);
	r->file = p->builtin ? NULL : strdup(p->file);
	if (!r->name || (!p->builtin && !r->file)) {
		ret_r = -ENOMEM;
		goto out;
	}
	const cJSON *dis = cJSON_GetObjectItemCaseSensitive(o, "disabled");
	if (dis && !cJSON_IsBool(dis)) {
		errs_add(p->errs, p->file, p->rule, 0, "\"disabled\" must be true or false");
		bad = true;
	}
	r->disabled = dis && cJSON_IsTrue(dis);
	/* {"name": ..., "disabled": true} alone overrides the flag of a built-in rule */
	if (!cJSON_GetObjectItemCaseSensitive(o, "direction") && dis &&
	    cJSON_GetArraySize(o) == 2) {
		*ret_override = true;
		*ret = r;
		return 0;
	}
	const char *dir = get_string(p, o, "direction", true, &bad);
	const char *conn = get_string(p, o, "connector", true, &bad);
	const char *st = get_string(p, o, "sourceObjectType", true, &bad);
	const char *tt = get_string(p, o, "targetObjectType", true, &bad);
	const char *lt = get_string(p, o, "linkType", false, &bad);
	get_string(p, o, "description", false, &bad);
	if (dir) {
		if (strcasecmp(dir, "inbound") == 0)
			r->direction = RULE_INBOUND;
		else if (strcasecmp(dir, "outbound") == 0)
			r->direction = RULE_OUTBOUND;
		else {
			errs_add(p->errs, p->file, p->rule, 0,
			         "\"direction\" must be \"inbound\" or \"outbound\", not \"%s\"",
			         dir);
			bad = true;
		}
	}
	if (conn && !valid_connector(conn)) {
		errs_add(p->errs, p->file, p->rule, 0,
		         "\"connector\" must be \"ad\" or \"graph\", not \"%s\"", conn);
		bad = true;
	}
	if (conn && dir && r->direction == RULE_OUTBOUND && strcmp(conn, "graph") != 0) {
		errs_add(p->errs, p->file, p->rule, 0,
		         "outbound rules write to the \"graph\" connector only");
		bad = true;
	}
	r->link = RULE_LINK_JOIN;
	if (lt) {
		int k = lookup_name(link_names, RULE_LINK_MAX, lt);
		if (k < 0) {
			errs_add(p->errs, p->file, p->rule, 0,
			         "\"linkType\" must be Join, Provision or StickyJoin, not \"%s\"",
			         lt);
			bad = true;
		} else
			r->link = (enum rule_link)k;
	}
	const cJSON *prec = cJSON_GetObjectItemCaseSensitive(o, "precedence");
	if (!prec) {
		errs_add(p->errs, p->file, p->rule, 0, "\"precedence\" is required");
		bad = true;
	} else if (!cJSON_IsNumber(prec) || prec->valuedouble < 0 || prec->valuedouble > 1000000 ||
	           prec->valuedouble != (double)(int)prec->valuedouble) {
		errs_add(p->errs, p->file, p->rule, 0,
		         "\"precedence\" must be a whole number from 0 to 1000000");
		bad = true;
	} else
		r->precedence = (int)prec->valuedouble;
	r->connector = dupstr(conn);
	r->source_type = dupstr(st);
	r->target_type = dupstr(tt);
	const cJSON *sf = cJSON_GetObjectItemCaseSensitive(o, "scopingFilter");
	if (sf && (q = parse_scope(p, sf, r)) < 0) {
		if (q == -ENOMEM) {
			ret_r = q;
			goto out;
		}
		bad = true;
	}
	const cJSON *jr = cJSON_GetObjectItemCaseSensitive(o, "joinRules");
	if (jr && (q = parse_join(p, jr, r)) < 0) {
		if (q == -ENOMEM) {
			ret_r = q;
			goto out;
		}
		bad = true;
	}
	const cJSON *af = cJSON_GetObjectItemCaseSensitive(o, "attributeFlows");
	if (af && (q = parse_flows(p, af, r)) < 0) {
		if (q == -ENOMEM) {
			ret_r = q;
			goto out;
		}
		bad = true;
	}
	if (bad)
		goto out;
	*ret = r;
	return 0;
out:
	sync_rule_free(r);
	return ret_r;
}

/* A file holds one rule object, an array of rules, or {"rules": [...]}. */
static int parse_file(struct pctx *p, const char *text, struct sync_rule ***v, size_t *n,
                      size_t *alloc, struct sync_rule ***ov, size_t *on)
{
	cJSON *root = cJSON_Parse(text);
	const cJSON *arr, *it;
	int r = 0;

	if (!root) {
		errs_add(p->errs, p->file, NULL, 0, "not valid JSON");
		return -EINVAL;
	}
	if (cJSON_IsObject(root) && cJSON_GetObjectItemCaseSensitive(root, "rules")) {
		arr = cJSON_GetObjectItemCaseSensitive(root, "rules");
		if (!cJSON_IsArray(arr) || cJSON_GetArraySize(root) != 1) {
			errs_add(p->errs, p->file, NULL, 0,
			         "{\"rules\": [...]} must hold only an array of rules");
			r = -EINVAL;
			goto out;
		}
	} else
		arr = root;
	if (cJSON_IsObject(arr)) {
		struct sync_rule *rule = NULL;
		bool ovr;
		int q = parse_rule(p, arr, &rule, &ovr);
		if (q < 0) {
			r = q;
			goto out;
		}
		cJSON *tmp = NULL;
		(void)tmp;
		if (ovr) {
			struct sync_rule **nv = realloc(*ov, (*on + 1) * sizeof(*nv));
			if (!nv) {
				sync_rule_free(rule);
				r = -ENOMEM;
				goto out;
			}
			*ov = nv;
			nv[(*on)++] = rule;
		} else {
			if (*n == *alloc) {
				size_t na = *alloc ? *alloc * 2 : 32;
				struct sync_rule **nv = realloc(*v, na * sizeof(*nv));
				if (!nv) {
					sync_rule_free(rule);
					r = -ENOMEM;
					goto out;
				}
				*v = nv;
				*alloc = na;
			}
			(*v)[(*n)++] = rule;
		}
		goto out;
	}
	if (!cJSON_IsArray(arr)) {
		errs_add(
		    p->errs, p->file, NULL, 0,
		    "a rule file holds a rule object, an array of rules or {\"rules\": [...]}");
		r = -EINVAL;
		goto out;
	}
	cJSON_ArrayForEach(it, arr)
	{
		struct sync_rule *rule = NULL;
		bool ovr;
		p->rule = NULL;
		int q = parse_rule(p, it, &rule, &ovr);
		if (q == -ENOMEM) {
			r = q;
			goto out;
		}
		if (q < 0) {
			r = q;
			continue;
		}
		if (*n + *on >= RULES_PER_SET_MAX) {
			sync_rule_free(rule);
			errs_add(p->errs, p->file, NULL, 0, "too many rules (at most %u)",
			         RULES_PER_SET_MAX);
			r = -EINVAL;
			goto out;
		}
		if (ovr) {
			struct sync_rule **nv = realloc(*ov, (*on + 1) * sizeof(*nv));
			if (!nv) {
				sync_rule_free(rule);
				r = -ENOMEM;
				goto out;
			}
			*ov = nv;
			nv[(*on)++] = rule;
			continue;
		}
		if (*n == *alloc) {
			size_t na = *alloc ? *alloc * 2 : 32;
			struct sync_rule **nv = realloc(*v, na * sizeof(*nv));
			if (!nv) {
				sync_rule_free(rule);
				r = -ENOMEM;
				goto out;
			}
			*v = nv;
			*alloc = na;
		}
		(*v)[(*n)++] = rule;
	}
out:
	cJSON_Delete(root);
	return r;
}

static int rule_cmp(const void *a, const void *b)
{
	const struct sync_rule *x = *(const struct sync_rule *const *)a;
	const struct sync_rule *y = *(const struct sync_rule *const *)b;

	if (x->precedence != y->precedence)
		return x->precedence < y->precedence ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int strv_add(char ***v, size_t *n, const char *s)
{
	for (size_t i = 0; i < *n; i++)
		if (strcasecmp((*v)[i], s) == 0)
			return 0;
	char **nv = realloc(*v, (*n + 2) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = strdup(s);
	if (!nv[*n])
		return -ENOMEM;
	(*n)++;
	nv[*n] = NULL;
	return 0;
}

static int strp_cmp(const void *a, const void *b)
{
	return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

struct attr_collect {
	char ***v;
	size_t *n;
};

static int collect_attr(void *userdata, const char *name, bool imported)
{
	struct attr_collect *c = userdata;
	(void)imported;
	return strv_add(c->v, c->n, name);
}

static int collect_read_attrs(struct sync_rules *rs)
{
	static const char *const always_ad[] = {"objectGUID", "objectSid", "mS-DS-ConsistencyGuid",
	                                        "member",     "manager",   NULL};
	int q;

	for (size_t i = 0; always_ad[i]; i++)
		if ((q = strv_add(&rs->read_ad, &rs->n_read_ad, always_ad[i])) < 0)
			return q;
	if ((q = strv_add(&rs->read_graph, &rs->n_read_graph, "onPremisesImmutableId")) < 0)
		return q;
	if (rs->anchor_extension &&
	    (q = strv_add(&rs->read_graph, &rs->n_read_graph, rs->anchor_extension)) < 0)
		return q;
	for (size_t i = 0; i < rs->n; i++) {
		const struct sync_rule *r = rs->v[i];
		if (r->disabled)
			continue;
		char ***v;
		size_t *n;
		if (r->direction == RULE_INBOUND && strcmp(r->connector, "ad") == 0) {
			v = &rs->read_ad;
			n = &rs->n_read_ad;
		} else if (r->direction == RULE_INBOUND) {
			v = &rs->read_graph;
			n = &rs->n_read_graph;
		} else {
			/* outbound rules write Graph properties: import them to compare */
			for (size_t j = 0; j < r->n_flows; j++)
				if (!rule_attr_is_reference(r->flows[j].target) &&
				    (q = strv_add(&rs->read_graph, &rs->n_read_graph,
				                  r->flows[j].target)) < 0)
					return q;
			for (size_t g = 0; g < r->n_join; g++)
				for (size_t j = 0; j < r->join[g].n; j++)
					if ((q = strv_add(&rs->index_attrs, &rs->n_index_attrs,
					                  r->join[g].v[j].source)) < 0)
						return q;
			continue;
		}
		for (size_t g = 0; g < r->n_scope; g++)
			for (size_t j = 0; j < r->scope[g].n; j++)
				if ((q = strv_add(v, n, r->scope[g].v[j].attribute)) < 0)
					return q;
		for (size_t g = 0; g < r->n_join; g++)
			for (size_t j = 0; j < r->join[g].n; j++) {
				if ((q = strv_add(v, n, r->join[g].v[j].source)) < 0)
					return q;
				if ((q = strv_add(&rs->index_attrs, &rs->n_index_attrs,
				                  r->join[g].v[j].target)) < 0)
					return q;
			}
		for (size_t j = 0; j < r->n_flows; j++) {
			const struct rule_flow *f = &r->flows[j];
			if (f->type == RULE_FLOW_DIRECT && (q = strv_add(v, n, f->source)) < 0)
				return q;
			if (f->expr) {
				struct attr_collect c = {v, n};
				if ((q = expr_foreach_attribute(f->expr, collect_attr, &c)) < 0)
					return q;
			}
		}
	}
	/* virtual attributes are not fetched */
	static const char *const virt[] = {"dn", "id", NULL};
	for (size_t k = 0; virt[k]; k++) {
		for (size_t i = 0; i < rs->n_read_ad; i++)
			if (strcasecmp(rs->read_ad[i], virt[k]) == 0) {
				free(rs->read_ad[i]);
				memmove(&rs->read_ad[i], &rs->read_ad[i + 1],
				        (rs->n_read_ad - i) * sizeof(char *));
				rs->n_read_ad--;
				break;
			}
		for (size_t i = 0; i < rs->n_read_graph; i++)
			if (strcasecmp(rs->read_graph[i], virt[k]) == 0) {
				free(rs->read_graph[i]);
				memmove(&rs->read_graph[i], &rs->read_graph[i + 1],
				        (rs->n_read_graph - i) * sizeof(char *));
				rs->n_read_graph--;
				break;
			}
	}
	qsort(rs->read_ad, rs->n_read_ad, sizeof(char *), strp_cmp);
	qsort(rs->read_graph, rs->n_read_graph, sizeof(char *), strp_cmp);
	return 0;
}

static int domain_params(struct sync_rules *rs, const struct conf *c)
{
	char fqdn[1024] = "", ldap[1024] = "";
	const char *dn = c->ad.base_dn ? c->ad.base_dn : "";
	const char *p = dn;

	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > 3 && strncasecmp(p, "dc=", 3) == 0) {
			size_t fl = strlen(fqdn);
			snprintf(fqdn + fl, sizeof(fqdn) - fl, "%s%.*s", fl ? "." : "",
			         (int)(len - 3), p + 3);
		}
		p += len;
	}
	snprintf(ldap, sizeof(ldap), "%s", dn);
	rs->domain_fqdn = strdup(fqdn);
	rs->domain_ldap = strdup(ldap);
	char nb[256];
	snprintf(nb, sizeof(nb), "%.255s", fqdn); /* NetBIOS names are short */
	char *dot = strchr(nb, '.');
	if (dot)
		*dot = 0;
	for (char *q = nb; *q; q++)
		if (*q >= 'a' && *q <= 'z')
			*q = (char)(*q - 'a' + 'A');
	rs->domain_netbios = strdup(nb);
	rs->anchor_extension = dupstr(c->graph.anchor_extension);
	rs->soft_match = c->graph.soft_match;
	if (!rs->domain_fqdn || !rs->domain_ldap || !rs->domain_netbios ||
	    (c->graph.anchor_extension && !rs->anchor_extension))
		return -ENOMEM;
	return 0;
}

int sync_rules_load(const struct conf *c, struct sync_rules **ret, struct conf_errors **ret_errors)
{
	struct errs errs = {0};
	struct sync_rules *rs = NULL;
	struct sync_rule **v = NULL, **ov = NULL, **fv = NULL;
	size_t n = 0, alloc = 0, on = 0, fn = 0, falloc = 0;
	char *deftext = NULL;
	int r;
	bool bad = false;

	if (ret_errors)
		*ret_errors = NULL;
	if (!c || !ret)
		return -EINVAL;
	rs = calloc(1, sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	if ((r = domain_params(rs, c)) < 0)
		goto out;
	deftext = rules_default_json(c);
	if (!deftext) {
		r = -ENOMEM;
		goto out;
	}
	struct pctx p = {.errs = &errs, .file = "(built-in rules)", .builtin = true};
	r = parse_file(&p, deftext, &v, &n, &alloc, &ov, &on);
	if (r < 0) {
		if (r != -ENOMEM)
			r = -EIO; /* a bug in the built-in rules */
		goto out;
	}
	for (size_t i = 0; i < c->n_rules; i++) {
		struct pctx fp = {.errs = &errs, .file = c->rules[i].name};
		if (!c->rules[i].canonical) {
			errs_add(&errs, c->rules[i].name, NULL, 0, "no content");
			bad = true;
			continue;
		}
		r = parse_file(&fp, c->rules[i].canonical, &fv, &fn, &falloc, &ov, &on);
		if (r == -ENOMEM)
			goto out;
		if (r < 0)
			bad = true;
	}
	/* names are unique among files; a file rule with a built-in's name replaces it */
	for (size_t i = 0; i < fn; i++) {
		for (size_t j = 0; j < i; j++)
			if (strcmp(fv[i]->name, fv[j]->name) == 0) {
				errs_add(&errs, fv[i]->file, fv[i]->name, 0,
				         "a rule of this name is already defined in %s",
				         fv[j]->file);
				bad = true;
			}
		for (size_t j = 0; j < n; j++)
			if (v[j] && strcmp(fv[i]->name, v[j]->name) == 0)
				v[j] = sync_rule_free(v[j]);
	}
	for (size_t i = 0; i < on; i++) {
		bool found = false;
		for (size_t j = 0; j < n; j++)
			if (v[j] && strcmp(ov[i]->name, v[j]->name) == 0) {
				v[j]->disabled = ov[i]->disabled;
				found = true;
			}
		for (size_t j = 0; j < fn; j++)
			if (strcmp(ov[i]->name, fv[j]->name) == 0) {
				fv[j]->disabled = ov[i]->disabled;
				found = true;
			}
		if (!found) {
			errs_add(&errs, ov[i]->file ? ov[i]->file : "(built-in rules)", ov[i]->name,
			         0, "only \"disabled\" is given, but no rule of this name exists");
			bad = true;
		}
	}
	if (errs.oom) {
		r = -ENOMEM;
		goto out;
	}
	if (bad || errs.e) {
		r = -EINVAL;
		goto out;
	}
	rs->v = calloc(n + fn + 1, sizeof(*rs->v));
	if (!rs->v) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (v[i]) {
			rs->v[rs->n++] = v[i];
			v[i] = NULL;
		}
	for (size_t i = 0; i < fn; i++) {
		rs->v[rs->n++] = fv[i];
		fv[i] = NULL;
	}
	qsort(rs->v, rs->n, sizeof(*rs->v), rule_cmp);
	if ((r = collect_read_attrs(rs)) < 0)
		goto out;
	*ret = rs;
	rs = NULL;
	r = 0;
out:
	for (size_t i = 0; i < n; i++)
		sync_rule_free(v[i]);
	for (size_t i = 0; i < fn; i++)
		sync_rule_free(fv[i]);
	for (size_t i = 0; i < on; i++)
		sync_rule_free(ov[i]);
	free(v);
	free(fv);
	free(ov);
	free(deftext);
	sync_rules_free(rs);
	if (r == -EINVAL && ret_errors) {
		*ret_errors = errs.e;
		errs.e = NULL;
	}
	conf_errors_free(errs.e);
	return r;
}

const char *const *sync_rules_attributes(const struct sync_rules *r, const char *connector,
                                         size_t *ret_n)
{
	if (!r || !connector) {
		if (ret_n)
			*ret_n = 0;
		return NULL;
	}
	if (strcmp(connector, "ad") == 0) {
		if (ret_n)
			*ret_n = r->n_read_ad;
		return (const char *const *)r->read_ad;
	}
	if (strcmp(connector, "graph") == 0) {
		if (ret_n)
			*ret_n = r->n_read_graph;
		return (const char *const *)r->read_graph;
	}
	if (ret_n)
		*ret_n = 0;
	return NULL;
}
