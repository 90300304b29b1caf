/* Internals of the expression module shared by expr_*.c: the AST, the function table, the
 * evaluation context, and the text, date and value helpers the functions are built from. */
#pragma once

#include "hybridsync/expr.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- AST ---------------------------------------------------------------------------------- */

enum node_kind {
	NODE_LITERAL,
	NODE_ATTR,  /* [name] */
	NODE_PARAM, /* %name% */
	NODE_VAR,   /* $name, bound by Select, Where or With */
	NODE_CALL,
	NODE_CHAIN, /* operand (op operand)*: one level of flat, left-to-right operators */
	NODE_NEG,   /* unary minus */
};

enum expr_op {
	OP_LT,
	OP_LE,
	OP_NE,
	OP_EQ,
	OP_GT,
	OP_GE,
	OP_ADD,
	OP_SUB,
	OP_MUL,
	OP_CONCAT,
	OP_AND,
	OP_OR,
	OP_MAX,
};

struct expr_func;
struct sbuf;

struct expr_node {
	enum node_kind kind;
	unsigned column;
	union {
		struct expr_value *literal;
		char *name; /* ATTR, PARAM, VAR */
		struct {
			const struct expr_func *func;
			struct expr_node **args;
			size_t nargs;
		} call;
		struct {
			struct expr_node **operands; /* nops + 1 */
			enum expr_op *ops;
			unsigned *op_columns;
			size_t nops;
		} chain;
		struct expr_node *operand; /* NEG */
	};
};

struct expr {
	struct expr_node *root;
};

struct expr_node *expr_node_free(struct expr_node *n);
const char *expr_op_to_string(enum expr_op op);

/* ---- evaluation context --------------------------------------------------------------------- */

struct expr_binding {
	const char *name; /* without '$' */
	const struct expr_value *value;
	const struct expr_binding *next;
};

struct expr_ctx {
	const struct expr_env *env;
	struct expr_error err;
	bool failed;
	const struct expr_binding *vars;
	uint64_t steps;
	uint64_t bytes;
	uint64_t rng; /* splitmix64 state in deterministic mode */
};

