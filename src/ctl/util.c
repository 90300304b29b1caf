/* hybridsyncctl helpers: loading the config, opening the database read-only, JSON and table
 * output, time formatting. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

int ctl_usage(const char *verb, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hybridsyncctl%s%s: ", verb ? " " : "", verb ? verb : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'hybridsyncctl --help'.\n");
	return CTL_EXIT_USAGE;
}

int ctl_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("hybridsyncctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CTL_EXIT_FAILURE;
}

static void print_conf_errors(const struct conf_errors *e)
{
	for (size_t i = 0; e && i < e->n; i++)
		fprintf(stderr, "%s\n", e->v[i].text);
}

int ctl_load_conf(struct ctl *ctl)
{
	struct conf_errors *errors = NULL;
	int r;

	if (ctl->conf)
		return CTL_EXIT_OK;
	r = conf_load(ctl->conf_path, &ctl->conf, &errors);
	if (r < 0) {
		if (errors)
			print_conf_errors(errors);
		else
			ctl_fail("Failed to load configuration '%s': %s", ctl->conf_path,
			         strerror(-r));
		conf_errors_free(errors);
		return CTL_EXIT_FAILURE;
	}
	return CTL_EXIT_OK;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* The [sync] database value of a config that does not load (a file being edited must not hide
 * the daemon's state); the default when the file does not set it. */
static char *scan_database(const char *path)
{
	FILE *f = fopen(path, "re");
	char *line = NULL, *found = NULL;
	size_t cap = 0;
	bool in_sync = false;

	if (!f)
		return NULL;
	while (getline(&line, &cap, f) > 0) {
		char *l = trim(line), *eq;

		if (*l == '[') {
			in_sync = strncmp(l, "[sync]", 6) == 0;
			continue;
		}
		eq = strchr(l, '=');
		if (!in_sync || !eq || *l == '#')
			continue;
		*eq = '\0';
		if (strcmp(trim(l), "database") == 0) {
			char *v = trim(eq + 1), *hash = strstr(v, " #");

			if (hash)
				*hash = '\0';
			free(found);
			found = strdup(trim(v));
		}
	}
	free(line);
	fclose(f);
	return found ? found : strdup(HYBRIDSYNC_STATEDIR "/hybridsync.db");
}

int ctl_open_store(struct ctl *ctl)
{
	char err[512] = "";
	int r;

	if (ctl->store)
		return CTL_EXIT_OK;
	if (!ctl->database && ctl->conf) {
		ctl->database = strdup(ctl->conf->sync.database);
		if (!ctl->database)
			return ctl_fail("%s", strerror(ENOMEM));
	}
	if (!ctl->database) {
		struct conf_errors *errors = NULL;

		r = conf_load(ctl->conf_path, &ctl->conf, &errors);
		if (r >= 0) {
			ctl->database = strdup(ctl->conf->sync.database);
		} else if (errors && (ctl->database = scan_database(ctl->conf_path))) {
			fprintf(stderr,
			        "hybridsyncctl: warning: %s has errors (see hybridsyncctl config "
			        "check); reading the database %s\n",
			        ctl->conf_path, ctl->database);
		} else if (errors) {
			print_conf_errors(errors);
		} else {
			ctl_fail("Failed to load configuration '%s': %s", ctl->conf_path,
			         strerror(-r));
		}
		conf_errors_free(errors);
		if (!ctl->database)
			return CTL_EXIT_FAILURE;
	}
	r = store_open(ctl->database, STORE_OPEN_READONLY, &ctl->store, err, sizeof(err));
	if (r < 0)
		return ctl_fail("Failed to open database '%s': %s", ctl->database,
		                *err ? err : strerror(-r));
	return CTL_EXIT_OK;
}

void ctl_done(struct ctl *ctl)
{
	ctl->store = store_close(ctl->store);
	ctl->conf = conf_free(ctl->conf);
	free(ctl->database);
	ctl->database = NULL;
}

/* --- JSON ----------------------------------------------------------------------------------- */

static void emit(FILE *f, const cJSON *v, unsigned indent)
{
	const cJSON *c;
	bool obj = cJSON_IsObject(v);

	if ((obj || cJSON_IsArray(v)) && v->child) {
		fputs(obj ? "{\n" : "[\n", f);
		for (c = v->child; c; c = c->next) {
			fprintf(f, "%*s", (int)(indent + 2), "");
			if (obj) {
				cJSON *k = cJSON_CreateString(c->string ? c->string : "");
				char *ks = k ? cJSON_PrintUnformatted(k) : NULL;

				fprintf(f, "%s: ", ks ? ks : "\"\"");
				free(ks);
				cJSON_Delete(k);
			}
			emit(f, c, indent + 2);
			fputs(c->next ? ",\n" : "\n", f);
		}
		fprintf(f, "%*s%s", (int)indent, "", obj ? "}" : "]");
	} else {
		char *s = cJSON_PrintUnformatted(v);

		fputs(s ? s : "null", f);
		free(s);
	}
}

