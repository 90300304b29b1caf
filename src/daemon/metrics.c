/* The metrics file: Prometheus/OpenMetrics text for node_exporter's textfile collector,
 * rewritten after every step. Written to FILE.tmp and renamed, so a scrape never sees half a
 * file. Gauges only (what the textfile collector accepts); the config hash is a label of
 * hybridsync_info. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "hybridsync/log.h"
#include "hybridsync/status.h"

#define G(f, name, help) fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)

/* Label values: escape backslash, quote and newline. */
static void label_value(FILE *f, const char *v)
{
	for (; v && *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void write_body(FILE *f, struct daemon *d, const struct conf *c, const char *hash,
                       struct store *s)
{
	static const char *const statuses[] = {
	    "success",
	    "completed-warnings",
	    "completed-sync-errors",
	    "completed-export-errors",
	    "stopped-server-down",
	    "stopped-connectivity",
	    "stopped-deletion-threshold-exceeded",
	    "stopped-lease-conflict",
	    "stopped-cancelled",
	    "stopped-error",
	};
	static const char *const connectors[] = {"ad", "graph"};
	struct store_export_totals tot = {0};
	struct graph_budget b = {0};
	uint64_t total, pending, mv = 0;
	int64_t id;

	G(f, "hybridsync_info", "Running configuration (config hash) and server name");
	fputs("hybridsync_info{config_hash=\"", f);
	label_value(f, hash);
	fputs("\",server=\"", f);
	label_value(f, c->sync.server_name);
	fprintf(f, "\",version=\"%s\"} 1\n", HYBRIDSYNC_VERSION);
	G(f, "hybridsync_staging", "1 while staging = yes: exports are held");
	fprintf(f, "hybridsync_staging %d\n", c->sync.staging ? 1 : 0);
	G(f, "hybridsync_interval_seconds", "Configured time between delta cycles");
	fprintf(f, "hybridsync_interval_seconds %u\n", c->sync.interval);
	G(f, "hybridsync_metrics_timestamp_seconds", "When this file was written");
	fprintf(f, "hybridsync_metrics_timestamp_seconds %lld\n", (long long)time(NULL));

	if (store_export_counts(s, 0, &tot) >= 0) {
		G(f, "hybridsync_pending_exports", "Pending exports not yet done, by operation");
		fprintf(f, "hybridsync_pending_exports{op=\"add\"} %" PRIu64 "\n", tot.add);
		fprintf(f, "hybridsync_pending_exports{op=\"update\"} %" PRIu64 "\n", tot.update);
		fprintf(f, "hybridsync_pending_exports{op=\"delete\"} %" PRIu64 "\n", tot.delete);
		G(f, "hybridsync_pending_exports_state", "Pending exports by state");
		fprintf(f, "hybridsync_pending_exports_state{state=\"pending\"} %" PRIu64 "\n",
		        tot.pending);
		fprintf(f, "hybridsync_pending_exports_state{state=\"in_flight\"} %" PRIu64 "\n",
		        tot.in_flight);
		fprintf(f, "hybridsync_pending_exports_state{state=\"error\"} %" PRIu64 "\n",
		        tot.error);
	}
	G(f, "hybridsync_connector_objects", "Objects in each connector space");
	for (size_t i = 0; i < 2; i++)
		if (store_get_connector(s, connectors[i], &id) >= 0 &&
		    store_cs_count(s, id, &total, &pending) >= 0)
			fprintf(f, "hybridsync_connector_objects{connector=\"%s\"} %" PRIu64 "\n",
			        connectors[i], total);
	G(f, "hybridsync_connector_pending_imports", "Imported changes not yet synchronized");
	for (size_t i = 0; i < 2; i++)
		if (store_get_connector(s, connectors[i], &id) >= 0 &&
		    store_cs_count(s, id, &total, &pending) >= 0)
			fprintf(f,
			        "hybridsync_connector_pending_imports{connector=\"%s\"} %" PRIu64
			        "\n",
			        connectors[i], pending);
	if (store_mv_count(s, &mv) >= 0) {
		G(f, "hybridsync_metaverse_objects", "Objects in the metaverse");
		fprintf(f, "hybridsync_metaverse_objects %" PRIu64 "\n", mv);
	}
	G(f, "hybridsync_last_import_success_timestamp_seconds",
	  "End of the last import of each connector that was not stopped");
	for (size_t i = 0; i < 2; i++)
		fprintf(f,
		        "hybridsync_last_import_success_timestamp_seconds{connector=\"%s\"} %lld\n",
		        connectors[i], (long long)d->last_import_ok[i]);

	G(f, "hybridsync_last_cycle_start_timestamp_seconds", "Start of the last cycle");
	fprintf(f, "hybridsync_last_cycle_start_timestamp_seconds %lld\n",
	        (long long)d->last_cycle_started);
	G(f, "hybridsync_last_cycle_end_timestamp_seconds", "End of the last finished cycle");
	fprintf(f, "hybridsync_last_cycle_end_timestamp_seconds %lld\n",
	        (long long)d->last_cycle_finished);
	G(f, "hybridsync_last_cycle_success_timestamp_seconds",
	  "End of the last cycle whose status was not stopped-*");
	fprintf(f, "hybridsync_last_cycle_success_timestamp_seconds %lld\n",
	        (long long)d->last_good_cycle);
	G(f, "hybridsync_last_cycle_status", "1 for the status of the last finished cycle");
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		fprintf(f, "hybridsync_last_cycle_status{status=\"%s\"} %d\n", statuses[i],
		        strcmp(d->last_cycle_status, statuses[i]) == 0 ? 1 : 0);
	G(f, "hybridsync_last_cycle_errors", "Per-object errors of the last finished cycle");
	fprintf(f, "hybridsync_last_cycle_errors %" PRIu64 "\n", d->last_cycle_errors);
	G(f, "hybridsync_last_export_success_timestamp_seconds",
	  "End of the last export that was not stopped");
	fprintf(f, "hybridsync_last_export_success_timestamp_seconds %lld\n",
	        (long long)d->last_export_ok);

	G(f, "hybridsync_deletion_threshold_exceeded",
	  "1 while the deletion threshold stops the export");
	fprintf(f, "hybridsync_deletion_threshold_exceeded %d\n", d->threshold_hit ? 1 : 0);
	G(f, "hybridsync_lease_conflict", "1 while another server's fresh lease blocks the export");
	fprintf(f, "hybridsync_lease_conflict %d\n", d->lease_conflict ? 1 : 0);
	G(f, "hybridsync_config_drift",
	  "1 when the active server's config hash differs from this staging server's");
	fprintf(f, "hybridsync_config_drift %d\n", d->drift ? 1 : 0);

	{
		graph_get_budget(d->graph, &b);
		G(f, "hybridsync_graph_write_budget", "Graph writes allowed per window");
		fprintf(f, "hybridsync_graph_write_budget %u\n", b.budget);
		G(f, "hybridsync_graph_write_window_seconds", "Length of the write budget window");
		fprintf(f, "hybridsync_graph_write_window_seconds %u\n", b.window);
		G(f, "hybridsync_graph_writes_window", "Graph writes in the current window");
		fprintf(f, "hybridsync_graph_writes_window %" PRIu64 "\n", b.used_window);
		G(f, "hybridsync_graph_writes", "Graph write requests since the daemon started");
		fprintf(f, "hybridsync_graph_writes %" PRIu64 "\n", b.writes_total);
		G(f, "hybridsync_graph_throttled", "429/503 answers since the daemon started");
		fprintf(f, "hybridsync_graph_throttled %" PRIu64 "\n", b.throttled_total);
	}
	fputs("# EOF\n", f);
}

int metrics_write(struct daemon *d, const struct conf *c, const char *config_hash, struct store *s)
{
	const char *path = c->sync.metrics_file;
	char tmp[4096];
	FILE *f = NULL;
	int fd, r = 0;

	if (!path || !*path)
		return 0;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	(void)fchmod(fd, 0644); /* readable by node_exporter despite UMask=0027 */
	f = fdopen(fd, "w");
	if (!f) {
		r = -errno;
		close(fd);
		goto out;
	}
	write_body(f, d, c, config_hash, s);
	if (fflush(f) != 0 || ferror(f))
		r = -EIO;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
out:
	if (r < 0) {
		(void)unlink(tmp);
		log_warning("Failed to write the metrics file '%s': %s", path, strerror(-r));
	}
	return r;
}
