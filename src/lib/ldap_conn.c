/* AD connector: connection (ldaps://, StartTLS, ldapi://), simple bind, the rootDSE, error
 * statuses, DN normalization and the scope (include/exclude OUs). */
#include <arpa/inet.h>
#include <errno.h>
#include <locale.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <wctype.h>

#include "hybridsync/conf.h"
#include "hybridsync/store.h"
#include "ldap_internal.h"
#include "utf8_internal.h"

#define NETWORK_TIMEOUT_S 10
/* From the TCP connection (ldaps://) or the StartTLS answer to the end of the TLS handshake. */
#define HANDSHAKE_TIMEOUT_S NETWORK_TIMEOUT_S

int lstrv_push(struct lstrv *l, const char *s, size_t len)
{
	if (l->n + 1 >= l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		char **v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	char *d = malloc(len + 1);
	if (!d)
		return -ENOMEM;
	memcpy(d, s, len);
	d[len] = '\0';
	l->v[l->n++] = d;
	l->v[l->n] = NULL;
	return 0;
}

void lstrv_clear(struct lstrv *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	*l = (struct lstrv){0};
}

void lanchor_hex(const uint8_t *a, size_t len, char *out, size_t out_len)
{
	static const char hex[] = "0123456789abcdef";
	size_t j = 0;

	for (size_t i = 0; i < len && j + 2 < out_len; i++) {
		out[j++] = hex[a[i] >> 4];
		out[j++] = hex[a[i] & 15];
	}
	out[j] = '\0';
}

/* The transactions of an import step: one a page (LBATCH_BULK objects in a bulk load). */
uint64_t lbatch_size(const struct ldap_ctx *c)
{
	uint64_t n = c->conf->page_size ? c->conf->page_size : 1000;

	/* Every commit rewrites the touched pages of the randomly ordered indexes (anchor, DN)
	 * into the WAL: a bulk load commits about every 32,000 objects instead. */
	return c->bulk ? (n < LBATCH_BULK ? LBATCH_BULK : n) : n;
}

int lbatch_begin(struct ldap_ctx *c)
{
	int r;

	if (c->in_txn)
		return 0;
	r = store_begin(c->s);
	if (r == 0)
		c->in_txn = true;
	return r;
}

int lbatch_commit(struct ldap_ctx *c)
{
	int r = 0;

	if (c->in_txn) {
		r = store_commit(c->s);
		if (r < 0) /* a COMMIT that failed may leave the transaction open */
			(void)store_rollback(c->s);
		c->in_txn = false;
	}
	c->since_commit = 0;
	return r;
}

void lbatch_rollback(struct ldap_ctx *c)
{
	if (c->in_txn) {
		(void)store_rollback(c->s);
		c->in_txn = false;
	}
}

bool lcancelled(struct ldap_ctx *c)
{
	return c->o->cancelled && c->o->cancelled(c->o->userdata);
}

int lbatch_tick(struct ldap_ctx *c)
{
	int r;

	c->done++;
	if (++c->since_commit < lbatch_size(c))
		return 0;
	r = lbatch_commit(c);
	if (r < 0)
		return r;
	if (c->o->progress)
		c->o->progress(c->done, c->estimate, c->o->userdata);
	if (lcancelled(c))
		return lstop(c, "stopped-cancelled", "cancelled after %llu objects",
		             (unsigned long long)c->done);
	return lbatch_begin(c);
}

int lstop(struct ldap_ctx *c, const char *status, const char *fmt, ...)
{
	va_list ap;

	snprintf(c->ret->status, sizeof(c->ret->status), "%s", status);
	va_start(ap, fmt);
	vsnprintf(c->ret->error, sizeof(c->ret->error), fmt, ap);
	va_end(ap);
	if (c->o->run_id > 0) {
		if (c->in_txn)
			lbatch_rollback(c);
		(void)store_run_add_error(c->s, c->o->run_id, c->o->step_id, NULL, NULL, status,
		                          c->ret->error, NULL);
	}
	return 1;
}

void lfallback(struct ldap_ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->ret->note[0])
		return;
	va_start(ap, fmt);
	vsnprintf(c->ret->note, sizeof(c->ret->note), fmt, ap);
	va_end(ap);
}

bool lerr_is_down(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT ||
	       rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY || rc == LDAP_TIMELIMIT_EXCEEDED;
}

static const char *diag(struct ldap_ctx *c)
{
	static __thread char buf[256]; /* the reader thread stops with it too */
	char *msg = NULL;

	buf[0] = '\0';
	if (c->ld &&
	    ldap_get_option(c->ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &msg) == LDAP_OPT_SUCCESS && msg) {
		if (strcmp(msg, "(unknown error code)") != 0)
			snprintf(buf, sizeof(buf), "%s", msg);
		ldap_memfree(msg);
	}
	return buf;
}

