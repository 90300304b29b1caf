/* hybridsyncctl internals: the verbs and the helpers they share (config and database access,
 * output formatting). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "hybridsync/conf.h"
#include "hybridsync/store.h"

/* Exit codes (hybridsyncctl(8) "EXIT STATUS"). */
enum {
	CTL_EXIT_OK = 0,
	CTL_EXIT_FAILURE = 1,
	CTL_EXIT_USAGE = 2,
	CTL_EXIT_NOT_RUNNING = 3,
};

struct ctl {
	const char *conf_path;
	struct conf *conf;   /* loaded on demand; NULL when the file has errors */
	char *database;      /* the database path the config names */
	struct store *store; /* opened read-only on demand */
};

/* A verb: argv[0] is its name; returns an exit code. */
typedef int (*ctl_verb_fn)(struct ctl *ctl, int argc, char **argv);

int verb_status(struct ctl *ctl, int argc, char **argv);
int verb_pending_exports(struct ctl *ctl, int argc, char **argv);
int verb_runs(struct ctl *ctl, int argc, char **argv);
int verb_show(struct ctl *ctl, int argc, char **argv);
int verb_sync(struct ctl *ctl, int argc, char **argv);
int verb_allow_deletes(struct ctl *ctl, int argc, char **argv);
int verb_config(struct ctl *ctl, int argc, char **argv);
int verb_backup(struct ctl *ctl, int argc, char **argv);

/* Loads the config (strict): errors printed as FILE:LINE: message. Returns an exit code. */
int ctl_load_conf(struct ctl *ctl);
/* Finds the database (from the config, or from the [sync] database line of a config with
 * errors, with a warning) and opens it read-only. Returns an exit code. */
int ctl_open_store(struct ctl *ctl);
void ctl_done(struct ctl *ctl);

/* Prints a usage error for the verb and returns CTL_EXIT_USAGE. */
int ctl_usage(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "hybridsyncctl: message" on stderr and returns CTL_EXIT_FAILURE. */
int ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints a JSON document (pretty, two-space indent, newline-terminated); consumes it. Returns an
 * exit code (a write error is a failure). */
int ctl_print_json(cJSON *doc);
/* Two-space indentation of cJSON's tab-indented output; a fresh string. */
char *ctl_json_text(const cJSON *doc);
int ctl_flush(void);

/* Local time "YYYY-MM-DD HH:MM:SS", or "-" for 0; into a caller's buffer. */
const char *ctl_time(int64_t t, char buf[32]);
/* "1h 02m 03s" style duration. */
const char *ctl_duration(int64_t seconds, char buf[32]);
/* Accessors that never fail: a member's string ("" when absent or null), number (0). */
const char *ctl_jstr(const cJSON *o, const char *name);
int64_t ctl_jint(const cJSON *o, const char *name);

/* A text table: columns aligned to the widest cell, a header row, two spaces between columns.
 * Cells are copied; a NULL cell prints as "-". */
struct ctl_table;
struct ctl_table *ctl_table_new(size_t n_columns, const char *const *headers);
struct ctl_table *ctl_table_free(struct ctl_table *t);
int ctl_table_add(struct ctl_table *t, const char *const *cells);
void ctl_table_print(const struct ctl_table *t, FILE *f, unsigned indent);
size_t ctl_table_rows(const struct ctl_table *t);

/* The store's message for the last failure, else strerror(-r). */
const char *ctl_strerror(struct ctl *ctl, int r);
/* Parses a positive decimal (strtoul, range checked). */
int ctl_parse_unsigned(const char *s, unsigned max, unsigned *ret);
