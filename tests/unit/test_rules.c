/* Unit tests of the rule engine: scoping filters (every operator), attribute flows (Direct,
 * Constant, Expression, NULL, AuthoritativeNull, IgnoreThisFlow), the precedence merge (Update,
 * Merge, MergeCaseInsensitive, apply once), rule-file errors, and the join (first group with
 * exactly one match wins) through a sync of a real store. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/lib/sync_internal.h"
#include "check.h"

/* --- scoping ------------------------------------------------------------------------------------
 */

struct scope_case {
	enum rule_op op;
	const char *value;
	const char *attr_values[3]; /* of attribute "a"; NULL-terminated */
	bool expected;
};

static const struct scope_case scope_cases[] = {
    {RULE_OP_EQUAL, "TRUE", {"true"}, true},
    {RULE_OP_EQUAL, "x", {"y", "x"}, true},
    {RULE_OP_EQUAL, "x", {NULL}, false},
    {RULE_OP_NOTEQUAL, "TRUE", {NULL}, true},
    {RULE_OP_NOTEQUAL, "TRUE", {"True"}, false},
    {RULE_OP_LESSTHAN, "10", {"9"}, true},
    {RULE_OP_LESSTHAN, "10", {"10"}, false},
    {RULE_OP_LESSTHAN, "10", {NULL}, false},
    {RULE_OP_LESSTHAN_OR_EQUAL, "10", {"10"}, true},
    {RULE_OP_GREATERTHAN, "9", {"10"}, true},
    {RULE_OP_GREATERTHAN, "b", {"a"}, false},
    {RULE_OP_GREATERTHAN_OR_EQUAL, "10", {"10"}, true},
    {RULE_OP_CONTAINS, "sales", {"Global Sales EMEA"}, true},
    {RULE_OP_CONTAINS, "sales", {"Marketing"}, false},
    {RULE_OP_NOTCONTAINS, "sales", {"Marketing"}, true},
    {RULE_OP_NOTCONTAINS, "sales", {NULL}, true},
    {RULE_OP_STARTSWITH, "User_", {"user_x"}, true},
    {RULE_OP_NOTSTARTSWITH, "User_", {NULL}, true},
    {RULE_OP_NOTSTARTSWITH, "User_", {"User_hide"}, false},
    {RULE_OP_ENDSWITH, "@example.test", {"a@EXAMPLE.test"}, true},
    {RULE_OP_NOTENDSWITH, "@example.test", {"a@other.test"}, true},
    {RULE_OP_ISNULL, NULL, {NULL}, true},
    {RULE_OP_ISNULL, NULL, {""}, true},
    {RULE_OP_ISNULL, NULL, {"x"}, false},
    {RULE_OP_ISNOTNULL, NULL, {"x"}, true},
    {RULE_OP_ISNOTNULL, NULL, {NULL}, false},
    {RULE_OP_ISIN, "Sales; Legal;IT", {"legal"}, true},
    {RULE_OP_ISIN, "Sales;Legal", {"Finance"}, false},
    {RULE_OP_ISNOTIN, "Sales;Legal", {"Finance"}, true},
    {RULE_OP_ISBITSET, "2", {"514"}, true},
    {RULE_OP_ISBITSET, "&H2", {"512"}, false},
    {RULE_OP_ISNOTBITSET, "0x2", {"512"}, true},
};

static void test_scoping(void)
{
	for (size_t i = 0; i < sizeof(scope_cases) / sizeof(scope_cases[0]); i++) {
		const struct scope_case *c = &scope_cases[i];
		struct attr_set *a = attr_set_new();
		struct rule_clause cl = {
		    .attribute = (char *)"a", .op = c->op, .value = (char *)c->value};
		struct rule_group g = {.v = &cl, .n = 1};
		struct sync_rule r = {.name = (char *)"t", .scope = &g, .n_scope = 1};
		struct rule_source src = {.attrs = a};
		bool in = !c->expected;
		for (size_t k = 0; k < 3 && c->attr_values[k]; k++)
			attr_set_add_string(a, "a", c->attr_values[k]);
		CHECK_INT_EQ(rule_in_scope(&r, &src, &in), 0);
		if (in != c->expected)
			fprintf(stderr, "scope case %zu (%s %s) wrong\n", i,
			        rule_op_to_string(c->op), c->value ? c->value : "");
		CHECK(in == c->expected);
		attr_set_free(a);
	}
	/* AND inside a group, OR across groups; an empty filter is everything */
	struct attr_set *a = attr_set_new();
	attr_set_add_string(a, "dept", "Sales");
	attr_set_add_string(a, "c", "NL");
	struct rule_clause g1[] = {{(char *)"dept", RULE_OP_EQUAL, (char *)"Sales"},
	                           {(char *)"c", RULE_OP_EQUAL, (char *)"US"}};
	struct rule_clause g2[] = {{(char *)"c", RULE_OP_EQUAL, (char *)"NL"}};
	struct rule_group groups[] = {{g1, 2}, {g2, 1}};
	struct sync_rule r = {.name = (char *)"t", .scope = groups, .n_scope = 1};
	struct rule_source src = {.attrs = a};
	bool in = true;
	CHECK_INT_EQ(rule_in_scope(&r, &src, &in), 0);
	CHECK(!in); /* Sales AND US fails */
	r.n_scope = 2;
	CHECK_INT_EQ(rule_in_scope(&r, &src, &in), 0);
	CHECK(in); /* ... OR NL holds */
	r.n_scope = 0;
	in = false;
	CHECK_INT_EQ(rule_in_scope(&r, &src, &in), 0);
	CHECK(in);
	attr_set_free(a);
}

