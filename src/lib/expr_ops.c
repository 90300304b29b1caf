/* Operators of the expression language: concatenation, integer arithmetic, comparisons and the
 * logical operators, applied value by value to multi-valued operands, and the operator chains
 * the parser builds (one priority per level, left to right). */
#include "expr_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- operators ----------------------------------------------------------------------------------
 */

const char *expr_op_to_string(enum expr_op op)
{
	static const char *const names[OP_MAX] = {
	    [OP_LT] = "<",  [OP_LE] = "<=",    [OP_NE] = "<>",  [OP_EQ] = "=",
	    [OP_GT] = ">",  [OP_GE] = ">=",    [OP_ADD] = "+",  [OP_SUB] = "-",
	    [OP_MUL] = "*", [OP_CONCAT] = "&", [OP_AND] = "&&", [OP_OR] = "||",
	};
	return (op >= 0 && op < OP_MAX) ? names[op] : NULL;
}

static int op_concat(struct expr_ctx *ctx, const struct expr_node *at, const struct expr_value *a,
                     const struct expr_value *b, struct expr_value **ret)
{
	const struct expr_value *side[2] = {a, b};
	struct sbuf out = {0};
	char buf[64];
	int r;

	if (a->type == EXPR_VALUE_NULL && b->type == EXPR_VALUE_NULL) {
		*ret = expr_value_new_null();
		return *ret ? 0 : ctx_oom(ctx, at);
	}
	for (int i = 0; i < 2; i++) {
		struct expr_value *s;
		if (side[i]->type == EXPR_VALUE_NULL)
			continue; /* NULL & "x" is "x", as in VBA */
		if (value_to_string(side[i], &s) < 0) {
			sbuf_done(&out);
			return ctx_fail(ctx, at, -EINVAL, EXPR_ERROR_TYPE,
			                "operator '&' cannot concatenate %s",
			                value_preview(side[i], buf));
		}
		sbuf_append(&out, s->string.data, s->string.len);
		expr_value_free(s);
	}
	r = sbuf_finish(&out, ret);
	return r < 0 ? ctx_errno(ctx, at, r, "operator '&'") : 0;
}

static int op_arith(struct expr_ctx *ctx, const struct expr_node *at, enum expr_op op,
                    const struct expr_value *a, const struct expr_value *b, struct expr_value **ret)
{
	int64_t x, y, z;
	char buf[64];
	bool overflow;

	if (a->type == EXPR_VALUE_NULL || b->type == EXPR_VALUE_NULL) {
		*ret = expr_value_new_null();
		return *ret ? 0 : ctx_oom(ctx, at);
	}
	if (value_to_number(a, &x) < 0 || value_to_number(b, &y) < 0) {
		/* "a" + "b": VBA's + concatenates two strings that are not numbers */
		if (op == OP_ADD && a->type == EXPR_VALUE_STRING && b->type == EXPR_VALUE_STRING)
			return op_concat(ctx, at, a, b, ret);
		return ctx_fail(ctx, at, -EINVAL, EXPR_ERROR_TYPE,
		                "operator '%s' needs numbers, got %s", expr_op_to_string(op),
		                value_preview(value_to_number(a, &x) < 0 ? a : b, buf));
	}
	if (op == OP_ADD)
		overflow = __builtin_add_overflow(x, y, &z);
	else if (op == OP_SUB)
		overflow = __builtin_sub_overflow(x, y, &z);
	else
		overflow = __builtin_mul_overflow(x, y, &z);
	if (overflow)
		return ctx_fail(ctx, at, -ERANGE, EXPR_ERROR_VALUE,
		                "operator '%s': numeric overflow", expr_op_to_string(op));
	*ret = expr_value_new_number(z);
	return *ret ? 0 : ctx_oom(ctx, at);
}

/* Comparisons always give a boolean. NULL = NULL; NULL differs from any value and is neither
 * smaller nor larger. Values that cannot be compared (a string that is not a number against a
 * number) are unequal, and an error for < <= > >=. */