int lstop_ldap(struct ldap_ctx *c, int rc, const char *what)
{
	const char *d = diag(c);
	return lstop(c, lerr_is_down(rc) ? "stopped-server-down" : "stopped-error",
	             "%s: %s (%d)%s%s", what, ldap_err2string(rc), rc, *d ? ": " : "", d);
}

/* Whether a TCP connection to the URI's host and port can be made: tells a TLS failure
 * (stopped-connectivity) from a server that is down. */
static bool tcp_reachable(const char *uri)
{
	LDAPURLDesc *lud = NULL;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	bool ok = false;
	char port[16];

	if (ldap_url_parse(uri, &lud) != LDAP_URL_SUCCESS)
		return false;
	if (!lud->lud_host || !*lud->lud_host || !lud->lud_scheme ||
	    strcasecmp(lud->lud_scheme, "ldapi") == 0)
		goto out;
	snprintf(port, sizeof(port), "%d",
	         lud->lud_port ? lud->lud_port
	                       : (strcasecmp(lud->lud_scheme, "ldaps") == 0 ? 636 : 389));
	if (getaddrinfo(lud->lud_host, port, &hints, &ai) != 0)
		goto out;
	for (struct addrinfo *a = ai; a && !ok; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		                a->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
			ok = true;
		} else if (errno == EINPROGRESS) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			int err = 0;
			socklen_t l = sizeof(err);
			if (poll(&p, 1, NETWORK_TIMEOUT_S * 1000) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) == 0 && err == 0)
				ok = true;
		}
		close(fd);
	}
out:
	if (ai)
		freeaddrinfo(ai);
	ldap_free_urldesc(lud);
	return ok;
}

/* A failure while connecting: down unless the server answers TCP, then a TLS problem. */
static int stop_connect(struct ldap_ctx *c, int rc, const char *what, bool tls)
{
	if (tls && lerr_is_down(rc) && tcp_reachable(c->conf->uri)) {
		const char *d = diag(c);
		return lstop(
		    c, "stopped-connectivity",
		    "%s: the server answers but the TLS handshake failed (is its certificate "
		    "trusted by %s%s, and does it name the host of uri?): %s (%d)%s%s",
		    what, c->trust, c->crl, ldap_err2string(rc), rc, *d ? ": " : "", d);
	}
	if (lerr_is_down(rc))
		return lstop_ldap(c, rc, what);
	const char *d = diag(c);
	return lstop(c, "stopped-connectivity", "%s: %s (%d)%s%s", what, ldap_err2string(rc), rc,
	             *d ? ": " : "", d);
}

/* Connects with TLS: ldaps://, or ldap:// and StartTLS. 0 connected, 1 stopped. */
static int connect_tls(struct ldap_ctx *c, bool starttls)
{
	const char *what = starttls ? "StartTLS" : "connect";
	int rc, fired;

	fired = ltls_handshake(c->ld, starttls, HANDSHAKE_TIMEOUT_S, &rc);
	if (fired < 0)
		return lstop(c, "stopped-error", "%s: cannot start the TLS handshake watchdog: %s",
		             what, strerror(-fired));
	if (fired) {
		const char *d = diag(c);
		if (rc == LDAP_SUCCESS)
			rc = LDAP_TIMEOUT;
		return lstop(c, "stopped-server-down",
		             "%s: no TLS handshake with the server within %d s: %s (%d)%s%s", what,
		             HANDSHAKE_TIMEOUT_S, ldap_err2string(rc), rc, *d ? ": " : "", d);
	}
	if (rc != LDAP_SUCCESS)
		return stop_connect(c, rc, what, true);
	return 0;
}

/* A read-ahead layer under libldap's protocol layers: libldap reads each message with a
 * poll(2) and two read(2)s (its length, then the rest); through this buffer one read(2) serves
 * dozens of entries. The buffer is allocated before the layer is pushed, so pushing it cannot
 * leave a half-made layer behind. */
#define READAHEAD_SIZE (64u * 1024u)

struct readahead {
	size_t start, end;
	char buf[READAHEAD_SIZE];
};

static int ra_setup(Sockbuf_IO_Desc *d, void *arg)
{
	d->sbiod_pvt = arg;
	return 0;
}

static int ra_remove(Sockbuf_IO_Desc *d)
{
	free(d->sbiod_pvt);
	d->sbiod_pvt = NULL;
	return 0;
}

static int ra_ctrl(Sockbuf_IO_Desc *d, int opt, void *arg)
{
	struct readahead *ra = d->sbiod_pvt;

	if (opt == LBER_SB_OPT_DATA_READY && ra->start < ra->end)
		return 1;
	return LBER_SBIOD_CTRL_NEXT(d, opt, arg);
}

