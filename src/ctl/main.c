/* hybridsyncctl: the operator's view of hybridsyncd (status, pending exports, runs, config). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "hybridsync/log.h"

static void help(void)
{
	printf("Usage: hybridsyncctl [-c CONF] COMMAND [ARGS]\n"
	       "\n"
	       "Commands:\n"
	       "  status [--json]                 daemon state, staging flag, last cycle, queue\n"
	       "  pending-exports [--json|--csv]  held changes, one row per attribute change\n"
	       "  runs [--json] [--last N]        run history with per-object errors\n"
	       "  show DN|ANCHOR|UPN [--json]     one object in both connector spaces and the MV\n"
	       "  sync [--full] [--wait]          start a cycle now\n"
	       "  allow-deletes                   let the current pending deletes through once\n"
	       "  config export|diff|check|import export, compare, validate or import a config\n"
	       "  backup FILE                     online, consistent copy of the database\n"
	       "\n"
	       "  -c, --config=FILE  configuration file (default %s/hybridsync.conf)\n"
	       "  -h, --help         show this help\n"
	       "      --version      show the version\n",
	       HYBRIDSYNC_SYSCONFDIR);
}

int main(int argc, char **argv)
{
	enum { OPT_VERSION = 0x100 };
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ 0 },
	};
	int c;

	log_setup("hybridsyncctl", LOG_TARGET_STDERR);
	while ((c = getopt_long(argc, argv, "+c:h", options, NULL)) >= 0) {
		switch (c) {
		case 'c':
			break;
		case 'h':
			help();
			return 0;
		case OPT_VERSION:
			printf("hybridsyncctl %s\n", HYBRIDSYNC_VERSION);
			return 0;
		default:
			return 2;
		}
	}
	if (optind >= argc) {
		help();
		return 2;
	}
	log_error("command '%s' is not built yet", argv[optind]);
	return 1;
}
