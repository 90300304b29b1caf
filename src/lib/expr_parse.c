/* The expression parser: text -> AST, with errors that name the column and, for misspelled
 * functions, the nearest known name. Operators have one priority and associate left to right
 * (R10), so a run of them is one NODE_CHAIN, evaluated in a loop rather than by recursion. */
#include "expr_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct scope {
	const char *name; /* points into the text, after '$' */
	size_t len;
	const struct scope *next;
};

struct parser {
	const char *text;
	size_t len;
	size_t pos;
	unsigned depth;
	const struct scope *vars;
	struct expr_error err;
};

/* Names that are not functions: literals and the enumeration constants of ConvertFromBase64,
 * Contains, InStr/InStrRev and DNComponentRev, which evaluate to their own name. */
static const char *const keywords[] = {
    "True",
    "False",
    "NULL",
    "CRLF",
    "IgnoreThisFlow",
    "AuthoritativeNull",
    "Unicode",
    "ASCII",
    "UTF8",
    "CaseSensitive",
    "CaseInsensitive",
    "vbTextCompare",
    "vbBinaryCompare",
    "DC",
};

static unsigned column_of(const struct parser *p, size_t pos)
{
	return (unsigned)utf8_length(p->text, pos < p->len ? pos : p->len) + 1;
}

static int fail(struct parser *p, size_t pos, int r, enum expr_error_kind kind, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));
static int fail(struct parser *p, size_t pos, int r, enum expr_error_kind kind, const char *fmt,
                ...)
{
	va_list ap;
	int n;

	p->err.kind = kind;
	p->err.column = column_of(p, pos);
	n = snprintf(p->err.message, sizeof(p->err.message), "column %u: ", p->err.column);
	if (n < 0 || (size_t)n >= sizeof(p->err.message))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(p->err.message + n, sizeof(p->err.message) - (size_t)n, fmt, ap);
	va_end(ap);
	return r;
}

static int fail_oom(struct parser *p)
{
	return fail(p, p->pos, -ENOMEM, EXPR_ERROR_LIMIT, "out of memory");
}

/* The character at pos, quoted for a message: 'x', or "end of expression". */
static const char *describe(const struct parser *p, size_t pos, char buf[16])
{
	size_t i = pos;

	if (pos >= p->len)
		return "end of expression";
	utf8_next(p->text, p->len, &i);
	snprintf(buf, 16, "'%.*s'", (int)(i - pos), p->text + pos);
	return buf;
}

static void skip_space(struct parser *p)
{
	while (p->pos < p->len) {
		char c = p->text[p->pos];
		if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			break;
		p->pos++;
	}
}