static ber_slen_t ra_read(Sockbuf_IO_Desc *d, void *buf, ber_len_t len)
{
	struct readahead *ra = d->sbiod_pvt;
	ber_slen_t n;

	if (ra->start == ra->end) {
		if (len >= READAHEAD_SIZE) /* large reads go straight through */
			return LBER_SBIOD_READ_NEXT(d, buf, len);
		n = LBER_SBIOD_READ_NEXT(d, ra->buf, READAHEAD_SIZE);
		if (n <= 0)
			return n;
		ra->start = 0;
		ra->end = (size_t)n;
	}
	if (len > ra->end - ra->start)
		len = ra->end - ra->start;
	memcpy(buf, ra->buf + ra->start, len);
	ra->start += len;
	return (ber_slen_t)len;
}

static ber_slen_t ra_write(Sockbuf_IO_Desc *d, void *buf, ber_len_t len)
{
	return LBER_SBIOD_WRITE_NEXT(d, buf, len);
}

static Sockbuf_IO readahead_io = {
    .sbi_setup = ra_setup,
    .sbi_remove = ra_remove,
    .sbi_ctrl = ra_ctrl,
    .sbi_read = ra_read,
    .sbi_write = ra_write,
};

/* Pushes the layer above TCP (below TLS). Without it everything works, only slower. Also
 * bounds one incoming message: liblber allocates what a message's length claims before
 * reading it, so a server could otherwise make this process allocate 4 GiB at once. */
static void push_readahead(struct ldap_ctx *c)
{
	Sockbuf *sb = NULL;
	struct readahead *ra;
	ber_len_t max = LDAP_IMPORT_MESSAGE_MAX;

	if (ldap_get_option(c->ld, LDAP_OPT_SOCKBUF, &sb) != LDAP_OPT_SUCCESS || !sb)
		return;
	(void)ber_sockbuf_ctrl(sb, LBER_SB_OPT_SET_MAX_INCOMING, &max);
	ra = calloc(1, sizeof(*ra));
	if (!ra)
		return;
	if (ber_sockbuf_add_io(sb, &readahead_io, LBER_SBIOD_LEVEL_PROVIDER, ra) < 0)
		free(ra); /* the descriptor could not be allocated: nothing was pushed */
}

/* A bind that failed: refused by the directory itself (a wrong, expired or rotated password, a
 * locked or disabled account, a simple bind it wants protected) is no outage, and retrying it
 * soon only counts more failed logons until AD locks the account out, for all its users. */
static int stop_bind(struct ldap_ctx *c, int rc)
{
	switch (rc) {
	case LDAP_STRONG_AUTH_REQUIRED:     /* AD: the DC requires LDAP signing */
	case LDAP_CONFIDENTIALITY_REQUIRED: /* a simple bind without TLS */
	case LDAP_INAPPROPRIATE_AUTH:
	case LDAP_INVALID_CREDENTIALS: /* AD: also a locked, disabled or expired account */
	case LDAP_INSUFFICIENT_ACCESS:
		c->ret->bind_refused = true;
		break;
	default:
		break;
	}
	return stop_connect(c, rc, "bind", false);
}

/* Copies one option of libldap's global configuration onto the handle: a string, or (is_int)
 * an int that is set when positive. */
static int copy_global(LDAP *ld, int option, bool is_int)
{
	char *v = NULL;
	int i = 0, rc = LDAP_OPT_SUCCESS;

	if (is_int) {
		if (ldap_get_option(NULL, option, &i) == LDAP_OPT_SUCCESS && i > 0)
			rc = ldap_set_option(ld, option, &i);
		return rc;
	}
	(void)ldap_get_option(NULL, option, &v);
	if (v)
		rc = ldap_set_option(ld, option, v);
	ldap_memfree(v);
	return rc;
}

/* Whether libldap's TLS is GnuTLS's (Debian's build) rather than OpenSSL's. */
static bool tls_is_gnutls(void)
{
	char *pkg = NULL;
	bool gnutls;

	(void)ldap_get_option(NULL, LDAP_OPT_X_TLS_PACKAGE, &pkg);
	gnutls = pkg && strcasecmp(pkg, "GnuTLS") == 0;
	ldap_memfree(pkg);
	return gnutls;
}

/* libldap built on GnuTLS (Debian's) ignores TLS_PROTOCOL_MIN and TLS_PROTOCOL_MAX: there the
 * versions they exclude are taken out of the priority string it does apply (TLS_CIPHER_SUITE,
 * by default GnuTLS's "NORMAL"). 0, or LDAP_OPT_ERROR. */
