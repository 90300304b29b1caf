/* The control socket hybridsyncctl talks to: one JSON request line, one JSON answer line, then
 * the daemon closes. Who may talk: root, the daemon's user and members of its group (by
 * SO_PEERCRED / SO_PEERGROUPS). Verbs: sync (optionally waiting for the cycle), allow-deletes,
 * status. The protocol is documented in hybridsyncd(8). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "hybridsync/graph.h"
#include "hybridsync/log.h"
#include "hybridsync/messages.h"
#include "hybridsync/status.h"

#define CONTROL_REQUEST_MAX  4096
#define CONTROL_CLIENTS_MAX  32
#define CONTROL_READ_TIMEOUT (10ULL * 1000000ULL) /* usec to send a request */
#define CONTROL_GROUPS_MAX   256

enum client_state {
	CLIENT_READING,
	CLIENT_WAIT_NEXT,    /* sync --wait: the cycle has not started yet */
	CLIENT_WAIT_RUNNING, /* sync --wait: the cycle runs */
};

struct client {
	struct client *next;
	struct daemon *d;
	int fd;
	sd_event_source *io;
	sd_event_source *timer;
	enum client_state state;
	uid_t uid;
	bool allowed;
	size_t len;
	char buf[CONTROL_REQUEST_MAX];
};

