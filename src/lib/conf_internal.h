/* Private to the conf module (conf*.c): the key table, value parsers, error collection. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "hybridsync/conf.h"

enum conf_section {
	CONF_SECTION_SYNC,
	CONF_SECTION_AD,
	CONF_SECTION_GRAPH,
	CONF_SECTION_MAX,
};

enum conf_type {
	CONF_TYPE_BOOL,
	CONF_TYPE_DURATION,
	CONF_TYPE_UINT,
	CONF_TYPE_NAME, /* server_name */
	CONF_TYPE_PATH,
	CONF_TYPE_SECRET,
	CONF_TYPE_LDAP_URI,
	CONF_TYPE_HTTP_URI,
	CONF_TYPE_DN,
	CONF_TYPE_DN_LIST,
	CONF_TYPE_DOMAIN_LIST,
	CONF_TYPE_GUID,
	CONF_TYPE_EXTENSION,
	CONF_TYPE_THRESHOLD,
	CONF_TYPE_WRITE_BUDGET,
	CONF_TYPE_CHANGE_TRACKING,
	CONF_TYPE_MAX,
};

#define CONF_KEY_REQUIRED    0x1u  /* must be set */
#define CONF_KEY_REPEAT      0x2u  /* may appear several times; values collect into a list */
#define CONF_KEY_NOHASH      0x4u  /* left out of the config hash */
#define CONF_KEY_EMPTY_UNSET 0x8u  /* "key =" means "not set" */
#define CONF_KEY_SECRET_FILE 0x10u /* a CONF_TYPE_SECRET whose file must not be shared */

struct conf_key {
	enum conf_section section;
	const char *name;
	enum conf_type type;
	unsigned flags;
	size_t offset;     /* of the field in struct conf */
	unsigned min, max; /* CONF_TYPE_UINT, CONF_TYPE_DURATION */
	const char *def;   /* default, parsed like a value from the file; NULL: none */
};

extern const struct conf_key conf_keys[];
extern const size_t conf_keys_count;

const char *conf_section_to_string(enum conf_section s);
const struct conf_key *conf_key_find(enum conf_section s, const char *name);

/* Error collection. Allocation failures set `oom` instead of failing each caller. */
struct conf_errlist {
	struct conf_errors *e;
	size_t allocated;
	bool oom;
	bool truncated;
};

#define CONF_ERRORS_MAX 100 /* then "too many errors" */

/* conf_error.c */
void conf_err(struct conf_errlist *el, const char *file, unsigned line, unsigned column,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The last word after CONF_ERRORS_MAX errors: added past the limit, after sorting. */
void conf_err_final(struct conf_errlist *el, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* File order: conf_file's lines, then its file-level errors, then other files as found. */
void conf_errors_sort(struct conf_errors *e, const char *conf_file);
/* conf.c */
struct conf *conf_new(void);

/* conf_value.c: parse `value` for key `k` into the field at `field`. On error returns -EINVAL
 * and writes the reason (without the key or value) into err; -EPERM likewise for a value that
 * must not be repeated in a message (it carries a password); -ENOMEM. */
int conf_value_parse(const struct conf_key *k, const char *value, void *field, char *err,
                     size_t errsize);
void conf_value_free(const struct conf_key *k, void *field);
/* Normalized DN (spaces around separators dropped); -EINVAL with a reason in err. */
int conf_dn_normalize(const char *s, char **ret, char *err, size_t errsize);
/* Whether DN `a` equals DN `b` or lies below it (RDN-wise, ASCII case-insensitive). */
bool conf_dn_is_within(const char *a, const char *b);
int conf_strv_add(struct conf_strv *l, char *s); /* takes s */
void conf_strv_sort(struct conf_strv *l);
/* A duration as the shortest of "Nd", "Nh", "Nmin" or "Ns", for configs written back. */
void conf_format_duration(unsigned seconds, char *buf, size_t size);
/* A value made printable and bounded for an error message. */
void conf_quote(const char *s, char *buf, size_t size);

/* conf_secret.c: resolve and check a secret reference after parsing. */
int conf_secret_check(struct conf_secret_ref *ref, const char *key, char *err, size_t errsize);

/* conf_json.c: canonical JSON text of a value, compact (indent < 0) or pretty, NULL on
 * ENOMEM; *ret_duplicate (optional) names a key found twice in one object. */
struct cJSON;
char *conf_json_canonical(const struct cJSON *item, int indent, const char **ret_duplicate);
int conf_sha256_hex(const char *text, char ret[CONF_HASH_HEX_SIZE]);
/* conf_json.c: a rule file name: *.json, no leading '.', letters, digits and "._-+@" only
 * (so an imported name can never leave its directory). */
bool conf_rule_file_name_ok(const char *name);
/* conf_json.c: read the rules directory into c->rules; problems go to el. */
int conf_rules_load(struct conf *c, struct conf_errlist *el, const char *conf_file, unsigned line);
