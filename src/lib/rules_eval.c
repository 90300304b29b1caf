/* Rule evaluation against one source object: scoping filters, attribute flows (Direct,
 * Constant, Expression; NULL, AuthoritativeNull, IgnoreThisFlow) and the precedence merge. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sync_internal.h"

bool rule_attr_is_binary(const char *name)
{
	static const char *const bin[] = {"objectGUID",
	                                  "objectSid",
	                                  "mS-DS-ConsistencyGuid",
	                                  "msExchMasterAccountSid",
	                                  "sIDHistory",
	                                  "userCertificate",
	                                  "thumbnailPhoto",
	                                  "jpegPhoto",
	                                  "msExchMailboxGuid",
	                                  NULL};
	for (size_t i = 0; bin[i]; i++)
		if (strcasecmp(bin[i], name) == 0)
			return true;
	return false;
}

bool rule_attr_is_reference(const char *name)
{
	return strcasecmp(name, "member") == 0 || strcasecmp(name, "manager") == 0;
}

/* --- values ----------------------------------------------------------------------------------- */

static int get_values(const struct rule_source *src, const char *name, struct attr_set *tmp,
                      const struct attr_value **ret_v, size_t *ret_n)
{
	const struct attr_set *a = src->attrs;
	int r;

	if (src->get_refs && rule_attr_is_reference(name)) {
		r = src->get_refs(src->refs_userdata, name, tmp, name);
		if (r < 0)
			return r;
		a = tmp;
	} else if (strcasecmp(name, "dn") == 0 && src->dn) {
		if ((r = attr_set_set_string(tmp, "dn", src->dn)) < 0)
			return r;
		a = tmp;
	} else if (src->connector && src->anchor && !attr_set_has(src->attrs, name) &&
	           ((strcmp(src->connector, "ad") == 0 && strcasecmp(name, "objectGUID") == 0) ||
	            (strcmp(src->connector, "graph") == 0 && strcasecmp(name, "id") == 0))) {
		if ((r = attr_set_add(tmp, name, src->anchor, src->anchor_len)) < 0)
			return r;
		a = tmp;
	}
	r = attr_set_get(a, name, ret_v, ret_n);
	if (r == -ENOENT) {
		*ret_v = NULL;
		*ret_n = 0;
		return 0;
	}
	return r;
}

static struct expr_value *value_of(const char *name, const struct attr_value *v)
{
	if (rule_attr_is_binary(name))
		return expr_value_new_binary(v->data, v->len);
	if (rule_attr_is_reference(name) && strcasecmp(name, "member") != 0)
		return expr_value_new_reference(v->data);
	return expr_value_new_string_len(v->data, v->len);
}

static int to_expr(const char *name, const struct attr_value *v, size_t n, struct expr_value **ret)
{
	if (n == 0) {
		*ret = expr_value_new_null();
		return *ret ? 0 : -ENOMEM;
	}
	if (n == 1) {
		*ret = value_of(name, &v[0]);
		return *ret ? 0 : -ENOMEM;
	}
	struct expr_value *m = expr_value_new_multi();
	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int r = expr_value_append(m, value_of(name, &v[i]));
		if (r < 0) {
			expr_value_free(m);
			return r;
		}
	}
	*ret = m;
	return 0;
}

static int env_attr_from(const struct rule_source *src, const struct attr_set *set,
                         const char *name, struct expr_value **ret)
{
	struct attr_set *tmp = attr_set_new();
	const struct attr_value *v;
	size_t n;
	int r;

	if (!tmp)
		return -ENOMEM;
	struct rule_source s2 = *src;
	s2.attrs = set;
	r = get_values(&s2, name, tmp, &v, &n);
	if (r >= 0)
		r = to_expr(name, v, n, ret);
	attr_set_free(tmp);
	return r;
}

static int env_get_attr(void *userdata, const char *name, struct expr_value **ret)
{
	const struct rule_source *src = userdata;
	return env_attr_from(src, src->attrs, name, ret);
}

static int env_get_imported(void *userdata, const char *name, struct expr_value **ret)
{
	const struct rule_source *src = userdata;
	return env_attr_from(src, src->imported ? src->imported : src->attrs, name, ret);
}

