/* Store benchmark: bulk CS imports (100k and 1M objects of ~15 attributes, ~400 bytes), lookups
 * by anchor and DN, pending-import iteration, an unchanged re-import, full-import obsoletion
 * and 100k pending-export upserts. Prints figures and peak RSS; asserts nothing on time.
 *
 * Not a CTest test. Build it against a built tree and run it on a real disk:
 *   cmake --build build --target benchmarks
 *   build/store-bench [-n 100000,1000000] [-b 1000] [-d DIR]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hybridsync/attr.h"
#include "hybridsync/store.h"

static unsigned batch = 1000; /* objects per transaction: one LDAP page */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(struct store *s, const char *what, int r)
{
	fprintf(stderr, "store-bench: %s: %s (%s)\n", what, strerror(-r),
	        s ? store_last_error(s) : "");
	exit(1);
}

static long peak_rss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static double cpu_mark;

static double cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Wall time and CPU time (user + system) since the phase began: on a shared machine the CPU
 * figure is the stable one. */
static double start(void)
{
	cpu_mark = cpu();
	return now();
}

static void report(const char *what, uint64_t n, double secs)
{
	double c = cpu() - cpu_mark;

	printf("  %-34s %8" PRIu64 "  wall %7.3f s %9.0f /s  cpu %7.3f s %9.0f /s\n", what, n, secs,
	       secs > 0 ? (double)n / secs : 0.0, c, c > 0 ? (double)n / c : 0.0);
}

static void anchor_of(uint64_t i, uint8_t out[16])
{
	uint64_t x = i * 0x9e3779b97f4a7c15ull + 0x1234;
	memcpy(out, &x, 8);
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	memcpy(out + 8, &x, 8);
}

static void dn_of(uint64_t i, char *out, size_t len)
{
	snprintf(out, len,
	         "CN=User %07" PRIu64 ",OU=Dept%02" PRIu64 ",OU=Staff,DC=corp,DC=example,DC=com", i,
	         i % 20);
}

/* A typical AD user: 16 attributes, ~400 bytes serialized. `variant` changes one value. */
static struct attr_set *user(uint64_t i, unsigned variant)
{
	struct attr_set *a = attr_set_new();
	uint8_t guid[16], sid[28];
	char buf[160];

	anchor_of(i, guid);
	memset(sid, 0, sizeof(sid));
	sid[0] = 1;
	sid[1] = 5;
	memcpy(sid + 20, &i, sizeof(i));
	attr_set_add_string(a, "objectClass", "top");
	attr_set_add_string(a, "objectClass", "person");
	attr_set_add_string(a, "objectClass", "organizationalPerson");
	attr_set_add_string(a, "objectClass", "user");
	snprintf(buf, sizeof(buf), "User %07" PRIu64, i);
	attr_set_add_string(a, "cn", buf);
	attr_set_add_string(a, "displayName", buf);
	snprintf(buf, sizeof(buf), "%07" PRIu64, i);
	attr_set_add_string(a, "sn", buf);
	attr_set_add_string(a, "givenName", "User");
	snprintf(buf, sizeof(buf), "u%07" PRIu64, i);
	attr_set_add_string(a, "sAMAccountName", buf);
	snprintf(buf, sizeof(buf), "user.%07" PRIu64 "@corp.example.com", i);
	attr_set_add_string(a, "userPrincipalName", buf);
	attr_set_add_string(a, "mail", buf);
	attr_set_add_string(a, "title", variant ? "Senior Engineer" : "Engineer");
	snprintf(buf, sizeof(buf), "Department %02" PRIu64, i % 20);
	attr_set_add_string(a, "department", buf);
	attr_set_add_string(a, "company", "Contoso Ltd");
	snprintf(buf, sizeof(buf), "E%08" PRIu64, i);
	attr_set_add_string(a, "employeeID", buf);
	attr_set_add_string(a, "userAccountControl", "512");
	attr_set_add_string(a, "telephoneNumber", "+1 555 0100");
	attr_set_add(a, "objectGUID", guid, sizeof(guid));
	attr_set_add(a, "objectSid", sid, sizeof(sid));
	return a;
}

static uint64_t import(struct store *s, int64_t conn, uint64_t n, int64_t gen, unsigned variant,
                       uint64_t *ret_changed)
{
	uint64_t i, changed = 0;
	char dn[128];
	int r;

	for (i = 0; i < n; i++) {
		struct attr_set *a = user(i, variant && i % 100 == 0);
		uint8_t guid[16];
		enum store_upsert_result res;
		struct store_cs_import in = {.anchor = guid,
		                             .anchor_len = sizeof(guid),
		                             .dn = dn,
		                             .object_class = "user",
		                             .attrs = a,
		                             .seen_gen = gen};
		anchor_of(i, guid);
		dn_of(i, dn, sizeof(dn));
		if (i % batch == 0 && (r = store_begin(s)) < 0)
			die(s, "begin", r);
		r = store_cs_upsert(s, conn, &in, &res, NULL);
		if (r < 0)
			die(s, "upsert", r);
		if (res != STORE_UNCHANGED)
			changed++;
		if ((i % batch == batch - 1 || i == n - 1) && (r = store_commit(s)) < 0)
			die(s, "commit", r);
		attr_set_free(a);
	}
	*ret_changed = changed;
	return n;
}