static int op_compare(struct expr_ctx *ctx, const struct expr_node *at, enum expr_op op,
                      const struct expr_value *a, const struct expr_value *b,
                      struct expr_value **ret)
{
	bool an = a->type == EXPR_VALUE_NULL, bn = b->type == EXPR_VALUE_NULL, res;
	char buf1[64], buf2[64];
	int c;

	if (an || bn) {
		if (op == OP_EQ)
			res = an && bn;
		else if (op == OP_NE)
			res = !(an && bn);
		else
			res = false;
	} else if (value_compare_op(a, b, &c) < 0) {
		if (op != OP_EQ && op != OP_NE)
			return ctx_fail(ctx, at, -EINVAL, EXPR_ERROR_TYPE,
			                "operator '%s' cannot compare %s with %s",
			                expr_op_to_string(op), value_preview(a, buf1),
			                value_preview(b, buf2));
		res = op == OP_NE;
	} else {
		switch (op) {
		case OP_LT:
			res = c < 0;
			break;
		case OP_LE:
			res = c <= 0;
			break;
		case OP_NE:
			res = c != 0;
			break;
		case OP_EQ:
			res = c == 0;
			break;
		case OP_GT:
			res = c > 0;
			break;
		default:
			res = c >= 0;
			break;
		}
	}
	*ret = expr_value_new_boolean(res);
	return *ret ? 0 : ctx_oom(ctx, at);
}

static int op_apply(struct expr_ctx *ctx, const struct expr_node *at, enum expr_op op,
                    const struct expr_value *a, const struct expr_value *b, struct expr_value **ret)
{
	bool x, y;

	switch (op) {
	case OP_CONCAT:
		return op_concat(ctx, at, a, b, ret);
	case OP_ADD:
	case OP_SUB:
	case OP_MUL:
		return op_arith(ctx, at, op, a, b, ret);
	case OP_AND:
	case OP_OR:
		if (ctx_truth(ctx, at, a, "the left side of a logical operator", &x) < 0 ||
		    ctx_truth(ctx, at, b, "the right side of a logical operator", &y) < 0)
			return -EINVAL;
		*ret = expr_value_new_boolean(op == OP_AND ? (x && y) : (x || y));
		return *ret ? 0 : ctx_oom(ctx, at);
	default:
		return op_compare(ctx, at, op, a, b, ret);
	}
}

/* Applies `op` value by value when a side is multi-valued: a single value on the other side is
 * used with each value, two multi-valued sides are paired index by index. */
static int op_mapped(struct expr_ctx *ctx, const struct expr_node *at, enum expr_op op,
                     const struct expr_value *a, const struct expr_value *b,
                     struct expr_value **ret)
{
	bool am = a->type == EXPR_VALUE_MULTI, bm = b->type == EXPR_VALUE_MULTI;
	size_t count;
	struct expr_value *out;
	int r;

	if (!am && !bm)
		return op_apply(ctx, at, op, a, b, ret);
	if (am && bm && a->multi.count != b->multi.count)
		return ctx_fail(
		    ctx, at, -EINVAL, EXPR_ERROR_VALUE,
		    "operator '%s' pairs multi-valued values of different sizes (%zu and %zu)",
		    expr_op_to_string(op), a->multi.count, b->multi.count);
	count = am ? a->multi.count : b->multi.count;
	out = expr_value_new_multi();
	if (!out)
		return ctx_oom(ctx, at);
	for (size_t i = 0; i < count; i++) {
		struct expr_value *v;
		r = op_apply(ctx, at, op, am ? a->multi.items[i] : a, bm ? b->multi.items[i] : b,
		             &v);
		if (r >= 0)
			r = expr_value_append(out, v);
		if (r < 0) {
			expr_value_free(out);
			return ctx->failed ? r : ctx_errno(ctx, at, r, "operator");
		}
	}
	*ret = value_normalize(out);
	return *ret ? 0 : ctx_oom(ctx, at);
}

