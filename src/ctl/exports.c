/* hybridsyncctl pending-exports: the held changes, in text (a table, one row per attribute
 * change), JSON (report.h) or CSV (RFC 4180, the CSExportAnalyzer replacement), with a summary
 * and the queue fingerprint. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "hybridsync/report.h"

#define TEXT_VALUE_MAX 60 /* characters of a value shown in the table */

/* A value of the JSON report as text: the string, "base64:..." for binary, "" for null. */
static char *value_text(const cJSON *v)
{
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(v, "base64");
	char *out = NULL;

	if (cJSON_IsString(v))
		return strdup(v->valuestring);
	if (cJSON_IsString(b))
		return asprintf(&out, "base64:%s", b->valuestring) < 0 ? NULL : out;
	return strdup("");
}

/* Every value of one side joined with " | " (text mode). */
static char *side_text(const cJSON *side)
{
	char *buf = NULL, *v;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	const cJSON *e;

	if (!f)
		return NULL;
	if (cJSON_IsArray(side)) {
		cJSON_ArrayForEach(e, side)
		{
			v = value_text(e);
			fprintf(f, "%s%s", e == side->child ? "" : " | ", v ? v : "");
			free(v);
		}
	} else {
		v = value_text(side);
		fputs(v ? v : "", f);
		free(v);
	}
	if (fclose(f) != 0)
		return free(buf), NULL;
	return buf;
}

static void shorten(char *s)
{
	size_t chars = 0;

	for (char *p = s; *p; p++) {
		if (((unsigned char)*p & 0xc0) == 0x80)
			continue;
		if (++chars > TEXT_VALUE_MAX - 3) {
			memcpy(p, "...", 4);
			return;
		}
	}
}

/* --- CSV ------------------------------------------------------------------------------------ */

static void csv_field(FILE *f, const char *s, bool last)
{
	if (strpbrk(s, ",\"\r\n")) {
		fputc('"', f);
		for (; *s; s++) {
			if (*s == '"')
				fputc('"', f);
			fputc(*s, f);
		}
		fputc('"', f);
	} else {
		fputs(s, f);
	}
	fputs(last ? "\r\n" : ",", f);
}

static void csv_row(const cJSON *e, const char *attr, const char *old, const char *new)
{
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(e, "error");
	const char *cells[] = {
	    ctl_jstr(e, "operation"),
	    ctl_jstr(e, "object_type"),
	    ctl_jstr(e, "anchor"),
	    ctl_jstr(e, "dn"),
	    ctl_jstr(e, "target_id"),
	    ctl_jstr(e, "state"),
	    ctl_jstr(err, "code"),
	    attr,
	    old,
	    new,
	};
	size_t n = sizeof(cells) / sizeof(cells[0]);

	for (size_t i = 0; i < n; i++)
		csv_field(stdout, cells[i], i + 1 == n);
}

static bool contains(const cJSON *arr, const cJSON *v)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, arr)
	{
		if (cJSON_Compare(e, v, true))
			return true;
	}
	return false;
}

/* Single values: one row with old and new. Multi-valued: one row per value removed (old) and
 * per value added (new), so a change of one proxy address is one row. */
static int csv_attribute(const cJSON *e, const cJSON *attr)
{
	const cJSON *old = cJSON_GetObjectItemCaseSensitive(attr, "old");
	const cJSON *new = cJSON_GetObjectItemCaseSensitive(attr, "new"), *v;
	char *o, *n;

	if (!cJSON_IsArray(old) && !cJSON_IsArray(new)) {
		o = value_text(old);
		n = value_text(new);
		if (o && n)
			csv_row(e, attr->string, o, n);
		free(o);
		free(n);
		return o && n ? 0 : -ENOMEM;
	}
	cJSON_ArrayForEach(v, old)
	{
		if (contains(new, v))
			continue;
		o = value_text(v);
		if (!o)
			return -ENOMEM;
		csv_row(e, attr->string, o, "");
		free(o);
	}
	cJSON_ArrayForEach(v, new)
	{
		if (contains(old, v))
			continue;
		n = value_text(v);
		if (!n)
			return -ENOMEM;
		csv_row(e, attr->string, "", n);
		free(n);
	}
	return 0;
}