static int protocol_limits(LDAP *ld)
{
	static const struct {
		int v;
		const char *name;
	} vers[] = {
	    {LDAP_OPT_X_TLS_PROTOCOL_SSL3, "SSL3.0"},   {LDAP_OPT_X_TLS_PROTOCOL_TLS1_0, "TLS1.0"},
	    {LDAP_OPT_X_TLS_PROTOCOL_TLS1_1, "TLS1.1"}, {LDAP_OPT_X_TLS_PROTOCOL_TLS1_2, "TLS1.2"},
	    {LDAP_OPT_X_TLS_PROTOCOL_TLS1_3, "TLS1.3"},
	};
	char *suite = NULL, prio[1024];
	int min = 0, max = 0, rc = LDAP_OPT_SUCCESS;
	size_t len;

	(void)ldap_get_option(NULL, LDAP_OPT_X_TLS_PROTOCOL_MIN, &min);
	(void)ldap_get_option(NULL, LDAP_OPT_X_TLS_PROTOCOL_MAX, &max);
	if (min <= 0 && max <= 0)
		return rc;
	if (tls_is_gnutls()) {
		(void)ldap_get_option(NULL, LDAP_OPT_X_TLS_CIPHER_SUITE, &suite);
		len = (size_t)snprintf(prio, sizeof(prio), "%s", suite ? suite : "NORMAL");
		for (size_t i = 0; i < sizeof(vers) / sizeof(vers[0]) && len < sizeof(prio); i++)
			if (vers[i].v < min || (max > 0 && vers[i].v > max))
				len += (size_t)snprintf(prio + len, sizeof(prio) - len, ":-VERS-%s",
				                        vers[i].name);
		rc = len < sizeof(prio) ? ldap_set_option(ld, LDAP_OPT_X_TLS_CIPHER_SUITE, prio)
		                        : LDAP_OPT_ERROR;
	}
	ldap_memfree(suite);
	return rc;
}

/* The TLS settings of a connection. A new handle has none of the TLS settings of ldap.conf,
 * ldaprc files or LDAPTLS_* (libldap lends it a default context built from them instead,
 * which would not be made to demand a valid certificate), so they are set on it here:
 *  - the trust: ca_file alone when set, else TLS_CACERT and TLS_CACERTDIR, else the system
 *    bundle; c->trust says which for messages;
 *  - TLS_PROTOCOL_MIN, TLS_PROTOCOL_MAX, TLS_CIPHER_SUITE and TLS_CRLFILE as configured (the
 *    first two through the third with GnuTLS).
 * 0, or 1 stopped. */
static int tls_setup(struct ldap_ctx *c)
{
	char *file = NULL, *dir = NULL, *crl = NULL;
	const char *use_file = c->conf->ca_file, *use_dir = "";
	int r = 0;

	(void)ldap_get_option(NULL, LDAP_OPT_X_TLS_CRLFILE, &crl);
	c->crl[0] = '\0';
	if (crl && tls_is_gnutls()) /* the OpenSSL backend reads TLS_CRLCHECK instead */
		snprintf(c->crl, sizeof(c->crl), ", not revoked by TLS_CRLFILE '%s'", crl);
	ldap_memfree(crl);

	if (use_file) {
		/* the config check made sure it is readable */
		snprintf(c->trust, sizeof(c->trust), "ca_file '%s'", use_file);
	} else {
		(void)ldap_get_option(NULL, LDAP_OPT_X_TLS_CACERTFILE, &file);
		(void)ldap_get_option(NULL, LDAP_OPT_X_TLS_CACERTDIR, &dir);
		use_file = file ? file : dir ? "" : LDAP_SYSTEM_CA_FILE;
		use_dir = dir ? dir : "";
		if (file || dir)
			snprintf(c->trust, sizeof(c->trust),
			         "the CAs that ldap.conf, an ldaprc file or LDAPTLS_* name "
			         "(TLS_CACERT '%s', TLS_CACERTDIR '%s'; no ca_file is set)",
			         file ? file : "", use_dir);
		else
			snprintf(c->trust, sizeof(c->trust),
			         "the system's CAs '%s' (no ca_file is set)", LDAP_SYSTEM_CA_FILE);
		/* libldap would fail the handshake with no word on why */
		if (*use_file && access(use_file, R_OK) < 0)
			r = lstop(
			    c, "stopped-error",
			    "cannot read the CA file '%s' (%s) that TLS trusts without ca_file: "
			    "set ca_file%s",
			    use_file, strerror(errno),
			    file ? " or correct TLS_CACERT" : " or install ca-certificates");
		else if (*use_dir && access(use_dir, R_OK | X_OK) < 0)
			r = lstop(c, "stopped-error",
			          "cannot read the CA directory '%s' (%s) that TLS trusts without "
			          "ca_file: set ca_file or correct TLS_CACERTDIR",
			          use_dir, strerror(errno));
	}
	if (r == 0 &&
	    (ldap_set_option(c->ld, LDAP_OPT_X_TLS_CACERTFILE, use_file) != LDAP_OPT_SUCCESS ||
	     ldap_set_option(c->ld, LDAP_OPT_X_TLS_CACERTDIR, use_dir) != LDAP_OPT_SUCCESS ||
	     copy_global(c->ld, LDAP_OPT_X_TLS_CIPHER_SUITE, false) != LDAP_OPT_SUCCESS ||
	     copy_global(c->ld, LDAP_OPT_X_TLS_CRLFILE, false) != LDAP_OPT_SUCCESS ||
	     copy_global(c->ld, LDAP_OPT_X_TLS_PROTOCOL_MIN, true) != LDAP_OPT_SUCCESS ||
	     copy_global(c->ld, LDAP_OPT_X_TLS_PROTOCOL_MAX, true) != LDAP_OPT_SUCCESS ||
	     protocol_limits(c->ld) != LDAP_OPT_SUCCESS))
		r = lstop(c, "stopped-connectivity", "cannot set up TLS (trusting %s)", c->trust);
	ldap_memfree(file);
	ldap_memfree(dir);
	return r;
}