static bool is_alpha(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static struct expr_node *node_new(enum node_kind kind, unsigned column)
{
	struct expr_node *n = calloc(1, sizeof(*n));

	if (n) {
		n->kind = kind;
		n->column = column;
	}
	return n;
}

struct expr_node *expr_node_free(struct expr_node *n)
{
	if (!n)
		return NULL;
	switch (n->kind) {
	case NODE_LITERAL:
		expr_value_free(n->literal);
		break;
	case NODE_ATTR:
	case NODE_PARAM:
	case NODE_VAR:
		free(n->name);
		break;
	case NODE_CALL:
		for (size_t i = 0; i < n->call.nargs; i++)
			expr_node_free(n->call.args[i]);
		free(n->call.args);
		break;
	case NODE_CHAIN:
		if (n->chain.operands)
			for (size_t i = 0; i <= n->chain.nops; i++)
				expr_node_free(n->chain.operands[i]);
		free(n->chain.operands);
		free(n->chain.ops);
		free(n->chain.op_columns);
		break;
	case NODE_NEG:
		expr_node_free(n->operand);
		break;
	}
	free(n);
	return NULL;
}

/* One more level of nesting for the construct that starts at `start`. */
static int enter(struct parser *p, size_t start)
{
	if (++p->depth > EXPR_DEPTH_MAX)
		return fail(p, start, -E2BIG, EXPR_ERROR_LIMIT,
		            "expression nested deeper than %u levels", EXPR_DEPTH_MAX);
	return 0;
}

static int literal_node(struct parser *p, size_t start, struct expr_value *v,
                        struct expr_node **ret)
{
	struct expr_node *n;

	if (!v)
		return fail_oom(p);
	n = node_new(NODE_LITERAL, column_of(p, start));
	if (!n) {
		expr_value_free(v);
		return fail_oom(p);
	}
	n->literal = v;
	*ret = n;
	return 0;
}

/* "text" with "" for a quote. A doubled backslash is one backslash, so that the out-of-box
 * rules' "\\0ACNF:" matches the escaped newline of a conflict DN; other backslashes stay as
 * they are (Replace() interprets \n, \r and \t itself). */
static int parse_string(struct parser *p, struct expr_node **ret)
{
	size_t start = p->pos, i = p->pos + 1;
	struct sbuf b = {0};
	struct expr_value *v;
	int r;

	for (;;) {
		if (i >= p->len) {
			sbuf_done(&b);
			return fail(p, start, -EINVAL, EXPR_ERROR_SYNTAX, "unterminated string");
		}
		if (p->text[i] == '"') {
			if (i + 1 < p->len && p->text[i + 1] == '"') {
				sbuf_append(&b, "\"", 1);
				i += 2;
				continue;
			}
			break;
		}
		if (p->text[i] == '\\' && i + 1 < p->len && p->text[i + 1] == '\\') {
			sbuf_append(&b, "\\", 1);
			i += 2;
			continue;
		}
		sbuf_append(&b, p->text + i, 1);
		i++;
	}
	p->pos = i + 1;
	r = sbuf_finish(&b, &v);
	if (r < 0)
		return fail_oom(p);
	return literal_node(p, start, v, ret);
}

static bool is_name_char(char c, bool attr)
{
	return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || (attr && c == ';');
}

/* [attribute] and %Parameter% */
static int parse_name(struct parser *p, char close, enum node_kind kind, struct expr_node **ret)
{
	const char *what = kind == NODE_ATTR ? "attribute" : "parameter";
	size_t start = p->pos, i = p->pos + 1;
	struct expr_node *n;
	char buf[16];

	while (i < p->len && is_name_char(p->text[i], kind == NODE_ATTR))
		i++;
	if (i >= p->len)
		return fail(p, i, -EINVAL, EXPR_ERROR_SYNTAX, "expected '%c'", close);
	if (p->text[i] != close)
		return fail(p, i, -EINVAL, EXPR_ERROR_SYNTAX, "invalid character %s in %s name",
		            describe(p, i, buf), what);
	if (i == start + 1)
		return fail(p, start, -EINVAL, EXPR_ERROR_SYNTAX, "empty %s name", what);
	if (i - start - 1 > EXPR_NAME_MAX)
		return fail(p, start, -E2BIG, EXPR_ERROR_LIMIT, "%s name longer than %u bytes",
		            what, EXPR_NAME_MAX);
	n = node_new(kind, column_of(p, start));
	if (!n || !(n->name = strndup(p->text + start + 1, i - start - 1))) {
		free(n);
		return fail_oom(p);
	}
	p->pos = i + 1;
	*ret = n;
	return 0;
}

static size_t scan_ident(const struct parser *p, size_t i)
{
	while (i < p->len && (is_alpha(p->text[i]) || is_digit(p->text[i])))
		i++;
	return i;
}

static const struct scope *find_var(const struct parser *p, const char *name, size_t len)
{
	for (const struct scope *s = p->vars; s; s = s->next)
		if (s->len == len && memcmp(s->name, name, len) == 0)
			return s;
	return NULL;
}

/* $name: a reference when `declare` is false (must be bound), else a binder's declaration. */
static int parse_var(struct parser *p, bool declare, struct expr_node **ret)
{
	size_t start = p->pos, end;
	struct expr_node *n;
	char buf[16];

	if (p->pos >= p->len || p->text[p->pos] != '$')
		return fail(p, p->pos, -EINVAL, EXPR_ERROR_SYNTAX, "expected a $variable, got %s",
		            describe(p, p->pos, buf));
	if (p->pos + 1 >= p->len || !is_alpha(p->text[p->pos + 1]))
		return fail(p, p->pos, -EINVAL, EXPR_ERROR_SYNTAX,
		            "expected a variable name after '$'");
	end = scan_ident(p, p->pos + 1);
	if (end - start - 1 > EXPR_NAME_MAX)
		return fail(p, start, -E2BIG, EXPR_ERROR_LIMIT,
		            "variable name longer than %u bytes", EXPR_NAME_MAX);
	if (!declare && !find_var(p, p->text + start + 1, end - start - 1))
		return fail(
		    p, start, -EINVAL, EXPR_ERROR_SYNTAX,
		    "unknown variable '%.*s' (variables are declared by Select, Where and With)",
		    (int)(end - start), p->text + start);
	n = node_new(NODE_VAR, column_of(p, start));
	if (!n || !(n->name = strndup(p->text + start + 1, end - start - 1))) {
		free(n);
		return fail_oom(p);
	}
	p->pos = end;
	*ret = n;
	return 0;
}

static int parse_number(struct parser *p, struct expr_node **ret)
{
	size_t start = p->pos, i = p->pos;
	uint64_t acc = 0;

	if (p->text[i] == '&') {
		i += 2; /* &H */
		while (i < p->len &&
		       (is_digit(p->text[i]) || (p->text[i] >= 'a' && p->text[i] <= 'f') ||
		        (p->text[i] >= 'A' && p->text[i] <= 'F'))) {
			char c = p->text[i];
			int d = is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
			if (i - start - 2 >= 16)
				return fail(p, start, -EINVAL, EXPR_ERROR_SYNTAX,
				            "hexadecimal number longer than 16 digits");
			acc = (acc << 4) | (uint64_t)d;
			i++;
		}
		if (i == start + 2)
			return fail(p, i, -EINVAL, EXPR_ERROR_SYNTAX,
			            "expected hexadecimal digits after '&H'");
	} else {
		while (i < p->len && is_digit(p->text[i])) {
			unsigned d = (unsigned)(p->text[i] - '0');
			if (acc > ((uint64_t)INT64_MAX - d) / 10)
				return fail(p, start, -EINVAL, EXPR_ERROR_SYNTAX,
				            "number too large (the maximum is %lld)",
				            (long long)INT64_MAX);
			acc = acc * 10 + d;
			i++;
		}
		if (i + 1 < p->len && p->text[i] == '.' && is_digit(p->text[i + 1]))
			return fail(p, i, -EINVAL, EXPR_ERROR_SYNTAX,
			            "fractional numbers are not supported (numbers are integers)");
	}
	p->pos = i;
	return literal_node(p, start, expr_value_new_number((int64_t)acc), ret);
}

static int parse_chain(struct parser *p, struct expr_node **ret);

static int check_arity(struct parser *p, size_t name_pos, const struct expr_func *f, size_t n)
{
	if (f->flags & FUNC_PAIRS) {
		if (n < 2 || n % 2)
			return fail(
			    p, name_pos, -EINVAL, EXPR_ERROR_SYNTAX,
			    "function '%s' takes condition, value pairs, got %zu argument%s",
			    f->name, n, n == 1 ? "" : "s");
		return 0;
	}
	if (n >= f->min_args && n <= f->max_args)
		return 0;
	if (f->min_args == f->max_args)
		return fail(p, name_pos, -EINVAL, EXPR_ERROR_SYNTAX,
		            "function '%s' takes %u argument%s, got %zu", f->name, f->min_args,
		            f->min_args == 1 ? "" : "s", n);
	return fail(p, name_pos, -EINVAL, EXPR_ERROR_SYNTAX,
	            "function '%s' takes %u to %u arguments, got %zu", f->name, f->min_args,
	            f->max_args, n);
}

static int unknown_function(struct parser *p, size_t start, size_t len)
{
	const char *name = p->text + start;
	const struct expr_func *g = expr_func_lookup_casefold(name, len);

	if (!g)
		g = expr_func_nearest(name, len);
	if (g)
		return fail(p, start, -EINVAL, EXPR_ERROR_SYNTAX,
		            "unknown function '%.*s' (did you mean '%s'?)", (int)len, name,
		            g->name);
	return fail(p, start, -EINVAL, EXPR_ERROR_SYNTAX, "unknown function '%.*s'", (int)len,
	            name);
}

static int parse_call(struct parser *p, size_t start, size_t len, struct expr_node **ret)
{
	const struct expr_func *f = expr_func_lookup(p->text + start, len);
	struct expr_node *n, **args;
	struct scope bound;
	const struct scope *saved = p->vars;
	size_t name_pos = start;
	char buf[16];
	int r;

	if (!f)
		return unknown_function(p, start, len);
	if (f->flags & FUNC_UNSUPPORTED)
		return fail(p, start, -EINVAL, EXPR_ERROR_SYNTAX,
		            "function '%s' is not supported yet", f->name);
	n = node_new(NODE_CALL, column_of(p, start));
	args = calloc(EXPR_ARGS_MAX, sizeof(*args));
	if (!n || !args) {
		free(n);
		free(args);
		return fail_oom(p);
	}
	n->call.func = f;
	n->call.args = args;
	p->pos++; /* '(' */
	r = enter(p, start);
	if (r < 0)
		goto out;
	skip_space(p);
	if (p->pos < p->len && p->text[p->pos] == ')') {
		p->pos++;
	} else {
		for (;;) {
			if (n->call.nargs == EXPR_ARGS_MAX) {
				r = fail(p, p->pos, -E2BIG, EXPR_ERROR_LIMIT,
				         "more than %u arguments", EXPR_ARGS_MAX);
				goto out;
			}
			skip_space(p);
			if ((f->flags & FUNC_BINDER) && n->call.nargs == 0) {
				r = parse_var(p, true, &args[0]);
				if (r >= 0) {
					bound.name = p->text + p->pos - strlen(args[0]->name);
					bound.len = strlen(args[0]->name);
					bound.next = saved;
				}
			} else {
				if ((f->flags & FUNC_BINDER) && n->call.nargs == 2)
					p->vars = &bound;
				r = parse_chain(p, &args[n->call.nargs]);
				p->vars = saved;
			}
			if (r < 0)
				goto out;
			n->call.nargs++;
			skip_space(p);
			if (p->pos < p->len && p->text[p->pos] == ',') {
				p->pos++;
				continue;
			}
			if (p->pos < p->len && p->text[p->pos] == ')') {
				p->pos++;
				break;
			}
			r = fail(p, p->pos, -EINVAL, EXPR_ERROR_SYNTAX,
			         "expected ',' or ')', got %s", describe(p, p->pos, buf));
			goto out;
		}
	}
	p->depth--;
	r = check_arity(p, name_pos, f, n->call.nargs);
	if (r < 0)
		goto out;
	if ((f->flags & FUNC_NAME_LITERAL) &&
	    (args[0]->kind != NODE_LITERAL || args[0]->literal->type != EXPR_VALUE_STRING ||
	     args[0]->literal->string.len == 0)) {
		r = fail(
		    p, name_pos, -EINVAL, EXPR_ERROR_SYNTAX,
		    "function '%s' takes an attribute name in quotes, e.g. %s(\"proxyAddresses\")",
		    f->name, f->name);
		goto out;
	}
	*ret = n;
	return 0;
out:
	expr_node_free(n);
	return r;
}

static int parse_ident(struct parser *p, struct expr_node **ret)
{
	size_t start = p->pos, end = scan_ident(p, p->pos), len = end - start;
	const char *name = p->text + start;
	struct expr_value *v;

	p->pos = end;
	skip_space(p);
	if (p->pos < p->len && p->text[p->pos] == '(')
		return parse_call(p, start, len, ret);
	p->pos = end;
	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		if (strlen(keywords[i]) != len || memcmp(keywords[i], name, len) != 0)
			continue;
		if (i == 0 || i == 1)
			v = expr_value_new_boolean(i == 0);
		else if (i == 2)
			v = expr_value_new_null();
		else if (i == 3)
			v = expr_value_new_string("\r\n");
		else if (i == 4)
			v = expr_value_new_ignore_this_flow();
		else if (i == 5)
			v = expr_value_new_authoritative_null();
		else
			v = expr_value_new_string(keywords[i]);
		return literal_node(p, start, v, ret);
	}
	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
		if (strlen(keywords[i]) == len && strncasecmp(keywords[i], name, len) == 0)
			return fail(p, start, -EINVAL, EXPR_ERROR_SYNTAX,
			            "unknown name '%.*s' (did you mean '%s'?)", (int)len, name,
			            keywords[i]);
	if (expr_func_lookup(name, len))
		return fail(p, end, -EINVAL, EXPR_ERROR_SYNTAX,
		            "expected '(' after function '%.*s'", (int)len, name);
	return fail(p, start, -EINVAL, EXPR_ERROR_SYNTAX,
	            "unknown name '%.*s' (attributes are written [%.*s])", (int)len, name, (int)len,
	            name);
}

