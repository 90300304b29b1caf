/* hybridsyncctl sync and allow-deletes: one request to the daemon's control socket. The
 * protocol (hybridsyncctl(8), "CONTROL PROTOCOL"): the client sends one JSON object and a
 * newline, the daemon answers with one JSON object and a newline, and closes. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "hybridsync/status.h"

#define REPLY_MAX (1u << 20) /* bytes of an answer */

/* $HYBRIDSYNC_CONTROL_SOCKET, else what the daemon recorded in the database, else the
 * default. Quiet: a config or database we cannot read only means the default applies. */
static char *socket_path(struct ctl *ctl)
{
	const char *env = getenv("HYBRIDSYNC_CONTROL_SOCKET");
	struct conf *c = NULL;
	struct store *s = NULL;
	char *v = NULL;

	if (env && *env)
		return strdup(env);
	if (conf_load(ctl->conf_path, &c, NULL) >= 0 &&
	    store_open(c->sync.database, STORE_OPEN_READONLY, &s, NULL, 0) >= 0 &&
	    store_state_get(s, STATUS_KEY_CONTROL_SOCKET, &v) >= 0 && v && !*v)
		v = (free(v), NULL);
	store_close(s);
	conf_free(c);
	return v ? v : strdup(HYBRIDSYNC_RUNDIR "/control");
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends `request`, returns the parsed answer in *ret. timeout_s 0: wait as long as it takes
 * (sync --wait lasts a whole cycle). Returns an exit code. */
static int call(struct ctl *ctl, const cJSON *request, unsigned timeout_s, cJSON **ret)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char *path = socket_path(ctl), *req = NULL, *buf = NULL;
	size_t len = 0, off = 0;
	int64_t deadline = timeout_s ? now_ms() + (int64_t)timeout_s * 1000 : 0;
	int fd = -1, ret_code = CTL_EXIT_FAILURE;

	if (!path)
		return ctl_fail("%s", strerror(ENOMEM));
	if (strlen(path) >= sizeof(sa.sun_path)) {
		ctl_fail("control socket path too long: %s", path);
		goto out;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ctl_fail("Failed to create a socket: %s", strerror(errno));
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == ENOENT || errno == ECONNREFUSED || errno == ENOTSOCK) {
			fprintf(
			    stderr,
			    "hybridsyncctl: hybridsyncd is not running (no control socket at %s)\n",
			    path);
			ret_code = CTL_EXIT_NOT_RUNNING;
		} else {
			ctl_fail("Failed to connect to %s: %s", path, strerror(errno));
		}
		goto out;
	}
	req = cJSON_PrintUnformatted(request);
	if (!req || asprintf(&buf, "%s\n", req) < 0) {
		buf = NULL;
		ctl_fail("%s", strerror(ENOMEM));
		goto out;
	}
	len = strlen(buf);
	while (off < len) {
		ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ctl_fail("Failed to send to %s: %s", path, strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	free(buf);
	buf = malloc(REPLY_MAX + 1);
	if (!buf) {
		ctl_fail("%s", strerror(ENOMEM));
		goto out;
	}
	off = 0;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t left = deadline ? deadline - now_ms() : -1;
		ssize_t n;
		int pr;

		if (deadline && left <= 0) {
			ctl_fail("no answer from hybridsyncd within %u s", timeout_s);
			goto out;
		}
		pr = poll(&p, 1, deadline ? (int)(left > 1000000 ? 1000000 : left) : -1);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			ctl_fail("Failed to wait for %s: %s", path, strerror(errno));
			goto out;
		}
		if (pr == 0)
			continue;
		n = read(fd, buf + off, REPLY_MAX - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ctl_fail("Failed to read from %s: %s", path, strerror(errno));
			goto out;
		}
		off += (size_t)n;
		if (n == 0 || memchr(buf + off - (size_t)n, '\n', (size_t)n) || off == REPLY_MAX)
			break;
	}
	buf[off] = '\0';
	if (off == 0) {
		ctl_fail("hybridsyncd closed the connection without an answer");
		goto out;
	}
	*ret = cJSON_Parse(buf);
	if (!*ret || !cJSON_IsObject(*ret)) {
		cJSON_Delete(*ret);
		*ret = NULL;
		ctl_fail("hybridsyncd sent an answer that is not a JSON object");
		goto out;
	}
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(*ret, "ok"))) {
		const char *e = ctl_jstr(*ret, "error");

		ctl_fail("hybridsyncd refused: %s", *e ? e : "(no reason given)");
		*ret = (cJSON_Delete(*ret), NULL);
		goto out;
	}
	ret_code = CTL_EXIT_OK;
