/* The AD connector (see ldap_import.h): picks full or delta import, runs the full import as a
 * paged search (RFC 2696) of every include OU, and obsoletes what a complete full import did
 * not return. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hybridsync/ldap_import.h"
#include "ldap_internal.h"

#define OP_TIMEOUT_S 120

static int full_obj(struct ldap_ctx *c, struct lobj *o)
{
	int r = 0;

	/* A DN that cannot be parsed cannot be placed either: the server returned it for an
	 * include, so it is reported rather than left out as out of scope. */
	if (!o->dn_invalid && (!lscope_in(c, o->dn) || o->deleted))
		return 0;
	if (o->err_code[0]) {
		r = lobj_report_error(c, o);
	} else if (o->klass) {
		c->in_scope++;
		r = lobj_store_full(c, o);
	}
	if (r == 0)
		r = lbatch_tick(c);
	return r;
}

int lfull_import(struct ldap_ctx *c)
{
	enum conf_change_tracking t = c->conf->change_tracking;
	struct berval dirsync = {0, NULL}, sync = {0, NULL};
	uint64_t n = 0;
	bool bulk = false;
	int r;

	c->ret->full = true;
	c->ret->method = "full";
	r = store_next_generation(c->s, &c->gen);
	if (r < 0)
		return r;

	/* Change-tracking state is taken before the search, so changes made during it are seen by
	 * the next delta (again, which is harmless) rather than lost. */
	if (c->is_ad && c->has_dirsync && c->nc &&
	    (t == CONF_CHANGE_TRACKING_AUTO || t == CONF_CHANGE_TRACKING_DIRSYNC)) {
		r = ldirsync_initial_cookie(c, &dirsync);
		if (r == 1 || r < 0)
			goto out;
		r = 0; /* 2: refused (no replication right): the USN fallback stays */
	}
	if (!c->is_ad && c->has_sync &&
	    (t == CONF_CHANGE_TRACKING_AUTO || t == CONF_CHANGE_TRACKING_SYNCREPL)) {
		r = lsync_initial_cookie(c, &sync);
		if (r == 1 || r < 0)
			goto out;
		r = 0;
	}

	/* The first full import fills an empty connector space: the store's bulk path. */
	r = store_cs_bulk_begin(c->s, c->connector_id);
	if (r < 0)
		goto out;
	bulk = r == 1;
	c->bulk = bulk;
	r = 0;
	for (size_t i = 0; i < c->include.n && r == 0; i++)
		r = lsearch_paged(c, c->include.v[i], c->filter, false, full_obj);
	if (r != 0)
		goto out;
	if (c->in_scope == 0) {
		r = lstop(c, "stopped-error",
		          "the full import returned no object in scope: nothing is obsoleted");
		goto out;
	}

	/* Complete and successful: what was not seen is gone. Cursors go in the same transaction.
	 */
	r = lbatch_begin(c);
	/* A bulk load began on an empty connector space: every object in it now was written by
	 * this import, so none is unseen (and the scan would read the whole table). */
	if (r == 0 && !bulk)
		r = store_cs_mark_unseen_as_deleted(c->s, c->connector_id, c->gen, &n);
	if (r == 0) {
		c->ret->counters.deletes += n;
		r = store_delete_cursors(c->s, c->connector_id);
	}
	if (r == 0 && dirsync.bv_len > 0)
		r = store_set_cursor(c->s, c->connector_id, c->nc, STORE_CURSOR_DIRSYNC,
		                     dirsync.bv_val, dirsync.bv_len);
	if (r == 0 && c->is_ad && c->usn && c->nc &&
	    (t == CONF_CHANGE_TRACKING_AUTO || t == CONF_CHANGE_TRACKING_DIRSYNC ||
	     t == CONF_CHANGE_TRACKING_USN))
		r = lusn_write(c);
	if (r == 0 && sync.bv_len > 0)
		r = store_set_cursor(c->s, c->connector_id, "", STORE_CURSOR_SYNCREPL, sync.bv_val,
		                     sync.bv_len);
	if (r == 0)
		r = lretry_save(c);
	if (r == 0)
		r = lbatch_commit(c);
out:
	if (r < 0)
		lbatch_rollback(c);
	if (bulk) {
		/* Stopped: what the pages since the last commit wrote goes; the next full import
		 * sees them again. */
		c->bulk = false;
		lbatch_rollback(c);
		int e = store_cs_bulk_end(c->s, NULL);
		if (e < 0 && r >= 0)
			r = e;
	}
	ber_memfree(dirsync.bv_val);
	ber_memfree(sync.bv_val);
	return r;
}

static const char *method_for(struct ldap_ctx *c, enum store_cursor_kind *kind, const char **part)
{
	enum conf_change_tracking t = c->conf->change_tracking;

	*part = c->nc ? c->nc : "";
	switch (t) {
	case CONF_CHANGE_TRACKING_NONE:
		return NULL;
	case CONF_CHANGE_TRACKING_DIRSYNC:
		*kind = STORE_CURSOR_DIRSYNC;
		return "dirsync";
	case CONF_CHANGE_TRACKING_USN:
		*kind = STORE_CURSOR_USN;
		return "usn";
	case CONF_CHANGE_TRACKING_SYNCREPL:
		*kind = STORE_CURSOR_SYNCREPL;
		*part = "";
		return "syncrepl";
	default:
		break;
	}
	if (c->is_ad && c->has_dirsync) {
		*kind = STORE_CURSOR_DIRSYNC;
		return "dirsync";
	}
	if (c->has_sync) {
		*kind = STORE_CURSOR_SYNCREPL;
		*part = "";
		return "syncrepl";
	}
	if (c->is_ad && c->usn) {
		*kind = STORE_CURSOR_USN;
		return "usn";
	}
	return NULL;
}

