/* Test driver for the AD connector: runs one import step (in a run/step of its own) and prints
 * status, method and counters as one JSON line, or dumps the 'ad' connector space.
 *
 *   hs-ldap-import -c CONF [--full] [--db PATH] [--page-size N] [--rules] [--value-max N]
 *                  [--on-progress-at N --on-progress-exec CMD] [--cancel-after N]
 *   hs-ldap-import -c CONF [--db PATH] --dump          CS objects as JSON lines
 *   hs-ldap-import -c CONF [--db PATH] --clear-pending what sync would do with pending imports
 *
 * Exit 0 when the import succeeded (success, completed-warnings), 1 when it stopped, 2 on a
 * usage or local error. --on-progress-exec runs CMD (sh -c) once, from the progress callback,
 * when N objects have been processed: tests stop the server in the middle of an import.
 * --cancel-after N: the cancel callback says yes once N objects have been processed.
 * --rules: import the attributes the config's sync rules read, as hybridsyncd does (without
 * it, the connector's default set). The JSON line has "note": why a delta ran as a full.
 * --value-max N: values over N bytes are per-object errors (instead of over 1 MiB). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hybridsync/conf.h"
#include "hybridsync/ldap_import.h"
#include "hybridsync/store.h"
#include "hybridsync/sync.h"
#include "../../src/lib/ldap_internal.h" /* ldap_import_value_max */

static unsigned long long progress_at;
static const char *progress_exec;
static bool progress_ran;
static unsigned long long cancel_after, progress_done;

static bool on_cancelled(void *userdata)
{
	(void)userdata;
	return cancel_after > 0 && progress_done >= cancel_after;
}

static void on_progress(uint64_t done, uint64_t estimate, void *userdata)
{
	(void)estimate;
	(void)userdata;
	progress_done = done;
	if (progress_exec && !progress_ran && done >= progress_at) {
		progress_ran = true;
		fflush(stdout);
		if (system(progress_exec) != 0)
			fprintf(stderr, "hs-ldap-import: '%s' failed\n", progress_exec);
	}
}

