/* Program-flow functions of the expression language: the ones that decide which of their
 * arguments to evaluate (IIF, Switch) or evaluate one per value with a $variable bound
 * (Select, Where, With). */
#include "expr_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int eval_arg(struct expr_ctx *ctx, const struct expr_node *call, size_t i,
                    struct expr_value **ret)
{
	return ctx_eval_node(ctx, call->call.args[i], ret);
}

/* IIF(condition, valueIfTrue, valueIfFalse): only the branch taken is evaluated, so
 * IIF(IsPresent([x]), [x], Error("...")) raises nothing when [x] is present. A multi-valued
 * condition picks per value: IIF(InStr([proxyAddresses],"SIP:")=1, NULL, [proxyAddresses])
 * drops the SIP addresses (R10's example). */
int eval_iif(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **ret)
{
	struct expr_value *cond = NULL, *branch[2] = {NULL, NULL}, *out = NULL, *item;
	bool any[2] = {false, false}, b;
	size_t count;
	int r;

	r = eval_arg(ctx, call, 0, &cond);
	if (r < 0)
		return r;
	if (cond->type != EXPR_VALUE_MULTI) {
		r = ctx_truth(ctx, call->call.args[0], cond, "the condition of IIF", &b);
		expr_value_free(cond);
		if (r < 0)
			return r;
		return eval_arg(ctx, call, b ? 1 : 2, ret);
	}
	count = cond->multi.count;
	for (size_t i = 0; i < count; i++) {
		r = ctx_truth(ctx, call->call.args[0], cond->multi.items[i], "the condition of IIF",
		              &b);
		if (r < 0)
			goto out;
		any[b ? 0 : 1] = true;
	}
	for (int k = 0; k < 2; k++) {
		if (!any[k])
			continue;
		r = eval_arg(ctx, call, (size_t)k + 1, &branch[k]);
		if (r < 0)
			goto out;
		r = ctx_flow_check(ctx, call->call.args[k + 1], branch[k],
		                   "in IIF with a multi-valued condition");
		if (r < 0)
			goto out;
		if (branch[k]->type == EXPR_VALUE_MULTI && branch[k]->multi.count != count) {
			r = ctx_fail(ctx, call, -EINVAL, EXPR_ERROR_VALUE,
			             "IIF: the condition has %zu values but a branch has %zu",
			             count, branch[k]->multi.count);
			goto out;
		}
	}
	out = expr_value_new_multi();
	if (!out) {
		r = ctx_oom(ctx, call);
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		const struct expr_value *src;
		ctx_truth(ctx, call, cond->multi.items[i], "", &b); /* checked above */
		src = branch[b ? 0 : 1];
		if (src->type == EXPR_VALUE_MULTI)
			src = src->multi.items[i];
		if (expr_value_copy(src, &item) < 0) {
			r = ctx_oom(ctx, call);
			goto out;
		}
		r = expr_value_append(out, item);
		if (r < 0) {
			r = ctx_fail(ctx, call, r, EXPR_ERROR_LIMIT, "IIF: too many values");
			goto out;
		}
	}
	*ret = value_normalize(out);
	out = NULL;
	r = *ret ? 0 : ctx_oom(ctx, call);
out:
	expr_value_free(cond);
	expr_value_free(branch[0]);
	expr_value_free(branch[1]);
	expr_value_free(out);
	return r;
}

/* Switch(cond1, value1, cond2, value2, ...): every condition is evaluated, left to right, as R8
 * documents (an error in any condition is an error of the Switch), and the value of the first
 * true one is returned; NULL when none is true. Only that value is evaluated: values have no
 * side effects, and R8's own example (..., True, Error("Unknown city")) requires that the
 * Error() of a value not chosen is not raised. */
int eval_switch(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **ret)
{
	size_t chosen = SIZE_MAX;
	struct expr_value *c;
	bool b;
	int r;

	for (size_t i = 0; i + 1 < call->call.nargs; i += 2) {
		r = eval_arg(ctx, call, i, &c);
		if (r < 0)
			return r;
		r = ctx_truth(ctx, call->call.args[i], c, "a condition of Switch", &b);
		expr_value_free(c);
		if (r < 0)
			return r;
		if (b && chosen == SIZE_MAX)
			chosen = i + 1;
	}
	if (chosen == SIZE_MAX) {
		*ret = expr_value_new_null();
		return *ret ? 0 : ctx_oom(ctx, call);
	}
	return eval_arg(ctx, call, chosen, ret);
}

/* Select($item, values, function) and Where($item, values, condition). */
static int eval_each(struct expr_ctx *ctx, const struct expr_node *call, bool where,
                     struct expr_value **ret)
{
	struct expr_value *src, *out, *v, *copy;
	struct expr_binding bind = {.name = call->call.args[0]->name, .next = ctx->vars};
	const struct expr_binding *saved = ctx->vars;
	size_t count;
	bool keep;
	int r;

	r = eval_arg(ctx, call, 1, &src);
	if (r < 0)
		return r;
	r = ctx_flow_check(ctx, call->call.args[1], src, where ? "in Where" : "in Select");
	if (r < 0) {
		expr_value_free(src);
		return r;
	}
	out = expr_value_new_multi();
	if (!out) {
		expr_value_free(src);
		return ctx_oom(ctx, call);
	}
	count = expr_value_count(src);
	ctx->vars = &bind;
	for (size_t i = 0; i < count && r >= 0; i++) {
		bind.value = expr_value_item(src, i);
		r = eval_arg(ctx, call, 2, &v);
		if (r < 0)
			break;
		if (where) {
			r = ctx_truth(ctx, call->call.args[2], v, "the condition of Where", &keep);
			expr_value_free(v);
			if (r < 0 || !keep)
				continue;
			if (expr_value_copy(bind.value, &copy) < 0) {
				r = ctx_oom(ctx, call);
				break;
			}
			v = copy;
		} else if ((r = ctx_flow_check(ctx, call->call.args[2], v, "in Select")) < 0) {
			expr_value_free(v);
			break;
		}
		r = expr_value_append(out, v);
		if (r < 0)
			r = ctx_fail(ctx, call, r, EXPR_ERROR_LIMIT, "%s: too many values",
			             call->call.func->name);
	}
	ctx->vars = saved;
	expr_value_free(src);
	if (r < 0) {
		expr_value_free(out);
		return r;
	}
	*ret = value_normalize(out);
	return *ret ? 0 : ctx_oom(ctx, call);
}

int eval_select(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **ret)
{
	return eval_each(ctx, call, false, ret);
}

int eval_where(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **ret)
{
	return eval_each(ctx, call, true, ret);
}

/* With($var, subExpression, expression): the subexpression is evaluated once. */
int eval_with(struct expr_ctx *ctx, const struct expr_node *call, struct expr_value **ret)
{
	struct expr_value *sub;
	struct expr_binding bind = {.name = call->call.args[0]->name, .next = ctx->vars};
	const struct expr_binding *saved = ctx->vars;
	int r;

	r = eval_arg(ctx, call, 1, &sub);
	if (r < 0)
		return r;
	r = ctx_flow_check(ctx, call->call.args[1], sub, "in With");
	if (r < 0) {
		expr_value_free(sub);
		return r;
	}
	bind.value = sub;
	ctx->vars = &bind;
	r = eval_arg(ctx, call, 2, ret);
	ctx->vars = saved;
	expr_value_free(sub);
	return r;
}
