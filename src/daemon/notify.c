/* hybridsyncd's messages to systemd (sd_notify) and the status keys hybridsyncctl reads.
 * STATUS= progress is throttled to one update a second: an import calls back per batch. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "daemon.h"
#include "hybridsync/log.h"

#define NOTIFY_INTERVAL_USEC 1000000ULL

static uint64_t now_usec(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

void notify_status(const char *fmt, ...)
{
	char buf[DAEMON_STEP_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	(void)sd_notifyf(0, "STATUS=%s", buf);
}

void notify_ready(void)
{
	(void)sd_notify(0, "READY=1");
}

void notify_reloading(void)
{
	/* systemd 253+ wants MONOTONIC_USEC with RELOADING=1 (Type=notify-reload); older ones
	 * ignore the field. */
	(void)sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, now_usec(CLOCK_MONOTONIC));
}

void notify_stopping(void)
{
	(void)sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

void notify_step(struct daemon *d, bool force, const char *fmt, ...)
{
	static uint64_t last_sent; /* under d->shared.lock */
	char buf[DAEMON_STEP_MAX];
	bool send = false;
	uint64_t now;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);

	now = now_usec(CLOCK_MONOTONIC);
	pthread_mutex_lock(&d->shared.lock);
	if (strcmp(buf, d->shared.step) != 0) {
		memcpy(d->shared.step, buf, sizeof(buf));
		d->shared.step_changed = true;
		if (force || now - last_sent >= NOTIFY_INTERVAL_USEC) {
			last_sent = now;
			send = true;
		}
	}
	pthread_mutex_unlock(&d->shared.lock);
	if (send)
		(void)sd_notifyf(0, "STATUS=%s", buf);
}

void status_set(struct store *s, const char *key, const char *value)
{
	int r;

	if (!s)
		return;
	r = store_state_set(s, key, value);
	if (r < 0)
		log_debug("Failed to write status key %s: %s", key, strerror(-r));
}

void status_set_int(struct store *s, const char *key, int64_t value)
{
	char buf[32];

	(void)snprintf(buf, sizeof(buf), "%" PRId64, value);
	status_set(s, key, buf);
}

void format_count(char *buf, size_t len, uint64_t n)
{
	char digits[32];
	size_t nd, o = 0;
	int w;

	w = snprintf(digits, sizeof(digits), "%" PRIu64, n);
	if (w < 0 || len == 0)
		return;
	nd = (size_t)w;
	for (size_t i = 0; i < nd && o + 1 < len; i++) {
		if (i > 0 && (nd - i) % 3 == 0) {
			buf[o++] = ',';
			if (o + 1 >= len)
				break;
		}
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
}
