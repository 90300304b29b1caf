/* hybridsync configuration: the INI file of hybridsync.conf(5) parsed into typed, validated
 * values; secrets read on demand; the canonical JSON export, its hash, and the import. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define CONF_HASH_HEX_SIZE  65 /* 64 hex digits of SHA-256 and a NUL */
#define CONF_EXPORT_VERSION 1  /* "hybridsync_config" in the export */

/* Bounds (see hybridsync.conf(5)). */
#define CONF_INTERVAL_MIN        10u           /* 10s: short cycles are for test beds */
#define CONF_INTERVAL_MAX        (7u * 86400u) /* 7d */
#define CONF_HISTORY_DAYS_MAX    3650u
#define CONF_PAGE_SIZE_MAX       10000u
#define CONF_THRESHOLD_COUNT_MAX 10000000u
#define CONF_WRITE_BUDGET_MAX    100000u /* writes per window */
#define CONF_WRITE_WINDOW_MAX    86400u  /* 1d */
#define CONF_SECRET_MAX          65536u  /* bytes in a secret file */

enum conf_change_tracking {
	CONF_CHANGE_TRACKING_AUTO,
	CONF_CHANGE_TRACKING_DIRSYNC,
	CONF_CHANGE_TRACKING_USN,
	CONF_CHANGE_TRACKING_SYNCREPL,
	CONF_CHANGE_TRACKING_NONE,
	CONF_CHANGE_TRACKING_MAX,
};

enum conf_threshold_kind {
	CONF_THRESHOLD_COUNT,   /* more than `value` deletes in one export stop it */
	CONF_THRESHOLD_PERCENT, /* more than `value` percent of the Graph connector space */
	CONF_THRESHOLD_KIND_MAX,
};

struct conf_threshold {
	enum conf_threshold_kind kind;
	unsigned value;
};

struct conf_write_budget {
	unsigned writes;  /* at most this many Graph writes ... */
	unsigned seconds; /* ... in any window of this many seconds */
};

/* A list of strings, kept sorted (byte order) and free of duplicates. */
struct conf_strv {
	char **v;
	size_t n;
};

/* Where a secret lives; never the secret itself. `value` is what the file says: an absolute
 * path, or a systemd credential name resolved in $CREDENTIALS_DIRECTORY at load time. */
struct conf_secret_ref {
	char *value;     /* NULL: not configured */
	char *path;      /* the file conf_read_secret() opens */
	bool credential; /* value is a credential name */
	bool check_mode; /* refuse group/world access (false for certificate_file) */
};

struct conf_sync {
	bool staging;
	unsigned interval; /* seconds */
	char *database;
	struct conf_threshold deletion_threshold;
	char *rules; /* rules directory, NULL: built-in rules only */
	unsigned history_days;
	char *metrics_file; /* NULL: no metrics file */
	char *server_name;  /* default: the host name */
	bool force_promotion;
};

struct conf_ad {
	char *uri;
	char *bind_dn; /* NULL: no simple bind */
	struct conf_secret_ref bind_password;
	char *base_dn;
	struct conf_strv include; /* never empty: defaults to base_dn */
	struct conf_strv exclude;
	char *ca_file; /* NULL: the system trust store */
	bool starttls;
	bool allow_insecure;
	unsigned page_size;
	enum conf_change_tracking change_tracking;
};

struct conf_graph {
	char *tenant;    /* GUID, lower case */
	char *client_id; /* GUID, lower case */
	struct conf_secret_ref client_secret;
	struct conf_secret_ref certificate;
	struct conf_secret_ref key;
	char *authority; /* no trailing slash */
	char *endpoint;  /* no trailing slash */
	char *ca_file;
	bool allow_insecure;
	struct conf_strv domains; /* lower case */
	bool soft_match;
	char *anchor_extension;
	struct conf_write_budget write_budget;
};

/* One *.json file of the rules directory, checked to be valid JSON. The rule engine compiles
 * it; the config module only carries it into the export and the hash. */