static int print_csv(const cJSON *list)
{
	static const char *const header[] = {"operation", "object_type", "anchor", "dn",
	                                     "target_id", "state",       "error",  "attribute",
	                                     "old",       "new"};
	const cJSON *e, *a, *m;

	for (size_t i = 0; i < 10; i++)
		csv_field(stdout, header[i], i == 9);
	cJSON_ArrayForEach(e, list)
	{
		const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(e, "attributes");
		const cJSON *members = cJSON_GetObjectItemCaseSensitive(e, "members");
		bool any = false;

		cJSON_ArrayForEach(a, attrs)
		{
			if (csv_attribute(e, a) < 0)
				return -ENOMEM;
			any = true;
		}
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(members, "remove"))
		{
			csv_row(e, "member", ctl_jstr(m, "anchor"), "");
			any = true;
		}
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(members, "add"))
		{
			csv_row(e, "member", "", ctl_jstr(m, "anchor"));
			any = true;
		}
		if (!any) /* a delete: the object itself is the change */
			csv_row(e, "", "", "");
	}
	return 0;
}

/* --- text ----------------------------------------------------------------------------------- */

static int text_row(struct ctl_table *t, const cJSON *e, bool first, const char *attr,
                    const char *old, const char *new)
{
	const char *cells[] = {
	    first ? ctl_jstr(e, "operation") : "",
	    first ? ctl_jstr(e, "object_type") : "",
	    first ? ctl_jstr(e, "anchor") : "",
	    first ? ctl_jstr(e, "dn") : "",
	    attr,
	    old,
	    new,
	};
	return ctl_table_add(t, cells);
}

static int text_attribute(struct ctl_table *t, const cJSON *e, bool first, const cJSON *attr)
{
	char *o = side_text(cJSON_GetObjectItemCaseSensitive(attr, "old"));
	char *n = side_text(cJSON_GetObjectItemCaseSensitive(attr, "new"));
	int r = -ENOMEM;

	if (o && n) {
		shorten(o);
		shorten(n);
		r = text_row(t, e, first, attr->string, *o ? o : NULL, *n ? n : NULL);
	}
	free(o);
	free(n);
	return r;
}

static int print_text(const cJSON *list)
{
	static const char *const header[] = {"OPERATION", "TYPE", "ANCHOR", "DN",
	                                     "ATTRIBUTE", "OLD",  "NEW"};
	struct ctl_table *t = ctl_table_new(7, header);
	const cJSON *e, *a, *m;
	size_t n_errors = 0;
	int r = 0;

	if (!t)
		return -ENOMEM;
	cJSON_ArrayForEach(e, list)
	{
		const cJSON *members = cJSON_GetObjectItemCaseSensitive(e, "members");
		bool first = true;

		cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(e, "attributes"))
		{
			r = r < 0 ? r : text_attribute(t, e, first, a);
			first = false;
		}
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(members, "remove"))
		{
			r = r < 0 ? r
			          : text_row(t, e, first, "member", ctl_jstr(m, "anchor"), NULL);
			first = false;
		}
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(members, "add"))
		{
			r = r < 0 ? r
			          : text_row(t, e, first, "member", NULL, ctl_jstr(m, "anchor"));
			first = false;
		}
		if (first)
			r = r < 0 ? r : text_row(t, e, true, NULL, NULL, NULL);
		if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(e, "error")))
			n_errors++;
	}
	if (r >= 0 && ctl_table_rows(t) > 0)
		ctl_table_print(t, stdout, 0);
	t = ctl_table_free(t);
	if (r < 0 || n_errors == 0)
		return r;
	printf("\nExport errors:\n");
	cJSON_ArrayForEach(e, list)
	{
		const cJSON *err = cJSON_GetObjectItemCaseSensitive(e, "error");

		if (cJSON_IsObject(err))
			printf("  %s %s %s: %s: %s%s%s%s\n", ctl_jstr(e, "operation"),
			       ctl_jstr(e, "object_type"), ctl_jstr(e, "anchor"),
			       ctl_jstr(err, "code"), ctl_jstr(err, "message"),
			       *ctl_jstr(err, "request_id") ? " (request " : "",
			       ctl_jstr(err, "request_id"),
			       *ctl_jstr(err, "request_id") ? ")" : "");
	}
	return 0;
}

