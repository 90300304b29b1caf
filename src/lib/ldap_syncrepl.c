/* AD connector: delta import from OpenLDAP with RFC 4533 content synchronization (refreshOnly
 * with the stored cookie). Deletes come as an explicit list of syncUUIDs, or, when the server
 * cannot tell (no session log covers the cookie), as a present phase: every UUID still there is
 * listed and whatever is not listed was deleted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hybridsync/store.h"
#include "ldap_internal.h"

struct sync_state {
	struct berval cookie; /* ber_mem */
	bool present_phase;   /* a present phase was announced */
	bool refresh_deletes; /* SyncDone said the deletes were explicit */
	uint64_t present;     /* UUIDs reported present */
};

static int save_cookie(struct sync_state *st, const struct berval *ck)
{
	char *v = ber_memalloc(ck->bv_len ? ck->bv_len : 1);

	if (!v)
		return -ENOMEM;
	memcpy(v, ck->bv_val, ck->bv_len);
	ber_memfree(st->cookie.bv_val);
	st->cookie.bv_val = v;
	st->cookie.bv_len = ck->bv_len;
	return 0;
}

static int make_control(const void *cookie, size_t len, LDAPControl **ret)
{
	BerElement *ber = ber_alloc_t(LBER_USE_DER);
	struct berval val, ck = {.bv_len = len, .bv_val = (char *)cookie};
	int rc;

	if (!ber)
		return -ENOMEM;
	if (len > 0)
		rc = ber_printf(ber, "{eO}", (ber_int_t)LDAP_SYNC_REFRESH_ONLY, &ck);
	else
		rc = ber_printf(ber, "{e}", (ber_int_t)LDAP_SYNC_REFRESH_ONLY);
	if (rc < 0 || ber_flatten2(ber, &val, 0) < 0) {
		ber_free(ber, 1);
		return -ENOMEM;
	}
	rc = ldap_control_create(LDAP_CONTROL_SYNC, 1, &val, 1, ret);
	ber_free(ber, 1);
	return rc == LDAP_SUCCESS ? 0 : -ENOMEM;
}

static int mark_present(struct ldap_ctx *c, struct sync_state *st, const struct berval *uuid)
{
	struct store_cs_object *cur = NULL;
	int r;

	st->present++;
	if (uuid->bv_len != LDAP_IMPORT_ANCHOR_SIZE)
		return 0;
	r = store_cs_get_by_anchor(c->s, c->connector_id, uuid->bv_val, uuid->bv_len, &cur);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	r = store_cs_mark_seen(c->s, cur->id, c->gen);
	store_cs_object_free(cur);
	return r;
}

static int entry(struct ldap_ctx *c, struct sync_state *st, LDAPMessage *e)
{
	LDAPControl **ctrls = NULL, *sc;
	BerElement *ber = NULL;
	struct berval uuid = {0, NULL}, ck = {0, NULL};
	ber_int_t state = -1;
	struct lobj o = {0};
	ber_len_t len;
	int r = 0;

	if (ldap_get_entry_controls(c->ld, e, &ctrls) != LDAP_SUCCESS)
		return lstop(c, "stopped-error", "syncrepl: cannot read an entry's controls");
	sc = ldap_control_find(LDAP_CONTROL_SYNC_STATE, ctrls, NULL);
	if (!sc || !(ber = ber_init(&sc->ldctl_value)) ||
	    ber_scanf(ber, "{em", &state, &uuid) == LBER_ERROR) {
		r = lstop(c, "stopped-error",
		          "syncrepl: an entry without a valid Sync State control");
		goto out;
	}
	if (ber_peek_tag(ber, &len) == LDAP_TAG_SYNC_COOKIE &&
	    ber_scanf(ber, "m", &ck) != LBER_ERROR)
		r = save_cookie(st, &ck);
	if (r < 0)
		goto out;
	switch (state) {
	case LDAP_SYNC_PRESENT:
		st->present_phase = true;
		r = mark_present(c, st, &uuid);
		break;
	case LDAP_SYNC_DELETE:
		if (uuid.bv_len == LDAP_IMPORT_ANCHOR_SIZE)
			r = lobj_delete(c, uuid.bv_val, uuid.bv_len, NULL);
		break;
	case LDAP_SYNC_ADD:
	case LDAP_SYNC_MODIFY:
		st->present++;
		r = lentry_read(c, e, LREAD_FULL, &o);
		if (r != 0)
			break;
		if (!o.has_anchor && uuid.bv_len == LDAP_IMPORT_ANCHOR_SIZE && !o.err_code[0]) {
			memcpy(o.anchor, uuid.bv_val, LDAP_IMPORT_ANCHOR_SIZE);
			o.has_anchor = true;
		}
		if (!lscope_in(c, o.dn)) {
			/* Moved out of scope (or never in it): a delete when we hold it. */
			if (o.has_anchor)
				r = lobj_delete(c, o.anchor, LDAP_IMPORT_ANCHOR_SIZE, o.dn);
		} else if (o.err_code[0]) {
			r = lobj_report_error(c, &o);
		} else if (o.klass) {
			r = lobj_store_full(c, &o);
		}
		break;
	default:
		break;
	}
	if (r >= 0 && r != 1)
		r = lbatch_tick(c);
out:
	lobj_clear(&o);
	if (ber)
		ber_free(ber, 1);
	ldap_controls_free(ctrls);
	return r < 0 || r == 1 ? r : 0;
}

