/* AD connector: the paged subtree search (RFC 2696) that the full import and the uSNChanged poll
 * share. Two threads: a reader decodes each entry of a page as it arrives and asks for the next
 * page when it reaches the page's result, while the caller's thread writes the objects of
 * earlier pages to the store (inside a batch, with a commit at page boundaries, in a bulk load
 * every LBATCH_BULK objects), reports progress and polls for cancellation. Only the reader uses
 * the LDAP handle and only the writer the store, so neither is shared; pages pass through a
 * queue of LPIPE_DEPTH. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
		} else {
			/* RFC 2696: every answer to a paged search carries the control, whose
			 * cookie says whether more follows. Without it this page may be one of
			 * many (a proxy that drops controls): taking it for the whole directory
			 * would obsolete the rest. */
			r = lstop(
			    c, "stopped-error",
			    "search '%s': the answer has %s paged results control, so it cannot "
			    "say whether more follows",
			    base, pc ? "an unreadable" : "no");
		}
		if (ck.bv_val)
			ber_memfree(ck.bv_val);
	}
	ldap_memfree(errmsg);
	ldap_controls_free(sctrls);
	return r;
}

/* One page of decoded objects, from the reader to the writer. */
struct lpage {
	struct lobj *objs;
	size_t n, cap;
	uint64_t estimate;
	int r;     /* 0; 1 stopped (status and error in the reader's result); < 0 local error */
	bool last; /* nothing follows */
};

/* Decoded pages waiting for the writer. With the page being decoded, the page being written
 * and LPIPE_BACK written pages not yet freed, the search holds at most eight pages, whatever
 * the directory's size. */
#define LPIPE_DEPTH 4
#define LPIPE_BACK  2
/* How often a reader waiting for the server looks whether the writer has stopped. */
#define LPIPE_POLL_MS 200

struct lpipe {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct lpage q[LPIPE_DEPTH];
	size_t head, len;
	/* Written pages go back to the reader, which frees them: what a thread allocates it also
	 * frees (a free from the other thread goes through a lock of the allocator's arena). */
	struct lpage back[LPIPE_BACK];
	size_t n_back;
	bool abort; /* the writer has stopped: the reader abandons the search */

	/* The reader's own context: the same connection and request, but its own result (its
	 * stops are recorded there and handed over with the last page) and no store. */
	struct ldap_ctx rc;
	struct ldap_import_opts ro;
	struct ldap_import_result rret;
	const char *base, *filter;
	bool show_deleted;
};

static void lpage_free(struct lpage *page)
{
	for (size_t i = 0; i < page->n; i++)
		lobj_clear(&page->objs[i]);
	free(page->objs);
	*page = (struct lpage){0};
}

static bool aborted(struct lpipe *p)
{
	bool a;

	pthread_mutex_lock(&p->lock);
	a = p->abort;
	pthread_mutex_unlock(&p->lock);
	return a;
}

/* Queues a page (false, and the page freed, when the writer has stopped). */
static bool push(struct lpipe *p, struct lpage *page)
{
	pthread_mutex_lock(&p->lock);
	while (p->len == LPIPE_DEPTH && !p->abort)
		pthread_cond_wait(&p->cond, &p->lock);
	if (p->abort) {
		pthread_mutex_unlock(&p->lock);
		lpage_free(page);
		return false;
	}
	p->q[(p->head + p->len) % LPIPE_DEPTH] = *page;
	p->len++;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return true;
}

/* A written page, handed back for the reader to free. */
static void give_back(struct lpipe *p, struct lpage *page)
{
	pthread_mutex_lock(&p->lock);
	if (p->n_back < LPIPE_BACK) {
		p->back[p->n_back++] = *page;
		*page = (struct lpage){0};
	}
	pthread_mutex_unlock(&p->lock);
	lpage_free(page); /* when the reader is behind: freed here after all */
}