static int parse_operand(struct parser *p, struct expr_node **ret)
{
	struct expr_node *n, *inner;
	char buf[16];
	size_t start;
	char c;
	int r;

	skip_space(p);
	start = p->pos;
	if (p->pos >= p->len)
		return fail(p, p->pos, -EINVAL, EXPR_ERROR_SYNTAX, "unexpected end of expression");
	c = p->text[p->pos];
	if (c == '(') {
		p->pos++;
		r = enter(p, start);
		if (r < 0)
			return r;
		r = parse_chain(p, &inner);
		if (r < 0)
			return r;
		skip_space(p);
		if (p->pos >= p->len || p->text[p->pos] != ')') {
			expr_node_free(inner);
			return fail(p, p->pos, -EINVAL, EXPR_ERROR_SYNTAX, "expected ')'");
		}
		p->pos++;
		p->depth--;
		*ret = inner;
		return 0;
	}
	if (c == '"')
		return parse_string(p, ret);
	if (c == '[')
		return parse_name(p, ']', NODE_ATTR, ret);
	if (c == '%')
		return parse_name(p, '%', NODE_PARAM, ret);
	if (c == '$')
		return parse_var(p, false, ret);
	if (is_digit(c) || (c == '&' && p->pos + 1 < p->len && (p->text[p->pos + 1] | 0x20) == 'h'))
		return parse_number(p, ret);
	if (is_alpha(c))
		return parse_ident(p, ret);
	if (c == '-') {
		p->pos++;
		r = enter(p, start);
		if (r < 0)
			return r;
		r = parse_operand(p, &inner);
		if (r < 0)
			return r;
		p->depth--;
		n = node_new(NODE_NEG, column_of(p, start));
		if (!n) {
			expr_node_free(inner);
			return fail_oom(p);
		}
		n->operand = inner;
		*ret = n;
		return 0;
	}
	return fail(p, p->pos, -EINVAL, EXPR_ERROR_SYNTAX, "expected a value, got %s",
	            describe(p, p->pos, buf));
}

