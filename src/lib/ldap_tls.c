/* AD connector: a deadline of its own for the TLS handshake (ldap_conn.c connects). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>

#include "ldap_internal.h"

/* The TLS handshake's own deadline. With a network timeout set, libldap 2.5 makes the socket
 * non-blocking for the handshake and then retries it without waiting and without a deadline
 * (OpenLDAP ITS#8047, fixed in 2.6.10): a server that accepts the connection and never answers
 * the handshake would keep the import spinning forever. So the handshake runs on a blocking
 * socket (below), waiting in read(2), and a watchdog thread shuts the socket down at the
 * deadline; the handshake then reads end-of-file and fails. The socket is learnt from a
 * connection callback (after the TCP connect, before TLS); libldap calls the delete callback
 * before it closes a socket, and the watchdog only shuts a socket down under the same lock, so
 * it never touches a descriptor that was closed (and perhaps reused) meanwhile. */
struct tls_guard {
	struct ldap_conncb cb;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	int fd;                   /* the connection's socket, -1 none (or being closed) */
	bool arm_on_add;          /* ldaps://: the deadline runs from the TCP connection */
	bool armed;               /* deadline is set for fd */
	bool fired;               /* fd was shut down */
	bool done;                /* the handshake has returned: the watchdog ends */
	struct timespec deadline; /* CLOCK_MONOTONIC */
	int timeout_s;
};

/* libldap's "asynchronous connect" option, for the handshake alone. libldap makes the socket
 * non-blocking for a handshake with a network timeout unless the connection is asynchronous (it
 * would have done so at the connect); the TCP connect, made synchronously, has left it blocking.
 * So the handshake waits for the server in read(2) until the watchdog's deadline instead of
 * retrying at once in a loop that spins a core. The TCP connect itself stays synchronous: an
 * asynchronous one would leave StartTLS's connect to the 120 s operation timeout. */
static void handshake_waits(LDAP *ld, bool on)
{
	(void)ldap_set_option(ld, LDAP_OPT_CONNECT_ASYNC, on ? LDAP_OPT_ON : LDAP_OPT_OFF);
}

/* After the handshake the connection is non-blocking, as libldap leaves a TLS connection made
 * with a network timeout: a server that stops in the middle of a TLS record then leaves the
 * reader waiting in poll(2), with its timeouts and its check for cancellation, not in read(2). */
static void nonblocking(LDAP *ld)
{
	Sockbuf *sb = NULL;

	if (ldap_get_option(ld, LDAP_OPT_SOCKBUF, &sb) == LDAP_OPT_SUCCESS && sb)
		(void)ber_sockbuf_ctrl(sb, LBER_SB_OPT_SET_NONBLOCK, (void *)1);
}

static void guard_arm_locked(struct tls_guard *g)
{
	if (g->done || g->fd < 0)
		return;
	(void)clock_gettime(CLOCK_MONOTONIC, &g->deadline);
	g->deadline.tv_sec += g->timeout_s;
	g->armed = true;
	g->fired = false;
	(void)pthread_cond_signal(&g->cond);
}