static void client_free(struct client *c)
{
	struct client **p;

	for (p = &c->d->clients; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	c->d->n_clients--;
	sd_event_source_disable_unref(c->io);
	sd_event_source_disable_unref(c->timer);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

/* Sends `j` (consumed) as one line and closes the client. */
static void client_reply(struct client *c, cJSON *j)
{
	char *text = j ? cJSON_PrintUnformatted(j) : NULL;
	size_t len, off = 0;
	ssize_t n;

	if (text) {
		len = strlen(text);
		text[len] = '\n'; /* replaces the NUL: the buffer is sent by length */
		len++;
		while (off < len) {
			n = send(c->fd, text + off, len - off, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		free(text);
	}
	cJSON_Delete(j);
	client_free(c);
}

static void client_error(struct client *c, const char *message)
{
	cJSON *j = cJSON_CreateObject();

	if (j) {
		cJSON_AddBoolToObject(j, "ok", false);
		cJSON_AddStringToObject(j, "error", message);
	}
	client_reply(c, j);
}

static cJSON *ok_object(void)
{
	cJSON *j = cJSON_CreateObject();

	if (j)
		cJSON_AddBoolToObject(j, "ok", true);
	return j;
}

static bool peer_allowed(int fd, uid_t uid, gid_t gid)
{
	gid_t groups[CONTROL_GROUPS_MAX];
	socklen_t len = sizeof(groups);

	if (uid == 0 || uid == geteuid() || gid == getegid())
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == getegid())
			return true;
	return false;
}

static void verb_status(struct client *c)
{
	struct daemon *d = c->d;
	char state[DAEMON_STATUS_MAX], step[DAEMON_STEP_MAX];
	cJSON *j = ok_object();

	pthread_mutex_lock(&d->shared.lock);
	(void)snprintf(state, sizeof(state), "%s", d->shared.state);
	(void)snprintf(step, sizeof(step), "%s", d->shared.step);
	pthread_mutex_unlock(&d->shared.lock);
	if (d->stopping)
		(void)snprintf(state, sizeof(state), "stopping");
	else if (!d->cycle_running)
		(void)snprintf(state, sizeof(state), "idle");
	if (j) {
		cJSON_AddStringToObject(j, "state", state);
		cJSON_AddStringToObject(j, "step", step);
		cJSON_AddBoolToObject(j, "staging", d->conf->sync.staging);
		cJSON_AddStringToObject(j, "config_hash", d->config_hash);
		cJSON_AddNumberToObject(j, "pid", (double)getpid());
		cJSON_AddBoolToObject(j, "cycle_running", d->cycle_running);
		cJSON_AddNumberToObject(j, "next_cycle", (double)d->next_cycle);
	}
	client_reply(c, j);
}

static void verb_sync(struct client *c, const cJSON *req)
{
	const cJSON *full = cJSON_GetObjectItemCaseSensitive(req, "full");
	const cJSON *wait = cJSON_GetObjectItemCaseSensitive(req, "wait");
	cJSON *j;

	if ((full && !cJSON_IsBool(full)) || (wait && !cJSON_IsBool(wait))) {
		client_error(c, "'full' and 'wait' must be booleans");
		return;
	}
	if (c->d->stopping) {
		client_error(c, "the daemon is stopping");
		return;
	}
	log_info("Cycle requested on the control socket by uid %u%s", (unsigned)c->uid,
	         cJSON_IsTrue(full) ? " (full)" : "");
	if (cJSON_IsTrue(wait)) {
		/* Answered by control_cycle_finished(); the request is read, stop polling. */
		c->state = CLIENT_WAIT_NEXT;
		sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
		sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
		daemon_request_cycle(c->d, cJSON_IsTrue(full));
		return;
	}
	daemon_request_cycle(c->d, cJSON_IsTrue(full));
	j = ok_object();
	if (j)
		cJSON_AddBoolToObject(j, "queued", true);
	client_reply(c, j);
}

static void verb_allow_deletes(struct client *c)
{
	struct daemon *d = c->d;
	char fp[STORE_FINGERPRINT_LEN + 1], dfp[STORE_FINGERPRINT_LEN + 1], detail[192];
	struct store_export_totals tot = {0};
	int64_t graph_id = 0;
	cJSON *j;
	int r;

	r = store_get_connector(d->store, GRAPH_CONNECTOR, &graph_id);
	if (r >= 0)
		r = store_export_counts(d->store, graph_id, &tot);
	if (r >= 0)
		r = store_pending_fingerprint(d->store, fp);
	if (r >= 0)
		r = store_pending_deletes_fingerprint(d->store, dfp);
	if (r < 0) {
		log_error("Failed to read the pending exports for allow-deletes: %s", strerror(-r));
		client_error(c, "failed to read the pending exports");
		return;
	}
	(void)snprintf(detail, sizeof(detail),
	               "%" PRIu64 " pending deletes allowed once (deletes fingerprint %s)",
	               tot.delete, dfp);
	r = store_audit_add(d->store, "deletes-allowed", (int64_t)c->uid, detail, fp);
	if (r >= 0)
		r = store_state_set(d->store, STATUS_KEY_ALLOW_DELETES, dfp);
	if (r < 0) {
		log_error("Failed to record allow-deletes: %s", strerror(-r));
		client_error(c, "failed to record the allowance");
		return;
	}
	log_full(LOG_NOTICE, 0, HS_MSG_DELETES_ALLOWED, NULL,
	         "uid %u allowed %" PRIu64 " pending deletes once (queue fingerprint %s)",
	         (unsigned)c->uid, tot.delete, fp);
	j = ok_object();
	if (j) {
		cJSON_AddStringToObject(j, "fingerprint", fp);
		cJSON_AddStringToObject(j, "deletes_fingerprint", dfp);
		cJSON_AddNumberToObject(j, "deletes", (double)tot.delete);
	}
	client_reply(c, j);
}

static void client_request(struct client *c)
{
	const cJSON *verb;
	char msg[128];
	cJSON *req;

	if (!c->allowed) {
		log_notice("Control request from uid %u refused: permission denied",
		           (unsigned)c->uid);
		client_error(c, "permission denied");
		return;
	}
	req = cJSON_ParseWithLength(c->buf, c->len);
	verb = req ? cJSON_GetObjectItemCaseSensitive(req, "verb") : NULL;
	if (!req || !cJSON_IsObject(req) || !cJSON_IsString(verb)) {
		client_error(c, "malformed request: expected a JSON object with a \"verb\"");
	} else if (strcmp(verb->valuestring, "status") == 0) {
		verb_status(c);
	} else if (strcmp(verb->valuestring, "sync") == 0) {
		verb_sync(c, req);
	} else if (strcmp(verb->valuestring, "allow-deletes") == 0) {
		verb_allow_deletes(c);
	} else {
		(void)snprintf(msg, sizeof(msg), "unknown verb '%.64s'", verb->valuestring);
		client_error(c, msg);
	}
	cJSON_Delete(req);
}

static int on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct client *c = userdata;
	char *nl;
	ssize_t n;

	(void)s;
	(void)revents;
	n = recv(fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		client_free(c);
		return 0;
	}
	if (n == 0) { /* closed before a full line */
		client_free(c);
		return 0;
	}
	c->len += (size_t)n;
	nl = memchr(c->buf, '\n', c->len);
	if (nl) {
		c->len = (size_t)(nl - c->buf);
		client_request(c);
	} else if (c->len == sizeof(c->buf)) {
		client_error(c, "request too long");
	}
	return 0;
}

static int on_client_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s;
	(void)usec;
	client_free(userdata);
	return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct daemon *d = userdata;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct client *c;
	int cfd, r;

	(void)s;
	(void)revents;
	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return 0;
	if (d->n_clients >= CONTROL_CLIENTS_MAX ||
	    getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		close(cfd);
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		return 0;
	}
	c->d = d;
	c->fd = cfd;
	c->uid = cred.uid;
	c->allowed = peer_allowed(cfd, cred.uid, cred.gid);
	c->next = d->clients;
	d->clients = c;
	d->n_clients++;
	r = sd_event_add_io(d->event, &c->io, cfd, EPOLLIN, on_client_io, c);
	if (r >= 0)
		r = sd_event_add_time_relative(d->event, &c->timer, CLOCK_MONOTONIC,
		                               CONTROL_READ_TIMEOUT, 0, on_client_timeout, c);
	if (r < 0)
		client_free(c);
	return 0;
}

static const char *socket_path(char *buf, size_t len)
{
	const char *e = getenv("HYBRIDSYNC_CONTROL_SOCKET");
	const char *rd = getenv("RUNTIME_DIRECTORY");
	size_t n;

	if (e && *e)
		return e;
	if (rd && *rd) {
		/* systemd lists several runtime directories separated by ':'; ours is first */
		n = strcspn(rd, ":");
		if (snprintf(buf, len, "%.*s/control", (int)n, rd) < (int)len)
			return buf;
	}
	return HYBRIDSYNC_RUNDIR "/control";
}

int control_open(struct daemon *d)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[sizeof(sa.sun_path)];
	const char *path = socket_path(buf, sizeof(buf));
	struct stat st;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return log_error_errno(ENAMETOOLONG, "Control socket path '%s' is too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return log_error_errno(errno, "Failed to create the control socket: %s",
		                       strerror(errno));
	/* A socket file left by a crash is replaced; one a live daemon answers on is not. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			close(fd);
			return log_error_errno(EADDRINUSE,
			                       "Control socket '%s' is in use: is another "
			                       "hybridsyncd running on it?",
			                       path);
		}
		if (probe >= 0)
			close(probe);
		(void)unlink(path);
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0660) < 0 ||
	    listen(fd, 16) < 0) {
		r = -errno;
		close(fd);
		return log_error_errno(r, "Failed to listen on control socket '%s': %s", path,
		                       strerror(-r));
	}
	d->listen_fd = fd;
	d->socket_path = strdup(path);
	if (!d->socket_path)
		return -ENOMEM;
	r = sd_event_add_io(d->event, &d->listen_source, fd, EPOLLIN, on_accept, d);
	if (r < 0)
		return log_error_errno(r, "Failed to watch the control socket: %s", strerror(-r));
	status_set(d->store, STATUS_KEY_CONTROL_SOCKET, path);
	log_debug("Control socket on %s", path);
	return 0;
}

void control_close(struct daemon *d)
{
	while (d->clients) {
		if (d->clients->state == CLIENT_READING)
			client_free(d->clients);
		else
			client_error(d->clients, "the daemon stopped before the cycle finished");
	}
	d->listen_source = sd_event_source_disable_unref(d->listen_source);
	if (d->listen_fd >= 0) {
		close(d->listen_fd);
		d->listen_fd = -1;
	}
	if (d->socket_path) {
		(void)unlink(d->socket_path);
		status_set(d->store, STATUS_KEY_CONTROL_SOCKET, NULL);
		free(d->socket_path);
		d->socket_path = NULL;
	}
}

void control_cycle_started(struct daemon *d)
{
	for (struct client *c = d->clients; c; c = c->next)
		if (c->state == CLIENT_WAIT_NEXT)
			c->state = CLIENT_WAIT_RUNNING;
}

void control_cycle_finished(struct daemon *d, const struct cycle_result *res)
{
	struct client *c = d->clients, *next;
	cJSON *j;

	for (; c; c = next) {
		next = c->next;
		if (c->state != CLIENT_WAIT_RUNNING)
			continue;
		j = ok_object();
		if (j) {
			cJSON_AddNumberToObject(j, "run_id", (double)res->run_id);
			cJSON_AddStringToObject(j, "status", res->status);
		}
		client_reply(c, j);
	}
}