static bool peek_op(const struct parser *p, bool logic, enum expr_op *ret_op, size_t *ret_len)
{
	static const struct {
		const char *s;
		enum expr_op op;
	} ops[] = {
	    {"<=", OP_LE}, {"<>", OP_NE}, {">=", OP_GE}, {"&&", OP_AND},
	    {"||", OP_OR}, {"<", OP_LT},  {">", OP_GT},  {"=", OP_EQ},
	    {"+", OP_ADD}, {"-", OP_SUB}, {"*", OP_MUL}, {"&", OP_CONCAT},
	};
	size_t left = p->len - p->pos;

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		size_t n = strlen(ops[i].s);
		if (left >= n && memcmp(p->text + p->pos, ops[i].s, n) == 0) {
			if (logic != (ops[i].op == OP_AND || ops[i].op == OP_OR))
				return false;
			*ret_op = ops[i].op;
			*ret_len = n;
			return true;
		}
	}
	return false;
}

static int chain_push(struct expr_node *n, size_t *cap, struct expr_node *operand, enum expr_op op,
                      unsigned col)
{
	if (n->chain.nops + 1 >= *cap) {
		size_t c = *cap * 2;
		struct expr_node **o = realloc(n->chain.operands, (c + 1) * sizeof(*o));
		if (!o)
			return -ENOMEM;
		n->chain.operands = o;
		enum expr_op *ops = realloc(n->chain.ops, c * sizeof(*ops));
		if (!ops)
			return -ENOMEM;
		n->chain.ops = ops;
		unsigned *cols = realloc(n->chain.op_columns, c * sizeof(*cols));
		if (!cols)
			return -ENOMEM;
		n->chain.op_columns = cols;
		*cap = c;
	}
	n->chain.ops[n->chain.nops] = op;
	n->chain.op_columns[n->chain.nops] = col;
	n->chain.operands[++n->chain.nops] = operand;
	return 0;
}