/* The summary of what is listed and of the whole queue, with its fingerprint. */
static void print_summary(FILE *f, const cJSON *list, const cJSON *sum, bool filtered)
{
	uint64_t n[3] = {0}, listed = 0;
	const cJSON *e;

	cJSON_ArrayForEach(e, list)
	{
		const char *op = ctl_jstr(e, "operation");

		n[strcmp(op, "add") == 0 ? 0 : strcmp(op, "update") == 0 ? 1 : 2]++;
		listed++;
	}
	if (filtered)
		fprintf(f,
		        "%" PRIu64 " listed (%" PRIu64 " add, %" PRIu64 " update, %" PRIu64
		        " delete) of ",
		        listed, n[0], n[1], n[2]);
	fprintf(f,
	        "%" PRId64 " pending export(s): %" PRId64 " add, %" PRId64 " update, %" PRId64
	        " delete; %" PRId64 " in error, %" PRId64 " in flight\n",
	        ctl_jint(sum, "total"), ctl_jint(sum, "add"), ctl_jint(sum, "update"),
	        ctl_jint(sum, "delete"), ctl_jint(sum, "error"), ctl_jint(sum, "in_flight"));
	fprintf(f, "queue fingerprint: %s\n", ctl_jstr(sum, "fingerprint"));
}

static int parse_op(const char *arg, unsigned *mask)
{
	char *copy = strdup(arg), *save = NULL, *tok;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int op = store_export_op_from_string(tok);

		if (op < 0) {
			r = -EINVAL;
			break;
		}
		*mask |= 1u << op;
	}
	free(copy);
	return r;
}

int verb_pending_exports(struct ctl *ctl, int argc, char **argv)
{
	enum { OPT_JSON = 0x100, OPT_CSV, OPT_OP, OPT_TYPE };
	static const struct option options[] = {
	    {"json", no_argument, NULL, OPT_JSON},
	    {"csv", no_argument, NULL, OPT_CSV},
	    {"op", required_argument, NULL, OPT_OP},
	    {"type", required_argument, NULL, OPT_TYPE},
	    {0},
	};
	struct report_export_filter filter = {0};
	enum { TEXT, JSON, CSV } format = TEXT;
	cJSON *list = NULL, *sum = NULL;
	int c, r, ret;

	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		switch (c) {
		case OPT_JSON:
		case OPT_CSV:
			if (format != TEXT)
				return ctl_usage(argv[0], "--json and --csv exclude each other");
			format = c == OPT_JSON ? JSON : CSV;
			break;
		case OPT_OP:
			if (parse_op(optarg, &filter.op_mask) < 0)
				return ctl_usage(
				    argv[0], "--op takes add, update or delete, not '%s'", optarg);
			break;
		case OPT_TYPE:
			if (strcmp(optarg, "user") != 0 && strcmp(optarg, "group") != 0 &&
			    strcmp(optarg, "contact") != 0)
				return ctl_usage(argv[0],
				                 "--type takes user, group or contact, not '%s'",
				                 optarg);
			filter.object_type = optarg;
			break;
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return ctl_usage(argv[0], "unexpected argument '%s'", argv[optind]);
	ret = ctl_open_store(ctl);
	if (ret != CTL_EXIT_OK)
		return ret;
	r = report_pending_exports(ctl->store, &filter, &list);
	if (r >= 0)
		r = report_export_summary(ctl->store, &sum);
	if (r < 0) {
		cJSON_Delete(list);
		return ctl_fail("Failed to read the pending exports from '%s': %s", ctl->database,
		                ctl_strerror(ctl, r));
	}
	switch (format) {
	case JSON:
		/* stdout carries the array alone; the summary goes to stderr */
		print_summary(stderr, list, sum, filter.op_mask || filter.object_type);
		ret = ctl_print_json(list);
		list = NULL;
		break;
	case CSV:
		print_summary(stderr, list, sum, filter.op_mask || filter.object_type);
		r = print_csv(list);
		ret = r < 0 ? ctl_fail("Failed to write CSV: %s", strerror(-r)) : ctl_flush();
		break;
	case TEXT:
		r = print_text(list);
		if (r >= 0) {
			if (cJSON_GetArraySize(list) > 0)
				putchar('\n');
			print_summary(stdout, list, sum, filter.op_mask || filter.object_type);
		}
		ret = r < 0 ? ctl_fail("Failed to format: %s", strerror(-r)) : ctl_flush();
		break;
	}
	cJSON_Delete(list);
	cJSON_Delete(sum);
	return ret;
}
