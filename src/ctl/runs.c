/* hybridsyncctl runs: the run history, newest first, with steps, counters and errors. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "hybridsync/report.h"

#define TEXT_RUNS_DEFAULT   20 /* runs listed in text mode without --last */
#define TEXT_ERRORS_PER_RUN 10

static int print_steps(const cJSON *run)
{
	static const char *const header[] = {"CONNECTOR", "STEP", "STATUS",  "STARTED", "DURATION",
	                                     "OBJECTS",   "ADDS", "UPDATES", "DELETES", "ERRORS"};
	struct ctl_table *t = ctl_table_new(10, header);
	const cJSON *st;
	int r = 0;

	if (!t)
		return -ENOMEM;
	cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(run, "steps"))
	{
		char started[32], dur[32], k[5][24];
		int64_t s = ctl_jint(st, "started"), f = ctl_jint(st, "finished");
		static const char *const counters[] = {"objects", "adds", "updates", "deletes",
		                                       "errors"};

		for (size_t i = 0; i < 5; i++)
			snprintf(k[i], sizeof(k[i]), "%" PRId64, ctl_jint(st, counters[i]));
		const char *cells[] = {
		    ctl_jstr(st, "connector"),
		    ctl_jstr(st, "step"),
		    ctl_jstr(st, "status"),
		    ctl_time(s, started),
		    f ? ctl_duration(f - s, dur) : "-",
		    k[0],
		    k[1],
		    k[2],
		    k[3],
		    k[4],
		};
		r = ctl_table_add(t, cells);
		if (r < 0)
			break;
	}
	if (r >= 0 && ctl_table_rows(t))
		ctl_table_print(t, stdout, 2);
	ctl_table_free(t);
	return r;
}

static void print_errors(const cJSON *run)
{
	const cJSON *e, *errors = cJSON_GetObjectItemCaseSensitive(run, "errors");
	int64_t total = ctl_jint(run, "error_count"), shown = 0;

	if (!cJSON_GetArraySize(errors))
		return;
	printf("  errors:\n");
	cJSON_ArrayForEach(e, errors)
	{
		const char *dn = ctl_jstr(e, "dn"), *anchor = ctl_jstr(e, "anchor");

		if (shown++ == TEXT_ERRORS_PER_RUN)
			break;
		printf("    %s%s%s%s%s%s%s%s: %s\n", ctl_jstr(e, "connector"),
		       *ctl_jstr(e, "connector") ? " " : "",
		       *ctl_jstr(e, "step") ? ctl_jstr(e, "step") : "run",
		       *dn || *anchor ? " " : "", *dn ? dn : anchor, *dn && *anchor ? " (" : "",
		       *dn && *anchor ? anchor : "", *dn && *anchor ? ")" : "",
		       *ctl_jstr(e, "code") ? ctl_jstr(e, "code") : "error");
		printf("      %s\n", ctl_jstr(e, "message"));
	}
	if (total > TEXT_ERRORS_PER_RUN)
		printf("    ... and %" PRId64 " more (hybridsyncctl runs --json)\n",
		       total - TEXT_ERRORS_PER_RUN);
}

static int print_text(const cJSON *runs)
{
	const cJSON *run;
	int r;

	if (!cJSON_GetArraySize(runs)) {
		printf("No runs yet.\n");
		return 0;
	}
	cJSON_ArrayForEach(run, runs)
	{
		char started[32], dur[32];
		int64_t s = ctl_jint(run, "started"), f = ctl_jint(run, "finished");

		if (run != runs->child)
			putchar('\n');
		printf("run #%" PRId64 "  %s  %s  started %s  %s%s  %" PRId64 " error(s)\n",
		       ctl_jint(run, "id"), ctl_jstr(run, "type"), ctl_jstr(run, "status"),
		       ctl_time(s, started), f ? "took " : "",
		       f ? ctl_duration(f - s, dur) : "running", ctl_jint(run, "error_count"));
		r = print_steps(run);
		if (r < 0)
			return r;
		print_errors(run);
	}
	return 0;
}

int verb_runs(struct ctl *ctl, int argc, char **argv)
{
	enum { OPT_JSON = 0x100, OPT_LAST };
	static const struct option options[] = {
	    {"json", no_argument, NULL, OPT_JSON},
	    {"last", required_argument, NULL, OPT_LAST},
	    {0},
	};
	bool json = false, last_set = false;
	unsigned last = 0;
	cJSON *runs = NULL;
	int c, r, ret;

	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		switch (c) {
		case OPT_JSON:
			json = true;
			break;
		case OPT_LAST:
			if (ctl_parse_unsigned(optarg, 1000000, &last) < 0)
				return ctl_usage(argv[0], "--last takes a number of runs, not '%s'",
				                 optarg);
			last_set = true;
			break;
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return ctl_usage(argv[0], "unexpected argument '%s'", argv[optind]);
	if (!last_set && !json)
		last = TEXT_RUNS_DEFAULT;
	ret = ctl_open_store(ctl);
	if (ret != CTL_EXIT_OK)
		return ret;
	/* text shows a few errors per run: do not read them all */
	r = report_runs(ctl->store, last, json ? 0 : TEXT_ERRORS_PER_RUN, &runs);
	if (r < 0)
		return ctl_fail("Failed to read the run history from '%s': %s", ctl->database,
		                ctl_strerror(ctl, r));
	if (json)
		return ctl_print_json(runs);
	r = print_text(runs);
	cJSON_Delete(runs);
	return r < 0 ? ctl_fail("Failed to format: %s", strerror(-r)) : ctl_flush();
}
