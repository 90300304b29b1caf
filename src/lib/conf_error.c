/* Errors of the config module: collected with file, line and column, formatted once as
 * "FILE:LINE: message", sorted into file order for the caller to print. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_internal.h"

static void verr(struct conf_errlist *el, bool limited, const char *file, unsigned line,
                 unsigned column, const char *fmt, va_list ap)
{
	struct conf_error *e;
	int r;

	if (el->oom || (limited && el->truncated))
		return;
	if (limited && el->e->n >= CONF_ERRORS_MAX) {
		el->truncated = true;
		return;
	}
	if (el->e->n == el->allocated) {
		size_t n = el->allocated ? el->allocated * 2 : 8;
		struct conf_error *v = reallocarray(el->e->v, n, sizeof(*v));
		if (!v) {
			el->oom = true;
			return;
		}
		el->e->v = v;
		el->allocated = n;
	}
	e = &el->e->v[el->e->n];
	*e = (struct conf_error){.line = line, .column = column};
	if (vasprintf(&e->message, fmt, ap) < 0) {
		el->oom = true;
		return;
	}
	if (file && line && column)
		r = asprintf(&e->text, "%s:%u:%u: %s", file, line, column, e->message);
	else if (file && line)
		r = asprintf(&e->text, "%s:%u: %s", file, line, e->message);
	else if (file)
		r = asprintf(&e->text, "%s: %s", file, e->message);
	else
		r = asprintf(&e->text, "%s", e->message);
	if (r < 0)
		e->text = NULL;
	e->file = file ? strdup(file) : NULL;
	if (!e->text || (file && !e->file)) {
		free(e->message);
		free(e->text);
		free(e->file);
		el->oom = true;
		return;
	}
	el->e->n++;
}

void conf_err(struct conf_errlist *el, const char *file, unsigned line, unsigned column,
              const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(el, true, file, line, column, fmt, ap);
	va_end(ap);
}

void conf_err_final(struct conf_errlist *el, const char *file, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(el, false, file, 0, 0, fmt, ap);
	va_end(ap);
}

struct conf_errors *conf_errors_free(struct conf_errors *e)
{
	if (!e)
		return NULL;
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].file);
		free(e->v[i].message);
		free(e->v[i].text);
	}
	free(e->v);
	free(e);
	return NULL;
}

static int error_rank(const struct conf_error *e, const char *conf_file)
{
	if (!e->file || !conf_file || strcmp(e->file, conf_file) != 0)
		return 2;
	return e->line ? 0 : 1;
}

/* Insertion sort: stable, so errors of one line keep the order they were found in. */
void conf_errors_sort(struct conf_errors *e, const char *conf_file)
{
	for (size_t i = 1; i < e->n; i++) {
		struct conf_error x = e->v[i];
		int rx = error_rank(&x, conf_file);
		size_t j = i;

		while (j > 0) {
			const struct conf_error *p = &e->v[j - 1];
			int rp = error_rank(p, conf_file);
			if (rp < rx || (rp == rx && (rx != 0 || p->line <= x.line)))
				break;
			e->v[j] = e->v[j - 1];
			j--;
		}
		e->v[j] = x;
	}
}
