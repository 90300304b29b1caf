/* hybridsync expressions: Entra Connect's declarative provisioning language (a VBA subset) parsed
 * into an AST and evaluated against attribute values the caller supplies through callbacks.
 * No store, LDAP or rule-engine types appear here; see hybridsync.rules(5), EXPRESSIONS. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds. Everything fed from a rule file or a directory has a maximum. */
#define EXPR_TEXT_MAX          65536u       /* bytes of expression text */
#define EXPR_DEPTH_MAX         64u          /* nesting of calls, parentheses and unary minus */
#define EXPR_ARGS_MAX          64u          /* arguments of one call */
#define EXPR_NAME_MAX          256u         /* bytes of an attribute, parameter or variable name */
#define EXPR_STRING_MAX        (4u << 20)   /* bytes of one string or binary value */
#define EXPR_MULTI_MAX         (1u << 20)   /* values of one multi-valued value */
#define EXPR_EVAL_STEPS_MAX    10000000u    /* node evaluations per expr_eval() */
#define EXPR_EVAL_BYTES_MAX    (256u << 20) /* bytes of values produced per expr_eval() */
#define EXPR_ERROR_MESSAGE_MAX 512u

enum expr_value_type {
	EXPR_VALUE_NULL,   /* no value: an absent attribute, the NULL literal */
	EXPR_VALUE_STRING, /* UTF-8 text */
	EXPR_VALUE_NUMBER, /* int64 */
	EXPR_VALUE_BOOLEAN,
	EXPR_VALUE_BINARY,    /* bytes (objectGUID, objectSid, ...) */
	EXPR_VALUE_DATETIME,  /* UTC, 100 ns ticks since 1601-01-01 (Windows FILETIME) */
	EXPR_VALUE_REFERENCE, /* a DN */
	EXPR_VALUE_MULTI,     /* one or more values of the kinds above (never nested, never empty
	                       * when produced by the evaluator: no values is EXPR_VALUE_NULL) */
	/* Flow-level literals: only meaningful as the result of an attribute flow. */
	EXPR_VALUE_IGNORE_THIS_FLOW,   /* contribute nothing, keep the target's value */
	EXPR_VALUE_AUTHORITATIVE_NULL, /* remove the value, lower-precedence rules may not
	                                  contribute */
	EXPR_VALUE_TYPE_MAX,
};

struct expr_value {
	enum expr_value_type type;
	union {
		int64_t number;
		bool boolean;
		int64_t datetime;
		struct {
			char *data; /* NUL-terminated; may also contain NUL bytes, len is
			               authoritative */
			size_t len;
		} string; /* EXPR_VALUE_STRING and EXPR_VALUE_REFERENCE */
		struct {
			uint8_t *data;
			size_t len;
		} binary;
		struct {
			struct expr_value **items;
			size_t count;
		} multi;
	};
};

enum expr_error_kind {
	EXPR_ERROR_NONE,
	EXPR_ERROR_SYNTAX, /* expr_parse(): the text is not a valid expression */
	EXPR_ERROR_LIMIT,  /* a bound above was exceeded */
	EXPR_ERROR_TYPE,   /* a value of the wrong type reached an operator or a function */
	EXPR_ERROR_VALUE, /* a value of the right type that cannot be used (bad GUID, index, ...) */
	EXPR_ERROR_USER,  /* Error("...") was evaluated: message is its argument, verbatim */
	EXPR_ERROR_LOOKUP, /* an attribute, parameter or imported-value callback failed */
	EXPR_ERROR_MAX,
};

/* Written by expr_parse() and expr_eval() on failure only. `message` starts with "column N: "
 * except for EXPR_ERROR_USER, where it is the Error() argument as written by the rule author. */
struct expr_error {
	enum expr_error_kind kind;
	unsigned column; /* 1-based, in characters of the expression text; 0: the whole text */
	char message[EXPR_ERROR_MESSAGE_MAX];
};

/* Deterministic mode: Now() returns `now`, Guid() and RandomNum() draw from a generator seeded
 * with `seed` at the start of every expr_eval(), so equal inputs give equal outputs. */
#define EXPR_ENV_DETERMINISTIC 0x1u

/* What an evaluation may see. Every callback may be NULL. Each callback returns 0 and stores a
 * new value in *ret (owned by the evaluator afterwards), or -ENOENT when the name has no value
 * (an absent attribute is NULL; an undefined parameter is an error), or another negative errno.
 *   get_attr:     [name]
 *   get_param:    %name%
 *   get_imported: ImportedValue("name"), the values confirmed by the last import; when this
 *                 callback is NULL, ImportedValue() returns NULL. */