static int info(struct ldap_ctx *c, struct sync_state *st, LDAPMessage *msg)
{
	struct berval *data = NULL, ck = {0, NULL};
	char *oid = NULL;
	BerElement *ber = NULL;
	BerVarray uuids = NULL;
	ber_tag_t tag;
	ber_len_t len;
	ber_int_t deletes = 0;
	int r = 0;

	if (ldap_parse_intermediate(c->ld, msg, &oid, &data, NULL, 0) != LDAP_SUCCESS)
		return lstop(c, "stopped-error", "syncrepl: bad intermediate response");
	if (!oid || strcmp(oid, LDAP_SYNC_INFO) != 0 || !data)
		goto out;
	ber = ber_init(data);
	if (!ber) {
		r = -ENOMEM;
		goto out;
	}
	tag = ber_peek_tag(ber, &len);
	switch (tag) {
	case LDAP_TAG_SYNC_NEW_COOKIE:
		if (ber_scanf(ber, "m", &ck) == LBER_ERROR)
			goto bad;
		r = save_cookie(st, &ck);
		break;
	case LDAP_TAG_SYNC_REFRESH_DELETE:
	case LDAP_TAG_SYNC_REFRESH_PRESENT:
		if (tag == LDAP_TAG_SYNC_REFRESH_PRESENT)
			st->present_phase = true;
		if (ber_scanf(ber, "{") == LBER_ERROR)
			goto bad;
		if (ber_peek_tag(ber, &len) == LDAP_TAG_SYNC_COOKIE) {
			if (ber_scanf(ber, "m", &ck) == LBER_ERROR)
				goto bad;
			r = save_cookie(st, &ck);
		}
		break;
	case LDAP_TAG_SYNC_ID_SET:
		if (ber_scanf(ber, "{") == LBER_ERROR)
			goto bad;
		if (ber_peek_tag(ber, &len) == LDAP_TAG_SYNC_COOKIE) {
			if (ber_scanf(ber, "m", &ck) == LBER_ERROR)
				goto bad;
			r = save_cookie(st, &ck);
		}
		if (r == 0 && ber_peek_tag(ber, &len) == LDAP_TAG_REFRESHDELETES &&
		    ber_scanf(ber, "b", &deletes) == LBER_ERROR)
			goto bad;
		if (r == 0 && ber_scanf(ber, "[W]", &uuids) == LBER_ERROR)
			goto bad;
		if (!deletes)
			st->present_phase = true;
		for (size_t i = 0; r == 0 && uuids && uuids[i].bv_val; i++) {
			if (deletes)
				r = uuids[i].bv_len == LDAP_IMPORT_ANCHOR_SIZE
				        ? lobj_delete(c, uuids[i].bv_val, uuids[i].bv_len, NULL)
				        : 0;
			else
				r = mark_present(c, st, &uuids[i]);
			if (r >= 0)
				r = lbatch_tick(c);
		}
		break;
	default:
		break;
	}
	goto out;
bad:
	r = lstop(c, "stopped-error", "syncrepl: malformed Sync Info message");
out:
	ber_bvarray_free(uuids);
	if (ber)
		ber_free(ber, 1);
	ber_bvfree(data);
	ldap_memfree(oid);
	return r < 0 || r == 1 ? r : 0;
}

