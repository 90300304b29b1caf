/* AD connector: delta import from Active Directory with DirSync (changed attributes only,
 * incremental member values, deletes as tombstones), or by polling uSNChanged when the account
 * lacks the replication right. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hybridsync/store.h"
#include "ldap_internal.h"

/* Reads the whole object at dn (a new object, or one moved into scope) and stores it. */
static int import_by_dn(struct ldap_ctx *c, const char *dn)
{
	LDAPMessage *res = NULL, *e;
	struct lobj o = {0};
	int rc, r = 0;

	rc = ldap_search_ext_s(c->ld, dn, LDAP_SCOPE_BASE, c->filter, c->attrs_read, 0, NULL, NULL,
	                       &c->timeout, 0, &res);
	if (rc == LDAP_NO_SUCH_OBJECT) {
		ldap_msgfree(res);
		return 0; /* gone again: a later change reports it */
	}
	if (rc != LDAP_SUCCESS) {
		ldap_msgfree(res);
		return lstop_ldap(c, rc, "read a changed object");
	}
	e = ldap_first_entry(c->ld, res);
	if (e) {
		r = lentry_read(c, e, LREAD_FULL, &o);
		if (r == 0 && o.err_code[0])
			r = lobj_report_error(c, &o);
		else if (r == 0 && o.klass && !o.deleted && lscope_in(c, o.dn))
			r = lobj_store_full(c, &o);
		lobj_clear(&o);
	}
	ldap_msgfree(res);
	return r;
}

/* --- objects a per-object error kept out ------------------------------------------------- */

#define RETRY_KEY "ad.retry"

int lretry_add(struct ldap_ctx *c, const struct lobj *o)
{
	char *dn;
	size_t n = 0;
	int r;

	/* A DN that cannot be parsed cannot be searched; the list is bounded */
	if (!c->is_ad || o->dn_invalid || !o->dn || !*o->dn || c->retry.n >= LDAP_IMPORT_RETRY_MAX)
		return 0;
	for (size_t i = 0; i < c->retry.n; i++)
		if (strcmp(c->retry.v[i], o->dn) == 0)
			return 0;
	/* one per line: a line feed in a DN is written as its RFC 4514 escape */
	dn = malloc(3 * strlen(o->dn) + 1);
	if (!dn)
		return -ENOMEM;
	for (const char *p = o->dn; *p; p++) {
		if (*p == '\n' || *p == '\r') {
			n += (size_t)snprintf(dn + n, 4, "\\%02X", (unsigned char)*p);
		} else {
			dn[n++] = *p;
		}
	}
	dn[n] = '\0';
	r = lstrv_push(&c->retry, dn, n);
	free(dn);
	return r;
}

int lretry_run(struct ldap_ctx *c)
{
	char *list = NULL, *line, *save = NULL;
	int r;

	if (!c->is_ad)
		return 0;
	r = store_state_get(c->s, RETRY_KEY, &list);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	r = 0;
	for (line = strtok_r(list, "\n", &save); line && r == 0;
	     line = strtok_r(NULL, "\n", &save)) {
		r = import_by_dn(c, line);
		if (r == 0)
			r = lbatch_tick(c);
	}
	free(list);
	return r;
}

int lretry_save(struct ldap_ctx *c)
{
	char *list = NULL;
	size_t len = 0;
	FILE *f;
	int r;

	if (!c->is_ad)
		return 0;
	if (c->retry.n == 0)
		return store_state_set(c->s, RETRY_KEY, NULL);
	f = open_memstream(&list, &len);
	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < c->retry.n; i++)
		fprintf(f, "%s\n", c->retry.v[i]);
	r = fclose(f) == 0 ? store_state_set(c->s, RETRY_KEY, list) : -ENOMEM;
	free(list);
	return r;
}

/* DNs of objects a delta added, per search for the groups that list them. */
#define REREAD_CHUNK 32