/* Two levels: the logical operators && and || join operands that are runs of the other
 * operators. Within a level every operator has the same priority, left to right (R10). The
 * lower level for && and || is what Microsoft's own out-of-box rules need (R15, "In from AD -
 * User Join": IsPresent([sAMAccountName]) = False || [sAMAccountName] = "SUPPORT_388945a0"). */
static int parse_chain_level(struct parser *p, bool logic, struct expr_node **ret);

/* An operand of a level: a run of non-logical operators for the logical level. */
static int parse_level(struct parser *p, bool logic, struct expr_node **ret)
{
	return logic ? parse_chain_level(p, false, ret) : parse_operand(p, ret);
}

static int parse_chain_level(struct parser *p, bool logic, struct expr_node **ret)
{
	struct expr_node *first, *n = NULL, *next;
	size_t cap = 0, oplen;
	enum expr_op op;
	unsigned col;
	int r;

	r = parse_level(p, logic, &first);
	if (r < 0)
		return r;
	for (;;) {
		skip_space(p);
		if (p->pos >= p->len || !peek_op(p, logic, &op, &oplen))
			break;
		col = column_of(p, p->pos);
		p->pos += oplen;
		r = parse_level(p, logic, &next);
		if (r < 0)
			goto fail;
		if (!n) {
			n = node_new(NODE_CHAIN, first->column);
			if (!n) {
				expr_node_free(next);
				r = fail_oom(p);
				goto fail;
			}
			cap = 4;
			n->chain.operands = calloc(cap + 1, sizeof(*n->chain.operands));
			n->chain.ops = calloc(cap, sizeof(*n->chain.ops));
			n->chain.op_columns = calloc(cap, sizeof(*n->chain.op_columns));
			if (!n->chain.operands || !n->chain.ops || !n->chain.op_columns) {
				expr_node_free(next);
				r = fail_oom(p);
				goto fail;
			}
			n->chain.operands[0] = first;
			first = NULL;
		}
		if (chain_push(n, &cap, next, op, col) < 0) {
			expr_node_free(next);
			r = fail_oom(p);
			goto fail;
		}
	}
	*ret = n ? n : first;
	return 0;
fail:
	expr_node_free(first);
	expr_node_free(n);
	return r;
}