out:
	if (fd >= 0)
		close(fd);
	free(req);
	free(buf);
	free(path);
	return ret_code;
}

int verb_sync(struct ctl *ctl, int argc, char **argv)
{
	enum { OPT_FULL = 0x100, OPT_WAIT, OPT_TIMEOUT };
	static const struct option options[] = {
	    {"full", no_argument, NULL, OPT_FULL},
	    {"wait", no_argument, NULL, OPT_WAIT},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {0},
	};
	bool full = false, wait = false;
	unsigned timeout = 0;
	cJSON *req, *ans = NULL;
	const char *status;
	int c, ret;

	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		switch (c) {
		case OPT_FULL:
			full = true;
			break;
		case OPT_WAIT:
			wait = true;
			break;
		case OPT_TIMEOUT:
			if (ctl_parse_unsigned(optarg, 30u * 86400u, &timeout) < 0 || timeout == 0)
				return ctl_usage(argv[0], "--timeout takes seconds, not '%s'",
				                 optarg);
			break;
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return ctl_usage(argv[0], "unexpected argument '%s'", argv[optind]);
	req = cJSON_CreateObject();
	if (!req || !cJSON_AddStringToObject(req, "verb", "sync") ||
	    !cJSON_AddBoolToObject(req, "full", full) ||
	    !cJSON_AddBoolToObject(req, "wait", wait)) {
		cJSON_Delete(req);
		return ctl_fail("%s", strerror(ENOMEM));
	}
	ret = call(ctl, req, timeout, &ans);
	cJSON_Delete(req);
	if (ret != CTL_EXIT_OK)
		return ret;
	if (!wait) {
		printf("%s cycle queued\n", full ? "initial" : "delta");
		cJSON_Delete(ans);
		return ctl_flush();
	}
	status = ctl_jstr(ans, "status");
	printf("run #%" PRId64 ": %s\n", ctl_jint(ans, "run_id"), *status ? status : "(unknown)");
	/* a cycle that completed with per-object errors is done; a stopped one is a failure */
	ret = strcmp(status, "success") == 0 || strncmp(status, "completed-", 10) == 0
	          ? CTL_EXIT_OK
	          : CTL_EXIT_FAILURE;
	cJSON_Delete(ans);
	return ctl_flush() == CTL_EXIT_OK ? ret : CTL_EXIT_FAILURE;
}

int verb_allow_deletes(struct ctl *ctl, int argc, char **argv)
{
	cJSON *req, *ans = NULL;
	int ret;

	while (getopt_long(argc, argv, "", (const struct option[]){{0}}, NULL) >= 0)
		return CTL_EXIT_USAGE;
	if (optind < argc)
		return ctl_usage(argv[0], "unexpected argument '%s'", argv[optind]);
	req = cJSON_CreateObject();
	if (!req || !cJSON_AddStringToObject(req, "verb", "allow-deletes")) {
		cJSON_Delete(req);
		return ctl_fail("%s", strerror(ENOMEM));
	}
	ret = call(ctl, req, 0, &ans);
	cJSON_Delete(req);
	if (ret != CTL_EXIT_OK)
		return ret;
	printf("allowed %" PRId64 " delete(s) once, for the queue with fingerprint %s\n",
	       ctl_jint(ans, "deletes"), ctl_jstr(ans, "fingerprint"));
	cJSON_Delete(ans);
	return ctl_flush();
}