static int done_control(struct ldap_ctx *c, struct sync_state *st, LDAPControl **ctrls)
{
	LDAPControl *dc = ldap_control_find(LDAP_CONTROL_SYNC_DONE, ctrls, NULL);
	BerElement *ber;
	struct berval ck = {0, NULL};
	ber_int_t deletes = 0;
	ber_len_t len;
	int r = 0;

	if (!dc)
		return lstop(c, "stopped-error", "syncrepl: the result has no Sync Done control");
	ber = ber_init(&dc->ldctl_value);
	if (!ber)
		return -ENOMEM;
	if (ber_scanf(ber, "{") == LBER_ERROR) {
		r = lstop(c, "stopped-error", "syncrepl: malformed Sync Done control");
		goto out;
	}
	if (ber_peek_tag(ber, &len) == LDAP_TAG_SYNC_COOKIE &&
	    ber_scanf(ber, "m", &ck) != LBER_ERROR)
		r = save_cookie(st, &ck);
	if (r == 0 && ber_peek_tag(ber, &len) == LDAP_TAG_REFRESHDELETES)
		(void)ber_scanf(ber, "b", &deletes);
	st->refresh_deletes = deletes != 0;
out:
	ber_free(ber, 1);
	return r;
}

/* One refreshOnly search; fn gets the entries (NULL: just take the cookie). */
static int refresh(struct ldap_ctx *c, struct sync_state *st, const void *cookie, size_t len,
                   const char *base, int scope, const char *filter, char **attrs, bool apply)
{
	LDAPControl *ctrl = NULL, *ctrls[2] = {NULL, NULL}, **sctrls = NULL;
	LDAPMessage *msg = NULL;
	int msgid, rc, err = 0, r;
	char *errmsg = NULL;
	bool done = false;

	r = make_control(cookie, len, &ctrl);
	if (r < 0)
		return r;
	ctrls[0] = ctrl;
	rc = ldap_search_ext(c->ld, base, scope, filter, attrs, 0, ctrls, NULL, &c->timeout, 0,
	                     &msgid);
	ldap_control_free(ctrl);
	if (rc != LDAP_SUCCESS)
		return lstop_ldap(c, rc, "syncrepl search");
	r = apply ? lbatch_begin(c) : 0;
	while (r == 0 && !done) {
		r = lresult_one(c, msgid, &msg);
		if (r != 0)
			break;
		switch (ldap_msgtype(msg)) {
		case LDAP_RES_SEARCH_ENTRY:
			if (apply)
				r = entry(c, st, msg);
			break;
		case LDAP_RES_INTERMEDIATE:
			if (apply)
				r = info(c, st, msg);
			break;
		case LDAP_RES_SEARCH_RESULT:
			done = true;
			rc = ldap_parse_result(c->ld, msg, &err, NULL, &errmsg, NULL, &sctrls, 0);
			if (rc != LDAP_SUCCESS)
				r = lstop_ldap(c, rc, "syncrepl result");
			else if (err == LDAP_SYNC_REFRESH_REQUIRED ||
			         (apply && err == LDAP_UNWILLING_TO_PERFORM)) {
				/* e-syncRefreshRequired, or a cookie the server will not take
				 * (slapd: "consumer state is newer than provider", after a restore
				 * from backup). */
				lfallback(c, "the server refused the syncrepl cookie: %s (%d)%s%s",
				          ldap_err2string(err), err, errmsg && *errmsg ? ": " : "",
				          errmsg ? errmsg : "");
				r = 2;
			} else if (!apply && err != LDAP_SUCCESS && !lerr_is_down(err))
				r = 2; /* no cookie to be had: deltas will be full imports */
			else if (err == LDAP_NO_SUCH_OBJECT)
				r = lstop(c, "stopped-error", "base '%s' does not exist: %s (32)",
				          base, ldap_err2string(err));
			else if (err != LDAP_SUCCESS)
				r = lstop(
				    c, lerr_is_down(err) ? "stopped-server-down" : "stopped-error",
				    "syncrepl: %s (%d)%s%s", ldap_err2string(err), err,
				    errmsg && *errmsg ? ": " : "", errmsg ? errmsg : "");
			else
				r = done_control(c, st, sctrls);
			ldap_memfree(errmsg);
			errmsg = NULL;
			ldap_controls_free(sctrls);
			sctrls = NULL;
			break;
		default:
			break;
		}
		ldap_msgfree(msg);
		msg = NULL;
	}
	if (r != 0 && !done)
		ldap_abandon_ext(c->ld, msgid, NULL, NULL);
	return r;
}

