/* hybridsyncctl show and backup: one object's lineage through the sync engine's preview, and
 * an online copy of the database. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl.h"
#include "hybridsync/sync.h"

static bool scalar_array(const cJSON *a)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, a)
	{
		if (cJSON_IsObject(e) || cJSON_IsArray(e))
			return false;
	}
	return true;
}

static void print_scalar(const cJSON *v)
{
	if (cJSON_IsString(v)) {
		fputs(v->valuestring, stdout);
	} else if (cJSON_IsNull(v)) {
		fputs("-", stdout);
	} else {
		char *s = cJSON_PrintUnformatted(v);

		fputs(s ? s : "?", stdout);
		free(s);
	}
}

/* JSON as indented "key: value" lines, YAML-like: what a person reads, the structure kept.
 * `first_indent` is the indentation of the first line (0 after a list item's "- "). */
static void print_tree(const cJSON *v, unsigned indent, unsigned first_indent)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, v)
	{
		printf("%*s", (int)(c == v->child ? first_indent : indent), "");
		if (cJSON_IsArray(v) && cJSON_IsObject(c) && c->child) {
			fputs("- ", stdout);
			print_tree(c, indent + 2, 0);
			continue;
		}
		if (cJSON_IsObject(v))
			printf("%s:", c->string);
		else
			fputs("-", stdout);
		if (cJSON_IsArray(c) && scalar_array(c)) {
			const cJSON *e;

			cJSON_ArrayForEach(e, c)
			{
				fputs(e == c->child ? " " : ", ", stdout);
				print_scalar(e);
			}
			if (!c->child)
				fputs(" (none)", stdout);
			putchar('\n');
		} else if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && c->child) {
			putchar('\n');
			print_tree(c, indent + 2, indent + 2);
		} else if (cJSON_IsObject(c)) {
			fputs(" (none)\n", stdout);
		} else {
			putchar(' ');
			print_scalar(c);
			putchar('\n');
		}
	}
}

int verb_show(struct ctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
	    {"json", no_argument, NULL, 'j'},
	    {0},
	};
	struct conf_errors *errors = NULL;
	struct sync_rules *rules = NULL;
	char *json = NULL;
	cJSON *doc;
	bool as_json = false;
	int c, r, ret;

	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		if (c != 'j')
			return CTL_EXIT_USAGE;
		as_json = true;
	}
	if (optind + 1 != argc)
		return ctl_usage(argv[0], "takes one DN, anchor or UPN");
	ret = ctl_load_conf(ctl);
	if (ret == CTL_EXIT_OK)
		ret = ctl_open_store(ctl);
	if (ret != CTL_EXIT_OK)
		return ret;
	r = sync_rules_load(ctl->conf, &rules, &errors);
	if (r == -EOPNOTSUPP)
		return ctl_fail("show needs the sync engine, which this build does not have yet");
	if (r < 0) {
		for (size_t i = 0; errors && i < errors->n; i++)
			fprintf(stderr, "%s\n", errors->v[i].text);
		conf_errors_free(errors);
		return ctl_fail("Failed to load the sync rules: %s", strerror(-r));
	}
	r = sync_preview(ctl->store, rules, argv[optind], &json);
	sync_rules_free(rules);
	if (r == -EOPNOTSUPP)
		return ctl_fail("show needs the sync engine, which this build does not have yet");
	if (r == -ENOENT)
		return ctl_fail("nothing matches '%s' (a DN, an anchor, a sourceAnchor or a UPN)",
		                argv[optind]);
	if (r < 0)
		return ctl_fail("Failed to preview '%s': %s", argv[optind], ctl_strerror(ctl, r));
	doc = cJSON_Parse(json);
	free(json);
	if (!doc)
		return ctl_fail("the preview of '%s' is not valid JSON", argv[optind]);
	if (as_json)
		return ctl_print_json(doc);
	print_tree(doc, 0, 0);
	cJSON_Delete(doc);
	return ctl_flush();
}

int verb_backup(struct ctl *ctl, int argc, char **argv)
{
	struct stat st;
	int r, ret;

	while (getopt_long(argc, argv, "", (const struct option[]){{0}}, NULL) >= 0)
		return CTL_EXIT_USAGE;
	if (optind + 1 != argc)
		return ctl_usage(argv[0], "takes the FILE to write");
	ret = ctl_open_store(ctl);
	if (ret != CTL_EXIT_OK)
		return ret;
	r = store_backup(ctl->store, argv[optind]);
	if (r < 0)
		return ctl_fail("Failed to back up '%s' to '%s': %s", ctl->database, argv[optind],
		                ctl_strerror(ctl, r));
	if (stat(argv[optind], &st) == 0)
		printf("backup of %s written to %s (%lld bytes)\n", ctl->database, argv[optind],
		       (long long)st.st_size);
	return ctl_flush();
}