/* --- flows and the precedence merge
 * ----------------------------------------------------------------- */

static int eval(const char *text, const struct attr_set *src_attrs, struct attr_set **ret,
                enum flow_outcome *oc)
{
	struct rule_flow f = {.type = RULE_FLOW_EXPRESSION, .target = (char *)"t"};
	struct sync_rule r = {.name = (char *)"t"};
	struct rule_source src = {.attrs = src_attrs};
	struct expr_error ee;
	char err[600];
	int q = expr_parse(text, &f.expr, &ee);
	if (q < 0)
		return q;
	q = rule_eval_flow(&r, &f, &src, ret, oc, err, sizeof(err));
	expr_free(f.expr);
	return q;
}

static void test_flows(void)
{
	struct attr_set *src = attr_set_new(), *v = NULL;
	enum flow_outcome oc;
	static const unsigned char guid[16] = {1, 2,  3,  4,  5,  6,  7,  8,
	                                       9, 10, 11, 12, 13, 14, 15, 16};

	attr_set_add_string(src, "userAccountControl", "514");
	attr_set_add_string(src, "cn", "Ann");
	attr_set_add(src, "objectGUID", guid, sizeof(guid));

	CHECK_INT_EQ(eval("IIF(BitAnd([userAccountControl],2)=0,True,False)", src, &v, &oc), 0);
	CHECK(oc == FLOW_VALUES);
	CHECK_STR_EQ(attr_set_get_string(v, "t"), "false");
	v = attr_set_free(v);
	CHECK_INT_EQ(eval("ConvertToBase64([objectGUID])", src, &v, &oc), 0);
	CHECK_STR_EQ(attr_set_get_string(v, "t"), "AQIDBAUGBwgJCgsMDQ4PEA==");
	v = attr_set_free(v);
	CHECK_INT_EQ(eval("NULL", src, &v, &oc), 0);
	CHECK(oc == FLOW_VALUES && !attr_set_has(v, "t"));
	v = attr_set_free(v);
	CHECK_INT_EQ(eval("AuthoritativeNull", src, &v, &oc), 0);
	CHECK(oc == FLOW_AUTH_NULL);
	v = attr_set_free(v);
	CHECK_INT_EQ(eval("IgnoreThisFlow", src, &v, &oc), 0);
	CHECK(oc == FLOW_IGNORE);
	v = attr_set_free(v);
	CHECK_INT_EQ(eval("Error(\"no\")", src, &v, &oc), 0);
	CHECK(oc == FLOW_ERROR);
	v = attr_set_free(v);

	/* Direct and Constant */
	struct rule_flow d = {
	    .type = RULE_FLOW_DIRECT, .source = (char *)"cn", .target = (char *)"x"};
	struct rule_flow k = {
	    .type = RULE_FLOW_CONSTANT, .constant = (char *)"c", .target = (char *)"y"};
	struct sync_rule r = {.name = (char *)"t"};
	struct rule_source rs = {.attrs = src};
	char err[64];
	CHECK_INT_EQ(rule_eval_flow(&r, &d, &rs, &v, &oc, err, sizeof(err)), 0);
	CHECK_STR_EQ(attr_set_get_string(v, "x"), "Ann");
	v = attr_set_free(v);
	CHECK_INT_EQ(rule_eval_flow(&r, &k, &rs, &v, &oc, err, sizeof(err)), 0);
	CHECK_STR_EQ(attr_set_get_string(v, "y"), "c");
	v = attr_set_free(v);
	attr_set_free(src);
}