int lsync_initial_cookie(struct ldap_ctx *c, struct berval *ret)
{
	struct sync_state st = {0};
	char *attrs[] = {LDAP_NO_ATTRS, NULL};
	int r = refresh(c, &st, NULL, 0, c->conf->base_dn, LDAP_SCOPE_BASE, "(objectClass=*)",
	                attrs, false);

	if (r == 0 && st.cookie.bv_len > 0) {
		*ret = st.cookie;
		return 0;
	}
	ber_memfree(st.cookie.bv_val);
	return r == 0 ? 2 : r;
}

struct unseen {
	int64_t gen;
	struct lstrv anchors; /* hex */
};

static int collect_unseen(const struct store_cs_object *o, void *userdata)
{
	struct unseen *u = userdata;
	char hex[2 * LDAP_IMPORT_ANCHOR_SIZE + 1];

	if (o->seen_gen == u->gen || o->pending_import == STORE_PENDING_DELETE ||
	    o->anchor_len != LDAP_IMPORT_ANCHOR_SIZE)
		return 0;
	lanchor_hex(o->anchor, o->anchor_len, hex, sizeof(hex));
	return lstrv_push(&u->anchors, hex, strlen(hex));
}

static int unhex(const char *h, uint8_t *out)
{
	for (size_t i = 0; i < LDAP_IMPORT_ANCHOR_SIZE; i++) {
		unsigned v;
		if (sscanf(h + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	return 0;
}

int ldelta_syncrepl(struct ldap_ctx *c, const void *cookie, size_t len)
{
	struct sync_state st = {0};
	struct unseen u = {0};
	int r;

	r = store_next_generation(c->s, &c->gen);
	if (r < 0)
		return r;
	r = refresh(c, &st, cookie, len, c->conf->base_dn, LDAP_SCOPE_SUBTREE, c->filter, c->attrs,
	            true);
	if (r != 0)
		goto out;
	r = lbatch_begin(c);
	if (r == 0 && !st.refresh_deletes && st.present_phase) {
		/* A present phase: whatever was not listed is gone. An empty list never obsoletes.
		 */
		if (st.present == 0) {
			r = lstop(
			    c, "stopped-error",
			    "syncrepl: the present phase listed no object: nothing is obsoleted");
			goto out;
		}
		u.gen = c->gen;
		r = store_cs_iterate(c->s, c->connector_id, collect_unseen, &u);
		for (size_t i = 0; r >= 0 && i < u.anchors.n; i++) {
			uint8_t a[LDAP_IMPORT_ANCHOR_SIZE];
			r = unhex(u.anchors.v[i], a);
			if (r == 0)
				r = lobj_delete(c, a, sizeof(a), NULL);
		}
	}
	if (r == 0 && st.cookie.bv_len > 0)
		r = store_set_cursor(c->s, c->connector_id, "", STORE_CURSOR_SYNCREPL,
		                     st.cookie.bv_val, st.cookie.bv_len);
	if (r == 0)
		r = lbatch_commit(c);
out:
	c->gen = 0;
	lstrv_clear(&u.anchors);
	ber_memfree(st.cookie.bv_val);
	return r;
}