struct iter {
	uint64_t n;
	uint64_t bytes;
	struct store *s;
	bool clear;
	uint64_t in_tx;
};

static int on_pending(const struct store_cs_object *o, void *userdata)
{
	struct iter *it = userdata;
	int r;

	it->n++;
	it->bytes += attr_set_count(o->attrs);
	if (it->clear) { /* what a sync step does: clear the flag, batched */
		if (it->in_tx == 0 && (r = store_begin(it->s)) < 0)
			return r;
		r = store_cs_clear_pending_import(it->s, o->id);
		if (r < 0)
			return r;
		if (++it->in_tx == batch) {
			it->in_tx = 0;
			return store_commit(it->s);
		}
	}
	return 0;
}

static void bench_cs(const char *dir, uint64_t n)
{
	char path[512], wal[520], dn[128];
	struct store *s = NULL;
	struct iter it = {0};
	struct store_stats st;
	int64_t ad, gen1, gen2;
	uint64_t i, changed, lookups = n < 100000 ? n : 100000, deleted;
	struct stat sb;
	double t;
	int r;

	snprintf(path, sizeof(path), "%s/bench-%" PRIu64 ".db", dir, n);
	unlink(path);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	unlink(wal);
	r = store_open(path, 0, &s, NULL, 0);
	if (r < 0)
		die(NULL, "open", r);
	store_get_connector(s, "ad", &ad);
	store_next_generation(s, &gen1);
	printf("CS objects: %" PRIu64 " (batches of %u per transaction)\n", n, batch);

	t = start();
	for (i = 0; i < n; i++) { /* the caller's part: what an LDAP import builds anyway */
		struct attr_set *a = user(i, 0);
		uint8_t guid[16];
		anchor_of(i, guid);
		dn_of(i, dn, sizeof(dn));
		attr_set_free(a);
	}
	report("floor: build the attribute sets", n, now() - t);

	t = start();
	import(s, ad, n, gen1, 0, &changed);
	report("full import, all new (upsert)", n, now() - t);

	t = start();
	for (i = 0; i < lookups; i++) {
		struct store_cs_object *o = NULL;
		uint8_t guid[16];
		anchor_of((i * 7919) % n, guid);
		r = store_cs_get_by_anchor(s, ad, guid, sizeof(guid), &o);
		if (r < 0)
			die(s, "get by anchor", r);
		store_cs_object_free(o);
	}
	report("lookup by anchor (random, decoded)", lookups, now() - t);

	t = start();
	for (i = 0; i < lookups; i++) {
		struct store_cs_object *o = NULL;
		dn_of((i * 7919) % n, dn, sizeof(dn));
		for (char *p = dn; *p; p++) /* case-insensitive lookups */
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p + 32);
		r = store_cs_get_by_dn(s, ad, dn, &o);
		if (r < 0)
			die(s, "get by dn", r);
		store_cs_object_free(o);
	}
	report("lookup by DN (random, any case)", lookups, now() - t);

	t = start();
	it.s = s;
	r = store_cs_iterate_pending_import(s, ad, on_pending, &it);
	if (r < 0)
		die(s, "iterate", r);
	report("iterate pending imports", it.n, now() - t);

	memset(&it, 0, sizeof(it));
	it.s = s;
	it.clear = true;
	t = start();
	r = store_cs_iterate_pending_import(s, ad, on_pending, &it);
	if (r >= 0 && it.in_tx)
		r = store_commit(s);
	if (r < 0)
		die(s, "iterate+clear", r);
	report("iterate + clear pending (sync)", it.n, now() - t);

	store_next_generation(s, &gen2);
	t = start();
	import(s, ad, n - n / 100, gen2, 1, &changed); /* 1% gone, 1% changed */
	report("full re-import, 1% changed", n - n / 100, now() - t);
	printf("  %-36s %9" PRIu64 "\n", "  of which changed", changed);

	t = start();
	r = store_cs_mark_unseen_as_deleted(s, ad, gen2, &deleted);
	if (r < 0)
		die(s, "obsolete", r);
	report("obsolete unseen (one statement)", deleted, now() - t);

	store_get_stats(s, &st);
	if (stat(path, &sb) == 0)
		printf("  database: %.1f MiB in use (%.0f bytes/object), file %.1f MiB\n",
		       (double)st.file_bytes / 1048576.0, (double)st.file_bytes / (double)n,
		       (double)sb.st_size / 1048576.0);
	t = start();
	r = store_check_integrity(s, false);
	report("quick_check", n, now() - t);
	if (r < 0)
		die(s, "quick_check", r);
	printf("  peak RSS so far: %ld KiB\n", peak_rss_kib());
	store_close(s);
}