int lconn_open(struct ldap_ctx *c)
{
	const struct conf_ad *conf = c->conf;
	struct timeval nt = {.tv_sec = NETWORK_TIMEOUT_S};
	int v3 = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, zero = 0, rc;
	bool ldaps = strncasecmp(conf->uri, "ldaps://", 8) == 0;
	bool plain = strncasecmp(conf->uri, "ldap://", 7) == 0;
	bool tls = ldaps || (plain && conf->starttls);

	rc = ldap_initialize(&c->ld, conf->uri);
	if (rc != LDAP_SUCCESS)
		return lstop(c, "stopped-error", "uri '%s': %s", conf->uri, ldap_err2string(rc));
	if (ldap_set_option(c->ld, LDAP_OPT_PROTOCOL_VERSION, &v3) != LDAP_OPT_SUCCESS ||
	    ldap_set_option(c->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS ||
	    ldap_set_option(c->ld, LDAP_OPT_NETWORK_TIMEOUT, &nt) != LDAP_OPT_SUCCESS ||
	    ldap_set_option(c->ld, LDAP_OPT_TIMEOUT, &c->timeout) != LDAP_OPT_SUCCESS)
		return lstop(c, "stopped-error", "cannot set LDAP options");
	if (tls) {
		if (ldap_set_option(c->ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand) !=
		    LDAP_OPT_SUCCESS)
			return lstop(c, "stopped-connectivity", "cannot set up TLS");
		rc = tls_setup(c);
		if (rc != 0)
			return rc;
		if (ldap_set_option(c->ld, LDAP_OPT_X_TLS_NEWCTX, &zero) != LDAP_OPT_SUCCESS) {
			const char *d = diag(c);
			return lstop(
			    c, "stopped-connectivity",
			    "cannot set up TLS (trusting %s; ldap.conf's TLS_CIPHER_SUITE, "
			    "TLS_PROTOCOL_MIN, TLS_PROTOCOL_MAX and TLS_CRLFILE apply)%s%s",
			    c->trust, *d ? ": " : "", d);
		}
	}
	if (tls) {
		if (connect_tls(c, plain && conf->starttls))
			return 1;
	} else {
		rc = ldap_connect(c->ld);
		if (rc != LDAP_SUCCESS)
			return stop_connect(c, rc, "connect", false);
	}

	push_readahead(c);

	if (conf->bind_dn) {
		char *pw = NULL;
		size_t len = 0;
		struct berval cred;

		if (plain && !conf->starttls && !conf->allow_insecure)
			return lstop(c, "stopped-connectivity",
			             "refusing to send the bind password over plain ldap://");
		rc = conf_read_secret(&conf->bind_password, &pw, &len);
		if (rc < 0)
			return lstop(c, "stopped-connectivity",
			             "cannot read the bind password '%s': %s",
			             conf->bind_password.path ? conf->bind_password.path : "(none)",
			             strerror(-rc));
		cred.bv_val = pw;
		cred.bv_len = len;
		rc = ldap_sasl_bind_s(c->ld, conf->bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL,
		                      NULL);
		pw = secret_free(pw, len);
		if (rc != LDAP_SUCCESS)
			return stop_bind(c, rc);
	}
	return 0;
}

static bool has_value(struct berval **vals, const char *v)
{
	for (size_t i = 0; vals && vals[i]; i++)
		if (vals[i]->bv_len == strlen(v) &&
		    strncasecmp(vals[i]->bv_val, v, vals[i]->bv_len) == 0)
			return true;
	return false;
}

/* The DC's identity from its NTDS Settings object (dsServiceName): the invocationId, or the
 * name itself when the invocationId cannot be read. */
static int read_dc(struct ldap_ctx *c, const struct berval *service)
{
	char *attrs[] = {"invocationId", NULL}, *dn = strndup(service->bv_val, service->bv_len);
	LDAPMessage *res = NULL, *e;
	struct berval **v = NULL;
	int rc;

	if (!dn)
		return -ENOMEM;
	rc = ldap_search_ext_s(c->ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL,
	                       &c->timeout, 0, &res);
	e = rc == LDAP_SUCCESS ? ldap_first_entry(c->ld, res) : NULL;
	if (e)
		v = ldap_get_values_len(c->ld, e, "invocationId");
	if (v && v[0] && v[0]->bv_len == LDAP_IMPORT_ANCHOR_SIZE) {
		char hex[2 * LDAP_IMPORT_ANCHOR_SIZE + 1];
		lanchor_hex((const uint8_t *)v[0]->bv_val, v[0]->bv_len, hex, sizeof(hex));
		c->dc = strdup(hex);
		free(dn);
	} else {
		c->dc = dn;
	}
	ldap_value_free_len(v);
	ldap_msgfree(res);
	return c->dc ? 0 : -ENOMEM;
}

int lconn_read_rootdse(struct ldap_ctx *c)
{
	char *attrs[] = {"supportedControl",    "supportedCapabilities", "namingContexts",
	                 "highestCommittedUSN", "dsServiceName",         NULL};
	LDAPMessage *res = NULL, *e;
	struct berval **v;
	int rc, r = 0;

	rc = ldap_search_ext_s(c->ld, "", LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL,
	                       &c->timeout, 0, &res);
	if (rc != LDAP_SUCCESS) {
		ldap_msgfree(res);
		return lstop_ldap(c, rc, "read the rootDSE");
	}
	e = ldap_first_entry(c->ld, res);
	if (!e) {
		ldap_msgfree(res);
		return lstop(c, "stopped-error", "read the rootDSE: no entry returned");
	}
	v = ldap_get_values_len(c->ld, e, "supportedControl");
	c->has_paged = has_value(v, LDAP_OID_PAGED);
	c->has_dirsync = has_value(v, LDAP_OID_DIRSYNC);
	c->has_sync = has_value(v, LDAP_OID_SYNC);
	c->has_show_deleted = has_value(v, LDAP_OID_SHOW_DELETED);
	ldap_value_free_len(v);
	v = ldap_get_values_len(c->ld, e, "supportedCapabilities");
	c->is_ad = has_value(v, LDAP_OID_AD_CAPABILITY);
	ldap_value_free_len(v);
	v = ldap_get_values_len(c->ld, e, "highestCommittedUSN");
	if (v && v[0] && v[0]->bv_len > 0 && v[0]->bv_len < 32) {
		c->usn = strndup(v[0]->bv_val, v[0]->bv_len);
		if (!c->usn)
			r = -ENOMEM;
	}
	ldap_value_free_len(v);
	v = ldap_get_values_len(c->ld, e, "dsServiceName");
	if (r == 0 && c->is_ad && v && v[0] && v[0]->bv_len > 0)
		r = read_dc(c, v[0]);
	ldap_value_free_len(v);
	v = ldap_get_values_len(c->ld, e, "namingContexts");
	for (size_t i = 0; r == 0 && v && v[i]; i++) {
		char *raw = strndup(v[i]->bv_val, v[i]->bv_len), *n = NULL;
		if (!raw) {
			r = -ENOMEM;
			break;
		}
		if (ldn_normalize(raw, &n) == 0 && c->nc == NULL) {
			char *base = NULL;
			if (ldn_normalize(c->conf->base_dn, &base) == 0 && ldn_is_under(base, n)) {
				c->nc = n;
				n = NULL;
			}
			free(base);
		}
		free(n);
		free(raw);
	}
	ldap_value_free_len(v);
	ldap_msgfree(res);
	return r;
}

static bool is_alpha(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* A value character that the LDAPv3 "pretty" form prints as it is, wherever it stands. */
static bool is_plain(char ch)
{
	switch (ch) {
	case ',':
	case '+':
	case '"':
	case '\\':
	case '<':
	case '>':
	case ';':
	case '=':
		return false;
	default:
		return ch > ' ' && ch < 0x7f;
	}
}

bool ldn_is_normal(const char *dn, size_t len)
{
	size_t i = 0;

	while (i < len) {
		/* type: a descriptor (OIDs, multi-valued RDNs and escapes take the long way) */
		if (!is_alpha(dn[i]))
			return false;
		while (i < len &&
		       (is_alpha(dn[i]) || (dn[i] >= '0' && dn[i] <= '9') || dn[i] == '-'))
			i++;
		if (i >= len || dn[i++] != '=')
			return false;
		/* value: printable ASCII without specials, not starting with '#', inner spaces, and
		 * valid UTF-8 beyond ASCII (the pretty form prints it as it is) */
		if (i >= len || (!is_plain(dn[i]) && (unsigned char)dn[i] < 0x80) || dn[i] == '#')
			return false;
		while (i < len && dn[i] != ',') {
			if ((unsigned char)dn[i] >= 0x80) {
				uint32_t cp;
				size_t n = utf8_decode((const unsigned char *)dn + i, len - i, &cp);
				if (n == 0)
					return false;
				i += n;
				continue;
			}
			if (dn[i] == ' ') {
				if (i + 1 >= len || dn[i + 1] == ',')
					return false; /* a trailing space is escaped */
			} else if (!is_plain(dn[i])) {
				return false;
			}
			i++;
		}
		if (i < len && ++i >= len)
			return false; /* ends with a separator */
	}
	return len > 0;
}

int ldn_normalize(const char *dn, char **ret)
{
	LDAPDN ldn = NULL;
	char *out = NULL, *copy;

	if (ldn_is_normal(dn, strlen(dn))) {
		copy = strdup(dn);
		if (!copy)
			return -ENOMEM;
		*ret = copy;
		return 0;
	}
	if (!*dn) {
		copy = strdup("");
		if (!copy)
			return -ENOMEM;
		*ret = copy;
		return 0;
	}
	if (ldap_str2dn(dn, &ldn, LDAP_DN_FORMAT_LDAP) != LDAP_SUCCESS)
		return -EINVAL;
	int rc = ldap_dn2str(ldn, &out, LDAP_DN_FORMAT_LDAPV3 | LDAP_DN_PRETTY);
	ldap_dnfree(ldn);
	if (rc != LDAP_SUCCESS || !out)
		return rc == LDAP_NO_MEMORY ? -ENOMEM : -EINVAL;
	copy = strdup(out);
	ldap_memfree(out);
	if (!copy)
		return -ENOMEM;
	*ret = copy;
	return 0;
}

/* In the normalized LDAPv3 form a separator is a ',' not preceded by an odd run of '\'. */
static bool is_separator(const char *dn, size_t pos)
{
	size_t bs = 0;

	if (dn[pos] != ',')
		return false;
	while (pos > bs && dn[pos - bs - 1] == '\\')
		bs++;
	return bs % 2 == 0;
}

/* Case folding for the scope: Unicode's simple case mappings (C.UTF-8), so that an OU renamed
 * from "Ärzte" to "ärzte" keeps its objects in scope, as the directory sees it. */
static pthread_once_t fold_once = PTHREAD_ONCE_INIT;
static locale_t fold_locale;

static void fold_init(void)
{
	fold_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* Invalid UTF-8: each byte stands for itself, above every code point. */
#define CP_RAW 0x110000u

static uint32_t fold_cp(uint32_t cp)
{
	if (cp < 0x80)
		return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
	if (cp >= CP_RAW || fold_locale == (locale_t)0)
		return cp;
	return (uint32_t)towlower_l(towupper_l((wint_t)cp, fold_locale), fold_locale);
}

/* The code point that ends at s[end - 1] (end > 0); *start: where it begins. A byte that ends
 * no valid sequence stands for itself (CP_RAW + byte), so that only equal bytes match it. */
static uint32_t cp_before(const char *s, size_t end, size_t *start)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = end - 1;
	uint32_t cp;

	*start = end - 1;
	if (p[i] < 0x80)
		return p[i];
	while (i > 0 && end - i < 4 && (p[i] & 0xc0) == 0x80)
		i--;
	if (utf8_decode(p + i, end - i, &cp) != end - i)
		return CP_RAW + p[end - 1];
	*start = i;
	return cp;
}

bool ldn_is_under(const char *dn, const char *base)
{
	size_t i = strlen(dn), j = strlen(base);

	if (j == 0)
		return true;
	(void)pthread_once(&fold_once, fold_init);
	/* from the end: the base must be a suffix of the DN, ending at an RDN boundary */
	while (j > 0) {
		size_t i2, j2;
		if (i == 0 || fold_cp(cp_before(dn, i, &i2)) != fold_cp(cp_before(base, j, &j2)))
			return false;
		i = i2;
		j = j2;
	}
	return i == 0 || is_separator(dn, i - 1);
}

bool lscope_in(const struct ldap_ctx *c, const char *dn)
{
	bool in = false;

	for (size_t i = 0; i < c->include.n && !in; i++)
		in = ldn_is_under(dn, c->include.v[i]);
	for (size_t i = 0; i < c->exclude.n && in; i++)
		if (ldn_is_under(dn, c->exclude.v[i]))
			in = false;
	return in;
}

static int push_normalized(struct lstrv *l, const char *dn)
{
	char *n = NULL;
	int r = ldn_normalize(dn, &n);
	if (r < 0)
		return r;
	r = lstrv_push(l, n, strlen(n));
	free(n);
	return r;
}

int lctx_setup_scope(struct ldap_ctx *c)
{
	struct lstrv all = {0};
	int r = 0;

	for (size_t i = 0; i < c->conf->include.n && r == 0; i++) {
		r = push_normalized(&all, c->conf->include.v[i]);
		if (r == -EINVAL)
			r = lstop(c, "stopped-error", "include '%s' is not a valid DN",
			          c->conf->include.v[i]);
	}
	if (r == 0 && all.n == 0) {
		r = push_normalized(&all, c->conf->base_dn);
		if (r == -EINVAL)
			r = lstop(c, "stopped-error", "base_dn '%s' is not a valid DN",
			          c->conf->base_dn);
	}
	/* An include inside another one is searched by the outer one. */
	for (size_t i = 0; i < all.n && r == 0; i++) {
		bool nested = false;
		for (size_t j = 0; j < all.n && !nested; j++)
			nested = j != i && ldn_is_under(all.v[i], all.v[j]) &&
			         (!ldn_is_under(all.v[j], all.v[i]) || j < i); /* the same: once */
		if (!nested)
			r = lstrv_push(&c->include, all.v[i], strlen(all.v[i]));
	}
	for (size_t i = 0; i < c->conf->exclude.n && r == 0; i++) {
		r = push_normalized(&c->exclude, c->conf->exclude.v[i]);
		if (r == -EINVAL)
			r = lstop(c, "stopped-error", "exclude '%s' is not a valid DN",
			          c->conf->exclude.v[i]);
	}
	lstrv_clear(&all);
	return r;
}

/* Only replicated attributes: a per-DC one (whenChanged, uSNChanged) differs between DCs and is
 * not reported by DirSync, so a later full import or a fail-over to another DC would see every
 * object changed. */
static const char *const default_attrs[] = {"objectGUID",
                                            "objectSid",
                                            "mS-DS-ConsistencyGuid",
                                            "sAMAccountName",
                                            "userPrincipalName",
                                            "userAccountControl",
                                            "displayName",
                                            "givenName",
                                            "sn",
                                            "cn",
                                            "mail",
                                            "mailNickname",
                                            "proxyAddresses",
                                            "description",
                                            "department",
                                            "title",
                                            "telephoneNumber",
                                            "mobile",
                                            "company",
                                            "employeeID",
                                            "employeeNumber",
                                            "physicalDeliveryOfficeName",
                                            "streetAddress",
                                            "l",
                                            "st",
                                            "postalCode",
                                            "c",
                                            "co",
                                            "isCriticalSystemObject",
                                            "adminDescription",
                                            "groupType",
                                            "info",
                                            "objectClass",
                                            "entryUUID",
                                            "member",
                                            "manager"};

static int add_attr(struct lstrv *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i], name) == 0)
			return 0;
	return lstrv_push(l, name, strlen(name));
}

