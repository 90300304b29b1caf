/* hybridsyncctl: the operator's view of hybridsyncd (status, pending exports, runs, config).
 * Read-only verbs read the database directly; sync and allow-deletes talk to the daemon. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "hybridsync/log.h"

static void help(void)
{
	printf("Usage: hybridsyncctl [-c CONF] COMMAND [ARGS]\n"
	       "\n"
	       "Commands:\n"
	       "  status [--json]                 daemon state, staging flag, last cycle, queue\n"
	       "  pending-exports [--json|--csv] [--op add|update|delete] [--type "
	       "user|group|contact]\n"
	       "                                  held changes, one row per attribute change\n"
	       "  runs [--json] [--last N]        run history with per-object errors\n"
	       "  show DN|ANCHOR|UPN [--json]     one object in both connector spaces and the MV\n"
	       "  sync [--full] [--wait] [--timeout SECONDS]\n"
	       "                                  start a cycle now\n"
	       "  allow-deletes                   let the current pending deletes through once\n"
	       "  config export                   the effective config as canonical JSON\n"
	       "  config check                    validate the config file\n"
	       "  config diff [--all] FILE [FILE] compare two exports (default: this server's)\n"
	       "  config import FILE --to DIR [--force]\n"
	       "                                  a new server's config from an export (staging)\n"
	       "  backup FILE                     online, consistent copy of the database\n"
	       "\n"
	       "  -c, --config=FILE  configuration file (default %s/hybridsync.conf)\n"
	       "  -h, --help         show this help\n"
	       "      --version      show the version\n",
	       HYBRIDSYNC_SYSCONFDIR);
}

static const struct {
	const char *name;
	ctl_verb_fn fn;
} verbs[] = {
    {"status", verb_status}, {"pending-exports", verb_pending_exports},
    {"runs", verb_runs},     {"show", verb_show},
    {"sync", verb_sync},     {"allow-deletes", verb_allow_deletes},
    {"config", verb_config}, {"backup", verb_backup},
};

int main(int argc, char **argv)
{
	enum { OPT_VERSION = 0x100 };
	/* clang-format off */
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ 0 },
	};
	/* clang-format on */
	struct ctl ctl = {.conf_path = HYBRIDSYNC_SYSCONFDIR "/hybridsync.conf"};
	int c, ret;

	log_setup("hybridsyncctl", LOG_TARGET_STDERR);
	while ((c = getopt_long(argc, argv, "+c:h", options, NULL)) >= 0) {
		switch (c) {
		case 'c':
			ctl.conf_path = optarg;
			break;
		case 'h':
			help();
			return CTL_EXIT_OK;
		case OPT_VERSION:
			printf("hybridsyncctl %s\n", HYBRIDSYNC_VERSION);
			return CTL_EXIT_OK;
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		help();
		return CTL_EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(argv[optind], verbs[i].name) == 0) {
			char **vargv = argv + optind;
			int vargc = argc - optind;

			optind = 0; /* each verb parses its own options from vargv[1] */
			ret = verbs[i].fn(&ctl, vargc, vargv);
			ctl_done(&ctl);
			return ret;
		}
	}
	return ctl_usage(NULL, "unknown command '%s'", argv[optind]);
}