/* "(&(objectClass=group)(|(member=DN)...))" for dns[0..n), each escaped for a filter. */
static char *member_filter(char *const *dns, size_t n)
{
	char *filter = NULL;
	size_t len = 0;
	bool ok = true;
	FILE *f = open_memstream(&filter, &len);

	if (!f)
		return NULL;
	fputs("(&(objectClass=group)(|", f);
	for (size_t i = 0; i < n && ok; i++) {
		struct berval in = {strlen(dns[i]), dns[i]}, esc = {0, NULL};
		ok = ldap_bv2escaped_filter_value(&in, &esc) == 0;
		if (ok)
			fprintf(f, "(member=%s)", esc.bv_val);
		ber_memfree(esc.bv_val);
	}
	fputs("))", f);
	if (fclose(f) != 0 || !ok) {
		free(filter);
		return NULL;
	}
	return filter;
}

/* The groups in scope whose member lists one of dns[0..n): their DNs added to *out (once
 * each). 0, 1 stopped, < 0. */
static int groups_listing(struct ldap_ctx *c, char *const *dns, size_t n, struct lstrv *out)
{
	char *filter = member_filter(dns, n), *attrs[] = {LDAP_NO_ATTRS, NULL};
	int r = 0;

	if (!filter)
		return -ENOMEM;
	for (size_t b = 0; b < c->include.n && r == 0; b++) {
		LDAPMessage *res = NULL;
		int rc = ldap_search_ext_s(c->ld, c->include.v[b], LDAP_SCOPE_SUBTREE, filter,
		                           attrs, 0, NULL, NULL, &c->timeout, 0, &res);
		if (rc == LDAP_SUCCESS) {
			for (LDAPMessage *e = ldap_first_entry(c->ld, res); e && r == 0;
			     e = ldap_next_entry(c->ld, e)) {
				char *dn = ldap_get_dn(c->ld, e);
				bool seen = false;
				for (size_t i = 0; dn && i < out->n && !seen; i++)
					seen = strcmp(out->v[i], dn) == 0;
				r = !dn ? -ENOMEM : seen ? 0 : lstrv_push(out, dn, strlen(dn));
				ldap_memfree(dn);
			}
		} else if (rc != LDAP_NO_SUCH_OBJECT) {
			r = lstop_ldap(c, rc, "find the groups of an object added");
		}
		ldap_msgfree(res);
	}
	free(filter);
	return r;
}

int ldelta_reread_groups(struct ldap_ctx *c)
{
	struct lstrv groups = {0};
	int r = 0;

	/* On AD a group lists a member by its DN of now, so a group that listed an object while
	 * it was out of scope (stored as that DN, unresolved) is not reported as changed when the
	 * object moves in: read such groups whole. */
	if (!c->is_ad)
		return 0;
	for (size_t i = 0; i < c->added.n && r == 0; i += REREAD_CHUNK) {
		size_t n = c->added.n - i < REREAD_CHUNK ? c->added.n - i : REREAD_CHUNK;
		r = groups_listing(c, c->added.v + i, n, &groups);
	}
	for (size_t i = 0; i < groups.n && r == 0; i++) {
		r = import_by_dn(c, groups.v[i]);
		if (r == 0)
			r = lbatch_tick(c);
	}
	lstrv_clear(&groups);
	lstrv_clear(&c->added);
	return r;
}