static int parse_chain(struct parser *p, struct expr_node **ret)
{
	return parse_chain_level(p, true, ret);
}

int expr_parse(const char *text, struct expr **ret, struct expr_error *ret_err)
{
	struct parser p = {.text = text};
	struct expr_node *root = NULL;
	struct expr *e;
	char buf[16];
	size_t bad;
	int r;

	if (!text || !ret)
		return -EINVAL;
	p.len = strnlen(text, EXPR_TEXT_MAX + 1);
	if (p.len > EXPR_TEXT_MAX) {
		p.err.kind = EXPR_ERROR_LIMIT;
		p.err.column = 0;
		snprintf(p.err.message, sizeof(p.err.message), "expression longer than %u bytes",
		         EXPR_TEXT_MAX);
		r = -E2BIG;
		goto fail;
	}
	if (!utf8_valid(text, p.len)) {
		for (bad = 0; bad < p.len;) {
			size_t before = bad;
			uint32_t cp = utf8_next(text, p.len, &bad);
			if (cp == 0xfffd && bad - before != 3) {
				bad = before;
				break;
			}
		}
		p.len = bad; /* columns are counted over the valid prefix */
		r = fail(&p, bad, -EINVAL, EXPR_ERROR_SYNTAX, "invalid UTF-8");
		goto fail;
	}
	skip_space(&p);
	if (p.pos == p.len) {
		r = fail(&p, p.pos, -EINVAL, EXPR_ERROR_SYNTAX, "empty expression");
		goto fail;
	}
	r = parse_chain(&p, &root);
	if (r < 0)
		goto fail;
	skip_space(&p);
	if (p.pos < p.len) {
		char c = text[p.pos];
		if (c == ')')
			r = fail(&p, p.pos, -EINVAL, EXPR_ERROR_SYNTAX,
			         "unexpected ')' (no matching '(')");
		else if (c == '/' || c == '!' || c == '^' || c == '\\')
			r = fail(&p, p.pos, -EINVAL, EXPR_ERROR_SYNTAX,
			         "operator '%c' is not supported", c);
		else
			r = fail(&p, p.pos, -EINVAL, EXPR_ERROR_SYNTAX,
			         "expected an operator, got %s", describe(&p, p.pos, buf));
		goto fail;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		r = fail_oom(&p);
		goto fail;
	}
	e->root = root;
	*ret = e;
	return 0;
fail:
	expr_node_free(root);
	if (ret_err)
		*ret_err = p.err;
	return r;
}