static int env_get_param(void *userdata, const char *name, struct expr_value **ret)
{
	const struct rule_source *src = userdata;
	const struct sync_rules *rs = src->rules;
	const char *v = NULL;

	if (!rs)
		return -ENOENT;
	if (strcmp(name, "Domain.FQDN") == 0 || strcmp(name, "Forest.FQDN") == 0)
		v = rs->domain_fqdn;
	else if (strcmp(name, "Domain.Netbios") == 0 || strcmp(name, "Forest.Netbios") == 0)
		v = rs->domain_netbios;
	else if (strcmp(name, "Domain.LDAP") == 0 || strcmp(name, "Forest.LDAP") == 0)
		v = rs->domain_ldap;
	else if (strcmp(name, "Connector.ID") == 0)
		v = src->connector ? src->connector : "metaverse";
	else if (strcmp(name, "ADS_UF_ACCOUNTDISABLE") == 0) {
		*ret = expr_value_new_number(2);
		return *ret ? 0 : -ENOMEM;
	}
	if (!v)
		return -ENOENT;
	*ret = expr_value_new_string(v);
	return *ret ? 0 : -ENOMEM;
}

/* An expression value as attribute values (text for Graph and the metaverse). */
static int add_expr_value(struct attr_set *out, const char *name, const struct expr_value *v)
{
	char buf[32];
	int r;

	switch (v->type) {
	case EXPR_VALUE_NULL:
		return 0;
	case EXPR_VALUE_STRING:
	case EXPR_VALUE_REFERENCE:
		r = attr_set_add(out, name, v->string.data, v->string.len);
		break;
	case EXPR_VALUE_BINARY:
		r = attr_set_add(out, name, v->binary.data, v->binary.len);
		break;
	case EXPR_VALUE_NUMBER:
		snprintf(buf, sizeof(buf), "%lld", (long long)v->number);
		r = attr_set_add_string(out, name, buf);
		break;
	case EXPR_VALUE_BOOLEAN:
		r = attr_set_add_string(out, name, v->boolean ? "true" : "false");
		break;
	case EXPR_VALUE_DATETIME: {
		char *s = NULL;
		if ((r = expr_value_to_string(v, &s)) < 0)
			return r;
		r = attr_set_add_string(out, name, s);
		free(s);
		break;
	}
	case EXPR_VALUE_MULTI:
		for (size_t i = 0; i < v->multi.count; i++)
			if ((r = add_expr_value(out, name, v->multi.items[i])) < 0)
				return r;
		return 0;
	default:
		return -EINVAL;
	}
	return r < 0 ? r : 0;
}

int rule_eval_flow(const struct sync_rule *rule, const struct rule_flow *f,
                   const struct rule_source *src, struct attr_set **ret_values,
                   enum flow_outcome *ret_outcome, char *err, size_t err_len)
{
	struct attr_set *out = attr_set_new();
	struct attr_set *tmp = NULL;
	int r = 0;

	(void)rule;
	if (!out)
		return -ENOMEM;
	*ret_outcome = FLOW_VALUES;
	switch (f->type) {
	case RULE_FLOW_CONSTANT:
		r = attr_set_add_string(out, f->target, f->constant);
		break;
	case RULE_FLOW_DIRECT: {
		const struct attr_value *v;
		size_t n;
		tmp = attr_set_new();
		if (!tmp) {
			r = -ENOMEM;
			break;
		}
		r = get_values(src, f->source, tmp, &v, &n);
		if (r >= 0 && n > 0)
			r = attr_set_replace(out, f->target, v, n);
		break;
	}
	case RULE_FLOW_EXPRESSION: {
		struct expr_env env = {
		    .get_attr = env_get_attr,
		    .get_param = env_get_param,
		    .get_imported = env_get_imported,
		    .userdata = (void *)src,
		};
		struct expr_value *v = NULL;
		struct expr_error ee = {0};
		r = expr_eval(f->expr, &env, &v, &ee);
		if (r == -ENOMEM)
			break;
		if (r < 0) {
			snprintf(err, err_len, "flow to %s: %s", f->target, ee.message);
			*ret_outcome = FLOW_ERROR;
			r = 0;
			break;
		}
		if (v->type == EXPR_VALUE_IGNORE_THIS_FLOW)
			*ret_outcome = FLOW_IGNORE;
		else if (v->type == EXPR_VALUE_AUTHORITATIVE_NULL)
			*ret_outcome = FLOW_AUTH_NULL;
		else
			r = add_expr_value(out, f->target, v);
		expr_value_free(v);
		break;
	}
	default:
		r = -EINVAL;
	}
	attr_set_free(tmp);
	if (r < 0) {
		attr_set_free(out);
		return r;
	}
	*ret_values = out;
	return 0;
}