/* 0 ran, 1 stopped, 2 no usable cursor: full import. */
static int run_delta(struct ldap_ctx *c)
{
	enum store_cursor_kind kind = STORE_CURSOR_MAX;
	const char *part, *method = method_for(c, &kind, &part);
	void *val = NULL;
	size_t len = 0;
	int64_t updated = 0;
	int r;

	if (!method) {
		lfallback(c, "change_tracking finds no delta method on this server");
		return 2;
	}
	r = store_get_cursor(c->s, c->connector_id, part, kind, &val, &len, &updated);
	if (r == -ENOENT && kind == STORE_CURSOR_DIRSYNC) {
		/* No DirSync cookie (the account lacked the right at the last full import). */
		kind = STORE_CURSOR_USN;
		method = "usn";
		r = store_get_cursor(c->s, c->connector_id, part, kind, &val, &len, &updated);
	}
	if (r == -ENOENT) {
		lfallback(c, "no %s cursor is stored (no complete full import yet)", method);
		return 2;
	}
	if (r < 0)
		return r;
	c->ret->method = method;
	r = kind == STORE_CURSOR_SYNCREPL ? 0 : ldelta_cursor_fresh(c, kind, updated);
	if (r != 0) {
		free(val);
		return r;
	}
	if (kind == STORE_CURSOR_DIRSYNC) {
		r = ldelta_dirsync(c, val, len);
		if (r == 3) {
			/* Refused: the account lacks the replication right. Poll uSNChanged. */
			free(val);
			val = NULL;
			c->ret->method = "usn";
			r = store_get_cursor(c->s, c->connector_id, part, STORE_CURSOR_USN, &val,
			                     &len, &updated);
			if (r == -ENOENT)
				lfallback(c, "DirSync is refused (no replication right) and no "
				             "uSNChanged cursor is stored");
			if (r == 0)
				r = ldelta_cursor_fresh(c, STORE_CURSOR_USN, updated);
			r = r == 0 ? ldelta_usn(c, val) : (r == -ENOENT ? 2 : r);
		}
	} else if (kind == STORE_CURSOR_USN) {
		r = ldelta_usn(c, val);
	} else {
		r = ldelta_syncrepl(c, val, len);
	}
	free(val);
	return r;
}

static int import_step(const struct conf_ad *conf, struct store *s,
                       const struct ldap_import_opts *o, struct ldap_import_result *ret);

/* A server that goes away makes writes to its socket raise SIGPIPE, which would kill a
 * program that did not ignore it: block it in this thread for the step, and swallow one that
 * was raised here (as curl does). */
struct sigpipe_guard {
	sigset_t old;
	bool was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	g->was_pending = sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void sigpipe_restore(struct sigpipe_guard *g)
{
	sigset_t set, pending;
	struct timespec zero = {0, 0};

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	if (!g->was_pending && sigismember(&pending, SIGPIPE) == 1)
		(void)sigtimedwait(&set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

int ldap_import(const struct conf_ad *conf, struct store *s, const struct ldap_import_opts *o,
                struct ldap_import_result *ret)
{
	struct sigpipe_guard guard;
	int r;

	if (!conf || !s || !o || !ret || !conf->uri || !conf->base_dn)
		return -EINVAL;
	sigpipe_block(&guard);
	r = import_step(conf, s, o, ret);
	sigpipe_restore(&guard);
	return r;
}

static int import_step(const struct conf_ad *conf, struct store *s,
                       const struct ldap_import_opts *o, struct ldap_import_result *ret)
{
	struct ldap_ctx c = {
	    .conf = conf,
	    .s = s,
	    .o = o,
	    .ret = ret,
	    .timeout = {.tv_sec = OP_TIMEOUT_S},
	};
	int r;

	*ret = (struct ldap_import_result){.method = "full"};
	r = store_get_connector(s, LDAP_IMPORT_CONNECTOR, &c.connector_id);
	if (r < 0)
		return r;
	r = lctx_setup_scope(&c);
	if (r == 0)
		r = lconn_open(&c);
	if (r == 0)
		r = lconn_read_rootdse(&c);
	if (r == 0)
		r = lctx_setup_attrs(&c);
	if (r == 0 && o->mode == LDAP_IMPORT_DELTA) {
		r = run_delta(&c);
		if (r == 2) {
			/* No cursor, or the server refused it as too old: full import. */
			char note[sizeof(ret->note)];
			memcpy(note, ret->note, sizeof(note));
			*ret = (struct ldap_import_result){.method = "full"};
			memcpy(ret->note, note, sizeof(note));
			lbatch_rollback(&c); /* what the refused delta wrote, if anything */
			c.gen = 0;
			c.in_scope = 0;
			r = 0;
			r = lfull_import(&c);
		}
	} else if (r == 0) {
		r = lfull_import(&c);
	}
	if (r == 0) {
		uint64_t n = 0;
		r = store_cs_resolve_refs(s, c.connector_id, &n);
	}
	if (r == 0)
		snprintf(ret->status, sizeof(ret->status), "%s",
		         ret->counters.errors ? "completed-warnings" : "success");
	lbatch_rollback(&c);
	if (c.ld)
		ldap_unbind_ext_s(c.ld, NULL, NULL);
	lstrv_clear(&c.include);
	lstrv_clear(&c.exclude);
	lstrv_clear(&c.added);
	lstrv_clear(&c.retry);
	for (size_t i = 0; i < c.n_attrs; i++)
		free(c.attrs[i]);
	if (c.attrs_read != c.attrs)
		free(c.attrs_read);
	free(c.attrs);
	free(c.attr_tab);
	attr_builder_free(c.ab);
	free(c.filter);
	free(c.nc);
	free(c.usn);
	free(c.dc);
	return r == 1 ? 0 : r;
}