struct expr *expr_free(struct expr *e)
{
	if (!e)
		return NULL;
	expr_node_free(e->root);
	free(e);
	return NULL;
}

static int foreach_node(const struct expr_node *n,
                        int (*cb)(void *userdata, const char *name, bool imported), void *userdata)
{
	int r = 0;

	switch (n->kind) {
	case NODE_ATTR:
		return cb(userdata, n->name, false);
	case NODE_CALL:
		if (n->call.func->flags & FUNC_NAME_LITERAL)
			return cb(userdata, n->call.args[0]->literal->string.data,
			          n->call.func->special == eval_imported);
		for (size_t i = 0; i < n->call.nargs && r >= 0; i++)
			r = foreach_node(n->call.args[i], cb, userdata);
		return r;
	case NODE_CHAIN:
		for (size_t i = 0; i <= n->chain.nops && r >= 0; i++)
			r = foreach_node(n->chain.operands[i], cb, userdata);
		return r;
	case NODE_NEG:
		return foreach_node(n->operand, cb, userdata);
	default:
		return 0;
	}
}

int expr_foreach_attribute(const struct expr *e,
                           int (*cb)(void *userdata, const char *name, bool imported),
                           void *userdata)
{
	if (!e || !cb)
		return -EINVAL;
	return foreach_node(e->root, cb, userdata);
}