static char *b64(const void *data, size_t len)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0) |
		             (i + 2 < len ? p[i + 2] : 0);
		*o++ = t[v >> 18 & 63];
		*o++ = t[v >> 12 & 63];
		*o++ = i + 1 < len ? t[v >> 6 & 63] : '=';
		*o++ = i + 2 < len ? t[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static int dump_ref(const struct store_ref *r, void *userdata)
{
	cJSON *refs = userdata, *arr = cJSON_GetObjectItemCaseSensitive(refs, r->attr);

	if (!arr)
		arr = cJSON_AddArrayToObject(refs, r->attr);
	cJSON_AddItemToArray(arr, cJSON_CreateString(r->target_dn));
	return 0;
}

static int dump_one(const struct store_cs_object *o, void *userdata)
{
	struct store *s = userdata;
	cJSON *j = cJSON_CreateObject(), *attrs, *refs;
	char hex[129] = "", *txt;

	for (size_t i = 0; i < o->anchor_len && i < 64; i++)
		snprintf(hex + 2 * i, 3, "%02x", ((const unsigned char *)o->anchor)[i]);
	cJSON_AddStringToObject(j, "dn", o->dn ? o->dn : "");
	cJSON_AddStringToObject(j, "class", o->object_class);
	cJSON_AddStringToObject(j, "anchor", hex);
	cJSON_AddStringToObject(j, "pending", store_pending_import_to_string(o->pending_import));
	attrs = cJSON_AddObjectToObject(j, "attrs");
	for (size_t i = 0; o->attrs && i < attr_set_count(o->attrs); i++) {
		const char *name;
		const struct attr_value *v;
		size_t n;
		if (attr_set_at(o->attrs, i, &name, &v, &n) < 0)
			continue;
		cJSON *arr = cJSON_AddArrayToObject(attrs, name);
		for (size_t k = 0; k < n; k++) {
			char *e = b64(v[k].data, v[k].len);
			cJSON_AddItemToArray(arr, cJSON_CreateString(e ? e : ""));
			free(e);
		}
	}
	refs = cJSON_AddObjectToObject(j, "refs");
	store_cs_get_refs(s, o->id, NULL, dump_ref, refs);
	txt = cJSON_PrintUnformatted(j);
	if (txt)
		puts(txt);
	free(txt);
	cJSON_Delete(j);
	return 0;
}

static int clear_one(const struct store_cs_object *o, void *userdata)
{
	struct store *s = userdata;

	if (o->pending_import == STORE_PENDING_DELETE)
		return store_cs_delete(s, o->id);
	return store_cs_clear_pending_import(s, o->id);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"full", no_argument, NULL, 'f'},
	    {"db", required_argument, NULL, 'd'},
	    {"dump", no_argument, NULL, 'D'},
	    {"clear-pending", no_argument, NULL, 'C'},
	    {"page-size", required_argument, NULL, 'p'},
	    {"on-progress-at", required_argument, NULL, 'a'},
	    {"on-progress-exec", required_argument, NULL, 'e'},
	    {"cancel-after", required_argument, NULL, 'x'},
	    {"rules", no_argument, NULL, 'r'},
	    {"value-max", required_argument, NULL, 'v'},
	    {NULL, 0, NULL, 0},
	};
	const char *conf_path = NULL, *db = NULL;
	bool full = false, dump = false, clear = false, with_rules = false;
	struct sync_rules *rules = NULL;
	unsigned long page_size = 0;
	struct conf *conf = NULL;
	struct conf_errors *errs = NULL;
	struct store *s = NULL;
	char err[256] = "", hash[CONF_HASH_HEX_SIZE] = "";
	int opt, r, rc = 2;
	int64_t run = 0, step = 0, ad = 0;

	while ((opt = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		char *end;
		switch (opt) {
		case 'c':
			conf_path = optarg;
			break;
		case 'f':
			full = true;
			break;
		case 'd':
			db = optarg;
			break;
		case 'D':
			dump = true;
			break;
		case 'C':
			clear = true;
			break;
		case 'p':
			errno = 0;
			page_size = strtoul(optarg, &end, 10);
			if (errno || *end || page_size == 0)
				return 2;
			break;
		case 'a':
			errno = 0;
			progress_at = strtoull(optarg, &end, 10);
			if (errno || *end)
				return 2;
			break;
		case 'e':
			progress_exec = optarg;
			break;
		case 'r':
			with_rules = true;
			break;
		case 'v': /* a lower limit on values, to provoke per-object errors */
			errno = 0;
			ldap_import_value_max = strtoul(optarg, &end, 10);
			if (errno || *end || ldap_import_value_max == 0)
				return 2;
			break;
		case 'x':
			errno = 0;
			cancel_after = strtoull(optarg, &end, 10);
			if (errno || *end)
				return 2;
			break;
		default:
			fprintf(
			    stderr,
			    "usage: hs-ldap-import -c CONF [--full] [--db PATH] [--rules] [--dump] "
			    "[--clear-pending]\n");
			return 2;
		}
	}
	if (!conf_path) {
		fprintf(stderr, "hs-ldap-import: -c CONF is required\n");
		return 2;
	}
	r = conf_load(conf_path, &conf, &errs);
	if (r < 0) {
		for (size_t i = 0; errs && i < errs->n; i++)
			fprintf(stderr, "%s\n", errs->v[i].text);
		fprintf(stderr, "hs-ldap-import: cannot load %s: %s\n", conf_path, strerror(-r));
		goto out;
	}
	if (page_size)
		conf->ad.page_size = (unsigned)page_size;
	if (with_rules) {
		conf_errors_free(errs);
		errs = NULL;
		r = sync_rules_load(conf, &rules, &errs);
		if (r < 0) {
			for (size_t i = 0; errs && i < errs->n; i++)
				fprintf(stderr, "%s\n", errs->v[i].text);
			fprintf(stderr, "hs-ldap-import: cannot load the rules: %s\n",
			        strerror(-r));
			goto out;
		}
	}
	r = store_open(db ? db : conf->sync.database, 0, &s, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "hs-ldap-import: cannot open the store: %s %s\n", strerror(-r),
		        err);
		goto out;
	}
	r = store_get_connector(s, LDAP_IMPORT_CONNECTOR, &ad);
	if (r < 0)
		goto out;
	if (dump) {
		r = store_cs_iterate(s, ad, dump_one, s);
		rc = r < 0 ? 2 : 0;
		goto out;
	}
	if (clear) {
		r = store_begin(s);
		if (r == 0)
			r = store_cs_iterate_pending_import(s, ad, clear_one, s);
		if (r == 0)
			r = store_commit(s);
		if (r < 0)
			fprintf(stderr,
			        "hs-ldap-import: cannot clear the pending imports: %s (%s)\n",
			        strerror(-r), store_last_error(s));
		rc = r < 0 ? 2 : 0;
		goto out;
	}

	struct ldap_import_opts o = {
	    .mode = full ? LDAP_IMPORT_FULL : LDAP_IMPORT_DELTA,
	    .progress = on_progress,
	    .cancelled = on_cancelled,
	};
	struct ldap_import_result res;
	if (rules)
		o.attributes = sync_rules_attributes(rules, "ad", &o.n_attributes);
	(void)conf_hash(conf, hash);
	r = store_run_begin(s, full ? STORE_RUN_INITIAL : STORE_RUN_DELTA, hash, &run);
	if (r == 0)
		r = store_run_step_begin(s, run, LDAP_IMPORT_CONNECTOR,
		                         full ? STORE_STEP_FULL_IMPORT : STORE_STEP_DELTA_IMPORT,
		                         &step);
	if (r < 0) {
		fprintf(stderr, "hs-ldap-import: cannot record the run: %s\n", strerror(-r));
		goto out;
	}
	o.run_id = run;
	o.step_id = step;
	r = ldap_import(&conf->ad, s, &o, &res);
	if (r < 0) {
		fprintf(stderr, "hs-ldap-import: import failed: %s (%s)\n", strerror(-r),
		        store_last_error(s));
		store_run_step_end(s, step, "stopped-error", NULL);
		store_run_end(s, run, "stopped-error");
		goto out;
	}
	store_run_step_end(s, step, res.status, &res.counters);
	store_run_end(s, run, res.status);

	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "status", res.status);
	cJSON_AddStringToObject(j, "method", res.method ? res.method : "");
	cJSON_AddBoolToObject(j, "full", res.full);
	cJSON_AddNumberToObject(j, "adds", (double)res.counters.adds);
	cJSON_AddNumberToObject(j, "updates", (double)res.counters.updates);
	cJSON_AddNumberToObject(j, "deletes", (double)res.counters.deletes);
	cJSON_AddNumberToObject(j, "errors", (double)res.counters.errors);
	cJSON_AddNumberToObject(j, "objects", (double)res.counters.objects);
	cJSON_AddStringToObject(j, "error", res.error);
	cJSON_AddStringToObject(j, "note", res.note);
	cJSON_AddNumberToObject(j, "run_id", (double)run);
	char *txt = cJSON_PrintUnformatted(j);
	if (txt)
		puts(txt);
	free(txt);
	cJSON_Delete(j);
	rc = strncmp(res.status, "stopped", 7) == 0 ? 1 : 0;
out:
	store_close(s);
	sync_rules_free(rules);
	conf_errors_free(errs);
	conf_free(conf);
	return rc;
}
