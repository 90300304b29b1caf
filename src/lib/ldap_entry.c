/* AD connector: one search entry decoded into an object (anchor, class, attributes, references,
 * ranged values followed), and objects written to the connector space. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hybridsync/store.h"
#include "ldap_internal.h"

void lobj_clear(struct lobj *o)
{
	free(o->dn);
	attr_set_free(o->attrs);
	free(o->blob);
	lstrv_clear(&o->cleared);
	lstrv_clear(&o->member);
	lstrv_clear(&o->manager);
	lstrv_clear(&o->member_add);
	lstrv_clear(&o->member_del);
	*o = (struct lobj){0};
}

size_t ldap_import_value_max = LDAP_IMPORT_VALUE_MAX;

static void set_error(struct lobj *o, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_error(struct lobj *o, const char *code, const char *fmt, ...)
{
	va_list ap;

	if (o->err_code[0])
		return; /* the first problem is the one reported */
	snprintf(o->err_code, sizeof(o->err_code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(o->err_msg, sizeof(o->err_msg), fmt, ap);
	va_end(ap);
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx": the 16 bytes in text order (RFC 4122, as syncUUID). */
int lanchor_from_uuid_text(const char *s, size_t len, uint8_t ret[LDAP_IMPORT_ANCHOR_SIZE])
{
	size_t j = 0;

	if (len != 36)
		return -EINVAL;
	for (size_t i = 0; i < len;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			i++;
			continue;
		}
		int h = hexval(s[i]), l = hexval(s[i + 1]);
		if (h < 0 || l < 0 || j >= LDAP_IMPORT_ANCHOR_SIZE)
			return -EINVAL;
		ret[j++] = (uint8_t)(h << 4 | l);
		i += 2;
	}
	return j == LDAP_IMPORT_ANCHOR_SIZE ? 0 : -EINVAL;
}

static bool is_ref(const char *name)
{
	return strcasecmp(name, "member") == 0 || strcasecmp(name, "manager") == 0;
}

/* ";range=LOW-HIGH" among the options: 1 found (*high = -1 for '*'), 0 none, -EINVAL bad. */
static int parse_range(const char *opts, long *low, long *high)
{
	const char *p = opts;

	while (p && *p) {
		if (strncasecmp(p, ";range=", 7) == 0) {
			char *end;
			errno = 0;
			*low = strtol(p + 7, &end, 10);
			if (errno || end == p + 7 || *end != '-' || *low < 0)
				return -EINVAL;
			if (end[1] == '*') {
				*high = -1;
			} else {
				const char *h = end + 1;
				*high = strtol(h, &end, 10);
				/* the next range starts at high + 1 */
				if (errno || end == h || *high < *low || *high == LONG_MAX)
					return -EINVAL;
			}
			return 1;
		}
		p = strchr(p + 1, ';');
	}
	return 0;
}

/* The number of values in an array from ldap_get_attribute_ber (ends with a NULL bv_val). */
static size_t count_values(const struct berval *vals)
{
	size_t n = 0;

	while (vals && vals[n].bv_val)
		n++;
	return n;
}

static int add_values(struct ldap_ctx *c, struct lobj *o, const char *name,
                      const struct berval *vals, size_t n_vals, struct lstrv *refs)
{
	int r = 0, attr = -1;

	if (!refs) {
		o->n_values += n_vals;
		if (o->n_values > LDAP_IMPORT_VALUES_MAX) {
			set_error(o, "too-many-values",
			          "attribute %s: the object has more than %u values besides "
			          "references",
			          name, LDAP_IMPORT_VALUES_MAX);
			return 0;
		}
	}
	for (size_t i = 0; i < n_vals; i++) {
		if (vals[i].bv_len > ldap_import_value_max) {
			set_error(
			    o, "value-too-large",
			    "attribute %s: a value of %zu bytes exceeds the limit of %zu bytes",
			    name, (size_t)vals[i].bv_len, ldap_import_value_max);
			return 0;
		}
		if (refs && refs->n >= LDAP_IMPORT_REFS_MAX) {
			set_error(o, "too-many-values", "attribute %s: more than %u values", name,
			          LDAP_IMPORT_REFS_MAX);
			return 0;
		}
		o->bytes += vals[i].bv_len;
		if (o->bytes > LDAP_IMPORT_OBJECT_MAX) {
			set_error(o, "value-too-large",
			          "attribute %s: the values of the object exceed %u bytes", name,
			          LDAP_IMPORT_OBJECT_MAX);
			return 0;
		}
		if (refs && ldn_is_normal(vals[i].bv_val, vals[i].bv_len)) {
			r = lstrv_push(refs, vals[i].bv_val, vals[i].bv_len);
		} else if (refs) {
			char *raw = strndup(vals[i].bv_val, vals[i].bv_len), *n = NULL;
			if (!raw)
				return -ENOMEM;
			r = ldn_normalize(raw, &n);
			free(raw);
			if (r == -EINVAL) {
				set_error(o, "invalid-value",
				          "attribute %s: a value is not a valid DN", name);
				return 0;
			}
			if (r < 0)
				return r;
			r = lstrv_push(refs, n, strlen(n));
			free(n);
		} else {
			if (attr < 0)
				attr = attr_builder_attr(c->ab, name, strlen(name));
			r = attr < 0
			        ? attr
			        : attr_builder_add(c->ab, attr, vals[i].bv_val, vals[i].bv_len);
			if (r == -E2BIG || r == -EINVAL) {
				set_error(o, "invalid-value", "attribute %s: %s", name,
				          strerror(-r));
				return 0;
			}
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* Reads the rest of a ranged attribute with base searches "name;range=LOW-*". */
static int follow_range(struct ldap_ctx *c, const char *raw_dn, const char *name, long low,
                        struct lobj *o, struct lstrv *refs)
{
	char req[ATTR_NAME_MAX + 32];
	int r = 0;

	for (unsigned step = 0; step < LDAP_IMPORT_RANGE_STEPS; step++) {
		char *attrs[2] = {req, NULL};
		LDAPMessage *res = NULL, *e;
		BerElement *ber = NULL;
		bool more = false, found = false;
		int rc;

		snprintf(req, sizeof(req), "%s;range=%ld-*", name, low);
		rc = ldap_search_ext_s(c->ld, raw_dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0,
		                       NULL, NULL, &c->timeout, 0, &res);
		if (rc != LDAP_SUCCESS) {
			ldap_msgfree(res);
			if (rc == LDAP_NO_SUCH_OBJECT) {
				set_error(o, "vanished", "the object went away while reading %s",
				          name);
				return 0;
			}
			return lstop_ldap(c, rc, "ranged read");
		}
		e = ldap_first_entry(c->ld, res);
		if (!e) {
			ldap_msgfree(res);
			set_error(o, "vanished", "the object went away while reading %s", name);
			return 0;
		}
		for (char *a = ldap_first_attribute(c->ld, e, &ber); a;
		     a = r == 0 ? ldap_next_attribute(c->ld, e, ber) : NULL) {
			const char *semi = strchr(a, ';');
			long l, h;
			if (!found && semi && (size_t)(semi - a) == strlen(name) &&
			    strncasecmp(a, name, strlen(name)) == 0 &&
			    parse_range(semi, &l, &h) == 1 && l == low) {
				struct berval **v = ldap_get_values_len(c->ld, e, a), *flat = NULL;
				size_t nv = 0;
				found = true;
				while (v && v[nv])
					nv++;
				flat = calloc(nv ? nv : 1, sizeof(*flat));
				if (!flat)
					r = -ENOMEM;
				for (size_t k = 0; flat && k < nv; k++)
					flat[k] = *v[k];
				if (flat)
					r = add_values(c, o, name, flat, nv, refs);
				free(flat);
				ldap_value_free_len(v);
				if (h >= 0) {
					more = true;
					low = h + 1;
				}
			}
			ldap_memfree(a);
		}
		ber_free(ber, 0);
		ldap_msgfree(res);
		if (r == 0 && !found && !o->err_code[0]) {
			/* The values it announced are not there: the list changed meanwhile, or the
			 * server is broken. A partial list would remove members: read it again next
			 * time. */
			set_error(o, "incomplete-values",
			          "attribute %s: the server did not return the values from %ld on",
			          name, low);
			return 0;
		}
		if (r != 0 || !more || o->err_code[0])
			return r;
	}
	set_error(o, "too-many-values", "attribute %s: ranged retrieval did not end", name);
	return 0;
}

/* One attribute of an entry: its description `desc` and values (both in the entry's buffer,
 * not NUL-terminated; vals may be NULL). */
static int read_attr(struct ldap_ctx *c, const char *raw_dn, enum lread_mode mode, struct lobj *o,
                     const struct berval *desc, const struct berval *vals)
{
	char buf[ATTR_NAME_MAX + 64], *a = buf;
	const char *semi;
	size_t blen, n_vals = count_values(vals);
	char name[ATTR_NAME_MAX + 1];
	struct lstrv *refs = NULL;
	long low = 0, high = -1;
	int range = 0, r = 0;

	if (desc->bv_len >= sizeof(buf)) {
		a = strndup(desc->bv_val, desc->bv_len);
		if (!a)
			return -ENOMEM;
	} else {
		memcpy(buf, desc->bv_val, desc->bv_len);
		buf[desc->bv_len] = '\0';
	}
	semi = strchr(a, ';');
	blen = semi ? (size_t)(semi - a) : strlen(a);
	if (blen == 0 || blen > ATTR_NAME_MAX)
		goto out;
	memcpy(name, a, blen);
	name[blen] = '\0';
	if (strcasecmp(name, "isDeleted") == 0) {
		o->deleted = n_vals > 0 && vals[0].bv_len == 4 &&
		             strncasecmp(vals[0].bv_val, "TRUE", 4) == 0;
		goto out;
	}
	if (!lattr_requested(c, name, blen))
		goto out;
	if (semi) {
		range = parse_range(semi, &low, &high);
		if (range < 0) {
			set_error(o, "invalid-value", "attribute %s: bad range option", a);
			goto out;
		}
	}
	if (strcasecmp(name, "objectClass") == 0)
		o->has_object_class = true;
	if (mode == LREAD_DIRSYNC && range == 1 && strcasecmp(name, "member") == 0) {
		/* INCREMENTAL_VALUES: range=1-1 added values, range=0-0 removed ones. */
		refs = high == 0 ? &o->member_del : &o->member_add;
		r = add_values(c, o, name, vals, n_vals, refs);
		goto out;
	}
	if (n_vals == 0 && range == 1) {
		/* "name;range=L-H" without values: nothing says what the attribute holds. */
		set_error(o, "incomplete-values", "attribute %s: a range without values", a);
		goto out;
	}
	if (n_vals == 0) {
		r = lstrv_push(&o->cleared, name, blen);
		if (strcasecmp(name, "member") == 0)
			o->has_member = true;
		else if (strcasecmp(name, "manager") == 0)
			o->has_manager = true;
		goto out;
	}
	if (is_ref(name)) {
		bool member = strcasecmp(name, "member") == 0;
		refs = member ? &o->member : &o->manager;
		if (member)
			o->has_member = true;
		else
			o->has_manager = true;
	}
	r = add_values(c, o, name, vals, n_vals, refs);
	if (r == 0 && range == 1 && high >= 0 && !o->err_code[0])
		r = follow_range(c, raw_dn, name, high + 1, o, refs);
out:
	if (a != buf)
		free(a);
	return r;
}

static const char *class_of(const struct attr_set *attrs)
{
	static const struct {
		const char *oc, *klass;
	} map[] = {
	    {"computer", NULL},        {"group", "group"},
	    {"groupOfNames", "group"}, {"groupOfUniqueNames", "group"},
	    {"contact", "contact"},    {"adShadowContact", "contact"},
	    {"adShadowUser", "user"},  {"inetOrgPerson", "inetOrgPerson"},
	    {"user", "user"},
	};
	const struct attr_value *v;
	size_t n;

	if (attr_set_get(attrs, "objectClass", &v, &n) < 0)
		return NULL;
	for (size_t m = 0; m < sizeof(map) / sizeof(*map); m++)
		for (size_t i = 0; i < n; i++)
			if (v[i].len == strlen(map[m].oc) &&
			    strncasecmp(v[i].data, map[m].oc, v[i].len) == 0)
				return map[m].klass;
	return NULL;
}

int lentry_read(struct ldap_ctx *c, LDAPMessage *e, enum lread_mode mode, struct lobj *o)
{
	BerElement *ber = NULL;
	struct berval bdn, desc, *vals = NULL;
	const struct attr_set *attrs;
	char *raw_dn;
	struct attr_value v;
	size_t n_attrs = 0;
	int r = 0, rc = LDAP_SUCCESS;

	*o = (struct lobj){0};
	if (!c->ab) {
		r = attr_builder_new(&c->ab);
		if (r < 0)
			return r;
	}
	attr_builder_reset(c->ab);
	raw_dn = ldap_get_dn(c->ld, e);
	if (!raw_dn) {
		/* Not an entry libldap can decode: nothing in it can be trusted. */
		o->dn = strdup("");
		if (!o->dn)
			return -ENOMEM;
		o->dn_invalid = true;
		set_error(o, "invalid-entry", "the entry cannot be decoded");
		return 0;
	}
	r = ldn_normalize(raw_dn, &o->dn);
	if (r == -EINVAL) {
		o->dn = strdup(raw_dn);
		if (!o->dn) {
			ldap_memfree(raw_dn);
			return -ENOMEM;
		}
		set_error(o, "invalid-dn", "the DN cannot be parsed");
		o->dn_invalid = true;
		r = 0;
	}
	/* Attributes and values are read in place from the entry, in one pass (looking each
	 * attribute up again with ldap_get_values_len would scan the entry per attribute and copy
	 * every value). A decoding error is a per-object error: the object is reported (and kept,
	 * not obsoleted), never imported with the attributes read before it. */
	if (r == 0)
		rc = ldap_get_dn_ber(c->ld, e, &ber, &bdn);
	while (r == 0 && rc == LDAP_SUCCESS) {
		rc = ldap_get_attribute_ber(c->ld, e, ber, &desc, &vals);
		if (rc == LDAP_SUCCESS && desc.bv_val) {
			r = read_attr(c, raw_dn, mode, o, &desc, vals);
			n_attrs++;
		}
		ber_memfree(vals);
		vals = NULL;
		if (rc == LDAP_SUCCESS && !desc.bv_val)
			break;
	}
	ber_free(ber, 0);
	ldap_memfree(raw_dn);
	if (r != 0)
		return r;
	if (rc != LDAP_SUCCESS)
		set_error(o, "invalid-entry", "the entry cannot be decoded after %zu attributes",
		          n_attrs);
	r = attr_builder_view(c->ab, &attrs);
	if (r < 0)
		return r;

	if (attr_set_get_first(attrs, "objectGUID", &v) == 0) {
		if (v.len != LDAP_IMPORT_ANCHOR_SIZE) {
			set_error(o, "invalid-value", "objectGUID is %zu bytes, expected 16",
			          v.len);
		} else if (c->is_ad) {
			memcpy(o->anchor, v.data, LDAP_IMPORT_ANCHOR_SIZE);
			o->has_anchor = true;
		}
	}
	if (!c->is_ad && attr_set_get_first(attrs, "entryUUID", &v) == 0) {
		if (lanchor_from_uuid_text(v.data, v.len, o->anchor) == 0)
			o->has_anchor = true;
		else
			set_error(o, "invalid-value", "entryUUID is not a UUID");
	}
	if (o->has_object_class)
		o->klass = class_of(attrs);
	else if (mode == LREAD_FULL && !o->deleted)
		/* The search asked for it and filtered on it: an object the account cannot see
		 * whole is reported, not skipped (a full import would then obsolete it). */
		set_error(o, "no-object-class", "the object was returned without objectClass");
	if (!o->has_anchor && !o->deleted && mode == LREAD_FULL)
		set_error(o, "no-anchor", "the object has no %s",
		          c->is_ad ? "objectGUID" : "entryUUID");

	if (mode != LREAD_FULL)
		return attr_set_copy(attrs, &o->attrs);
	/* A whole object to import: encoded here, in the thread that read it. */
	if (!o->klass || o->err_code[0])
		return 0;
	r = attr_builder_encode(c->ab, &o->blob, &o->blob_len, o->digest);
	if (r == -E2BIG) {
		set_error(o, "value-too-large", "the object's attributes exceed %u bytes encoded",
		          ATTR_SERIALIZED_MAX);
		r = 0;
	}
	return r;
}

int lobj_report_error(struct ldap_ctx *c, const struct lobj *o)
{
	char hex[2 * LDAP_IMPORT_ANCHOR_SIZE + 1] = "";
	struct store_cs_object *cur = NULL;
	int r;

	if (o->has_anchor)
		lanchor_hex(o->anchor, LDAP_IMPORT_ANCHOR_SIZE, hex, sizeof(hex));
	c->ret->counters.errors++;
	r = lretry_add(c, o);
	if (r < 0)
		return r;
	if (c->o->run_id > 0) {
		r = store_run_add_error(c->s, c->o->run_id, c->o->step_id, hex[0] ? hex : NULL,
		                        o->dn, o->err_code, o->err_msg, NULL);
		if (r < 0)
			return r;
	}
	/* A full import must not obsolete an object it saw but could not read. */
	if (c->gen > 0) {
		r = o->has_anchor ? store_cs_get_by_anchor(c->s, c->connector_id, o->anchor,
		                                           LDAP_IMPORT_ANCHOR_SIZE, &cur)
		                  : (o->dn ? store_cs_get_by_dn(c->s, c->connector_id, o->dn, &cur)
		                           : -ENOENT);
		if (r == 0) {
			r = store_cs_mark_seen(c->s, cur->id, c->gen);
			store_cs_object_free(cur);
			if (r < 0)
				return r;
		} else if (r != -ENOENT) {
			return r;
		}
	}
	return 0;
}

static void count(struct ldap_ctx *c, enum store_upsert_result res, size_t ref_changes)
{
	if (res == STORE_ADDED)
		c->ret->counters.adds++;
	else if (res == STORE_CHANGED || ref_changes > 0)
		c->ret->counters.updates++;
}

int lobj_store_full(struct ldap_ctx *c, const struct lobj *o)
{
	struct store_cs_import in = {
	    .anchor = o->anchor,
	    .anchor_len = LDAP_IMPORT_ANCHOR_SIZE,
	    .dn = o->dn,
	    .object_class = o->klass,
	    .attrs = o->attrs,
	    .run_id = c->o->run_id,
	    .seen_gen = c->gen,
	    .attrs_blob = o->blob,
	    .attrs_blob_len = o->blob_len,
	    .attrs_digest = o->blob ? o->digest : NULL,
	};
	enum store_upsert_result res;
	size_t n1 = 0, n2 = 0;
	int64_t id;
	int r;

	if (!o->blob && !o->attrs)
		return -EINVAL; /* never an empty set for an object that was not encoded */
	r = store_cs_upsert(c->s, c->connector_id, &in, &res, &id);
	if (r < 0)
		return r;
	/* A new object has no reference rows yet: an empty list has nothing to remove. */
	if (res != STORE_ADDED || o->member.n > 0)
		r = store_cs_set_refs(c->s, id, "member", (const char *const *)o->member.v,
		                      o->member.n, &n1);
	if (r >= 0 && (res != STORE_ADDED || o->manager.n > 0))
		r = store_cs_set_refs(c->s, id, "manager", (const char *const *)o->manager.v,
		                      o->manager.n, &n2);
	if (r < 0)
		return r;
	count(c, res, res == STORE_ADDED ? 0 : n1 + n2);
	c->ret->counters.objects++;
	return 0;
}

struct referrers {
	struct lstrv cs, attr, dn;
};

static int collect_referrer(const struct store_ref *ref, void *userdata)
{
	struct referrers *rf = userdata;
	char id[32];
	int r;

	snprintf(id, sizeof(id), "%lld", (long long)ref->cs_id);
	r = lstrv_push(&rf->cs, id, strlen(id));
	if (r == 0)
		r = lstrv_push(&rf->attr, ref->attr, strlen(ref->attr));
	if (r == 0)
		r = lstrv_push(&rf->dn, ref->target_dn, strlen(ref->target_dn));
	return r;
}

int lobj_delete(struct ldap_ctx *c, const void *anchor, size_t len, const char *new_dn)
{
	struct store_cs_object *cur = NULL;
	struct referrers rf = {0};
	int r;

	r = store_cs_get_by_anchor(c->s, c->connector_id, anchor, len, &cur);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (cur->pending_import == STORE_PENDING_DELETE) {
		store_cs_object_free(cur);
		return 0;
	}
	if (new_dn) {
		/* Moved out of scope: the object still exists and references to it follow it (AD
		 * rewrites linked values), so record the new DN first; the refs stay. */
		struct store_cs_import in = {
		    .anchor = anchor,
		    .anchor_len = len,
		    .dn = new_dn,
		    .object_class = cur->object_class,
		    .attrs = cur->attrs,
		    .run_id = c->o->run_id,
		};
		r = store_cs_upsert(c->s, c->connector_id, &in, NULL, NULL);
		if (r == 0)
			r = store_cs_mark_deleted(c->s, c->connector_id, anchor, len);
	} else {
		r = store_cs_mark_deleted(c->s, c->connector_id, anchor, len);
		/* Neither AD nor slapd reports the groups a deleted object leaves: drop those refs.
		 */
		if (r == 0)
			r = store_cs_get_referrers(c->s, cur->id, collect_referrer, &rf);
		for (size_t i = 0; r >= 0 && i < rf.cs.n; i++) {
			int64_t who = strtoll(rf.cs.v[i], NULL, 10);
			r = store_cs_remove_ref(c->s, who, rf.attr.v[i], rf.dn.v[i]);
		}
	}
	lstrv_clear(&rf.cs);
	lstrv_clear(&rf.attr);
	lstrv_clear(&rf.dn);
	store_cs_object_free(cur);
	if (r < 0)
		return r;
	c->ret->counters.deletes++;
	c->ret->counters.objects++;
	return 0;
}

int lresult_one(struct ldap_ctx *c, int msgid, LDAPMessage **ret)
{
	LDAPMessage *msg = NULL;
	int rc = ldap_result(c->ld, msgid, LDAP_MSG_ONE, &c->timeout, &msg);

	if (rc == 0) {
		ldap_msgfree(msg);
		return lstop(c, "stopped-server-down", "no answer from the server within %ld s",
		             (long)c->timeout.tv_sec);
	}
	if (rc < 0) {
		int err = LDAP_SERVER_DOWN;
		ldap_get_option(c->ld, LDAP_OPT_RESULT_CODE, &err);
		ldap_msgfree(msg);
		return lstop_ldap(c, err, "reading results");
	}
	*ret = msg;
	return 0;
}