/* Applies the changed attributes DirSync sent to the stored object. */
static int merge_changes(struct ldap_ctx *c, const struct lobj *o,
                         const struct store_cs_object *cur)
{
	struct attr_set *attrs = NULL;
	enum store_upsert_result res;
	size_t refs = 0, k = 0;
	bool reread = false;
	int64_t id;
	int r;

	r = cur->attrs ? attr_set_copy(cur->attrs, &attrs)
	               : ((attrs = attr_set_new()) ? 0 : -ENOMEM);
	if (r < 0)
		return r;
	for (size_t i = 0; i < attr_set_count(o->attrs) && r >= 0; i++) {
		const char *name;
		const struct attr_value *v;
		size_t n;
		r = attr_set_at(o->attrs, i, &name, &v, &n);
		if (r >= 0)
			r = attr_set_replace(attrs, name, v, n);
	}
	for (size_t i = 0; i < o->cleared.n && r >= 0; i++)
		r = attr_set_remove(attrs, o->cleared.v[i]);
	if (r < 0)
		goto out;
	struct store_cs_import in = {
	    .anchor = o->anchor,
	    .anchor_len = LDAP_IMPORT_ANCHOR_SIZE,
	    .dn = o->dn,
	    .object_class = o->klass ? o->klass : cur->object_class,
	    .attrs = attrs,
	    .run_id = c->o->run_id,
	};
	r = store_cs_upsert(c->s, c->connector_id, &in, &res, &id);
	if (r < 0)
		goto out;
	if (o->has_member) {
		r = store_cs_set_refs(c->s, id, "member", (const char *const *)o->member.v,
		                      o->member.n, &k);
		refs += k;
	}
	for (size_t i = 0; i < o->member_add.n && r >= 0; i++) {
		r = store_cs_add_ref(c->s, id, "member", o->member_add.v[i]);
		refs += r > 0;
	}
	for (size_t i = 0; i < o->member_del.n && r >= 0; i++) {
		r = store_cs_remove_ref(c->s, id, "member", o->member_del.v[i]);
		refs += r > 0;
		/* DirSync names a removed member by its DN of now: renamed since, and the rename
		 * not yet imported, it matches nothing stored. */
		reread |= r == 0;
	}
	if (r >= 0 && o->has_manager) {
		r = store_cs_set_refs(c->s, id, "manager", (const char *const *)o->manager.v,
		                      o->manager.n, &k);
		refs += k;
	}
	if (r >= 0 && reread) {
		/* The members as the directory has them now, counted once, as this change. */
		uint64_t adds = c->ret->counters.adds, updates = c->ret->counters.updates;
		int e = import_by_dn(c, o->dn);
		c->ret->counters.adds = adds;
		c->ret->counters.updates = updates;
		refs++;
		if (e != 0) { /* < 0, or 1 stopped */
			r = e;
			goto out;
		}
	}
	if (r < 0)
		goto out;
	r = 0;
	if (res == STORE_ADDED)
		c->ret->counters.adds++;
	else if (res == STORE_CHANGED || refs > 0)
		c->ret->counters.updates++;
	c->ret->counters.objects++;
out:
	attr_set_free(attrs);
	return r;
}

/* One changed object from DirSync or the uSNChanged poll. */
static int changed_obj(struct ldap_ctx *c, struct lobj *o, enum lread_mode mode)
{
	struct store_cs_object *cur = NULL;
	int r = 0;

	if (o->err_code[0]) {
		r = lobj_report_error(c, o);
		goto tick;
	}
	if (!o->has_anchor)
		goto tick;
	if (o->deleted) {
		r = lobj_delete(c, o->anchor, LDAP_IMPORT_ANCHOR_SIZE, NULL);
		goto tick;
	}
	r = store_cs_get_by_anchor(c->s, c->connector_id, o->anchor, LDAP_IMPORT_ANCHOR_SIZE, &cur);
	if (r < 0 && r != -ENOENT)
		goto out;
	r = 0;
	if (!lscope_in(c, o->dn)) {
		/* Moved out of scope: a delete. */
		if (cur)
			r = lobj_delete(c, o->anchor, LDAP_IMPORT_ANCHOR_SIZE, o->dn);
	} else if (mode == LREAD_FULL) {
		if (o->klass)
			r = lobj_store_full(c, o);
		if (r == 0 && o->klass && !cur)
			r = lstrv_push(&c->added, o->dn, strlen(o->dn));
	} else if (!cur || strcmp(cur->dn, o->dn) != 0) {
		/* New, moved into scope, renamed or moved: DirSync sent only what changed, and not
		 * the RDN attribute of a rename (cn), so read the whole object. */
		r = import_by_dn(c, o->dn);
		if (r == 0 && !cur)
			r = lstrv_push(&c->added, o->dn, strlen(o->dn));
	} else {
		r = merge_changes(c, o, cur);
	}
tick:
	if (r >= 0 && r != 1)
		r = lbatch_tick(c);
out:
	store_cs_object_free(cur);
	return r;
}