int eval_chain(struct expr_ctx *ctx, const struct expr_node *n, struct expr_value **ret)
{
	struct expr_value *acc, *rhs, *next;
	int r;

	r = ctx_eval_node(ctx, n->chain.operands[0], &acc);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n->chain.nops; i++) {
		enum expr_op op = n->chain.ops[i];
		struct expr_node at = {.column = n->chain.op_columns[i]};
		char where[32];

		snprintf(where, sizeof(where), "with operator '%s'", expr_op_to_string(op));
		if (ctx_flow_check(ctx, &at, acc, where) < 0) {
			expr_value_free(acc);
			return -EINVAL;
		}
		/* && and || stop early on a single value, so that a guard such as
		 * Contains(...) > 0 && InStr(Item(...), "@") > 0 never evaluates Item() out of
		 * range */
		if ((op == OP_AND || op == OP_OR) && acc->type != EXPR_VALUE_MULTI) {
			bool b;
			if (ctx_truth(ctx, &at, acc, "the left side of a logical operator", &b) <
			    0) {
				expr_value_free(acc);
				return -EINVAL;
			}
			if ((op == OP_AND && !b) || (op == OP_OR && b)) {
				expr_value_free(acc);
				acc = expr_value_new_boolean(b);
				if (!acc)
					return ctx_oom(ctx, &at);
				continue;
			}
		}
		r = ctx_eval_node(ctx, n->chain.operands[i + 1], &rhs);
		if (r < 0) {
			expr_value_free(acc);
			return r;
		}
		r = ctx_flow_check(ctx, &at, rhs, where);
		if (r >= 0)
			r = op_mapped(ctx, &at, op, acc, rhs, &next);
		expr_value_free(acc);
		expr_value_free(rhs);
		if (r < 0)
			return r;
		acc = next;
	}
	*ret = acc;
	return 0;
}

static int negate(struct expr_ctx *ctx, const struct expr_node *n, const struct expr_value *v,
                  struct expr_value **ret)
{
	int64_t x;
	char buf[64];

	if (v->type == EXPR_VALUE_NULL) {
		*ret = expr_value_new_null();
		return *ret ? 0 : ctx_oom(ctx, n);
	}
	if (value_to_number(v, &x) < 0)
		return ctx_fail(ctx, n, -EINVAL, EXPR_ERROR_TYPE,
		                "unary '-' needs a number, got %s", value_preview(v, buf));
	if (x == INT64_MIN)
		return ctx_fail(ctx, n, -ERANGE, EXPR_ERROR_VALUE, "unary '-': numeric overflow");
	*ret = expr_value_new_number(-x);
	return *ret ? 0 : ctx_oom(ctx, n);
}

int eval_neg(struct expr_ctx *ctx, const struct expr_node *n, struct expr_value **ret)
{
	struct expr_value *v, *out, *item;
	int r;

	r = ctx_eval_node(ctx, n->operand, &v);
	if (r < 0)
		return r;
	if (ctx_flow_check(ctx, n, v, "with unary '-'") < 0) {
		expr_value_free(v);
		return -EINVAL;
	}
	if (v->type != EXPR_VALUE_MULTI) {
		r = negate(ctx, n, v, ret);
		expr_value_free(v);
		return r;
	}
	out = expr_value_new_multi();
	r = out ? 0 : ctx_oom(ctx, n);
	for (size_t i = 0; r >= 0 && i < v->multi.count; i++) {
		r = negate(ctx, n, v->multi.items[i], &item);
		if (r >= 0 && (r = expr_value_append(out, item)) < 0)
			r = ctx_errno(ctx, n, r, "unary '-'");
	}
	expr_value_free(v);
	if (r < 0) {
		expr_value_free(out);
		return r;
	}
	*ret = out;
	return 0;
}