/* --- scoping ---------------------------------------------------------------------------------- */

static bool ascii_starts(const char *s, size_t len, const char *p)
{
	size_t pl = strlen(p);
	return len >= pl && strncasecmp(s, p, pl) == 0;
}

static bool ascii_ends(const char *s, size_t len, const char *p)
{
	size_t pl = strlen(p);
	return len >= pl && strncasecmp(s + len - pl, p, pl) == 0;
}

static bool ascii_contains(const char *s, size_t len, const char *p)
{
	size_t pl = strlen(p);
	if (pl == 0)
		return true;
	for (size_t i = 0; i + pl <= len; i++)
		if (strncasecmp(s + i, p, pl) == 0)
			return true;
	return false;
}

static bool parse_int(const char *s, size_t len, long long *ret)
{
	char buf[64], *end;
	int base = 10;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = 0;
	const char *p = buf;
	if (strncasecmp(p, "&H", 2) == 0 || strncasecmp(p, "0x", 2) == 0) {
		p += 2;
		base = 16;
	}
	errno = 0;
	long long v = strtoll(p, &end, base);
	if (errno || end == p || *end)
		return false;
	*ret = v;
	return true;
}

static int cmp_values(const char *a, size_t alen, const char *b)
{
	long long x, y;
	if (parse_int(a, alen, &x) && parse_int(b, strlen(b), &y))
		return x < y ? -1 : x > y;
	size_t bl = strlen(b), m = alen < bl ? alen : bl;
	int c = strncasecmp(a, b, m);
	if (c)
		return c;
	return alen < bl ? -1 : alen > bl;
}

static bool in_list(const char *s, size_t len, const char *list)
{
	const char *p = list;
	while (*p) {
		const char *e = strchr(p, ';');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		while (l && *p == ' ') {
			p++;
			l--;
		}
		while (l && p[l - 1] == ' ')
			l--;
		if (l == len && strncasecmp(p, s, len) == 0)
			return true;
		if (!e)
			break;
		p = e + 1;
	}
	return false;
}

struct member_find {
	const char *dn;
	bool found;
};

static int member_cb(const struct store_ref *r, void *userdata)
{
	struct member_find *m = userdata;
	if (strcasecmp(r->target_dn, m->dn) == 0) {
		m->found = true;
		return 1;
	}
	return 0;
}

static int is_member_of(const struct rule_source *src, const char *group_dn, bool *ret)
{
	struct store_cs_object *g = NULL;
	int r;

	*ret = false;
	if (!src->store || !src->dn || !src->connector_id)
		return 0;
	r = store_cs_get_by_dn(src->store, src->connector_id, group_dn, &g);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	struct member_find m = {.dn = src->dn};
	r = store_cs_get_refs(src->store, g->id, "member", member_cb, &m);
	store_cs_object_free(g);
	if (r < 0)
		return r;
	*ret = m.found;
	return 0;
}