static int dirsync_entry(struct ldap_ctx *c, LDAPMessage *e)
{
	struct lobj o;
	int r = lentry_read(c, e, LREAD_DIRSYNC, &o);

	if (r == 0)
		r = changed_obj(c, &o, LREAD_DIRSYNC);
	lobj_clear(&o);
	return r;
}

static int nothing_entry(struct ldap_ctx *c, LDAPMessage *e)
{
	(void)c;
	(void)e;
	return 0;
}

/* DirSync rounds until the server says there is no more. ret_cookie gets the last cookie. */
static int dirsync_run(struct ldap_ctx *c, const void *cookie, size_t len, const char *filter,
                       char **attrs, lentry_fn fn, struct berval *ret_cookie)
{
	struct berval ck = {0, NULL};
	int more = 1, r = 0;

	if (len > 0) {
		ck.bv_val = ber_memalloc(len);
		if (!ck.bv_val)
			return -ENOMEM;
		memcpy(ck.bv_val, cookie, len);
		ck.bv_len = len;
	}
	while (more && r == 0) {
		LDAPControl *ds = NULL, *sd = NULL, *ctrls[3] = {NULL, NULL, NULL}, **sctrls = NULL;
		LDAPMessage *msg = NULL;
		char *errmsg = NULL;
		int msgid, rc, err = 0;
		bool done = false;

		more = 0;
		rc = ldap_create_dirsync_control(c->ld, (int)LDAP_DIRSYNC_INCREMENTAL, 0, &ck, &ds);
		if (rc == LDAP_SUCCESS)
			rc = ldap_control_create(LDAP_OID_SHOW_DELETED, 1, NULL, 1, &sd);
		if (rc != LDAP_SUCCESS) {
			ldap_control_free(ds);
			r = -ENOMEM;
			break;
		}
		ds->ldctl_iscritical = 1;
		ctrls[0] = ds;
		ctrls[1] = sd;
		rc = ldap_search_ext(c->ld, c->nc, LDAP_SCOPE_SUBTREE, filter, attrs, 0, ctrls,
		                     NULL, &c->timeout, 0, &msgid);
		ldap_control_free(ds);
		ldap_control_free(sd);
		if (rc != LDAP_SUCCESS) {
			r = lstop_ldap(c, rc, "DirSync search");
			break;
		}
		r = lbatch_begin(c);
		while (r == 0 && !done) {
			r = lresult_one(c, msgid, &msg);
			if (r != 0)
				break;
			if (ldap_msgtype(msg) == LDAP_RES_SEARCH_ENTRY) {
				r = fn(c, msg);
			} else if (ldap_msgtype(msg) == LDAP_RES_SEARCH_RESULT) {
				done = true;
				rc = ldap_parse_result(c->ld, msg, &err, NULL, &errmsg, NULL,
				                       &sctrls, 0);
				if (rc != LDAP_SUCCESS) {
					r = lstop_ldap(c, rc, "DirSync result");
				} else if (err == LDAP_INSUFFICIENT_ACCESS) {
					/* The replication right is gone: poll uSNChanged. (An
					 * unavailable critical extension from a DC that lists
					 * DirSync is about the cookie: Samba's "Unable to
					 * unmarshall cookie".) */
					lfallback(c, "the server refused DirSync: %s (%d)%s%s",
					          ldap_err2string(err), err,
					          errmsg && *errmsg ? ": " : "",
					          errmsg ? errmsg : "");
					r = 3;
				} else if (lerr_is_down(err)) {
					r = lstop_ldap(c, err, "DirSync");
				} else if (err != LDAP_SUCCESS) {
					/* cookie refused (too old, or not this server's): a full
					 * import */
					lfallback(
					    c, "the server refused the DirSync cookie: %s (%d)%s%s",
					    ldap_err2string(err), err,
					    errmsg && *errmsg ? ": " : "", errmsg ? errmsg : "");
					r = 2;
				} else {
					LDAPControl *rc2 =
					    ldap_control_find(LDAP_OID_DIRSYNC, sctrls, NULL);
					struct berval nck = {0, NULL};
					if (!rc2 || ldap_parse_dirsync_control(
					                c->ld, rc2, &more, &nck) != LDAP_SUCCESS) {
						r = lstop(c, "stopped-error",
						          "DirSync: no cookie in the response");
					} else {
						ber_memfree(ck.bv_val);
						ck = nck;
					}
				}
				ldap_memfree(errmsg);
				errmsg = NULL;
				ldap_controls_free(sctrls);
				sctrls = NULL;
			}
			ldap_msgfree(msg);
			msg = NULL;
		}
		if (r != 0 && !done)
			ldap_abandon_ext(c->ld, msgid, NULL, NULL);
	}
	if (r == 0 && ck.bv_len > 0) {
		*ret_cookie = ck;
		return 0;
	}
	ber_memfree(ck.bv_val);
	if (r == 3 || r == 2)
		lbatch_rollback(c);
	return r;
}