static struct attr_set *one(const char *name, const char *a, const char *b)
{
	struct attr_set *s = attr_set_new();
	if (a)
		attr_set_add_string(s, name, a);
	if (b)
		attr_set_add_string(s, name, b);
	return s;
}

static void test_merge(void)
{
	struct flow_merge *m = flow_merge_new();
	struct attr_set *cur = one("kept", "old", NULL), *out = attr_set_new();
	struct attr_set *v1 = one("t", "high", NULL), *v2 = one("t", "low", NULL);
	struct attr_set *n0 = one("n", NULL, NULL), *n1 = one("n", "lower", NULL);
	struct attr_set *a1 = one("auth", "x", NULL);
	struct attr_set *m1 = one("mv", "A", "b"), *m2 = one("mv", "a", "c");
	struct attr_set *r1 = one("removed", NULL, NULL);

	/* Update: the lower precedence (added first) wins */
	CHECK_INT_EQ(flow_merge_add(m, "t", FLOW_VALUES, RULE_MERGE_UPDATE, v1, "r1"), 1);
	CHECK_INT_EQ(flow_merge_add(m, "t", FLOW_VALUES, RULE_MERGE_UPDATE, v2, "r2"), 0);
	/* NULL lets a lower rule contribute */
	CHECK_INT_EQ(flow_merge_add(m, "n", FLOW_VALUES, RULE_MERGE_UPDATE, n0, "r1"), 1);
	CHECK_INT_EQ(flow_merge_add(m, "n", FLOW_VALUES, RULE_MERGE_UPDATE, n1, "r2"), 1);
	/* AuthoritativeNull stops lower rules */
	CHECK_INT_EQ(flow_merge_add(m, "auth", FLOW_AUTH_NULL, RULE_MERGE_UPDATE, NULL, "r1"), 1);
	CHECK_INT_EQ(flow_merge_add(m, "auth", FLOW_VALUES, RULE_MERGE_UPDATE, a1, "r2"), 0);
	/* IgnoreThisFlow keeps the current value */
	CHECK_INT_EQ(flow_merge_add(m, "kept", FLOW_IGNORE, RULE_MERGE_UPDATE, NULL, "r1"), 1);
	/* Merge unions; MergeCaseInsensitive drops case duplicates */
	CHECK_INT_EQ(flow_merge_add(m, "mv", FLOW_VALUES, RULE_MERGE_MERGE_CI, m1, "r1"), 1);
	CHECK_INT_EQ(flow_merge_add(m, "mv", FLOW_VALUES, RULE_MERGE_MERGE_CI, m2, "r2"), 1);
	/* a final NULL removes */
	CHECK_INT_EQ(flow_merge_add(m, "removed", FLOW_VALUES, RULE_MERGE_UPDATE, r1, "r1"), 1);
	attr_set_add_string(out, "removed", "stale");
	CHECK_INT_EQ(flow_merge_apply(m, cur, out), 0);
	CHECK_STR_EQ(attr_set_get_string(out, "t"), "high");
	CHECK_STR_EQ(flow_merge_rule(m, "t"), "r1");
	CHECK_STR_EQ(attr_set_get_string(out, "n"), "lower");
	CHECK(!attr_set_has(out, "auth"));
	CHECK(!attr_set_has(out, "removed"));
	CHECK_STR_EQ(attr_set_get_string(out, "kept"), "old");
	const struct attr_value *vv;
	size_t nv = 0;
	CHECK_INT_EQ(attr_set_get(out, "mv", &vv, &nv), 0);
	CHECK_INT_EQ(nv, 3); /* A, b, c */
	CHECK(flow_merge_managed(m, "auth") && !flow_merge_managed(m, "kept"));
	flow_merge_free(m);
	/* plain Merge keeps case variants */
	m = flow_merge_new();
	flow_merge_add(m, "mv", FLOW_VALUES, RULE_MERGE_MERGE, m1, "r1");
	flow_merge_add(m, "mv", FLOW_VALUES, RULE_MERGE_MERGE, m2, "r2");
	struct attr_set *out2 = attr_set_new();
	flow_merge_apply(m, NULL, out2);
	CHECK_INT_EQ(attr_set_get(out2, "mv", &vv, &nv), 0);
	CHECK_INT_EQ(nv, 4);
	flow_merge_free(m);
	attr_set_free(out2);
	attr_set_free(cur);
	attr_set_free(out);
	attr_set_free(v1);
	attr_set_free(v2);
	attr_set_free(n0);
	attr_set_free(n1);
	attr_set_free(a1);
	attr_set_free(m1);
	attr_set_free(m2);
	attr_set_free(r1);
}

/* --- rule files
 * ------------------------------------------------------------------------------------ */

