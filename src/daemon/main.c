/* hybridsyncd: the sync daemon. Parses the command line, loads the configuration and runs
 * the event loop (cycles, reload, control socket). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "hybridsync/log.h"

static void help(void)
{
	printf("Usage: hybridsyncd [-c CONF] [--once] [--check]\n"
	       "\n"
	       "Synchronize on-premises Active Directory to Microsoft Entra ID through Microsoft\n"
	       "Graph. While the configuration says staging = yes, exports are computed and held.\n"
	       "\n"
	       "  -c, --config=FILE  configuration file (default %s/hybridsync.conf)\n"
	       "      --once         run one cycle, then exit\n"
	       "      --check        validate the configuration, print it normalized, exit\n"
	       "  -h, --help         show this help\n"
	       "      --version      show the version\n",
	       HYBRIDSYNC_SYSCONFDIR);
}

int main(int argc, char **argv)
{
	enum { OPT_ONCE = 0x100, OPT_CHECK, OPT_VERSION };
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ 0 },
	};
	int c;

	log_setup("hybridsyncd", LOG_TARGET_AUTO);
	while ((c = getopt_long(argc, argv, "c:h", options, NULL)) >= 0) {
		switch (c) {
		case 'c':
		case OPT_ONCE:
		case OPT_CHECK:
			break;
		case 'h':
			help();
			return 0;
		case OPT_VERSION:
			printf("hybridsyncd %s\n", HYBRIDSYNC_VERSION);
			return 0;
		default:
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "hybridsyncd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	log_error("configuration support is not built yet");
	return 1;
}