int ldirsync_initial_cookie(struct ldap_ctx *c, struct berval *ret)
{
	/* A filter that matches nothing: the cookie alone marks "now". */
	char *attrs[] = {"objectGUID", NULL};
	int r = dirsync_run(c, NULL, 0, "(&(objectClass=user)(!(objectClass=*)))", attrs,
	                    nothing_entry, ret);
	lbatch_rollback(c);
	return r == 3 ? 2 : r;
}

int lusn_write(struct ldap_ctx *c)
{
	char buf[1024];
	int n;

	if (!c->usn || !c->nc)
		return 0;
	n = snprintf(buf, sizeof(buf), "%s %s", c->dc ? c->dc : "-", c->usn);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	return store_set_cursor(c->s, c->connector_id, c->nc, STORE_CURSOR_USN, buf, (size_t)n);
}

/* AD keeps a deleted object's tombstone for tombstoneLifetime days (60 when the attribute is
 * not set; at least 2): a delta from a cursor older than that may never see those deletions. */
#define TOMBSTONE_DAYS_DEFAULT 60
#define TOMBSTONE_DAYS_MIN     2
#define DAY_S                  86400

/* The forest's tombstone lifetime in days (the default when it cannot be read). */
static long tombstone_days(struct ldap_ctx *c)
{
	char *root_attrs[] = {"configurationNamingContext", NULL};
	char *attrs[] = {"tombstoneLifetime", NULL}, dn[1024];
	LDAPMessage *res = NULL, *e;
	struct berval **v = NULL;
	long days = TOMBSTONE_DAYS_DEFAULT;
	int n = -1;

	if (ldap_search_ext_s(c->ld, "", LDAP_SCOPE_BASE, "(objectClass=*)", root_attrs, 0, NULL,
	                      NULL, &c->timeout, 0, &res) == LDAP_SUCCESS &&
	    (e = ldap_first_entry(c->ld, res)) &&
	    (v = ldap_get_values_len(c->ld, e, "configurationNamingContext")) && v[0])
		n = snprintf(dn, sizeof(dn), "CN=Directory Service,CN=Windows NT,CN=Services,%.*s",
		             (int)v[0]->bv_len, v[0]->bv_val);
	ldap_value_free_len(v);
	ldap_msgfree(res);
	res = NULL;
	v = NULL;
	if (n < 0 || (size_t)n >= sizeof(dn))
		return days;
	if (ldap_search_ext_s(c->ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL,
	                      &c->timeout, 0, &res) == LDAP_SUCCESS &&
	    (e = ldap_first_entry(c->ld, res)) &&
	    (v = ldap_get_values_len(c->ld, e, "tombstoneLifetime")) && v[0] && v[0]->bv_len > 0 &&
	    v[0]->bv_len < 12) {
		char buf[12], *end;
		long d;
		memcpy(buf, v[0]->bv_val, v[0]->bv_len);
		buf[v[0]->bv_len] = '\0';
		d = strtol(buf, &end, 10);
		if (*end == '\0' && d >= TOMBSTONE_DAYS_MIN)
			days = d;
	}
	ldap_value_free_len(v);
	ldap_msgfree(res);
	return days;
}

