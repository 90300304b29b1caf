/* hybridsyncd: the sync daemon. Parses the command line, loads the configuration and runs
 * the event loop (cycles, reload, control socket). */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hybridsync/conf.h"
#include "hybridsync/log.h"

#define DEFAULT_CONF HYBRIDSYNC_SYSCONFDIR "/hybridsync.conf"

static void help(void)
{
	printf("Usage: hybridsyncd [-c CONF] [--once] [--check]\n"
	       "\n"
	       "Synchronize on-premises Active Directory to Microsoft Entra ID through Microsoft\n"
	       "Graph. While the configuration says staging = yes, exports are computed and held.\n"
	       "\n"
	       "  -c, --config=FILE  configuration file (default %s)\n"
	       "      --once         run one cycle, then exit\n"
	       "      --check        validate the configuration, print it normalized (canonical\n"
	       "                     JSON, then its config hash), exit 0 if valid, 1 if not\n"
	       "  -h, --help         show this help\n"
	       "      --version      show the version\n"
	       "\n"
	       "State directory: %s\n",
	       DEFAULT_CONF, HYBRIDSYNC_STATEDIR);
}

/* Prints every problem as "FILE:LINE: message" on stderr. */
static void print_errors(const struct conf_errors *errors)
{
	for (size_t i = 0; errors && i < errors->n; i++)
		fprintf(stderr, "%s\n", errors->v[i].text);
}

static int check(const struct conf *c)
{
	char hash[CONF_HASH_HEX_SIZE], *json;

	json = conf_export_json(c, false, true);
	if (!json || conf_hash(c, hash) < 0) {
		free(json);
		log_error("Failed to export the configuration: %s", strerror(ENOMEM));
		return 1;
	}
	fputs(json, stdout);
	printf("config hash: %s\n", hash);
	free(json);
	return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	enum { OPT_ONCE = 0x100, OPT_CHECK, OPT_VERSION };
	/* clang-format off */
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ 0 },
	};
	/* clang-format on */
	const char *conf_path = DEFAULT_CONF;
	struct conf_errors *errors = NULL;
	struct conf *conf = NULL;
	bool check_only = false;
	int c, r, ret;

	log_setup("hybridsyncd", LOG_TARGET_AUTO);
	while ((c = getopt_long(argc, argv, "c:h", options, NULL)) >= 0) {
		switch (c) {
		case 'c':
			conf_path = optarg;
			break;
		case OPT_ONCE:
			break;
		case OPT_CHECK:
			check_only = true;
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

	r = conf_load(conf_path, &conf, &errors);
	if (r < 0) {
		if (errors)
			print_errors(errors);
		else
			log_error("Failed to load configuration '%s': %s", conf_path, strerror(-r));
		if (!check_only)
			log_error("config file %s has errors, not starting", conf_path);
		conf_errors_free(errors);
		return 1;
	}

	if (check_only) {
		ret = check(conf);
	} else {
		log_error("the daemon loop is not built yet");
		ret = 1;
	}
	conf_free(conf);
	return ret;
}