static bool deadline_passed(const struct timespec *t)
{
	struct timespec now;

	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

static void *guard_run(void *arg)
{
	struct tls_guard *g = arg;

	(void)pthread_mutex_lock(&g->lock);
	while (!g->done) {
		if (!g->armed) {
			(void)pthread_cond_wait(&g->cond, &g->lock);
			continue;
		}
		(void)pthread_cond_timedwait(&g->cond, &g->lock, &g->deadline);
		/* woken: done, disarmed, armed again (for another socket) or the time is up */
		if (g->done || !g->armed || !deadline_passed(&g->deadline))
			continue;
		(void)shutdown(g->fd, SHUT_RDWR);
		g->fired = true;
		g->armed = false;
	}
	(void)pthread_mutex_unlock(&g->lock);
	return NULL;
}

static int guard_add(LDAP *ld, Sockbuf *sb, LDAPURLDesc *srv, struct sockaddr *addr,
                     struct ldap_conncb *cb)
{
	struct tls_guard *g = cb->lc_arg;
	ber_socket_t fd = -1;

	(void)srv;
	(void)addr;
	if (ber_sockbuf_ctrl(sb, LBER_SB_OPT_GET_FD, &fd) != 1)
		return 0;
	/* ldaps://: the handshake follows (libldap does not hold the options' lock here) */
	if (g->arm_on_add)
		handshake_waits(ld, true);
	(void)pthread_mutex_lock(&g->lock);
	if (!g->done) {
		g->fd = fd;
		g->armed = false;
		g->fired = false;
		if (g->arm_on_add)
			guard_arm_locked(g);
	}
	(void)pthread_mutex_unlock(&g->lock);
	return 0;
}

static void guard_del(LDAP *ld, Sockbuf *sb, struct ldap_conncb *cb)
{
	struct tls_guard *g = cb->lc_arg;
	ber_socket_t fd = -1;

	(void)ld;
	if (!sb || ber_sockbuf_ctrl(sb, LBER_SB_OPT_GET_FD, &fd) != 1)
		return; /* the handle is being freed, or no socket */
	(void)pthread_mutex_lock(&g->lock);
	if (fd == g->fd) {
		g->fd = -1;
		g->armed = false;
	}
	(void)pthread_mutex_unlock(&g->lock);
}

/* Starts the watchdog (it waits for a deadline) and registers the connection callbacks. */
static int guard_start(struct tls_guard *g, LDAP *ld, bool arm_on_add, int timeout_s)
{
	pthread_condattr_t ca;
	sigset_t all, old;
	int r;

	*g = (struct tls_guard){
	    .cb = {.lc_add = guard_add, .lc_del = guard_del, .lc_arg = g},
	    .fd = -1,
	    .arm_on_add = arm_on_add,
	    .timeout_s = timeout_s,
	};
	r = pthread_condattr_init(&ca);
	if (r != 0)
		return -r;
	r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (r == 0)
		r = pthread_cond_init(&g->cond, &ca);
	(void)pthread_condattr_destroy(&ca);
	if (r != 0)
		return -r;
	r = pthread_mutex_init(&g->lock, NULL);
	if (r != 0) {
		(void)pthread_cond_destroy(&g->cond);
		return -r;
	}
	/* the watchdog takes no signal: the daemon's signals stay with its event loop */
	sigfillset(&all);
	(void)pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&g->thread, NULL, guard_run, g);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r == 0 && ldap_set_option(ld, LDAP_OPT_CONNECT_CB, &g->cb) != LDAP_OPT_SUCCESS) {
		(void)pthread_mutex_lock(&g->lock);
		g->done = true;
		(void)pthread_cond_signal(&g->cond);
		(void)pthread_mutex_unlock(&g->lock);
		(void)pthread_join(g->thread, NULL);
		r = ENOMEM;
	}
	if (r != 0) {
		(void)pthread_mutex_destroy(&g->lock);
		(void)pthread_cond_destroy(&g->cond);
		return -r;
	}
	return 0;
}

/* Arms the deadline for the socket of the connection (StartTLS: after its answer). */
static void guard_arm(struct tls_guard *g)
{
	(void)pthread_mutex_lock(&g->lock);
	guard_arm_locked(g);
	(void)pthread_mutex_unlock(&g->lock);
}

/* Once the handshake has returned: no shutdown from now on. Returns whether the socket was shut
 * down (then the connection cannot be used, even if the handshake had just succeeded). */
static bool guard_stop(struct tls_guard *g, LDAP *ld)
{
	bool fired;

	(void)pthread_mutex_lock(&g->lock);
	g->done = true;
	fired = g->fired;
	(void)pthread_cond_signal(&g->cond);
	(void)pthread_mutex_unlock(&g->lock);
	(void)pthread_join(g->thread, NULL);
	(void)ldap_get_option(ld, LDAP_OPT_CONNECT_CB, &g->cb); /* getting it removes it */
	(void)pthread_mutex_destroy(&g->lock);
	(void)pthread_cond_destroy(&g->cond);
	return fired;
}

/* StartTLS as ldap_start_tls_s() does it, with the deadline armed between the answer to the
 * request (bounded by the operation timeout) and the handshake. */
static int start_tls(LDAP *ld, struct tls_guard *g)
{
	char *oid = NULL;
	struct berval *data = NULL;
	int rc;

	rc = ldap_extended_operation_s(ld, LDAP_EXOP_START_TLS, NULL, NULL, NULL, &oid, &data);
	ldap_memfree(oid);
	ber_bvfree(data);
	if (rc != LDAP_SUCCESS)
		return rc;
	guard_arm(g);
	handshake_waits(ld, true);
	return ldap_install_tls(ld);
}

int ltls_handshake(LDAP *ld, bool starttls, int timeout_s, int *ret_rc)
{
	struct tls_guard g;
	int r;

	r = guard_start(&g, ld, !starttls, timeout_s);
	if (r < 0)
		return r;
	*ret_rc = starttls ? start_tls(ld, &g) : ldap_connect(ld);
	handshake_waits(ld, false);
	if (*ret_rc == LDAP_SUCCESS)
		nonblocking(ld);
	return guard_stop(&g, ld) ? 1 : 0;
}
