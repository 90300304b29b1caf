/* The expression evaluator: walks the AST with a bounded budget, applies operators left to
 * right, and applies single-valued functions and operators to every value of a multi-valued
 * input (R10), dropping NULL results. */
#include "expr_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define UNIX_EPOCH_FILETIME 116444736000000000LL

/* ---- context --------------------------------------------------------------------------------- */

static int ctx_failv(struct expr_ctx *ctx, const struct expr_node *at, int r,
                     enum expr_error_kind kind, const char *fmt, va_list ap)
{
	size_t n = 0;
	int k;

	if (ctx->failed)
		return r;
	ctx->failed = true;
	ctx->err.kind = kind;
	ctx->err.column = at ? at->column : 0;
	if (at) {
		k = snprintf(ctx->err.message, sizeof(ctx->err.message), "column %u: ", at->column);
		if (k > 0 && (size_t)k < sizeof(ctx->err.message))
			n = (size_t)k;
	}
	vsnprintf(ctx->err.message + n, sizeof(ctx->err.message) - n, fmt, ap);
	return r;
}

int ctx_fail(struct expr_ctx *ctx, const struct expr_node *at, int r, enum expr_error_kind kind,
             const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	r = ctx_failv(ctx, at, r, kind, fmt, ap);
	va_end(ap);
	return r;
}

int ctx_fail_user(struct expr_ctx *ctx, const struct expr_node *at, const char *msg, size_t len)
{
	if (ctx->failed)
		return -EINVAL;
	ctx->failed = true;
	ctx->err.kind = EXPR_ERROR_USER;
	ctx->err.column = at->column;
	if (len >= sizeof(ctx->err.message))
		len = sizeof(ctx->err.message) - 1;
	memcpy(ctx->err.message, msg, len);
	ctx->err.message[len] = '\0';
	return -EINVAL;
}

int ctx_oom(struct expr_ctx *ctx, const struct expr_node *at)
{
	return ctx_fail(ctx, at, -ENOMEM, EXPR_ERROR_LIMIT, "out of memory");
}

int ctx_errno(struct expr_ctx *ctx, const struct expr_node *at, int r, const char *what)
{
	if (r == -ENOMEM)
		return ctx_oom(ctx, at);
	if (r == -E2BIG)
		return ctx_fail(ctx, at, r, EXPR_ERROR_LIMIT, "%s: result larger than %u bytes",
		                what, EXPR_STRING_MAX);
	return ctx_fail(ctx, at, r, EXPR_ERROR_VALUE, "%s: %s", what, strerror(-r));
}

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