static int load(const char *json, struct sync_rules **ret, struct conf_errors **errs)
{
	struct conf_rule_file f = {
	    .name = (char *)"10-test.json", .path = (char *)"/x", .canonical = (char *)json};
	struct conf c = {0};
	c.graph.soft_match = true;
	c.rules = json ? &f : NULL;
	c.n_rules = json ? 1 : 0;
	return sync_rules_load(&c, ret, errs);
}

static void test_rule_files(void)
{
	struct sync_rules *rs = NULL;
	struct conf_errors *e = NULL;

	CHECK_INT_EQ(load(NULL, &rs, &e), 0);
	CHECK(rs && rs->n >= 15);
	/* sorted by precedence */
	for (size_t i = 1; rs && i < rs->n; i++)
		CHECK(rs->v[i - 1]->precedence <= rs->v[i]->precedence);
	size_t n;
	const char *const *ad = sync_rules_attributes(rs, "ad", &n);
	bool has_uac = false;
	for (size_t i = 0; i < n; i++)
		has_uac |= strcmp(ad[i], "userAccountControl") == 0;
	CHECK(has_uac);
	rs = sync_rules_free(rs);

	CHECK_INT_EQ(load("[{\"name\":\"X\",\"direction\":\"inbound\",\"connector\":\"ad\","
	                  "\"sourceObjectType\":\"user\",\"targetObjectType\":\"person\","
	                  "\"precedence\":5,\"attributeFlows\":[{\"target\":\"t\","
	                  "\"expression\":\"IIF(True,1\"}]}]",
	                  &rs, &e),
	             -EINVAL);
	CHECK(e && e->n == 1);
	if (e && e->n) {
		CHECK(strncmp(e->v[0].text, "10-test.json: rule X: column ", 29) == 0);
		CHECK(e->v[0].column > 0);
	}
	e = conf_errors_free(e);
	CHECK_INT_EQ(load("{\"name\":\"Y\",\"direction\":\"sideways\",\"connector\":\"ldap\","
	                  "\"sourceObjectType\":\"user\",\"targetObjectType\":\"person\","
	                  "\"precedence\":-1,\"bogus\":1}",
	                  &rs, &e),
	             -EINVAL);
	CHECK(e && e->n == 4); /* direction, connector, precedence, unknown key */
	e = conf_errors_free(e);
	CHECK_INT_EQ(load("not json", &rs, &e), -EINVAL);
	e = conf_errors_free(e);
	/* replace by name */
	CHECK_INT_EQ(load("{\"name\":\"In from AD - User Common\",\"direction\":\"inbound\","
	                  "\"connector\":\"ad\",\"sourceObjectType\":\"user\","
	                  "\"targetObjectType\":\"person\",\"precedence\":106}",
	                  &rs, &e),
	             0);
	for (size_t i = 0; rs && i < rs->n; i++)
		if (strcmp(rs->v[i]->name, "In from AD - User Common") == 0)
			CHECK(rs->v[i]->n_flows == 0 && rs->v[i]->file);
	rs = sync_rules_free(rs);
}

/* --- join: first group with exactly one match
 * ----------------------------------------------------- */

static void put_cs(struct store *s, const char *conn, const char *anchor, const char *dn,
                   const char *cls, const char *k1, const char *v1, const char *k2, const char *v2)
{
	int64_t cid;
	struct attr_set *a = attr_set_new();
	if (k1)
		attr_set_add_string(a, k1, v1);
	if (k2)
		attr_set_add_string(a, k2, v2);
	attr_set_add_string(a, "sAMAccountName", dn);
	store_get_connector(s, conn, &cid);
	struct store_cs_import in = {.anchor = anchor,
	                             .anchor_len = strlen(anchor),
	                             .dn = dn,
	                             .object_class = cls,
	                             .attrs = a};
	CHECK_INT_EQ(store_cs_upsert(s, cid, &in, NULL, NULL), 0);
	attr_set_free(a);
}

static int64_t mv_of(struct store *s, const char *conn, const char *anchor)
{
	int64_t cid;
	struct store_cs_object *o = NULL;
	store_get_connector(s, conn, &cid);
	if (store_cs_get_by_anchor(s, cid, anchor, strlen(anchor), &o) < 0)
		return -1;
	int64_t id = o->mv_id;
	store_cs_object_free(o);
	return id;
}

static bool cancel_now(void *userdata)
{
	(void)userdata;
	return true;
}

static void progress_cb(uint64_t done, uint64_t estimate, void *userdata)
{
	uint64_t *calls = userdata;
	(*calls)++;
	CHECK(done <= estimate);
}

