/* hybridsyncd: the sync daemon. Parses the command line, loads the configuration, opens and
 * checks the database, and runs the event loop (loop.c) until stopped. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "hybridsync/conf.h"
#include "hybridsync/log.h"
#include "hybridsync/status.h"

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
	       "      --check        validate the configuration and compile its sync rules, print\n"
	       "                     it normalized (canonical JSON, then its config hash), exit 0\n"
	       "                     if valid, 1 if not\n"
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

/* The config is valid when the sync rules it names compile too: the daemon would refuse it
 * at start otherwise. */
static int check(const struct conf *c)
{
	char hash[CONF_HASH_HEX_SIZE], *json;
	struct sync_rules *rules = NULL;
	struct conf_errors *errors = NULL;
	int r;

	r = sync_rules_load(c, &rules, &errors);
	if (r < 0) {
		if (errors && errors->n)
			print_errors(errors);
		else
			log_error("Failed to compile the sync rules: %s", strerror(-r));
		conf_errors_free(errors);
		return 1;
	}
	sync_rules_free(rules);

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

static int open_store(const char *path, struct store **ret)
{
	char err[512] = "";
	int r;

	r = store_open(path, 0, ret, err, sizeof(err));
	if (r < 0)
		return log_error_errno(r, "Failed to open database '%s': %s", path,
		                       err[0] ? err : strerror(-r));
	return 0;
}

/* True when the daemon.pid key names a live hybridsyncd other than this one. */
static bool other_daemon_running(struct store *s, long *ret_pid)
{
	char *v = NULL, *end, comm_path[64], comm[64] = "";
	FILE *f;
	long pid;

	if (store_state_get(s, STATUS_KEY_PID, &v) < 0 || !v)
		return false;
	errno = 0;
	pid = strtol(v, &end, 10);
	if (errno || end == v || *end || pid <= 0 || pid == (long)getpid()) {
		free(v);
		return false;
	}
	free(v);
	(void)snprintf(comm_path, sizeof(comm_path), "/proc/%ld/comm", pid);
	f = fopen(comm_path, "re");
	if (!f)
		return false;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	*ret_pid = pid;
	return strncmp(comm, "hybridsyncd", 11) == 0;
}

/* Opens both handles, refuses a damaged file or one another daemon uses, closes the runs a
 * crash left open. */
static int prepare_store(struct daemon *d)
{
	const char *path = d->conf->sync.database;
	uint64_t n = 0;
	long pid = 0;
	int r;

	r = open_store(path, &d->store);
	if (r < 0)
		return r;
	r = store_check_integrity(d->store, false);
	if (r == -EBADMSG)
		return log_error_errno(r,
		                       "Database '%s' is corrupt (%s): not starting. Restore a "
		                       "backup (hybridsyncctl backup FILE makes one), or move the "
		                       "file away to start empty with an initial cycle",
		                       path, store_last_error(d->store));
	if (r < 0)
		return log_error_errno(r, "Failed to check database '%s': %s", path, strerror(-r));
	if (other_daemon_running(d->store, &pid))
		return log_error_errno(
		    EBUSY, "Database '%s' is in use by hybridsyncd pid %ld: not starting", path,
		    pid);
	r = store_run_end_unfinished(d->store, "stopped-server-down", &n);
	if (r < 0)
		return log_error_errno(r, "Failed to close unfinished runs in '%s': %s", path,
		                       strerror(-r));
	if (n > 0)
		log_warning("Closed %" PRIu64 " runs a previous stop left unfinished", n);
	return open_store(path, &d->wstore);
}

static int run_daemon(const char *conf_path, struct conf *conf, bool once)
{
	struct daemon d = {.conf_path = conf_path, .once = once, .listen_fd = -1, .done_fd = -1};
	struct conf_errors *errors = NULL;
	char err[512] = "";
	int r, ret = 1;

	d.conf = conf;
	pthread_mutex_init(&d.shared.lock, NULL);
	(void)snprintf(d.shared.state, sizeof(d.shared.state), "idle");
	(void)snprintf(d.shared.step, sizeof(d.shared.step), "starting");
	atomic_init(&d.stop, false);
	atomic_init(&d.cancel_export, false);
	if (conf_hash(conf, d.config_hash) < 0) {
		log_error("Failed to hash the configuration: %s", strerror(ENOMEM));
		goto out;
	}
	r = sync_rules_load(conf, &d.rules, &errors);
	if (r < 0) {
		for (size_t i = 0; errors && i < errors->n; i++)
			fprintf(stderr, "%s\n", errors->v[i].text);
		log_error("config file %s has rule errors, not starting", conf_path);
		goto out;
	}
	r = graph_new(conf, &d.graph, err, sizeof(err));
	if (r < 0) {
		log_error("Failed to set up the Graph client: %s", err[0] ? err : strerror(-r));
		goto out;
	}
	if (prepare_store(&d) < 0)
		goto out;
	ret = daemon_run(&d);
out:
	daemon_done(&d);
	conf_errors_free(errors);
	d.graph = graph_free(d.graph);
	d.rules = sync_rules_free(d.rules);
	d.store = store_close(d.store);
	d.wstore = store_close(d.wstore);
	pthread_mutex_destroy(&d.shared.lock);
	conf_free(d.conf);
	return ret;
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
	bool check_only = false, once = false;
	int c, r;

	log_setup("hybridsyncd", LOG_TARGET_AUTO);
	while ((c = getopt_long(argc, argv, "c:h", options, NULL)) >= 0) {
		switch (c) {
		case 'c':
			conf_path = optarg;
			break;
		case OPT_ONCE:
			once = true;
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
		r = check(conf);
		conf_free(conf);
		return r;
	}
	r = run_daemon(conf_path, conf, once); /* takes conf */
	return r < 0 ? 1 : r;                  /* a failure to start is exit 1, never an errno */
}