int ctx_random(struct expr_ctx *ctx, const struct expr_node *at, void *buf, size_t len)
{
	uint8_t *p = buf;

	if (ctx->env && (ctx->env->flags & EXPR_ENV_DETERMINISTIC)) {
		for (size_t i = 0; i < len; i += 8) {
			uint64_t w = splitmix64(&ctx->rng);
			size_t n = len - i < 8 ? len - i : 8;
			memcpy(p + i, &w, n);
		}
		return 0;
	}
	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ctx_fail(ctx, at, -errno, EXPR_ERROR_VALUE, "no random numbers: %s",
			                strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ctx_now(struct expr_ctx *ctx, const struct expr_node *at, int64_t *ret)
{
	struct timespec ts;

	if (ctx->env && (ctx->env->flags & EXPR_ENV_DETERMINISTIC)) {
		*ret = ctx->env->now;
		return 0;
	}
	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return ctx_fail(ctx, at, -errno, EXPR_ERROR_VALUE, "no clock: %s", strerror(errno));
	*ret = (int64_t)ts.tv_sec * FILETIME_PER_SECOND + ts.tv_nsec / 100 + UNIX_EPOCH_FILETIME;
	return 0;
}

/* ---- helpers shared with the functions ------------------------------------------------------- */

const char *value_preview(const struct expr_value *v, char buf[64])
{
	switch (v->type) {
	case EXPR_VALUE_STRING:
	case EXPR_VALUE_REFERENCE: {
		size_t n = v->string.len > 40 ? utf8_offset(v->string.data, v->string.len, 37)
		                              : v->string.len;
		snprintf(buf, 64, "%s \"%.*s%s\"", expr_value_type_to_string(v->type), (int)n,
		         v->string.data, n < v->string.len ? "..." : "");
		return buf;
	}
	case EXPR_VALUE_NUMBER:
		snprintf(buf, 64, "number %" PRId64, v->number);
		return buf;
	case EXPR_VALUE_BOOLEAN:
		return v->boolean ? "boolean True" : "boolean False";
	case EXPR_VALUE_BINARY:
		snprintf(buf, 64, "binary (%zu bytes)", v->binary.len);
		return buf;
	case EXPR_VALUE_MULTI:
		snprintf(buf, 64, "multi-valued (%zu values)", v->multi.count);
		return buf;
	case EXPR_VALUE_NULL:
		return "NULL";
	default:
		return expr_value_type_to_string(v->type);
	}
}

struct expr_value *value_normalize(struct expr_value *mv)
{
	if (mv && mv->type == EXPR_VALUE_MULTI && mv->multi.count == 0) {
		expr_value_free(mv);
		return expr_value_new_null();
	}
	return mv;
}

int ctx_flow_check(struct expr_ctx *ctx, const struct expr_node *at, const struct expr_value *v,
                   const char *where)
{
	if (!value_is_flow(v))
		return 0;
	return ctx_fail(ctx, at, -EINVAL, EXPR_ERROR_TYPE,
	                "%s cannot be used %s; it can only be the result of a flow",
	                expr_value_type_to_string(v->type), where);
}

int ctx_truth(struct expr_ctx *ctx, const struct expr_node *at, const struct expr_value *v,
              const char *what, bool *ret)
{
	char buf[64];

	if (v->type == EXPR_VALUE_NULL) {
		*ret = false;
		return 0;
	}
	if (ctx_flow_check(ctx, at, v, what) < 0)
		return -EINVAL;
	if (v->type == EXPR_VALUE_MULTI || value_to_bool(v, ret) < 0)
		return ctx_fail(ctx, at, -EINVAL, EXPR_ERROR_TYPE, "%s must be a boolean, got %s",
		                what, value_preview(v, buf));
	return 0;
}

/* ---- leaves ------------------------------------------------------------------------------------
 */

static int check_value(const struct expr_value *v, bool top)
{
	if (!v || v->type < 0 || v->type >= EXPR_VALUE_TYPE_MAX)
		return -EINVAL;
	switch (v->type) {
	case EXPR_VALUE_STRING:
	case EXPR_VALUE_REFERENCE:
		return v->string.data && v->string.len <= EXPR_STRING_MAX ? 0 : -EINVAL;
	case EXPR_VALUE_BINARY:
		return (v->binary.data || !v->binary.len) && v->binary.len <= EXPR_STRING_MAX
		           ? 0
		           : -EINVAL;
	case EXPR_VALUE_MULTI:
		if (!top || v->multi.count > EXPR_MULTI_MAX || (v->multi.count && !v->multi.items))
			return -EINVAL;
		for (size_t i = 0; i < v->multi.count; i++) {
			const struct expr_value *item = v->multi.items[i];
			if (!item || item->type == EXPR_VALUE_NULL || value_is_flow(item) ||
			    check_value(item, false) < 0)
				return -EINVAL;
		}
		return 0;
	case EXPR_VALUE_NULL:
		return 0;
	default:
		return value_is_flow(v) ? -EINVAL : 0;
	}
}

/* Calls one of the env's lookup callbacks and vets what comes back. */
static int lookup(struct expr_ctx *ctx, const struct expr_node *at,
                  int (*fn)(void *, const char *, struct expr_value **), const char *name,
                  const char *what, struct expr_value **ret)
{
	struct expr_value *v = NULL;
	int r;

	r = fn(ctx->env->userdata, name, &v);
	if (r == -ENOENT || (r >= 0 && !v)) {
		expr_value_free(v);
		return -ENOENT;
	}
	if (r < 0)
		return ctx_fail(ctx, at, r, EXPR_ERROR_LOOKUP, "Failed to read %s '%s': %s", what,
		                name, strerror(-r));
	if (check_value(v, true) < 0) {
		expr_value_free(v);
		return ctx_fail(ctx, at, -EINVAL, EXPR_ERROR_LOOKUP, "%s '%s' has an invalid value",
		                what, name);
	}
	*ret = value_normalize(v);
	return *ret ? 0 : ctx_oom(ctx, at);
}

static int eval_attr(struct expr_ctx *ctx, const struct expr_node *n, struct expr_value **ret)
{
	struct expr_value *v;
	int r = -ENOENT;

	if (ctx->env && ctx->env->get_attr)
		r = lookup(ctx, n, ctx->env->get_attr, n->name, "attribute", &v);
	if (r == -ENOENT) {
		v = expr_value_new_null();
		if (!v)
			return ctx_oom(ctx, n);
		r = 0;
	}
	if (r < 0)
		return r;
	*ret = v;
	return 0;
}

static int eval_param(struct expr_ctx *ctx, const struct expr_node *n, struct expr_value **ret)
{
	int r = -ENOENT;

	if (ctx->env && ctx->env->get_param)
		r = lookup(ctx, n, ctx->env->get_param, n->name, "parameter", ret);
	if (r == -ENOENT)
		return ctx_fail(ctx, n, -EINVAL, EXPR_ERROR_LOOKUP,
		                "parameter %%%s%% is not defined", n->name);
	return r;
}

int eval_imported(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **ret)
{
	const char *name = call->call.args[0]->literal->string.data;
	struct expr_value *v;
	int r = -ENOENT;

	if (ctx->env && ctx->env->get_imported)
		r = lookup(ctx, call, ctx->env->get_imported, name, "imported value", &v);
	if (r == -ENOENT) {
		v = expr_value_new_null();
		if (!v)
			return ctx_oom(ctx, call);
		r = 0;
	}
	if (r < 0)
		return r;
	*ret = v;
	return 0;
}

/* ValueCount("attr"): the number of values of an attribute. Not in R8, but the out-of-box group
 * rules use it for memberCount (R15). */
int eval_value_count(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **ret)
{
	const char *name = call->call.args[0]->literal->string.data;
	struct expr_value *v = NULL;
	size_t n = 0;
	int r = -ENOENT;

	if (ctx->env && ctx->env->get_attr)
		r = lookup(ctx, call, ctx->env->get_attr, name, "attribute", &v);
	if (r < 0 && r != -ENOENT)
		return r;
	if (r >= 0)
		n = expr_value_count(v);
	expr_value_free(v);
	*ret = expr_value_new_number((int64_t)n);
	return *ret ? 0 : ctx_oom(ctx, call);
}

static int eval_var(struct expr_ctx *ctx, const struct expr_node *n, struct expr_value **ret)
{
	for (const struct expr_binding *b = ctx->vars; b; b = b->next)
		if (strcmp(b->name, n->name) == 0)
			return expr_value_copy(b->value, ret) < 0 ? ctx_oom(ctx, n) : 0;
	/* the parser only accepts bound variables */
	return ctx_fail(ctx, n, -EINVAL, EXPR_ERROR_VALUE, "unknown variable '$%s'", n->name);
}

/* ---- function calls ---------------------------------------------------------------------------
 */

static bool is_scalar_kind(enum arg_kind k)
{
	return k != ARG_WHOLE;
}

static const char *kind_name(enum arg_kind k)
{
	switch (k) {
	case ARG_STR:
		return "a string";
	case ARG_NUM:
		return "a number";
	case ARG_BIN:
		return "a binary value";
	case ARG_REF:
		return "a reference (DN)";
	case ARG_DT:
		return "a date";
	default:
		return "a value";
	}
}

/* Converts a single, non-NULL argument to its kind, in place. */
static int convert_arg(struct expr_ctx *ctx, const struct expr_node *call, size_t i,
                       enum arg_kind k, struct expr_value **slot)
{
	struct expr_value *v = *slot, *c = NULL;
	int64_t n;
	char buf[64];

	if (v->type == EXPR_VALUE_NULL || v->type == EXPR_VALUE_MULTI)
		return 0;
	switch (k) {
	case ARG_STR:
		if (v->type == EXPR_VALUE_STRING)
			return 0;
		if (v->type == EXPR_VALUE_REFERENCE) {
			v->type = EXPR_VALUE_STRING;
			return 0;
		}
		if (value_to_string(v, &c) < 0)
			goto mismatch;
		break;
	case ARG_NUM:
		if (v->type == EXPR_VALUE_NUMBER)
			return 0;
		if (value_to_number(v, &n) < 0)
			goto mismatch;
		c = expr_value_new_number(n);
		break;
	case ARG_BIN:
		if (v->type != EXPR_VALUE_BINARY)
			goto mismatch;
		return 0;
	case ARG_REF:
		if (v->type == EXPR_VALUE_REFERENCE)
			return 0;
		if (v->type != EXPR_VALUE_STRING)
			goto mismatch;
		v->type = EXPR_VALUE_REFERENCE;
		return 0;
	case ARG_DT:
		if (v->type == EXPR_VALUE_DATETIME)
			return 0;
		if (value_to_datetime(v, &n) < 0)
			goto mismatch;
		c = expr_value_new_datetime(n);
		break;
	default:
		return 0;
	}
	if (!c)
		return ctx_oom(ctx, call);
	expr_value_free(v);
	*slot = c;
	return 0;
mismatch:
	return ctx_fail(ctx, call, -EINVAL, EXPR_ERROR_TYPE, "%s: argument %zu must be %s, got %s",
	                call->call.func->name, i + 1, kind_name(k), value_preview(v, buf));
}

static int call_once(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **args,
                     size_t nargs, struct expr_value **ret)
{
	const struct expr_func *f = call->call.func;
	struct expr_value *v = NULL;
	int r;

	for (size_t i = 0; i < nargs; i++) {
		r = convert_arg(ctx, call, i, expr_func_arg_kind(f, i), &args[i]);
		if (r < 0)
			return r;
	}
	r = f->impl(ctx, call, args, nargs, &v);
	if (r < 0) {
		expr_value_free(v);
		if (!ctx->failed)
			return ctx_errno(ctx, call, r, f->name);
		return r;
	}
	*ret = v;
	return 0;
}

/* A single-valued function met a multi-valued argument: call it once per value (index by index
 * when several arguments are multi-valued) and collect the results. */
static int call_mapped(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **args,
                       size_t nargs, size_t count, struct expr_value **ret)
{
	const struct expr_func *f = call->call.func;
	struct expr_value *sub[EXPR_ARGS_MAX], *out, *v;
	int r = 0;

	out = expr_value_new_multi();
	if (!out)
		return ctx_oom(ctx, call);
	for (size_t k = 0; k < count && r >= 0; k++) {
		memset(sub, 0, sizeof(sub));
		for (size_t i = 0; i < nargs && r >= 0; i++) {
			const struct expr_value *src = args[i];
			if (is_scalar_kind(expr_func_arg_kind(f, i)) &&
			    src->type == EXPR_VALUE_MULTI)
				src = src->multi.items[k];
			if (expr_value_copy(src, &sub[i]) < 0)
				r = ctx_oom(ctx, call);
		}
		if (r >= 0)
			r = call_once(ctx, call, sub, nargs, &v);
		if (r >= 0 && (r = expr_value_append(out, v)) < 0)
			r = ctx_errno(ctx, call, r, f->name);
		if (r >= 0 && (ctx->steps += 1) > EXPR_EVAL_STEPS_MAX)
			r = ctx_fail(ctx, call, -E2BIG, EXPR_ERROR_LIMIT,
			             "evaluation took more than %u steps", EXPR_EVAL_STEPS_MAX);
		for (size_t i = 0; i < nargs; i++)
			expr_value_free(sub[i]);
	}
	if (r < 0) {
		expr_value_free(out);
		return r;
	}
	*ret = value_normalize(out);
	return *ret ? 0 : ctx_oom(ctx, call);
}

static int eval_call(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **ret)
{
	const struct expr_func *f = call->call.func;
	struct expr_value *args[EXPR_ARGS_MAX] = {0};
	size_t nargs = call->call.nargs, count = 0;
	char where[96];
	int r = 0;

	if (f->flags & FUNC_SPECIAL)
		return f->special(ctx, call, ret);
	snprintf(where, sizeof(where), "as an argument of %s", f->name);
	for (size_t i = 0; i < nargs && r >= 0; i++) {
		r = ctx_eval_node(ctx, call->call.args[i], &args[i]);
		if (r >= 0)
			r = ctx_flow_check(ctx, call->call.args[i], args[i], where);
		if (r < 0 || args[i]->type != EXPR_VALUE_MULTI ||
		    !is_scalar_kind(expr_func_arg_kind(f, i)))
			continue;
		if (count && args[i]->multi.count != count)
			r = ctx_fail(
			    ctx, call, -EINVAL, EXPR_ERROR_VALUE,
			    "%s: multi-valued arguments have different sizes (%zu and %zu)",
			    f->name, count, args[i]->multi.count);
		count = args[i]->multi.count;
	}
	if (r >= 0)
		r = count ? call_mapped(ctx, call, args, nargs, count, ret)
		          : call_once(ctx, call, args, nargs, ret);
	for (size_t i = 0; i < nargs; i++)
		expr_value_free(args[i]);
	return r;
}

/* ---- entry points ------------------------------------------------------------------------------
 */

int ctx_eval_node(struct expr_ctx *ctx, const struct expr_node *n, struct expr_value **ret)
{
	struct expr_value *v = NULL;
	int r;

	if (++ctx->steps > EXPR_EVAL_STEPS_MAX)
		return ctx_fail(ctx, n, -E2BIG, EXPR_ERROR_LIMIT,
		                "evaluation took more than %u steps", EXPR_EVAL_STEPS_MAX);
	switch (n->kind) {
	case NODE_LITERAL:
		r = expr_value_copy(n->literal, &v) < 0 ? ctx_oom(ctx, n) : 0;
		break;
	case NODE_ATTR:
		r = eval_attr(ctx, n, &v);
		break;
	case NODE_PARAM:
		r = eval_param(ctx, n, &v);
		break;
	case NODE_VAR:
		r = eval_var(ctx, n, &v);
		break;
	case NODE_CALL:
		r = eval_call(ctx, n, &v);
		break;
	case NODE_CHAIN:
		r = eval_chain(ctx, n, &v);
		break;
	case NODE_NEG:
		r = eval_neg(ctx, n, &v);
		break;
	default:
		r = ctx_fail(ctx, n, -EINVAL, EXPR_ERROR_VALUE, "corrupt expression");
		break;
	}
	if (r < 0) {
		expr_value_free(v);
		return r;
	}
	if (!v)
		return ctx_oom(ctx, n);
	ctx->bytes += value_size(v);
	if (ctx->bytes > EXPR_EVAL_BYTES_MAX) {
		expr_value_free(v);
		return ctx_fail(ctx, n, -E2BIG, EXPR_ERROR_LIMIT,
		                "evaluation produced more than %u bytes of values",
		                EXPR_EVAL_BYTES_MAX);
	}
	*ret = v;
	return 0;
}

int expr_eval(const struct expr *e, const struct expr_env *env, struct expr_value **ret,
              struct expr_error *ret_err)
{
	struct expr_ctx ctx = {.env = env};
	struct expr_value *v = NULL;
	int r;

	if (!e || !ret)
		return -EINVAL;
	if (env)
		ctx.rng = env->seed;
	r = ctx_eval_node(&ctx, e->root, &v);
	if (r >= 0) {
		v = value_normalize(v);
		if (!v)
			r = ctx_oom(&ctx, e->root);
	}
	if (r < 0) {
		expr_value_free(v);
		if (!ctx.failed)
			ctx_fail(&ctx, e->root, r, EXPR_ERROR_VALUE, "%s", strerror(-r));
		if (ret_err)
			*ret_err = ctx.err;
		return r;
	}
	*ret = v;
	return 0;
}