static void bench_exports(const char *dir, uint64_t n)
{
	char path[512], fp[STORE_FINGERPRINT_LEN + 1], anchor[40], dn[64];
	struct store *s = NULL;
	struct store_export_totals tot;
	int64_t graph;
	uint64_t i, pass;
	double t;
	int r;

	snprintf(path, sizeof(path), "%s/bench-exports.db", dir);
	unlink(path);
	r = store_open(path, 0, &s, NULL, 0);
	if (r < 0)
		die(NULL, "open", r);
	store_get_connector(s, "graph", &graph);
	printf("pending exports: %" PRIu64 "\n", n);
	for (pass = 0; pass < 2; pass++) {
		uint64_t changed = 0;
		t = start();
		for (i = 0; i < n; i++) {
			struct attr_diff *d = attr_diff_new();
			struct attr_value ov = {"Engineer", 8}, nv = {"Senior Engineer", 15};
			struct attr_value od = {"Dept 01", 7}, nd = {"Dept 02", 7};
			enum store_upsert_result res;
			struct store_export_spec e = {
			    .connector_id = graph,
			    .object_type = "user",
			    .anchor = anchor,
			    .dn = dn,
			    .op = i % 10 == 0 ? STORE_EXPORT_ADD : STORE_EXPORT_UPDATE,
			    .target_id =
			        i % 10 == 0 ? NULL : "00000000-0000-0000-0000-000000000000",
			    .changes = d,
			    .rules = "Out to AAD - User Join",
			    .run_id = 1,
			    .sync_gen = 1,
			};
			snprintf(anchor, sizeof(anchor), "anchor%08" PRIu64 "==", i);
			snprintf(dn, sizeof(dn), "CN={%08" PRIu64 "}", i);
			attr_diff_put(d, "jobTitle", &ov, 1, &nv, 1);
			attr_diff_put(d, "department", &od, 1, &nd, 1);
			if (i % batch == 0 && (r = store_begin(s)) < 0)
				die(s, "begin", r);
			r = store_export_upsert(s, &e, &res, NULL);
			if (r < 0)
				die(s, "export upsert", r);
			changed += res != STORE_UNCHANGED;
			if ((i % batch == batch - 1 || i == n - 1) && (r = store_commit(s)) < 0)
				die(s, "commit", r);
			attr_diff_free(d);
		}
		report(pass ? "export upsert, again (unchanged)" : "export upsert, new", n,
		       now() - t);
		printf("  %-36s %9" PRIu64 "\n", "  of which added or changed", changed);
	}
	t = start();
	r = store_export_counts(s, 0, &tot);
	if (r < 0)
		die(s, "counts", r);
	report("counts by operation", tot.total, now() - t);
	t = start();
	r = store_pending_fingerprint(s, fp);
	if (r < 0)
		die(s, "fingerprint", r);
	report("queue fingerprint", tot.total, now() - t);
	printf("  fingerprint %s\n", fp);
	store_close(s);
}

int main(int argc, char **argv)
{
	const char *dir = ".", *sizes = "100000,1000000";
	const char *p;
	int opt;

	while ((opt = getopt(argc, argv, "n:b:d:")) != -1) {
		switch (opt) {
		case 'b': {
			char *end;
			unsigned long b;
			errno = 0;
			b = strtoul(optarg, &end, 10);
			if (errno || *end || b == 0 || b > 1000000) {
				fprintf(stderr, "store-bench: bad batch size '%s'\n", optarg);
				return 2;
			}
			batch = (unsigned)b;
			break;
		}
		case 'n':
			sizes = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		default:
			fprintf(stderr, "usage: store-bench [-n N[,N...]] [-b BATCH] [-d DIR]\n");
			return 2;
		}
	}
	for (p = sizes; *p;) {
		char *end;
		unsigned long long n;
		errno = 0;
		n = strtoull(p, &end, 10);
		if (errno || end == p || (*end && *end != ',') || n == 0) {
			fprintf(stderr, "store-bench: bad size list '%s'\n", sizes);
			return 2;
		}
		bench_cs(dir, n);
		p = *end ? end + 1 : end;
	}
	bench_exports(dir, 100000);
	printf("peak RSS: %ld KiB\n", peak_rss_kib());
	return 0;
}