struct expr_env {
	int (*get_attr)(void *userdata, const char *name, struct expr_value **ret);
	int (*get_param)(void *userdata, const char *name, struct expr_value **ret);
	int (*get_imported)(void *userdata, const char *name, struct expr_value **ret);
	void *userdata;
	unsigned flags; /* EXPR_ENV_* */
	int64_t now;    /* FILETIME for Now() in deterministic mode */
	uint64_t seed;  /* for Guid() and RandomNum() in deterministic mode */
};

struct expr; /* a parsed expression, immutable; may be evaluated concurrently */

const char *expr_value_type_to_string(enum expr_value_type t);
const char *expr_error_kind_to_string(enum expr_error_kind k);

/* Values. Constructors return NULL when out of memory (or, for strings and binaries, over
 * EXPR_STRING_MAX). expr_value_free() takes NULL and returns NULL. */
struct expr_value *expr_value_new_null(void);
struct expr_value *expr_value_new_string(const char *s);
struct expr_value *expr_value_new_string_len(const char *s, size_t len);
struct expr_value *expr_value_new_number(int64_t n);
struct expr_value *expr_value_new_boolean(bool b);
struct expr_value *expr_value_new_binary(const void *data, size_t len);
struct expr_value *expr_value_new_datetime(int64_t filetime);
struct expr_value *expr_value_new_reference(const char *dn);
struct expr_value *expr_value_new_multi(void); /* empty; fill with expr_value_append() */
struct expr_value *expr_value_new_ignore_this_flow(void);
struct expr_value *expr_value_new_authoritative_null(void);
struct expr_value *expr_value_free(struct expr_value *v);

/* Appends `item` to a multi-valued value and takes ownership of it, even on failure. A
 * multi-valued item is flattened into `multi`, a NULL item is dropped. -EINVAL if `multi` is not
 * multi-valued, -E2BIG past EXPR_MULTI_MAX values. */
int expr_value_append(struct expr_value *multi, struct expr_value *item);

int expr_value_copy(const struct expr_value *v, struct expr_value **ret);

/* Number of values: 0 for NULL and the flow literals, the item count for a multi-valued value,
 * 1 otherwise; and the i-th of them (a single value is its own item 0). */
size_t expr_value_count(const struct expr_value *v);
const struct expr_value *expr_value_item(const struct expr_value *v, size_t i);

/* A total order for sorting and diffing (type first, then content, byte-wise); 0 = identical.
 * This is not the `=` operator of the language, which converts between types. */
int expr_value_compare(const struct expr_value *a, const struct expr_value *b);
bool expr_value_equal(const struct expr_value *a, const struct expr_value *b);

/* Renders a value for people (logs, `hybridsyncctl show`): strings and DNs as they are, numbers
 * in decimal, True/False, binaries in base64, datetimes as "yyyy-MM-dd HH:mm:ss", multi-valued
 * values as "a; b; c", NULL and the flow literals by their names. *ret is a new string. */
int expr_value_to_string(const struct expr_value *v, char **ret);

/* Parses `text`. Returns 0, -EINVAL on a syntax error, -E2BIG over a bound, -ENOMEM. */
int expr_parse(const char *text, struct expr **ret, struct expr_error *ret_err);
struct expr *expr_free(struct expr *e);

/* Evaluates `e`. `env` may be NULL (no attributes, no parameters). Returns 0 and a new value in
 * *ret: EXPR_VALUE_NULL when there is nothing to contribute, a flow literal when the expression
 * says so. On failure returns -EINVAL (type, value or Error()), -E2BIG (a bound), -ENOMEM, or the
 * negative errno of a failed callback, and fills *ret_err. */
int expr_eval(const struct expr *e, const struct expr_env *env, struct expr_value **ret,
              struct expr_error *ret_err);

/* Calls cb for every attribute the expression reads: [name] (imported = false) and
 * ImportedValue("name") (imported = true), in text order, duplicates included. Stops at and
 * returns the first negative value cb returns. */
int expr_foreach_attribute(const struct expr *e,
                           int (*cb)(void *userdata, const char *name, bool imported),
                           void *userdata);

/* The functions the language knows, for documentation and tests: the i-th name in alphabetical
 * order, NULL past the end. Unsupported ones (the Cert* family) are listed with supported = false.
 */
const char *expr_function_name(size_t i, bool *ret_supported);