static int clause_holds(const struct rule_clause *c, const struct rule_source *src, bool *ret)
{
	struct attr_set *tmp = attr_set_new();
	const struct attr_value *v;
	size_t n;
	bool any = false;
	int r;

	if (!tmp)
		return -ENOMEM;
	if (c->op == RULE_OP_ISMEMBEROF || c->op == RULE_OP_ISNOTMEMBEROF) {
		attr_set_free(tmp);
		r = is_member_of(src, c->value, &any);
		if (r < 0)
			return r;
		*ret = c->op == RULE_OP_ISMEMBEROF ? any : !any;
		return 0;
	}
	struct rule_source s2 = *src;
	s2.get_refs = NULL; /* scoping reads references as their DNs */
	r = get_values(&s2, c->attribute, tmp, &v, &n);
	if (r < 0) {
		attr_set_free(tmp);
		return r;
	}
	/* absent or empty values count as NULL */
	size_t present = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i].len)
			present++;
	for (size_t i = 0; i < n && !any; i++) {
		const char *s = v[i].data;
		size_t len = v[i].len;
		long long x, y;
		switch (c->op) {
		case RULE_OP_EQUAL:
		case RULE_OP_NOTEQUAL:
			any = cmp_values(s, len, c->value) == 0;
			break;
		case RULE_OP_LESSTHAN:
			any = cmp_values(s, len, c->value) < 0;
			break;
		case RULE_OP_LESSTHAN_OR_EQUAL:
			any = cmp_values(s, len, c->value) <= 0;
			break;
		case RULE_OP_GREATERTHAN:
			any = cmp_values(s, len, c->value) > 0;
			break;
		case RULE_OP_GREATERTHAN_OR_EQUAL:
			any = cmp_values(s, len, c->value) >= 0;
			break;
		case RULE_OP_CONTAINS:
		case RULE_OP_NOTCONTAINS:
			any = ascii_contains(s, len, c->value);
			break;
		case RULE_OP_STARTSWITH:
		case RULE_OP_NOTSTARTSWITH:
			any = ascii_starts(s, len, c->value);
			break;
		case RULE_OP_ENDSWITH:
		case RULE_OP_NOTENDSWITH:
			any = ascii_ends(s, len, c->value);
			break;
		case RULE_OP_ISIN:
		case RULE_OP_ISNOTIN:
			any = in_list(s, len, c->value);
			break;
		case RULE_OP_ISBITSET:
		case RULE_OP_ISNOTBITSET:
			any = parse_int(s, len, &x) && parse_int(c->value, strlen(c->value), &y) &&
			      (x & y) != 0;
			break;
		default:
			break;
		}
	}
	attr_set_free(tmp);
	switch (c->op) {
	case RULE_OP_ISNULL:
		*ret = present == 0;
		break;
	case RULE_OP_ISNOTNULL:
		*ret = present > 0;
		break;
	case RULE_OP_NOTEQUAL:
	case RULE_OP_NOTCONTAINS:
	case RULE_OP_NOTSTARTSWITH:
	case RULE_OP_NOTENDSWITH:
	case RULE_OP_ISNOTIN:
	case RULE_OP_ISNOTBITSET:
		*ret = !any;
		break;
	default:
		*ret = any;
	}
	return 0;
}

int rule_in_scope(const struct sync_rule *r, const struct rule_source *src, bool *ret)
{
	if (r->n_scope == 0) {
		*ret = true;
		return 0;
	}
	for (size_t g = 0; g < r->n_scope; g++) {
		bool all = true;
		for (size_t i = 0; i < r->scope[g].n && all; i++) {
			int q = clause_holds(&r->scope[g].v[i], src, &all);
			if (q < 0)
				return q;
		}
		if (all) {
			*ret = true;
			return 0;
		}
	}
	*ret = false;
	return 0;
}

/* --- precedence merge ------------------------------------------------------------------------- */

struct merge_entry {
	char *target;
	const char *rule;
	bool
	    decided; /* a value or AuthoritativeNull from an Update flow: lower rules are ignored */
	bool has_values;
	bool auth_null;
	bool ignore_only; /* only IgnoreThisFlow (or apply-once) so far */
	bool null_seen;
};

struct flow_merge {
	struct merge_entry *v;
	size_t n, alloc;
	struct attr_set *values;
};

struct flow_merge *flow_merge_new(void)
{
	struct flow_merge *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->values = attr_set_new();
	if (!m->values) {
		free(m);
		return NULL;
	}
	return m;
}

struct flow_merge *flow_merge_free(struct flow_merge *m)
{
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].target);
	free(m->v);
	attr_set_free(m->values);
	free(m);
	return NULL;
}