char *ctl_json_text(const cJSON *doc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	emit(f, doc, 0);
	fputc('\n', f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

int ctl_print_json(cJSON *doc)
{
	char *text = ctl_json_text(doc);

	cJSON_Delete(doc);
	if (!text)
		return ctl_fail("Failed to format JSON: %s", strerror(ENOMEM));
	fputs(text, stdout);
	free(text);
	return ctl_flush();
}

int ctl_flush(void)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return ctl_fail("Failed to write the output: %s", strerror(errno));
	return CTL_EXIT_OK;
}

const char *ctl_jstr(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : "";
}

int64_t ctl_jint(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

/* --- text ----------------------------------------------------------------------------------- */

const char *ctl_time(int64_t t, char buf[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || !localtime_r(&tt, &tm) || strftime(buf, 32, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		return "-";
	return buf;
}

const char *ctl_duration(int64_t s, char buf[32])
{
	if (s < 0)
		return "-";
	if (s >= 3600)
		snprintf(buf, 32, "%lldh %02lldm %02llds", (long long)(s / 3600),
		         (long long)(s / 60 % 60), (long long)(s % 60));
	else if (s >= 60)
		snprintf(buf, 32, "%lldm %02llds", (long long)(s / 60), (long long)(s % 60));
	else
		snprintf(buf, 32, "%llds", (long long)s);
	return buf;
}

const char *ctl_strerror(struct ctl *ctl, int r)
{
	const char *m = ctl->store && r != -ENOMEM ? store_last_error(ctl->store) : NULL;

	return m && *m ? m : strerror(r < 0 ? -r : r);
}

int ctl_parse_unsigned(const char *s, unsigned max, unsigned *ret)
{
	char *end;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -ERANGE;
	*ret = (unsigned)v;
	return 0;
}

struct ctl_table {
	size_t n_columns, n_rows, cap;
	char **cells; /* row-major, row 0 is the header */
};

struct ctl_table *ctl_table_new(size_t n_columns, const char *const *headers)
{
	struct ctl_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->n_columns = n_columns;
	if (ctl_table_add(t, headers) < 0)
		return ctl_table_free(t);
	return t;
}

struct ctl_table *ctl_table_free(struct ctl_table *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->n_rows * t->n_columns; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
	return NULL;
}

int ctl_table_add(struct ctl_table *t, const char *const *cells)
{
	if (t->n_rows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **c = reallocarray(t->cells, cap * t->n_columns, sizeof(char *));

		if (!c)
			return -ENOMEM;
		t->cells = c;
		t->cap = cap;
	}
	for (size_t i = 0; i < t->n_columns; i++) {
		const char *v = cells[i] ? cells[i] : "-";
		char *copy = strdup(v);

		if (!copy) {
			while (i > 0)
				free(t->cells[t->n_rows * t->n_columns + --i]);
			return -ENOMEM;
		}
		/* one line per row: control characters would break the alignment */
		for (char *p = copy; *p; p++)
			if ((unsigned char)*p < 0x20)
				*p = ' ';
		t->cells[t->n_rows * t->n_columns + i] = copy;
	}
	t->n_rows++;
	return 0;
}

size_t ctl_table_rows(const struct ctl_table *t)
{
	return t && t->n_rows ? t->n_rows - 1 : 0;
}

/* Display width: UTF-8 continuation bytes take no column. */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

void ctl_table_print(const struct ctl_table *t, FILE *f, unsigned indent)
{
	size_t w[16] = {0};

	for (size_t r = 0; r < t->n_rows; r++)
		for (size_t c = 0; c < t->n_columns && c < 16; c++) {
			size_t cw = width(t->cells[r * t->n_columns + c]);
			if (cw > w[c])
				w[c] = cw;
		}
	for (size_t r = 0; r < t->n_rows; r++) {
		fprintf(f, "%*s", (int)indent, "");
		for (size_t c = 0; c < t->n_columns; c++) {
			const char *cell = t->cells[r * t->n_columns + c];

			fputs(cell, f);
			if (c + 1 < t->n_columns && c < 16)
				fprintf(f, "%*s", (int)(w[c] - width(cell) + 2), "");
		}
		fputc('\n', f);
	}
}
