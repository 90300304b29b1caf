/* AD connector: the paged subtree search (RFC 2696) that the full import and the uSNChanged poll
 * share: one page asked for ahead, every entry to a callback inside a batch, a commit at page
 * boundaries (in a bulk load, every LBATCH_BULK objects), progress and cancellation. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "ldap_internal.h"

/* Sends one page request; 0 and *ret_msgid, or 1 stopped. */
static int send_page(struct ldap_ctx *c, const char *base, const char *filter, bool show_deleted,
                     struct berval *cookie, int *ret_msgid)
{
	LDAPControl *page = NULL, *sd = NULL, *ctrls[3] = {NULL, NULL, NULL};
	struct berval empty = {0, NULL};
	int rc, n = 0;

	if (c->has_paged) {
		rc = ldap_create_page_control(c->ld, c->conf->page_size ? c->conf->page_size : 1000,
		                              cookie ? cookie : &empty, 0, &page);
		if (rc != LDAP_SUCCESS)
			return -ENOMEM;
		ctrls[n++] = page;
	}
	if (show_deleted) {
		rc = ldap_control_create(LDAP_OID_SHOW_DELETED, 1, NULL, 1, &sd);
		if (rc != LDAP_SUCCESS) {
			ldap_control_free(page);
			return -ENOMEM;
		}
		ctrls[n++] = sd;
	}
	rc = ldap_search_ext(c->ld, base, LDAP_SCOPE_SUBTREE, filter, c->attrs_read, 0, ctrls, NULL,
	                     &c->timeout, 0, ret_msgid);
	ldap_control_free(page);
	ldap_control_free(sd);
	return rc == LDAP_SUCCESS ? 0 : lstop_ldap(c, rc, "search");
}

/* The result of one page: 0 with *ret_cookie (NULL on the last page), or 1 stopped. */
static int page_result(struct ldap_ctx *c, const char *base, LDAPMessage *msg,
                       struct berval **ret_cookie)
{
	LDAPControl **sctrls = NULL;
	char *errmsg = NULL;
	int rc, err = 0, r = 0;

	*ret_cookie = NULL;
	rc = ldap_parse_result(c->ld, msg, &err, NULL, &errmsg, NULL, &sctrls, 0);
	if (rc != LDAP_SUCCESS) {
		r = lstop_ldap(c, rc, "search result");
	} else if (err == LDAP_NO_SUCH_OBJECT) {
		r = lstop(c, "stopped-error", "search base '%s' does not exist: %s (32)%s%s", base,
		          ldap_err2string(err), errmsg && *errmsg ? ": " : "",
		          errmsg ? errmsg : "");
	} else if (err != LDAP_SUCCESS) {
		r = lstop(c, lerr_is_down(err) ? "stopped-server-down" : "stopped-error",
		          "search '%s': %s (%d)%s%s", base, ldap_err2string(err), err,
		          errmsg && *errmsg ? ": " : "", errmsg ? errmsg : "");
	} else if (c->has_paged) {
		LDAPControl *pc = ldap_control_find(LDAP_OID_PAGED, sctrls, NULL);
		ber_int_t estimate = 0;
		struct berval ck = {0, NULL};
		if (pc &&
		    ldap_parse_pageresponse_control(c->ld, pc, &estimate, &ck) == LDAP_SUCCESS) {
			if (estimate > 0)
				c->estimate = (uint64_t)estimate;
			if (ck.bv_len > 0) {
				*ret_cookie = ber_bvdup(&ck);
				if (!*ret_cookie)
					r = -ENOMEM;
			}
		}
		if (ck.bv_val)
			ber_memfree(ck.bv_val);
	}
	ldap_memfree(errmsg);
	ldap_controls_free(sctrls);
	return r;
}

int lsearch_paged(struct ldap_ctx *c, const char *base, const char *filter, bool show_deleted,
                  lentry_fn fn)
{
	unsigned empty = 0;
	int msgid = -1, r;

	r = send_page(c, base, filter, show_deleted, NULL, &msgid);
	while (r == 0 && msgid >= 0) {
		LDAPMessage *chain = NULL, *m;
		struct berval *cookie = NULL;
		int rc;

		/* A whole page (at most page_size entries) is read before it is processed, and the
		 * next page is asked for first: the server prepares it while this one is written.
		 */
		rc = ldap_result(c->ld, msgid, LDAP_MSG_ALL, &c->timeout, &chain);
		if (rc == 0) {
			ldap_msgfree(chain);
			ldap_abandon_ext(c->ld, msgid, NULL, NULL);
			r = lstop(c, "stopped-server-down",
			          "no answer from the server within %ld s",
			          (long)c->timeout.tv_sec);
			break;
		}
		if (rc < 0) {
			int err = LDAP_SERVER_DOWN;
			ldap_get_option(c->ld, LDAP_OPT_RESULT_CODE, &err);
			ldap_msgfree(chain);
			r = lstop_ldap(c, err, "reading results");
			break;
		}
		msgid = -1;
		r = 1;
		for (m = ldap_first_message(c->ld, chain); m; m = ldap_next_message(c->ld, m))
			if (ldap_msgtype(m) == LDAP_RES_SEARCH_RESULT)
				r = page_result(c, base, m, &cookie);
		if (r == 1 && !c->ret->status[0])
			r = lstop(c, "stopped-error", "search '%s': no result message", base);
		empty = ldap_count_entries(c->ld, chain) > 0 ? 0 : empty + 1;
		if (r == 0 && cookie && empty >= LDAP_IMPORT_EMPTY_PAGES)
			r = lstop(c, "stopped-error",
			          "search '%s': the server sent %u pages in a row without an entry "
			          "and still asks for more",
			          base, LDAP_IMPORT_EMPTY_PAGES);
		if (r == 0 && cookie && !lcancelled(c))
			r = send_page(c, base, filter, show_deleted, cookie, &msgid);
		ber_bvfree(cookie);
		if (r == 0)
			r = lbatch_begin(c);
		for (m = ldap_first_message(c->ld, chain); r == 0 && m;
		     m = ldap_next_message(c->ld, m))
			if (ldap_msgtype(m) == LDAP_RES_SEARCH_ENTRY)
				r = fn(c, m); /* references are not chased */
		ldap_msgfree(chain);
		if (r != 0)
			break;
		/* Page boundary: commit (in a bulk load, once enough objects are written), report,
		 * poll for cancellation. */
		if (c->since_commit >= lbatch_size(c) || !c->bulk)
			r = lbatch_commit(c);
		if (r < 0)
			break;
		if (c->o->progress)
			c->o->progress(c->done, c->estimate, c->o->userdata);
		if (lcancelled(c))
			r = lstop(c, "stopped-cancelled", "cancelled after %llu objects",
			          (unsigned long long)c->done);
	}
	if (r != 0 && msgid >= 0)
		ldap_abandon_ext(c->ld, msgid, NULL, NULL);
	return r;
}