static size_t name_hash(const char *name, size_t len)
{
	size_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (size_t)(unsigned char)(name[i] | 0x20)) * 16777619u;
	return h;
}

bool lattr_requested(const struct ldap_ctx *c, const char *name, size_t len)
{
	size_t mask = c->attr_tab_cap - 1;

	if (!c->attr_tab)
		return false;
	for (size_t i = name_hash(name, len) & mask;; i = (i + 1) & mask) {
		const char *t = c->attr_tab[i];
		if (!t)
			return false;
		if (strncasecmp(t, name, len) == 0 && t[len] == '\0')
			return true;
	}
}

/* Every attribute of every entry is looked up: a table, not a scan of the list. */
static int build_attr_tab(struct ldap_ctx *c)
{
	size_t cap = 16;

	while (cap < 2 * c->n_attrs)
		cap *= 2;
	c->attr_tab = calloc(cap, sizeof(*c->attr_tab));
	if (!c->attr_tab)
		return -ENOMEM;
	c->attr_tab_cap = cap;
	for (size_t k = 0; k < c->n_attrs; k++) {
		size_t i = name_hash(c->attrs[k], strlen(c->attrs[k])) & (cap - 1);
		while (c->attr_tab[i])
			i = (i + 1) & (cap - 1);
		c->attr_tab[i] = c->attrs[k];
	}
	return 0;
}

