/* hybridsyncctl status: the daemon's state, the staging flag, the last cycle and the queue. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "hybridsync/report.h"

static const cJSON *obj(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsObject(v) ? v : NULL;
}

static void line(const char *label, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(const char *label, const char *fmt, ...)
{
	va_list ap;

	printf("%-19s ", label);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void print_cycle(const char *label, const cJSON *cy)
{
	char t1[32], d[32];
	int64_t started = ctl_jint(cy, "started"), finished = ctl_jint(cy, "finished");

	if (!cy) {
		line(label, "none");
		return;
	}
	if (finished)
		line(label, "#%" PRId64 " %s %s, started %s, took %s, %" PRId64 " error(s)",
		     ctl_jint(cy, "id"), ctl_jstr(cy, "type"), ctl_jstr(cy, "status"),
		     ctl_time(started, t1), ctl_duration(finished - started, d),
		     ctl_jint(cy, "error_count"));
	else
		line(label, "#%" PRId64 " %s, started %s (running)", ctl_jint(cy, "id"),
		     ctl_jstr(cy, "type"), ctl_time(started, t1));
}

static void print_text(const cJSON *doc)
{
	const cJSON *pe = obj(doc, "pending_exports"), *rl = obj(doc, "last_reload");
	const cJSON *th = obj(doc, "deletion_threshold"), *lease = obj(doc, "lease");
	const cJSON *objects = obj(doc, "objects"), *ok;
	const char *state = ctl_jstr(doc, "state"), *hash = ctl_jstr(doc, "config_hash");
	const char *file_hash = ctl_jstr(doc, "config_file_hash");
	char t[32], d[32];
	int64_t next = ctl_jint(doc, "next_cycle");

	if (ctl_jint(doc, "pid"))
		line("hybridsyncd:", "running (pid %" PRId64 "), %s%s%s%s", ctl_jint(doc, "pid"),
		     state, *ctl_jstr(doc, "step") ? " (" : "", ctl_jstr(doc, "step"),
		     *ctl_jstr(doc, "step") ? ")" : "");
	else
		line("hybridsyncd:", "%s", state);
	line("mode:", "%s",
	     cJSON_IsTrue(cJSON_GetObjectItem(doc, "staging"))
	         ? "staging (exports are computed and held)"
	         : "active (exports are written to Graph)");
	if (*file_hash && *hash && strcmp(hash, file_hash) != 0)
		line("config hash:", "%s (the file has %s: not loaded yet)", hash, file_hash);
	else
		line("config hash:", "%s", *hash ? hash : "-");
	print_cycle("last cycle:", obj(doc, "last_cycle"));
	if (obj(doc, "current_cycle") && ctl_jint(doc, "pid"))
		print_cycle("current cycle:", obj(doc, "current_cycle"));
	else if (obj(doc, "current_cycle")) /* a crash left it open; the next start closes it */
		line("unfinished cycle:", "#%" PRId64 " %s, started %s, never ended",
		     ctl_jint(obj(doc, "current_cycle"), "id"),
		     ctl_jstr(obj(doc, "current_cycle"), "type"),
		     ctl_time(ctl_jint(obj(doc, "current_cycle"), "started"), t));
	if (next > 0) {
		int64_t in = next - (int64_t)time(NULL);
		line("next cycle:", "%s (in %s)", ctl_time(next, t),
		     ctl_duration(in < 0 ? 0 : in, d));
	} else {
		line("next cycle:", "-");
	}
	line("pending exports:",
	     "%" PRId64 " add, %" PRId64 " update, %" PRId64 " delete (%" PRId64 " total, %" PRId64
	     " in error, %" PRId64 " in flight)",
	     ctl_jint(pe, "add"), ctl_jint(pe, "update"), ctl_jint(pe, "delete"),
	     ctl_jint(pe, "total"), ctl_jint(pe, "error"), ctl_jint(pe, "in_flight"));
	line("queue fingerprint:", "%s", ctl_jstr(pe, "fingerprint"));
	ok = cJSON_GetObjectItemCaseSensitive(rl, "ok");
	if (cJSON_IsBool(ok))
		line("last reload:", "%s %s%s", ctl_time(ctl_jint(rl, "time"), t),
		     cJSON_IsTrue(ok) ? "ok" : "FAILED: ",
		     cJSON_IsTrue(ok) ? "" : ctl_jstr(rl, "error"));
	else
		line("last reload:", "-");
	if (*ctl_jstr(th, "exceeded"))
		line("deletion threshold:",
		     "EXCEEDED: %s (review, then: hybridsyncctl allow-deletes)",
		     ctl_jstr(th, "exceeded"));
	if (*ctl_jstr(lease, "holder"))
		line("lease:", "held by %s, renewed %s", ctl_jstr(lease, "holder"),
		     ctl_time(ctl_jint(lease, "renewed"), t));
	if (*ctl_jstr(lease, "alert"))
		line("lease alert:", "%s", ctl_jstr(lease, "alert"));
	if (*ctl_jstr(lease, "drift"))
		line("config drift:", "the active server runs config %s", ctl_jstr(lease, "drift"));
	line("objects:",
	     "ad %" PRId64 " (%" PRId64 " pending import), graph %" PRId64 " (%" PRId64
	     " pending import), metaverse %" PRId64,
	     ctl_jint(obj(objects, "ad"), "total"), ctl_jint(obj(objects, "ad"), "pending_import"),
	     ctl_jint(obj(objects, "graph"), "total"),
	     ctl_jint(obj(objects, "graph"), "pending_import"), ctl_jint(objects, "metaverse"));
	if (*ctl_jstr(doc, "database"))
		line("database:", "%s", ctl_jstr(doc, "database"));
}

int verb_status(struct ctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
	    {"json", no_argument, NULL, 'j'},
	    {0},
	};
	bool json = false;
	cJSON *doc = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		if (c != 'j')
			return CTL_EXIT_USAGE;
		json = true;
	}
	if (optind < argc)
		return ctl_usage("status", "unexpected argument '%s'", argv[optind]);
	r = ctl_open_store(ctl);
	if (r != CTL_EXIT_OK)
		return r;
	r = report_status(ctl->store, ctl->conf, &doc);
	if (r < 0)
		return ctl_fail("Failed to read the status from '%s': %s", ctl->database,
		                ctl_strerror(ctl, r));
	if (json)
		return ctl_print_json(doc);
	print_text(doc);
	cJSON_Delete(doc);
	return ctl_flush();
}
