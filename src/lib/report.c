/* Reports (report.h): the status document and the value helpers shared by the other reports.
 * Reads the store and the daemon's state keys (status.h); never writes. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "hybridsync/report.h"
#include "hybridsync/status.h"

bool report_pid_alive(int64_t pid)
{
	if (pid <= 0 || pid != (pid_t)pid)
		return false;
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* Printable UTF-8: well-formed sequences, no C0 control other than tab, CR and LF, no DEL. */
static bool printable_utf8(const unsigned char *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
				return false;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

static char *base64(const unsigned char *p, size_t len, const char *prefix)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t plen = strlen(prefix), out_len = plen + (len + 2) / 3 * 4 + 1;
	char *out = malloc(out_len), *o;

	if (!out)
		return NULL;
	memcpy(out, prefix, plen);
	o = out + plen;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		*o++ = tab[(v >> 18) & 63];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		*o++ = i + 2 < len ? tab[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

cJSON *report_value_json(const void *data, size_t len)
{
	cJSON *o;
	char *b;

	if (printable_utf8(data, len)) {
		char *t = strndup(data, len);

		if (!t)
			return NULL;
		o = cJSON_CreateString(t);
		free(t);
		return o;
	}
	b = base64(data, len, "");
	if (!b)
		return NULL;
	o = cJSON_CreateObject();
	if (o && !cJSON_AddStringToObject(o, "base64", b))
		o = (cJSON_Delete(o), NULL);
	free(b);
	return o;
}

char *report_value_text(const void *data, size_t len)
{
	if (printable_utf8(data, len))
		return strndup(data, len);
	return base64(data, len, "base64:");
}

/* --- status ----------------------------------------------------------------------------- */

/* A state key as a string, or null; ENOENT is null, other failures are errors. */
static int add_state_string(struct store *s, cJSON *o, const char *name, const char *key,
                            char **ret_value)
{
	char *v = NULL;
	int r = store_state_get(s, key, &v);

	if (r < 0 && r != -ENOENT)
		return r;
	if (v && !*v) /* the daemon clears a key by writing it empty */
		v = (free(v), NULL);
	if (!(v ? cJSON_AddStringToObject(o, name, v) : cJSON_AddNullToObject(o, name))) {
		free(v);
		return -ENOMEM;
	}
	if (ret_value)
		*ret_value = v;
	else
		free(v);
	return 0;
}

static int parse_int64(const char *v, int64_t *ret)
{
	char *end;
	long long n;

	if (!v || !*v)
		return -EINVAL;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*ret = n;
	return 0;
}

/* A state key holding a decimal time or count, as a number or null. */
static int add_state_number(struct store *s, cJSON *o, const char *name, const char *key,
                            int64_t *ret_value)
{
	char *v = NULL;
	int64_t n = 0;
	int r = store_state_get(s, key, &v);

	if (r < 0 && r != -ENOENT)
		return r;
	r = parse_int64(v, &n);
	free(v);
	if (!(r == 0 ? cJSON_AddNumberToObject(o, name, (double)n)
	             : cJSON_AddNullToObject(o, name)))
		return -ENOMEM;
	if (ret_value)
		*ret_value = r == 0 ? n : 0;
	return 0;
}

static int add_time(cJSON *o, const char *name, int64_t t)
{
	return (t > 0 ? cJSON_AddNumberToObject(o, name, (double)t)
	              : cJSON_AddNullToObject(o, name))
	           ? 0
	           : -ENOMEM;
}

struct cycles {
	cJSON *last, *current;
};

static cJSON *cycle_json(const struct store_run *r)
{
	cJSON *o = cJSON_CreateObject();

	if (!o || !cJSON_AddNumberToObject(o, "id", (double)r->id) ||
	    !cJSON_AddStringToObject(o, "type", store_run_type_to_string(r->type)) ||
	    !cJSON_AddStringToObject(o, "status", r->status ? r->status : "running") ||
	    add_time(o, "started", r->started) < 0 || add_time(o, "finished", r->finished) < 0 ||
	    !cJSON_AddNumberToObject(o, "error_count", (double)r->error_count))
		return cJSON_Delete(o), NULL;
	return o;
}

static int on_cycle(const struct store_run *r, void *userdata)
{
	struct cycles *c = userdata;
	cJSON **slot = r->status ? &c->last : &c->current;

	if (*slot)
		return r->status ? 1 : 0; /* newest first: the first finished one is the last */
	*slot = cycle_json(r);
	if (!*slot)
		return -ENOMEM;
	return c->last ? 1 : 0;
}

int report_export_summary(struct store *s, cJSON **ret)
{
	struct store_export_totals t;
	char fp[STORE_FINGERPRINT_LEN + 1];
	cJSON *o;
	int r;

	r = store_export_counts(s, 0, &t);
	if (r < 0)
		return r;
	r = store_pending_fingerprint(s, fp);
	if (r < 0)
		return r;
	o = cJSON_CreateObject();
	if (!o || !cJSON_AddNumberToObject(o, "add", (double)t.add) ||
	    !cJSON_AddNumberToObject(o, "update", (double)t.update) ||
	    !cJSON_AddNumberToObject(o, "delete", (double)t.delete) ||
	    !cJSON_AddNumberToObject(o, "total", (double)t.total) ||
	    !cJSON_AddNumberToObject(o, "pending", (double)t.pending) ||
	    !cJSON_AddNumberToObject(o, "in_flight", (double)t.in_flight) ||
	    !cJSON_AddNumberToObject(o, "error", (double)t.error) ||
	    !cJSON_AddNumberToObject(o, "done", (double)t.done) ||
	    !cJSON_AddStringToObject(o, "fingerprint", fp)) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	*ret = o;
	return 0;
}

static int add_connector_counts(struct store *s, cJSON *objects, const char *name)
{
	uint64_t total = 0, pending = 0;
	int64_t id;
	cJSON *o;
	int r;

	r = store_get_connector(s, name, &id);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	r = store_cs_count(s, id, &total, &pending);
	if (r < 0)
		return r;
	o = cJSON_AddObjectToObject(objects, name);
	if (!o || !cJSON_AddNumberToObject(o, "total", (double)total) ||
	    !cJSON_AddNumberToObject(o, "pending_import", (double)pending))
		return -ENOMEM;
	return 0;
}

static int add_daemon(struct store *s, const struct conf *c, cJSON *doc, bool *ret_running)
{
	char *state = NULL, *v = NULL, hash[CONF_HASH_HEX_SIZE];
	int64_t pid = 0;
	bool running, staging;
	int r;

	r = store_state_get(s, STATUS_KEY_PID, &v);
	if (r < 0 && r != -ENOENT)
		return r;
	running = parse_int64(v, &pid) == 0 && report_pid_alive(pid);
	v = (free(v), NULL);
	if (!(running ? cJSON_AddNumberToObject(doc, "pid", (double)pid)
	              : cJSON_AddNullToObject(doc, "pid")))
		return -ENOMEM;

	if (running) {
		r = store_state_get(s, STATUS_KEY_STATE, &state);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	r = cJSON_AddStringToObject(doc, "state",
	                            state     ? state
	                            : running ? "running"
	                                      : "stopped")
	        ? 0
	        : -ENOMEM;
	free(state);
	if (r < 0)
		return r;
	if (running) {
		r = add_state_string(s, doc, "step", STATUS_KEY_STEP, NULL);
		if (r < 0)
			return r;
	} else if (!cJSON_AddNullToObject(doc, "step")) {
		return -ENOMEM;
	}

	/* staging and config hash: the running daemon's; else what the config file says */
	staging = c ? c->sync.staging : true;
	if (running) {
		r = store_state_get(s, STATUS_KEY_STAGING, &v);
		if (r < 0 && r != -ENOENT)
			return r;
		if (v)
			staging = strcmp(v, "0") != 0;
		v = (free(v), NULL);
	}
	if (!cJSON_AddBoolToObject(doc, "staging", staging))
		return -ENOMEM;
	if (running) {
		r = store_state_get(s, STATUS_KEY_CONFIG_HASH, &v);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	if (!v && c && conf_hash(c, hash) == 0)
		v = strdup(hash);
	r = (v ? cJSON_AddStringToObject(doc, "config_hash", v)
	       : cJSON_AddNullToObject(doc, "config_hash"))
	        ? 0
	        : -ENOMEM;
	free(v);
	if (r < 0)
		return r;
	/* the file's own hash: differs from config_hash until the daemon reloads it */
	if (c && conf_hash(c, hash) == 0) {
		if (!cJSON_AddStringToObject(doc, "config_file_hash", hash))
			return -ENOMEM;
	} else if (!cJSON_AddNullToObject(doc, "config_file_hash")) {
		return -ENOMEM;
	}
	*ret_running = running;
	return 0;
}

static int add_reload(struct store *s, cJSON *doc)
{
	cJSON *o = cJSON_AddObjectToObject(doc, "last_reload");
	char *ok = NULL;
	int r;

	if (!o)
		return -ENOMEM;
	r = add_state_number(s, o, "time", STATUS_KEY_RELOAD_TIME, NULL);
	if (r < 0)
		return r;
	r = store_state_get(s, STATUS_KEY_RELOAD_OK, &ok);
	if (r < 0 && r != -ENOENT)
		return r;
	r = (ok ? cJSON_AddBoolToObject(o, "ok", strcmp(ok, "0") != 0)
	        : cJSON_AddNullToObject(o, "ok"))
	        ? 0
	        : -ENOMEM;
	free(ok);
	if (r < 0)
		return r;
	return add_state_string(s, o, "error", STATUS_KEY_RELOAD_ERROR, NULL);
}

static int add_safety(struct store *s, cJSON *doc)
{
	cJSON *t = cJSON_AddObjectToObject(doc, "deletion_threshold");
	cJSON *l = cJSON_AddObjectToObject(doc, "lease");
	struct store_lease *lease = NULL;
	int r;

	if (!t || !l)
		return -ENOMEM;
	r = add_state_string(s, t, "exceeded", STATUS_KEY_THRESHOLD, NULL);
	if (r >= 0)
		r = add_state_string(s, t, "allowed_fingerprint", STATUS_KEY_ALLOW_DELETES, NULL);
	if (r < 0)
		return r;
	r = store_lease_get(s, &lease);
	if (r < 0 && r != -ENOENT)
		return r;
	if (lease) {
		r = (cJSON_AddStringToObject(l, "holder", lease->holder ? lease->holder : "") &&
		     (lease->config_hash
		          ? cJSON_AddStringToObject(l, "config_hash", lease->config_hash)
		          : cJSON_AddNullToObject(l, "config_hash")) &&
		     add_time(l, "renewed", lease->renewed) == 0 &&
		     add_time(l, "seen", lease->seen) == 0)
		        ? 0
		        : -ENOMEM;
		store_lease_free(lease);
	} else {
		r = (cJSON_AddNullToObject(l, "holder") &&
		     cJSON_AddNullToObject(l, "config_hash") &&
		     cJSON_AddNullToObject(l, "renewed") && cJSON_AddNullToObject(l, "seen"))
		        ? 0
		        : -ENOMEM;
	}
	if (r >= 0)
		r = add_state_string(s, l, "alert", STATUS_KEY_LEASE_ALERT, NULL);
	if (r >= 0)
		r = add_state_string(s, l, "drift", STATUS_KEY_DRIFT, NULL);
	return r;
}

int report_status(struct store *s, const struct conf *c, cJSON **ret)
{
	struct cycles cy = {0};
	cJSON *doc, *objects, *pe = NULL;
	uint64_t mv = 0;
	bool running = false;
	int r;

	if (!s || !ret)
		return -EINVAL;
	doc = cJSON_CreateObject();
	if (!doc)
		return -ENOMEM;
	r = add_daemon(s, c, doc, &running);
	if (r < 0)
		goto out;
	if (c &&
	    (!cJSON_AddStringToObject(doc, "server_name",
	                              c->sync.server_name ? c->sync.server_name : "") ||
	     !cJSON_AddStringToObject(doc, "database", c->sync.database ? c->sync.database : ""))) {
		r = -ENOMEM;
		goto out;
	}

	r = store_run_list(s, 0, on_cycle, &cy);
	if (r < 0)
		goto out;
	r = 0;
	cJSON_AddItemToObject(doc, "last_cycle", cy.last ? cy.last : cJSON_CreateNull());
	cJSON_AddItemToObject(doc, "current_cycle", cy.current ? cy.current : cJSON_CreateNull());
	cy.last = cy.current = NULL;
	if (running) {
		r = add_state_number(s, doc, "next_cycle", STATUS_KEY_NEXT_CYCLE, NULL);
	} else if (!cJSON_AddNullToObject(doc, "next_cycle")) {
		r = -ENOMEM;
	}
	if (r < 0)
		goto out;

	r = report_export_summary(s, &pe);
	if (r < 0)
		goto out;
	cJSON_AddItemToObject(doc, "pending_exports", pe);

	r = add_reload(s, doc);
	if (r >= 0)
		r = add_safety(s, doc);
	if (r < 0)
		goto out;

	objects = cJSON_AddObjectToObject(doc, "objects");
	if (!objects) {
		r = -ENOMEM;
		goto out;
	}
	r = add_connector_counts(s, objects, "ad");
	if (r >= 0)
		r = add_connector_counts(s, objects, "graph");
	if (r >= 0)
		r = store_mv_count(s, &mv);
	if (r < 0)
		goto out;
	if (!cJSON_AddNumberToObject(objects, "metaverse", (double)mv)) {
		r = -ENOMEM;
		goto out;
	}
	*ret = doc;
	doc = NULL;
	r = 0;
out:
	cJSON_Delete(cy.last);
	cJSON_Delete(cy.current);
	cJSON_Delete(doc);
	return r;
}
