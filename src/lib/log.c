/* Logging for libhybridsync and its programs: structured journald records under systemd,
 * plain lines on stderr elsewhere. The only module that talks to sd-journal. */
#include "hybridsync/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static const char *log_ident = "hybridsync";
static enum log_target log_target = LOG_TARGET_STDERR;
static int log_max_level = LOG_INFO;
static bool log_fields; /* HYBRIDSYNC_LOG_FIELDS=1: fields on stderr lines too */

static int stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(const char *ident, enum log_target target)
{
	const char *lvl;

	if (ident)
		log_ident = ident;
	if (target == LOG_TARGET_AUTO)
		target = stderr_is_journal() ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR;
	log_target = target;

	lvl = getenv("HYBRIDSYNC_LOG_LEVEL");
	if (lvl && strcmp(lvl, "debug") == 0)
		log_max_level = LOG_DEBUG;
	lvl = getenv("HYBRIDSYNC_LOG_FIELDS");
	log_fields = lvl && strcmp(lvl, "1") == 0;
}

void log_set_max_level(int priority)
{
	if (priority >= LOG_EMERG && priority <= LOG_DEBUG)
		log_max_level = priority;
}

int log_get_max_level(void)
{
	return log_max_level;
}

enum log_target log_get_target(void)
{
	return log_target;
}

const char *log_target_to_string(enum log_target t)
{
	static const char *const names[LOG_TARGET_MAX] = {
	    [LOG_TARGET_AUTO] = "auto",
	    [LOG_TARGET_STDERR] = "stderr",
	    [LOG_TARGET_JOURNAL] = "journal",
	};
	return (t >= 0 && t < LOG_TARGET_MAX) ? names[t] : NULL;
}

static const char *level_prefix(int priority)
{
	switch (priority) {
	case LOG_EMERG:
	case LOG_ALERT:
	case LOG_CRIT:
		return "critical: ";
	case LOG_ERR:
		return "error: ";
	case LOG_WARNING:
		return "warning: ";
	case LOG_DEBUG:
		return "debug: ";
	default:
		return "";
	}
}

/* Journald fields: KEY=value, each built into its own bounded buffer. */
#define MAX_FIELDS 12
#define FIELD_MAX  1024

static void add_field(struct iovec *iov, char bufs[][FIELD_MAX], int *n, const char *key,
                      const char *value)
{
	int len;

	if (!value || *n >= MAX_FIELDS)
		return;
	len = snprintf(bufs[*n], FIELD_MAX, "%s=%s", key, value);
	if (len < 0)
		return;
	if (len >= FIELD_MAX)
		len = FIELD_MAX - 1;
	iov[*n].iov_base = bufs[*n];
	iov[*n].iov_len = (size_t)len;
	(*n)++;
}

/* Control characters as \n, \t or \xHH: a DN or a server's message must not start a line of
 * its own (a forged message) or reach a terminal as an escape sequence. Bytes from 0x80 up are
 * UTF-8 and stay. */
static void escape_controls(const char *in, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		char e[5];
		size_t n = 0;
		if (*p >= 0x20 && *p != 0x7f) {
			e[n++] = (char)*p;
		} else if (*p == '\n' || *p == '\t' || *p == '\r') {
			e[n++] = '\\';
			e[n++] = *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r';
		} else {
			e[n++] = '\\';
			e[n++] = 'x';
			e[n++] = hex[*p >> 4];
			e[n++] = hex[*p & 0xf];
		}
		if (o + n >= size)
			break;
		memcpy(out + o, e, n);
		o += n;
	}
	out[o] = '\0';
}

int log_fullv(int priority, int error, const char *message_id, const struct log_ctx *ctx,
              const char *fmt, va_list ap)
{
	char raw[LOG_LINE_MAX], msg[LOG_LINE_MAX];
	int saved_errno = errno;
	int ret = error ? -abs(error) : 0;

	if (priority > log_max_level)
		goto out;

	if (vsnprintf(raw, sizeof(raw), fmt, ap) < 0)
		goto out;
	escape_controls(raw, msg, sizeof(msg));

	if (log_target == LOG_TARGET_JOURNAL) {
		char bufs[MAX_FIELDS][FIELD_MAX]; /* on the stack: worker threads log too */
		struct iovec iov[MAX_FIELDS + 1];
		char prio[32], errstr[32];
		char *m = NULL;
		int n = 0;

		/* MESSAGE can be up to LOG_LINE_MAX, larger than a field buffer. */
		if (asprintf(&m, "MESSAGE=%s", msg) < 0)
			goto out;
		iov[n].iov_base = m;
		iov[n].iov_len = strlen(m);
		n++;
		snprintf(prio, sizeof(prio), "%d", priority);
		add_field(iov, bufs, &n, "PRIORITY", prio);
		add_field(iov, bufs, &n, "SYSLOG_IDENTIFIER", log_ident);
		add_field(iov, bufs, &n, "MESSAGE_ID", message_id);
		if (error) {
			snprintf(errstr, sizeof(errstr), "%d", abs(error));
			add_field(iov, bufs, &n, "ERRNO", errstr);
		}
		if (ctx) {
			add_field(iov, bufs, &n, "HYBRIDSYNC_RUN_ID", ctx->run_id);
			add_field(iov, bufs, &n, "HYBRIDSYNC_CONNECTOR", ctx->connector);
			add_field(iov, bufs, &n, "HYBRIDSYNC_ANCHOR", ctx->anchor);
			add_field(iov, bufs, &n, "HYBRIDSYNC_DN", ctx->dn);
			add_field(iov, bufs, &n, "HYBRIDSYNC_OP", ctx->op);
		}
		(void)sd_journal_sendv(iov, n);
		free(m);
	} else if (log_fields) {
		/* The journal's fields on the line, for a terminal or a container without it. */
		const char *keys[] = {"MESSAGE_ID",           "HYBRIDSYNC_RUN_ID",
		                      "HYBRIDSYNC_CONNECTOR", "HYBRIDSYNC_ANCHOR",
		                      "HYBRIDSYNC_DN",        "HYBRIDSYNC_OP"};
		const char *vals[] = {message_id,
		                      ctx ? ctx->run_id : NULL,
		                      ctx ? ctx->connector : NULL,
		                      ctx ? ctx->anchor : NULL,
		                      ctx ? ctx->dn : NULL,
		                      ctx ? ctx->op : NULL};
		char v[FIELD_MAX];
		fprintf(stderr, "%s: %s%s", log_ident, level_prefix(priority), msg);
		for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
			if (!vals[i])
				continue;
			escape_controls(vals[i], v, sizeof(v));
			fprintf(stderr, " %s=%s", keys[i], v);
		}
		fputc('\n', stderr);
	} else {
		fprintf(stderr, "%s: %s%s\n", log_ident, level_prefix(priority), msg);
	}
out:
	errno = saved_errno;
	return ret;
}

int log_full(int priority, int error, const char *message_id, const struct log_ctx *ctx,
             const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = log_fullv(priority, error, message_id, ctx, fmt, ap);
	va_end(ap);
	return r;
}