struct conf_rule_file {
	char *name; /* file name, e.g. "10-users.json" */
	char *path;
	char *canonical; /* its content as canonical JSON (sorted keys, compact) */
};

struct conf {
	char *path; /* the file this was loaded from */
	struct conf_sync sync;
	struct conf_ad ad;
	struct conf_graph graph;
	struct conf_rule_file *rules; /* sorted by name */
	size_t n_rules;
};

struct conf_error {
	char *file;      /* the config file, or the rule or secret file at fault */
	unsigned line;   /* 0: not about one line (a missing key, an unreadable file) */
	unsigned column; /* 0: unknown */
	char *message;
	char *text; /* "FILE:LINE: message", "FILE:LINE:COLUMN: message" or "FILE: message" */
};

struct conf_errors {
	struct conf_error *v;
	size_t n;
};

/* Load and validate a config file. Returns 0 and a config, or a negative errno: -EINVAL when
 * the file has errors, -ENOENT/-EACCES/... when it cannot be read, -ENOMEM. On failure
 * *ret_errors (when not NULL) receives every problem found, in file order; on success it is
 * set to NULL. Secret files are checked (exist, safe mode) but not read. */
int conf_load(const char *path, struct conf **ret_conf, struct conf_errors **ret_errors);
/* The same for a text in memory; `name` stands for the file name in messages. */
int conf_load_string(const char *name, const char *text, struct conf **ret_conf,
                     struct conf_errors **ret_errors);
struct conf *conf_free(struct conf *c);
struct conf_errors *conf_errors_free(struct conf_errors *e);

/* Read a secret into a fresh buffer (NUL-terminated; one trailing newline stripped). The file
 * is checked again (regular, mode, at most CONF_SECRET_MAX bytes). Keep it only as long as
 * needed and release it with secret_free(). -ENOENT if the ref is not configured, -EPERM for
 * a group- or world-accessible file, -EFBIG, -ENODATA for an empty secret. */
int conf_read_secret(const struct conf_secret_ref *ref, char **ret, size_t *ret_len);
/* Wipe (explicit_bzero) and free a secret from conf_read_secret(); takes NULL, returns NULL. */
char *secret_free(char *secret, size_t len);

/* Canonical JSON of the effective config, without secrets; see hybridsync.conf(5) "EXPORT".
 * Keys sorted, two-space indent when pretty, numbers as integers, durations in seconds.
 * for_hash: only the keys the hash covers, no "config_hash", always compact. NULL on ENOMEM. */
char *conf_export_json(const struct conf *c, bool for_hash, bool pretty);
/* Hex SHA-256 of conf_export_json(c, true, false). */
int conf_hash(const struct conf *c, char ret[CONF_HASH_HEX_SIZE]);
/* Whether a key is covered by the config hash (false for staging, interval, paths, ...). */
bool conf_key_in_hash(const char *section, const char *key);

/* An export turned back into a config for a new server. */
struct conf_import_file {
	char *name;    /* a plain file name (no '/'), to write into the rules directory */
	char *content; /* pretty canonical JSON, newline-terminated */
};

struct conf_import {
	char *conf_text; /* hybridsync.conf: staging = yes forced, server_name left to default */
	struct conf_import_file *rules;
	size_t n_rules;
};

/* Convert the text of a config export. rules_dir: the value for [sync] rules in the new
 * config, where the caller writes `rules` (NULL: keep the exported path). Refuses an export of
 * another version, with unknown keys, or whose config_hash does not match its content.
 * Returns 0, -EINVAL (problems in *ret_errors) or -ENOMEM. */
int conf_import_json(const char *json_text, const char *rules_dir, struct conf_import **ret,
                     struct conf_errors **ret_errors);
struct conf_import *conf_import_free(struct conf_import *imp);

/* Value parsers shared with the command line tools. */
int conf_parse_boolean(const char *s, bool *ret);
int conf_parse_duration(const char *s, unsigned *ret_seconds);
const char *conf_change_tracking_to_string(enum conf_change_tracking t);
const char *conf_threshold_kind_to_string(enum conf_threshold_kind k);