static void test_join(void)
{
	char dir[] = "/tmp/test_rules.XXXXXX", path[300];
	struct store *s = NULL;
	struct sync_rules *rs = NULL;
	struct sync_result res;
	struct sync_opts o = {.full = true};

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/s.db", dir);
	CHECK_INT_EQ(store_open(path, 0, &s, NULL, 0), 0);
	CHECK_INT_EQ(load(NULL, &rs, NULL), 0);
	/* AD users A, B, and C1/C2 sharing a UPN; their sourceAnchors are base64(anchor) */
	put_cs(s, "ad", "AAAAAAAAAAAAAAAA", "cn=a", "user", "userPrincipalName", "a@x.test", NULL,
	       NULL);
	put_cs(s, "ad", "BBBBBBBBBBBBBBBB", "cn=b", "user", "userPrincipalName", "b@x.test", NULL,
	       NULL);
	put_cs(s, "ad", "CCCCCCCCCCCCCCCC", "cn=c1", "user", "userPrincipalName", "c@x.test", NULL,
	       NULL);
	put_cs(s, "ad", "DDDDDDDDDDDDDDDD", "cn=c2", "user", "userPrincipalName", "c@x.test", NULL,
	       NULL);
	/* g1: immutableId of A, UPN of B: the first group (hard match) wins -> A */
	put_cs(s, "graph", "g1", "g1", "user", "onPremisesImmutableId",
	       "QUFBQUFBQUFBQUFBQUFBQQ==", "userPrincipalName", "b@x.test");
	/* g2: no immutableId, UPN of B (case differs): soft match -> B */
	put_cs(s, "graph", "g2", "g2", "user", "userPrincipalName", "B@X.TEST", NULL, NULL);
	/* g3: UPN shared by two MV objects: no group gives exactly one -> not joined */
	put_cs(s, "graph", "g3", "g3", "user", "userPrincipalName", "c@x.test", NULL, NULL);
	/* g4: immutableId that matches nothing and no UPN -> not joined */
	put_cs(s, "graph", "g4", "g4", "user", "onPremisesImmutableId", "nothing", NULL, NULL);
	/* a cancelled step stops before anything and leaves the work pending */
	struct sync_opts oc = {.full = false, .cancelled = cancel_now};
	CHECK_INT_EQ(sync_run(s, rs, &oc, &res), 0);
	CHECK_STR_EQ(res.status, "stopped-cancelled");
	CHECK_INT_EQ(res.counters.objects, 0);
	CHECK_INT_EQ(mv_of(s, "ad", "AAAAAAAAAAAAAAAA"), 0);
	uint64_t calls = 0;
	o.progress = progress_cb;
	o.userdata = &calls;
	CHECK_INT_EQ(sync_run(s, rs, &o, &res), 0);
	CHECK(calls >= 1);
	CHECK_INT_EQ(res.counters.objects, 8);
	CHECK(mv_of(s, "graph", "g1") == mv_of(s, "ad", "AAAAAAAAAAAAAAAA"));
	CHECK(mv_of(s, "graph", "g2") == mv_of(s, "ad", "BBBBBBBBBBBBBBBB"));
	CHECK_INT_EQ(mv_of(s, "graph", "g3"), 0);
	CHECK_INT_EQ(mv_of(s, "graph", "g4"), 0);
	CHECK_INT_EQ(res.counters.errors, 1); /* the ambiguous join is recorded */
	CHECK_STR_EQ(res.status, "completed-sync-errors");
	/* exports: A and B are updates of g1/g2, C1 and C2 adds */
	struct store_export_totals t;
	CHECK_INT_EQ(store_export_counts(s, 0, &t), 0);
	CHECK_INT_EQ(t.add, 2);
	sync_rules_free(rs);
	store_close(s);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	CHECK_INT_EQ(system(path), 0);
}

static void test_id_set(void)
{
	struct id_set s = {0};
	bool ok = true;

	for (int64_t i = 1; i <= 5000; i++)
		CHECK_INT_EQ(id_set_add(&s, i * 7919), 1);
	CHECK_INT_EQ(id_set_add(&s, 7919), 0);
	for (int64_t i = 1; i <= 5000; i += 2)
		id_set_remove(&s, i * 7919);
	CHECK_INT_EQ(s.n, 2500);
	for (int64_t i = 1; i <= 5000; i++)
		ok &= id_set_has(&s, i * 7919) == (i % 2 == 0);
	CHECK(ok);
	id_set_clear(&s);
}

int main(void)
{
	test_id_set();
	test_scoping();
	test_flows();
	test_merge();
	test_rule_files();
	test_join();
	return check_finish();
}