/* Frees the pages handed back (in the reader). */
static void free_back(struct lpipe *p)
{
	struct lpage back[LPIPE_BACK];
	size_t n;

	pthread_mutex_lock(&p->lock);
	n = p->n_back;
	memcpy(back, p->back, n * sizeof(*back));
	p->n_back = 0;
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < n; i++)
		lpage_free(&back[i]);
}

/* The next page; the reader always ends with a page marked last. */
static void pop(struct lpipe *p, struct lpage *page)
{
	pthread_mutex_lock(&p->lock);
	while (p->len == 0)
		pthread_cond_wait(&p->cond, &p->lock);
	*page = p->q[p->head];
	p->head = (p->head + 1) % LPIPE_DEPTH;
	p->len--;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for the next message of msgid, in slices, so that a writer that has stopped is noticed:
 * 0 and *ret, 1 stopped (nothing came within the operation timeout), 2 the writer has stopped.
 * The timeout runs from the call: a page as large as the server likes may take longer, as long
 * as the server keeps sending. */
static int next_message(struct lpipe *p, int msgid, LDAPMessage **ret)
{
	struct ldap_ctx *c = &p->rc;
	int64_t end = now_ms() + (int64_t)c->timeout.tv_sec * 1000 + c->timeout.tv_usec / 1000;

	for (;;) {
		struct timeval slice = {0, LPIPE_POLL_MS * 1000};
		LDAPMessage *m = NULL;
		int rc = ldap_result(c->ld, msgid, LDAP_MSG_ONE, &slice, &m);

		if (rc > 0) {
			*ret = m;
			return 0;
		}
		ldap_msgfree(m);
		if (rc < 0) {
			int err = LDAP_SERVER_DOWN;
			ldap_get_option(c->ld, LDAP_OPT_RESULT_CODE, &err);
			return lstop_ldap(c, err, "reading results");
		}
		if (aborted(p))
			return 2;
		if (now_ms() >= end)
			return lstop(c, "stopped-server-down",
			             "no answer from the server within %ld s",
			             (long)c->timeout.tv_sec);
	}
}

/* Decodes one entry onto the page: 0, or < 0 local error. */
static int page_add(struct ldap_ctx *c, LDAPMessage *m, struct lpage *page)
{
	int r;

	if (page->n == page->cap) {
		size_t cap = page->cap ? page->cap * 2 : 64;
		struct lobj *v = reallocarray(page->objs, cap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		page->objs = v;
		page->cap = cap;
	}
	r = lentry_read(c, m, LREAD_FULL, &page->objs[page->n]);
	if (r == 0)
		page->n++;
	else
		lobj_clear(&page->objs[page->n]);
	return r;
}

/* Reads one page into *page, decoding each entry as it arrives (while the server still sends
 * the rest), and asks for the next page once the reader reaches this one's result (*msgid: the
 * request outstanding, -1 when none): 0, 1 stopped, 2 the writer has stopped, < 0 local
 * error. */
static int read_page(struct lpipe *p, int *msgid, unsigned *empty, struct lpage *page)
{
	struct ldap_ctx *c = &p->rc;
	struct berval *cookie = NULL;
	size_t entries = 0;
	int r;

	for (;;) {
		LDAPMessage *m = NULL;
		int type;

		r = next_message(p, *msgid, &m);
		if (r != 0)
			return r;
		type = ldap_msgtype(m);
		if (type == LDAP_RES_SEARCH_RESULT) {
			*msgid = -1;
			r = page_result(c, p->base, m, &cookie);
			ldap_msgfree(m);
			break;
		}
		if (type == LDAP_RES_SEARCH_ENTRY) { /* references are not chased */
			entries++;
			/* A cancel or a failed write ends the page here, not after its last entry
			 * (each may need ranged reads of the server). */
			r = aborted(p) ? 2 : page_add(c, m, page);
		}
		ldap_msgfree(m);
		if (r != 0)
			return r;
	}
	*empty = entries > 0 ? 0 : *empty + 1;
	if (r == 0 && cookie && *empty >= LDAP_IMPORT_EMPTY_PAGES)
		r = lstop(c, "stopped-error",
		          "search '%s': the server sent %u pages in a row without an entry and "
		          "still asks for more",
		          p->base, LDAP_IMPORT_EMPTY_PAGES);
	/* The server prepares the next page while this one is written. */
	if (r == 0 && cookie && !aborted(p))
		r = send_page(c, p->base, p->filter, p->show_deleted, cookie, msgid);
	ber_bvfree(cookie);
	return r;
}

static void *reader_main(void *arg)
{
	struct lpipe *p = arg;
	struct ldap_ctx *c = &p->rc;
	unsigned empty = 0;
	int msgid = -1, r;

	r = send_page(c, p->base, p->filter, p->show_deleted, NULL, &msgid);
	for (;;) {
		struct lpage page = {0};
		free_back(p);
		if (r == 0)
			r = read_page(p, &msgid, &empty, &page);
		if (r == 2) { /* the writer has stopped: nobody reads this */
			lpage_free(&page);
			break;
		}
		page.r = r;
		page.last = r != 0 || msgid < 0;
		page.estimate = c->estimate;
		if (!push(p, &page) || page.last)
			break;
	}
	if (msgid >= 0)
		ldap_abandon_ext(c->ld, msgid, NULL, NULL);
	c->ab = attr_builder_free(c->ab);
	return NULL;
}

/* The writer's side of a page: every object to fn inside a batch, then, unless the reader
 * stopped in it, the page boundary. */
static int write_page(struct ldap_ctx *c, struct lpage *page, lobj_fn fn)
{
	int r = lbatch_begin(c);

	for (size_t i = 0; r == 0 && i < page->n; i++)
		r = fn(c, &page->objs[i]);
	if (r != 0 || page->r != 0)
		return r;
	/* Commit (in a bulk load, once enough objects are written), report, poll for
	 * cancellation. */
	if (c->since_commit >= lbatch_size(c) || !c->bulk)
		r = lbatch_commit(c);
	if (r < 0)
		return r;
	if (page->estimate > 0)
		c->estimate = page->estimate;
	if (c->o->progress)
		c->o->progress(c->done, c->estimate, c->o->userdata);
	if (lcancelled(c))
		return lstop(c, "stopped-cancelled", "cancelled after %llu objects",
		             (unsigned long long)c->done);
	return 0;
}

int lsearch_paged(struct ldap_ctx *c, const char *base, const char *filter, bool show_deleted,
                  lobj_fn fn)
{
	struct lpipe *p = calloc(1, sizeof(*p));
	pthread_t reader;
	int r = 0, e;

	if (!p)
		return -ENOMEM;
	p->ro = *c->o;
	p->ro.run_id = 0; /* the reader records its stops in rret only */
	p->rc = *c;
	p->rc.o = &p->ro;
	p->rc.ret = &p->rret;
	p->rc.s = NULL;
	p->rc.in_txn = false;
	p->rc.ab = NULL; /* the reader's own */
	p->base = base;
	p->filter = filter;
	p->show_deleted = show_deleted;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	e = pthread_create(&reader, NULL, reader_main, p);
	if (e != 0) {
		r = -e;
		goto out;
	}
	for (;;) {
		struct lpage page;
		bool last;
		pop(p, &page);
		r = write_page(c, &page, fn);
		if (r == 0 && page.r == 1) /* the reader stopped: its status is the step's */
			r = lstop(c, p->rret.status, "%s", p->rret.error);
		else if (r == 0)
			r = page.r;
		last = page.last;
		give_back(p, &page);
		if (r != 0 || last)
			break;
	}
	pthread_mutex_lock(&p->lock);
	p->abort = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(reader, NULL);
	free_back(p);
	while (p->len > 0) {
		lpage_free(&p->q[p->head]);
		p->head = (p->head + 1) % LPIPE_DEPTH;
		p->len--;
	}
out:
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
	return r;
}