int ctx_fail(struct expr_ctx *ctx, const struct expr_node *at, int r, enum expr_error_kind kind,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int ctx_fail_user(struct expr_ctx *ctx, const struct expr_node *at, const char *msg, size_t len);
int ctx_oom(struct expr_ctx *ctx, const struct expr_node *at);
int ctx_random(struct expr_ctx *ctx, const struct expr_node *at, void *buf, size_t len);
int ctx_now(struct expr_ctx *ctx, const struct expr_node *at, int64_t *ret);
int ctx_eval_node(struct expr_ctx *ctx, const struct expr_node *n, struct expr_value **ret);
int ctx_errno(struct expr_ctx *ctx, const struct expr_node *at, int r, const char *what);
int eval_chain(struct expr_ctx *ctx, const struct expr_node *n, struct expr_value **ret);
int eval_neg(struct expr_ctx *ctx, const struct expr_node *n, struct expr_value **ret);

/* ---- functions ---------------------------------------------------------------------------- */

/* How an argument is passed. Scalar kinds are applied per value when a multi-valued value comes
 * in (R10: "the function operates over every value"); WHOLE arguments see the value as it is. */
enum arg_kind {
	ARG_NONE,  /* unused slot in expr_func.args: the previous kind repeats */
	ARG_STR,   /* string (numbers, booleans, DNs convert) */
	ARG_NUM,   /* number (numeric strings convert) */
	ARG_BIN,   /* binary */
	ARG_REF,   /* DN (strings convert) */
	ARG_DT,    /* datetime (date strings convert) */
	ARG_ANY,   /* any single value, the function converts */
	ARG_WHOLE, /* the value as it is, multi-valued or not: never applied per value */
};

enum func_flags {
	FUNC_SPECIAL = 1u << 0,      /* arguments are not evaluated up front (IIF, Select, ...) */
	FUNC_UNSUPPORTED = 1u << 1,  /* known name, rejected at parse time */
	FUNC_BINDER = 1u << 2,       /* first argument declares a $variable for the last one */
	FUNC_NAME_LITERAL = 1u << 3, /* first argument must be a string literal (ImportedValue) */
	FUNC_PAIRS = 1u << 4,        /* condition/value pairs (Switch) */
};

#define FUNC_ARGS_VARIADIC 0xffffu

/* A function implementation gets the evaluated arguments (scalars for scalar kinds, already
 * converted to the kind when they are not NULL) and may steal them (set args[i] = NULL). */
struct expr_func {
	const char *name;
	unsigned min_args;
	unsigned max_args;
	unsigned flags;
	enum arg_kind args[4]; /* kind of argument i; the last one repeats */
	int (*impl)(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **args,
	            size_t nargs, struct expr_value **ret);
	/* FUNC_SPECIAL: evaluates its own argument nodes */
	int (*special)(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **ret);
};

const struct expr_func *expr_func_lookup(const char *name, size_t len);
const struct expr_func *expr_func_lookup_casefold(const char *name, size_t len);
const struct expr_func *expr_func_nearest(const char *name, size_t len);
enum arg_kind expr_func_arg_kind(const struct expr_func *f, size_t i);

/* Special forms, in expr_eval_flow.c. */
int eval_iif(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **ret);
int eval_switch(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **ret);
int eval_select(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **ret);
int eval_where(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **ret);
int eval_with(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **ret);
int eval_imported(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **ret);
int eval_value_count(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **ret);

/* Shared by the evaluator and the special forms. */
int ctx_truth(struct expr_ctx *ctx, const struct expr_node *at, const struct expr_value *v,
              const char *what, bool *ret);
int ctx_flow_check(struct expr_ctx *ctx, const struct expr_node *at, const struct expr_value *v,
                   const char *where);
/* Finishes a multi-valued result: none -> NULL. Takes `mv`. */
struct expr_value *value_normalize(struct expr_value *mv);
const char *value_preview(const struct expr_value *v, char buf[64]);

/* Implementations, in expr_func_*.c. */
#define FUNC_IMPL(fn)                                                                              \
	int fn(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **args,       \
	       size_t nargs, struct expr_value **ret)

FUNC_IMPL(fn_cbool);
FUNC_IMPL(fn_cdate);
FUNC_IMPL(fn_cguid);
FUNC_IMPL(fn_convert_from_base64);
FUNC_IMPL(fn_convert_to_base64);
FUNC_IMPL(fn_convert_from_utf8hex);
FUNC_IMPL(fn_convert_to_utf8hex);
FUNC_IMPL(fn_cnum);
FUNC_IMPL(fn_cref);
FUNC_IMPL(fn_cstr);
FUNC_IMPL(fn_string_from_guid);
FUNC_IMPL(fn_string_from_sid);
FUNC_IMPL(fn_date_add);
FUNC_IMPL(fn_date_from_num);
FUNC_IMPL(fn_format_date_time);
FUNC_IMPL(fn_now);
FUNC_IMPL(fn_num_from_date);
FUNC_IMPL(fn_dn_component);
FUNC_IMPL(fn_dn_component_rev);
FUNC_IMPL(fn_escape_dn_component);
FUNC_IMPL(fn_is_bit_set);
FUNC_IMPL(fn_is_date);
FUNC_IMPL(fn_is_empty);
FUNC_IMPL(fn_is_guid);
FUNC_IMPL(fn_is_null);
FUNC_IMPL(fn_is_null_or_empty);
FUNC_IMPL(fn_is_numeric);
FUNC_IMPL(fn_is_present);
FUNC_IMPL(fn_is_string);
FUNC_IMPL(fn_bit_and);
FUNC_IMPL(fn_bit_or);
FUNC_IMPL(fn_random_num);
FUNC_IMPL(fn_contains);
FUNC_IMPL(fn_count);
FUNC_IMPL(fn_item);
FUNC_IMPL(fn_item_or_null);
FUNC_IMPL(fn_join);
FUNC_IMPL(fn_remove_duplicates);
FUNC_IMPL(fn_split);
FUNC_IMPL(fn_error);
FUNC_IMPL(fn_guid);
FUNC_IMPL(fn_instr);
FUNC_IMPL(fn_instr_rev);
FUNC_IMPL(fn_lcase);
FUNC_IMPL(fn_left);
FUNC_IMPL(fn_len);
FUNC_IMPL(fn_ltrim);
FUNC_IMPL(fn_mid);
FUNC_IMPL(fn_pad_left);
FUNC_IMPL(fn_pad_right);
FUNC_IMPL(fn_pcase);
FUNC_IMPL(fn_replace);
FUNC_IMPL(fn_replace_chars);
FUNC_IMPL(fn_right);
FUNC_IMPL(fn_rtrim);
FUNC_IMPL(fn_trim);
FUNC_IMPL(fn_ucase);
FUNC_IMPL(fn_word);

/* Helpers for implementations (expr_func.c). */
int func_return(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value *v,
                struct expr_value **ret); /* takes v; NULL v is out of memory */
int func_null(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **ret);
int func_string(struct expr_ctx *ctx, const struct expr_node *call, const char *s, size_t len,
                struct expr_value **ret);
int func_number_arg(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **args,
                    size_t i, int64_t *ret); /* a NULL argument is an error */
int func_fail_value(struct expr_ctx *ctx, const struct expr_node *call, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int func_sbuf_return(struct expr_ctx *ctx, const struct expr_node *call, struct sbuf *b,
                     struct expr_value **ret);
bool func_is_null(const struct expr_value *v);
int guid_parse(const char *s, size_t len, uint8_t out[16]);

/* ---- values and conversions (expr_value.c, expr_convert.c) --------------------------------- */

struct expr_value *value_new_string_owned(char *s, size_t len); /* takes s, even on failure */
size_t value_size(const struct expr_value *v); /* bytes, for the evaluation budget */
bool value_is_flow(const struct expr_value *v);

/* Conversions between the kinds, as the operators and functions use them. They return 0 and a
 * result, or -EINVAL when the value cannot be converted (the caller reports the error). */
int value_to_number(const struct expr_value *v, int64_t *ret);
int value_to_bool(const struct expr_value *v, bool *ret);
int value_to_datetime(const struct expr_value *v, int64_t *ret);
int value_to_string(const struct expr_value *v, struct expr_value **ret); /* CStr rules */
bool string_to_number(const char *s, size_t len, int64_t *ret);

/* Compares two single values as the operators do. Returns 0 and *ret (<0, 0, >0), or -EINVAL
 * when the two are not comparable. NULLs are handled by the caller. */
int value_compare_op(const struct expr_value *a, const struct expr_value *b, int *ret);

/* ---- text (expr_text.c) ------------------------------------------------------------------------
 */

/* A growing string with a maximum; errors stick (-ENOMEM, -E2BIG) and are returned at the end. */
struct sbuf {
	char *data;
	size_t len;
	size_t cap;
	int error;
};

void sbuf_append(struct sbuf *b, const void *s, size_t n);
void sbuf_append_cp(struct sbuf *b, uint32_t cp);
void sbuf_append_repeat(struct sbuf *b, const void *s, size_t n, size_t times);
void sbuf_append_str(struct sbuf *b, const char *s);
void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the buffer as a string value (0) or the sticky error; the buffer is consumed. */
int sbuf_finish(struct sbuf *b, struct expr_value **ret);
void sbuf_done(struct sbuf *b);

uint32_t utf8_next(const char *s, size_t len, size_t *i); /* invalid byte: U+FFFD, 1 byte */
size_t utf8_encode(uint32_t cp, char out[4]);
size_t utf8_length(const char *s, size_t len);               /* in characters */
size_t utf8_offset(const char *s, size_t len, size_t chars); /* byte offset of char n */
bool utf8_valid(const char *s, size_t len);
uint32_t cp_lower(uint32_t cp);
uint32_t cp_upper(uint32_t cp);
bool cp_is_space(uint32_t cp);

int base64_encode(const uint8_t *in, size_t len, struct expr_value **ret);
int base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len);
int utf8_to_utf16le(const char *s, size_t len, uint8_t **ret, size_t *ret_len);

/* ---- dates (expr_date.c) --------------------------------------------------------------------- */

#define FILETIME_PER_SECOND 10000000LL
#define DATETIME_MIN        (-504911232000000000LL) /* 0001-01-01 00:00:00 */
#define DATETIME_MAX        (2650467743999999999LL) /* 9999-12-31 23:59:59.9999999 */

struct civil {
	int year, month, day, hour, minute, second;
	int ticks; /* 100 ns within the second */
};

int datetime_from_civil(const struct civil *c, int64_t *ret);
void datetime_to_civil(int64_t t, struct civil *ret);
int datetime_parse(const char *s, size_t len, int64_t *ret);
int datetime_format(int64_t t, const char *fmt, size_t fmt_len, struct expr_value **ret);
int datetime_add(int64_t t, const char *interval, int64_t n, int64_t *ret);
