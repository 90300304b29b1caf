/* hybridsync logging: journald with structured fields under systemd, stderr otherwise.
 * Library code logs at debug only; the boundary (daemon loop, run step, CLI command) logs once. */
#pragma once

#include <stdarg.h>
#include <syslog.h>

enum log_target {
	LOG_TARGET_AUTO,    /* journald when stderr is connected to it ($JOURNAL_STREAM), else stderr */
	LOG_TARGET_STDERR,
	LOG_TARGET_JOURNAL,
	LOG_TARGET_MAX,
};

/* Structured context attached to a message; any member may be NULL. */
struct log_ctx {
	const char *run_id;
	const char *connector;
	const char *anchor;
	const char *dn;
	const char *op;
};

void log_setup(const char *ident, enum log_target target);
void log_set_max_level(int priority);
int log_get_max_level(void);
enum log_target log_get_target(void);
const char *log_target_to_string(enum log_target t);

/* Logs one message. Returns -abs(error) when error != 0 so callers can write
 * `return log_full(LOG_ERR, -r, NULL, NULL, "Failed to ...: %s", strerror(-r));`. */
int log_full(int priority, int error, const char *message_id, const struct log_ctx *ctx,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int log_fullv(int priority, int error, const char *message_id, const struct log_ctx *ctx,
              const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

#define log_debug(...)   log_full(LOG_DEBUG, 0, NULL, NULL, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, 0, NULL, NULL, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, 0, NULL, NULL, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, 0, NULL, NULL, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, 0, NULL, NULL, __VA_ARGS__)
#define log_error_errno(err, ...) log_full(LOG_ERR, (err), NULL, NULL, __VA_ARGS__)