static struct merge_entry *find_entry(const struct flow_merge *m, const char *target)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcasecmp(m->v[i].target, target) == 0)
			return &m->v[i];
	return NULL;
}

static bool has_value_ci(const struct attr_set *s, const char *name, const struct attr_value *x)
{
	const struct attr_value *v;
	size_t n;
	if (attr_set_get(s, name, &v, &n) < 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i].len == x->len && strncasecmp(v[i].data, x->data, x->len) == 0)
			return true;
	return false;
}

int flow_merge_add(struct flow_merge *m, const char *target, enum flow_outcome oc,
                   enum rule_merge merge, const struct attr_set *values, const char *rule)
{
	struct merge_entry *e = find_entry(m, target);
	int r;

	if (!e) {
		if (m->n == m->alloc) {
			size_t na = m->alloc ? m->alloc * 2 : 16;
			struct merge_entry *nv = realloc(m->v, na * sizeof(*nv));
			if (!nv)
				return -ENOMEM;
			m->v = nv;
			m->alloc = na;
		}
		e = &m->v[m->n];
		memset(e, 0, sizeof(*e));
		e->target = strdup(target);
		if (!e->target)
			return -ENOMEM;
		e->ignore_only = true;
		m->n++;
	}
	if (e->decided)
		return 0;
	const struct attr_value *v = NULL;
	size_t n = 0;
	if (values && attr_set_get(values, target, &v, &n) < 0)
		n = 0;
	switch (oc) {
	case FLOW_IGNORE:
		return 1;
	case FLOW_AUTH_NULL:
		e->ignore_only = false;
		if (!e->has_values) {
			e->auth_null = true;
			e->rule = rule;
		}
		e->decided = true;
		return 1;
	case FLOW_VALUES:
		e->ignore_only = false;
		if (n == 0) {
			e->null_seen = true;
			if (!e->rule)
				e->rule = rule;
			return 1;
		}
		if (merge == RULE_MERGE_MERGE || merge == RULE_MERGE_MERGE_CI) {
			for (size_t i = 0; i < n; i++) {
				if (merge == RULE_MERGE_MERGE_CI &&
				    has_value_ci(m->values, target, &v[i]))
					continue;
				if ((r = attr_set_add(m->values, target, v[i].data, v[i].len)) < 0)
					return r;
			}
			if (!e->has_values)
				e->rule = rule;
			e->has_values = true;
			return 1;
		}
		if (e->has_values) { /* merged values from higher rules: an Update adds to them */
			e->decided = true;
			return 0;
		}
		if ((r = attr_set_replace(m->values, target, v, n)) < 0)
			return r;
		e->has_values = true;
		e->decided = true;
		e->rule = rule;
		return 1;
	default:
		return 0;
	}
}

int flow_merge_apply(struct flow_merge *m, const struct attr_set *current, struct attr_set *out)
{
	int r;

	for (size_t i = 0; i < m->n; i++) {
		const struct merge_entry *e = &m->v[i];
		const struct attr_value *v;
		size_t n;
		if (e->has_values) {
			if (attr_set_get(m->values, e->target, &v, &n) < 0)
				continue;
			if ((r = attr_set_replace(out, e->target, v, n)) < 0)
				return r;
		} else if (e->ignore_only) {
			if (current && attr_set_get(current, e->target, &v, &n) == 0) {
				if ((r = attr_set_replace(out, e->target, v, n)) < 0)
					return r;
			}
		} else {
			attr_set_remove(out, e->target);
		}
	}
	return 0;
}

const char *flow_merge_rule(const struct flow_merge *m, const char *target)
{
	const struct merge_entry *e = find_entry(m, target);
	return e ? e->rule : NULL;
}

bool flow_merge_has(const struct flow_merge *m, const char *target)
{
	return find_entry(m, target) != NULL;
}

bool flow_merge_managed(const struct flow_merge *m, const char *target)
{
	const struct merge_entry *e = find_entry(m, target);
	return e && !e->ignore_only;
}

const char *flow_merge_target(const struct flow_merge *m, size_t i)
{
	return i < m->n ? m->v[i].target : NULL;
}