int ldelta_cursor_fresh(struct ldap_ctx *c, enum store_cursor_kind kind, int64_t updated)
{
	int64_t age = (int64_t)time(NULL) - updated;
	long days;

	if (!c->is_ad || age < (TOMBSTONE_DAYS_MIN - 1) * DAY_S)
		return 0; /* no tombstone can have gone since: not worth asking */
	days = tombstone_days(c);
	if (age < (int64_t)(days - 1) * DAY_S) /* a day's margin */
		return 0;
	lfallback(c,
	          "the %s cursor is %lld days old, beyond the forest's tombstone lifetime (%ld "
	          "days): objects deleted since may no longer be reported",
	          store_cursor_kind_to_string(kind), (long long)(age / DAY_S), days);
	return 2;
}

int ldelta_dirsync(struct ldap_ctx *c, const void *cookie, size_t len)
{
	struct berval nck = {0, NULL};
	int r;

	char **attrs;

	if (!c->nc) {
		lfallback(c, "the naming context of base_dn is unknown: DirSync cannot run");
		return 2;
	}
	/* DirSync leaves out objects none of whose requested attributes changed: a rename or a
	 * move changes only name (and the parent), so ask for those too (they are not stored). */
	attrs = calloc(c->n_attrs + 3, sizeof(*attrs));
	if (!attrs)
		return -ENOMEM;
	memcpy(attrs, c->attrs, c->n_attrs * sizeof(*attrs));
	attrs[c->n_attrs] = "name";
	attrs[c->n_attrs + 1] = "parentGUID";
	r = dirsync_run(c, cookie, len, c->filter, attrs, dirsync_entry, &nck);
	free(attrs);
	if (r == 0)
		r = lretry_run(c);
	if (r == 0)
		r = ldelta_reread_groups(c);
	if (r != 0) {
		ber_memfree(nck.bv_val);
		return r;
	}
	r = lbatch_begin(c);
	if (r == 0 && nck.bv_len > 0)
		r = store_set_cursor(c->s, c->connector_id, c->nc, STORE_CURSOR_DIRSYNC, nck.bv_val,
		                     nck.bv_len);
	if (r == 0)
		r = lusn_write(c);
	if (r == 0)
		r = lretry_save(c);
	if (r == 0)
		r = lbatch_commit(c);
	ber_memfree(nck.bv_val);
	return r;
}

static int usn_obj(struct ldap_ctx *c, struct lobj *o)
{
	return changed_obj(c, o, LREAD_FULL);
}

int ldelta_usn(struct ldap_ctx *c, const char *usn)
{
	const char *sp, *dc;
	char *end, filter[1024];
	unsigned long long from;
	int r;

	if (!c->nc || !c->usn) {
		lfallback(c, "the server gives no naming context or highestCommittedUSN");
		return 2;
	}
	/* "<dc> <usn>": a USN means nothing on another DC (or on the same one restored). */
	sp = strrchr(usn, ' ');
	dc = c->dc ? c->dc : "-";
	if (!sp) {
		lfallback(c,
		          "the uSNChanged cursor does not say which domain controller it is from");
		return 2;
	}
	if ((size_t)(sp - usn) != strlen(dc) || strncmp(usn, dc, strlen(dc)) != 0) {
		lfallback(c,
		          "the domain controller changed (now %s, the uSNChanged cursor is from "
		          "%.*s): USNs are per domain controller",
		          dc, (int)(sp - usn), usn);
		return 2;
	}
	errno = 0;
	from = strtoull(sp + 1, &end, 10);
	if (errno || end == sp + 1 || *end) {
		lfallback(c, "the stored uSNChanged cursor is not a number");
		return 2;
	}
	/* Tombstones and objects moved out of scope are found from the naming context head. */
	r = snprintf(filter, sizeof(filter), "(&%s(uSNChanged>=%llu))", c->filter, from + 1);
	if (r < 0 || (size_t)r >= sizeof(filter))
		return -ENAMETOOLONG;
	r = lsearch_paged(c, c->nc, filter, true, usn_obj);
	if (r == 0)
		r = lretry_run(c);
	if (r == 0)
		r = ldelta_reread_groups(c);
	if (r != 0)
		return r;
	r = lbatch_begin(c);
	if (r == 0)
		r = lusn_write(c);
	if (r == 0)
		r = lretry_save(c);
	if (r == 0)
		r = lbatch_commit(c);
	return r;
}