int lctx_setup_attrs(struct ldap_ctx *c)
{
	static const char *const always[] = {"objectGUID", "entryUUID", "objectClass",
	                                     "member",     "manager",   "isDeleted"};
	struct lstrv l = {0};
	int r = 0;

	if (c->o->attributes) {
		for (size_t i = 0; i < c->o->n_attributes && r == 0; i++)
			r = add_attr(&l, c->o->attributes[i]);
	} else {
		for (size_t i = 0; i < sizeof(default_attrs) / sizeof(*default_attrs) && r == 0;
		     i++)
			r = add_attr(&l, default_attrs[i]);
	}
	for (size_t i = 0; i < sizeof(always) / sizeof(*always) && r == 0; i++)
		r = add_attr(&l, always[i]);
	if (r < 0) {
		lstrv_clear(&l);
		return r;
	}
	c->attrs = l.v;
	c->n_attrs = l.n;
	c->attrs_read = c->attrs;
	r = build_attr_tab(c);
	if (r < 0)
		return r;
	if (c->is_ad) {
		c->attrs_read = calloc(l.n + 1, sizeof(char *));
		if (!c->attrs_read)
			return -ENOMEM;
		for (size_t i = 0; i < l.n; i++)
			c->attrs_read[i] =
			    strcasecmp(l.v[i], "member") == 0 ? "member;range=0-1499" : l.v[i];
	}
	if (c->is_ad)
		c->filter = strdup("(&(|(objectClass=user)(objectClass=group)(objectClass=contact))"
		                   "(!(objectClass=computer)))");
	else
		c->filter = strdup("(|(objectClass=inetOrgPerson)(objectClass=groupOfNames)"
		                   "(objectClass=groupOfUniqueNames)(objectClass=user)"
		                   "(objectClass=group)(objectClass=contact))");
	return c->filter ? 0 : -ENOMEM;
}
