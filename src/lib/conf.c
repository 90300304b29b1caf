/* The configuration file (hybridsync.conf(5)): a strict INI parser driven by one key table,
 * defaults, cross-key validation, and the collection of every error with its file and line. */
#include "hybridsync/conf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_internal.h"

#define CONF_FILE_MAX (1024 * 1024) /* bytes in a config file */
#define CONF_LINE_MAX 4096          /* bytes in one line */
#define CONF_LIST_MAX 1000          /* values of one repeatable key */
#define CONF_KEYS_MAX 40

#define F(m)   offsetof(struct conf, m)
#define SYNC   CONF_SECTION_SYNC
#define AD     CONF_SECTION_AD
#define GRAPH  CONF_SECTION_GRAPH
#define NOHASH CONF_KEY_NOHASH
#define UNSET  CONF_KEY_EMPTY_UNSET

/* In the order of SPEC §5; the export, the import and the man page follow it. */
const struct conf_key conf_keys[] = {
    {SYNC, "staging", CONF_TYPE_BOOL, NOHASH, F(sync.staging), 0, 0, "yes"},
    {SYNC, "interval", CONF_TYPE_DURATION, NOHASH, F(sync.interval), CONF_INTERVAL_MIN,
     CONF_INTERVAL_MAX, "30min"},
    {SYNC, "database", CONF_TYPE_PATH, NOHASH, F(sync.database), 0, 0,
     HYBRIDSYNC_STATEDIR "/hybridsync.db"},
    {SYNC, "deletion_threshold", CONF_TYPE_THRESHOLD, 0, F(sync.deletion_threshold), 0, 0, "500"},
    {SYNC, "rules", CONF_TYPE_PATH, NOHASH | UNSET, F(sync.rules), 0, 0, NULL},
    {SYNC, "history_days", CONF_TYPE_UINT, 0, F(sync.history_days), 1, CONF_HISTORY_DAYS_MAX, "7"},
    {SYNC, "metrics_file", CONF_TYPE_PATH, NOHASH | UNSET, F(sync.metrics_file), 0, 0,
     HYBRIDSYNC_STATEDIR "/metrics.prom"},
    {SYNC, "server_name", CONF_TYPE_NAME, NOHASH, F(sync.server_name), 0, 0, NULL},
    {SYNC, "force_promotion", CONF_TYPE_BOOL, NOHASH, F(sync.force_promotion), 0, 0, "no"},

    {AD, "uri", CONF_TYPE_LDAP_URI, CONF_KEY_REQUIRED, F(ad.uri), 0, 0, NULL},
    {AD, "bind_dn", CONF_TYPE_DN, UNSET, F(ad.bind_dn), 0, 0, NULL},
    {AD, "bind_password_file", CONF_TYPE_SECRET, NOHASH | UNSET | CONF_KEY_SECRET_FILE,
     F(ad.bind_password), 0, 0, NULL},
    {AD, "base_dn", CONF_TYPE_DN, CONF_KEY_REQUIRED, F(ad.base_dn), 0, 0, NULL},
    {AD, "include", CONF_TYPE_DN_LIST, CONF_KEY_REPEAT, F(ad.include), 0, 0, NULL},
    {AD, "exclude", CONF_TYPE_DN_LIST, CONF_KEY_REPEAT, F(ad.exclude), 0, 0, NULL},
    {AD, "ca_file", CONF_TYPE_PATH, NOHASH | UNSET, F(ad.ca_file), 0, 0, NULL},
    {AD, "starttls", CONF_TYPE_BOOL, 0, F(ad.starttls), 0, 0, "no"},
    {AD, "allow_insecure", CONF_TYPE_BOOL, 0, F(ad.allow_insecure), 0, 0, "no"},
    {AD, "page_size", CONF_TYPE_UINT, 0, F(ad.page_size), 1, CONF_PAGE_SIZE_MAX, "1000"},
    {AD, "change_tracking", CONF_TYPE_CHANGE_TRACKING, 0, F(ad.change_tracking), 0, 0, "auto"},

    {GRAPH, "tenant", CONF_TYPE_GUID, CONF_KEY_REQUIRED, F(graph.tenant), 0, 0, NULL},
    {GRAPH, "client_id", CONF_TYPE_GUID, CONF_KEY_REQUIRED, F(graph.client_id), 0, 0, NULL},
    {GRAPH, "client_secret_file", CONF_TYPE_SECRET, NOHASH | UNSET | CONF_KEY_SECRET_FILE,
     F(graph.client_secret), 0, 0, NULL},
    {GRAPH, "certificate_file", CONF_TYPE_SECRET, NOHASH | UNSET, F(graph.certificate), 0, 0, NULL},
    {GRAPH, "key_file", CONF_TYPE_SECRET, NOHASH | UNSET | CONF_KEY_SECRET_FILE, F(graph.key), 0, 0,
     NULL},
    {GRAPH, "authority", CONF_TYPE_HTTP_URI, 0, F(graph.authority), 0, 0,
     "https://login.microsoftonline.com"},
    {GRAPH, "endpoint", CONF_TYPE_HTTP_URI, 0, F(graph.endpoint), 0, 0,
     "https://graph.microsoft.com"},
    {GRAPH, "ca_file", CONF_TYPE_PATH, NOHASH | UNSET, F(graph.ca_file), 0, 0, NULL},
    {GRAPH, "allow_insecure", CONF_TYPE_BOOL, 0, F(graph.allow_insecure), 0, 0, "no"},
    {GRAPH, "domains", CONF_TYPE_DOMAIN_LIST, CONF_KEY_REPEAT, F(graph.domains), 0, 0, NULL},
    {GRAPH, "soft_match", CONF_TYPE_BOOL, 0, F(graph.soft_match), 0, 0, "yes"},
    {GRAPH, "anchor_extension", CONF_TYPE_EXTENSION, 0, F(graph.anchor_extension), 0, 0, NULL},
    {GRAPH, "write_budget", CONF_TYPE_WRITE_BUDGET, 0, F(graph.write_budget), 0, 0, "3000/150s"},
};
const size_t conf_keys_count = sizeof(conf_keys) / sizeof(conf_keys[0]);
_Static_assert(sizeof(conf_keys) / sizeof(conf_keys[0]) <= CONF_KEYS_MAX, "CONF_KEYS_MAX");

const char *conf_section_to_string(enum conf_section s)
{
	static const char *const names[CONF_SECTION_MAX] = {
	    [CONF_SECTION_SYNC] = "sync",
	    [CONF_SECTION_AD] = "ad",
	    [CONF_SECTION_GRAPH] = "graph",
	};
	return (s >= 0 && s < CONF_SECTION_MAX) ? names[s] : NULL;
}

const struct conf_key *conf_key_find(enum conf_section s, const char *name)
{
	for (size_t i = 0; i < conf_keys_count; i++)
		if (conf_keys[i].section == s && strcmp(conf_keys[i].name, name) == 0)
			return &conf_keys[i];
	return NULL;
}

/* --- struct conf ------------------------------------------------------------------------- */

struct conf *conf_new(void)
{
	return calloc(1, sizeof(struct conf));
}

struct conf *conf_free(struct conf *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < conf_keys_count; i++)
		conf_value_free(&conf_keys[i], (char *)c + conf_keys[i].offset);
	for (size_t i = 0; i < c->n_rules; i++) {
		free(c->rules[i].name);
		free(c->rules[i].path);
		free(c->rules[i].canonical);
	}
	free(c->rules);
	free(c->path);
	free(c);
	return NULL;
}

const char *conf_change_tracking_to_string(enum conf_change_tracking t)
{
	static const char *const names[CONF_CHANGE_TRACKING_MAX] = {
	    [CONF_CHANGE_TRACKING_AUTO] = "auto", [CONF_CHANGE_TRACKING_DIRSYNC] = "dirsync",
	    [CONF_CHANGE_TRACKING_USN] = "usn",   [CONF_CHANGE_TRACKING_SYNCREPL] = "syncrepl",
	    [CONF_CHANGE_TRACKING_NONE] = "none",
	};
	return (t >= 0 && t < CONF_CHANGE_TRACKING_MAX) ? names[t] : NULL;
}

const char *conf_threshold_kind_to_string(enum conf_threshold_kind k)
{
	static const char *const names[CONF_THRESHOLD_KIND_MAX] = {
	    [CONF_THRESHOLD_COUNT] = "count",
	    [CONF_THRESHOLD_PERCENT] = "percent",
	};
	return (k >= 0 && k < CONF_THRESHOLD_KIND_MAX) ? names[k] : NULL;
}

/* --- the parser -------------------------------------------------------------------------- */

/* One value of a repeatable key, remembered with its line for the checks after parsing. */
struct list_item {
	const struct conf_key *key;
	unsigned line;
	const char *value; /* owned by the conf_strv */
};

struct parser {
	struct conf *c;
	struct conf_errlist *el;
	const char *file;
	unsigned line[CONF_KEYS_MAX]; /* first line that set the key, 0: not set */
	bool bad[CONF_KEYS_MAX];      /* a value of the key was refused */
	bool section_seen[CONF_SECTION_MAX];
	struct list_item *items;
	size_t n_items, allocated_items;
};

static size_t key_index(const struct conf_key *k)
{
	return (size_t)(k - conf_keys);
}

static const struct conf_key *key(enum conf_section s, const char *name)
{
	const struct conf_key *k = conf_key_find(s, name);
	if (!k)
		abort(); /* a misspelled name in this file */
	return k;
}

static unsigned key_line(const struct parser *p, enum conf_section s, const char *name)
{
	return p->line[key_index(key(s, name))];
}

/* Usable in cross-key checks: set (or defaulted) and not refused. */
static bool key_ok(const struct parser *p, enum conf_section s, const char *name)
{
	return !p->bad[key_index(key(s, name))];
}

static void *field(const struct parser *p, const struct conf_key *k)
{
	return (char *)p->c + k->offset;
}

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static char *trim(char *s)
{
	char *end;

	while (is_blank(*s))
		s++;
	end = s + strlen(s);
	while (end > s && is_blank(end[-1]))
		end--;
	*end = '\0';
	return s;
}

/* '#' or ';' starts a comment at the start of a line or after a blank, so that values such
 * as "CN=a\#b" or URIs keep their characters. */
static void strip_comment(char *s)
{
	for (char *q = s; *q; q++)
		if ((*q == '#' || *q == ';') && (q == s || is_blank(q[-1]))) {
			*q = '\0';
			return;
		}
}

static int remember_item(struct parser *p, const struct conf_key *k, unsigned line,
                         const char *value)
{
	if (p->n_items == p->allocated_items) {
		size_t n = p->allocated_items ? p->allocated_items * 2 : 16;
		struct list_item *v = reallocarray(p->items, n, sizeof(*v));
		if (!v)
			return -ENOMEM;
		p->items = v;
		p->allocated_items = n;
	}
	p->items[p->n_items++] = (struct list_item){.key = k, .line = line, .value = value};
	return 0;
}

static int assign(struct parser *p, const struct conf_key *k, const char *value, unsigned line)
{
	size_t i = key_index(k);
	char err[256], q[128];
	int r;

	if (p->line[i] && !(k->flags & CONF_KEY_REPEAT)) {
		conf_err(p->el, p->file, line, 0, "duplicate key '%s' (first set at line %u)",
		         k->name, p->line[i]);
		return 0;
	}
	if (!p->line[i])
		p->line[i] = line;
	if (!*value && (k->flags & CONF_KEY_EMPTY_UNSET))
		return 0;

	if (k->flags & CONF_KEY_REPEAT) {
		struct conf_strv *l = field(p, k);

		if (l->n >= CONF_LIST_MAX) {
			conf_err(p->el, p->file, line, 0, "too many '%s' values (at most %u)",
			         k->name, CONF_LIST_MAX);
			p->bad[i] = true;
			return 0;
		}
	}
	r = conf_value_parse(k, value, field(p, k), err, sizeof(err));
	if (r == -ENOMEM)
		return r;
	conf_quote(value, q, sizeof(q));
	if (r == -EPERM) {
		conf_err(p->el, p->file, line, 0, "invalid value for %s: %s", k->name, err);
		p->bad[i] = true;
		return 0;
	}
	if (r < 0) {
		conf_err(p->el, p->file, line, 0, "invalid value '%s' for %s: %s", q, k->name, err);
		p->bad[i] = true;
		return 0;
	}
	if (k->flags & CONF_KEY_REPEAT) {
		struct conf_strv *l = field(p, k);
		const char *added = l->v[l->n - 1];

		for (size_t j = 0; j < p->n_items; j++)
			if (p->items[j].key == k && strcasecmp(p->items[j].value, added) == 0) {
				conf_err(p->el, p->file, line, 0,
				         "%s '%s' is listed twice (first at line %u)", k->name, q,
				         p->items[j].line);
				free(l->v[--l->n]);
				p->bad[i] = true;
				return 0;
			}
		return remember_item(p, k, line, added);
	}
	return 0;
}

static int parse_line(struct parser *p, char *s, unsigned line, int *section)
{
	const struct conf_key *k;
	char *eq, *name, *value, q[128];

	strip_comment(s);
	s = trim(s);
	if (!*s)
		return 0;

	if (*s == '[') {
		char *end = strchr(s, ']');

		if (!end || end[1] != '\0') {
			conf_err(p->el, p->file, line, 0,
			         "invalid section header (expected [name])");
			*section = -2;
			return 0;
		}
		*end = '\0';
		name = trim(s + 1);
		for (int i = 0; i < CONF_SECTION_MAX; i++)
			if (strcmp(name, conf_section_to_string(i)) == 0) {
				*section = i;
				p->section_seen[i] = true;
				return 0;
			}
		conf_quote(name, q, sizeof(q));
		conf_err(p->el, p->file, line, 0,
		         "unknown section [%s] (expected [sync], [ad] or [graph])", q);
		*section = -2; /* its keys are not reported one by one */
		return 0;
	}

	eq = strchr(s, '=');
	if (!eq) {
		conf_err(p->el, p->file, line, 0, "expected 'key = value' or '[section]'");
		return 0;
	}
	*eq = '\0';
	name = trim(s);
	value = trim(eq + 1);
	conf_quote(name, q, sizeof(q));
	if (!*name) {
		conf_err(p->el, p->file, line, 0, "missing key name before '='");
		return 0;
	}
	if (*section == -1) {
		conf_err(p->el, p->file, line, 0, "key '%s' is outside of any section", q);
		return 0;
	}
	if (*section < 0)
		return 0;
	k = conf_key_find(*section, name);
	if (!k) {
		conf_err(p->el, p->file, line, 0, "unknown key '%s' in section [%s]", q,
		         conf_section_to_string(*section));
		return 0;
	}
	return assign(p, k, value, line);
}

static int parse_text(struct parser *p, const char *text, size_t size)
{
	char buf[CONF_LINE_MAX + 1];
	unsigned line = 0;
	int section = -1; /* -1: none yet, -2: an unknown one */
	size_t pos = 0;
	int r;

	while (pos < size) {
		const char *nl = memchr(text + pos, '\n', size - pos);
		size_t len = nl ? (size_t)(nl - (text + pos)) : size - pos;

		line++;
		if (len > 0 && text[pos + len - 1] == '\r')
			len--;
		if (len > CONF_LINE_MAX) {
			conf_err(p->el, p->file, line, 0, "line too long (more than %d bytes)",
			         CONF_LINE_MAX);
		} else if (memchr(text + pos, '\0', len)) {
			conf_err(p->el, p->file, line, 0, "NUL byte in line");
		} else {
			memcpy(buf, text + pos, len);
			buf[len] = '\0';
			r = parse_line(p, buf, line, &section);
			if (r < 0)
				return r;
		}
		pos += (nl ? (size_t)(nl - (text + pos)) + 1 : size - pos);
	}
	return 0;
}

/* --- after parsing: defaults, required keys, checks across keys --------------------------- */

static int apply_defaults(struct parser *p)
{
	struct conf *c = p->c;
	char err[256];
	int r;

	for (size_t i = 0; i < conf_keys_count; i++) {
		const struct conf_key *k = &conf_keys[i];

		if (p->line[i] || !k->def)
			continue;
		r = conf_value_parse(k, k->def, field(p, k), err, sizeof(err));
		if (r < 0)
			return r == -ENOMEM ? r : -EINVAL; /* a default must parse */
	}

	if (!key_line(p, SYNC, "server_name")) {
		char host[HOST_NAME_MAX + 1] = "", q[128];

		if (gethostname(host, sizeof(host) - 1) < 0)
			host[0] = '\0';
		r = conf_value_parse(key(SYNC, "server_name"), host, &c->sync.server_name, err,
		                     sizeof(err));
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			conf_quote(host, q, sizeof(q));
			conf_err(p->el, p->file, 0, 0,
			         "[sync]: server_name is not set and the host name '%s' cannot "
			         "stand for it: set server_name",
			         q);
			p->bad[key_index(key(SYNC, "server_name"))] = true;
		}
	}

	if (!key_line(p, GRAPH, "anchor_extension") && c->graph.client_id) {
		char ext[128];
		size_t n = 0;

		n += (size_t)snprintf(ext, sizeof(ext), "extension_");
		for (const char *s = c->graph.client_id; *s && n < sizeof(ext) - 1; s++)
			if (*s != '-')
				ext[n++] = *s;
		ext[n] = '\0';
		if (strlen(ext) + strlen("_hybridsyncAnchor") >= sizeof(ext))
			return -EINVAL;
		memcpy(ext + n, "_hybridsyncAnchor", sizeof("_hybridsyncAnchor"));
		c->graph.anchor_extension = strdup(ext);
		if (!c->graph.anchor_extension)
			return -ENOMEM;
	}

	/* No include: the whole base_dn is in scope. */
	if (!key_line(p, AD, "include") && c->ad.base_dn) {
		char *dn = strdup(c->ad.base_dn);

		if (!dn || conf_strv_add(&c->ad.include, dn) < 0)
			return -ENOMEM;
	}
	return 0;
}

static void check_required(struct parser *p)
{
	for (size_t i = 0; i < conf_keys_count; i++) {
		const struct conf_key *k = &conf_keys[i];

		if ((k->flags & CONF_KEY_REQUIRED) && !p->line[i])
			conf_err(p->el, p->file, 0, 0, "[%s]: missing required key '%s'",
			         conf_section_to_string(k->section), k->name);
	}
}

static void check_scope(struct parser *p)
{
	const struct conf_key *inc = key(AD, "include"), *exc = key(AD, "exclude");
	const char *base = p->c->ad.base_dn;
	char q[128], qb[128];

	if (!base || !key_ok(p, AD, "base_dn"))
		return;
	conf_quote(base, qb, sizeof(qb));
	for (size_t i = 0; i < p->n_items; i++) {
		const struct list_item *it = &p->items[i];

		if (it->key != inc && it->key != exc)
			continue;
		conf_quote(it->value, q, sizeof(q));
		if (!conf_dn_is_within(it->value, base)) {
			conf_err(p->el, p->file, it->line, 0, "%s '%s' is not within base_dn '%s'",
			         it->key->name, q, qb);
			continue;
		}
		for (size_t j = 0; j < p->n_items; j++) {
			const struct list_item *o = &p->items[j];

			if (o->key != inc || o == it)
				continue;
			if (it->key == inc && conf_dn_is_within(it->value, o->value)) {
				conf_err(p->el, p->file, it->line, 0,
				         "include '%s' lies within the include of line %u", q,
				         o->line);
				break;
			}
		}
		if (it->key == exc && key_line(p, AD, "include")) {
			bool inside = false;

			for (size_t j = 0; j < p->n_items && !inside; j++)
				inside = p->items[j].key == inc &&
				         conf_dn_is_within(it->value, p->items[j].value) &&
				         strcasecmp(it->value, p->items[j].value) != 0;
			if (!inside)
				conf_err(p->el, p->file, it->line, 0,
				         "exclude '%s' does not lie within any include", q);
		} else if (it->key == exc && strcasecmp(it->value, base) == 0) {
			conf_err(p->el, p->file, it->line, 0,
			         "exclude '%s' is base_dn itself: nothing would be in scope", q);
		}
	}
}

static void check_ad(struct parser *p)
{
	const struct conf_ad *ad = &p->c->ad;
	bool ldap_plain = ad->uri && strncmp(ad->uri, "ldap://", 7) == 0;

	if (key_ok(p, AD, "bind_dn") && key_ok(p, AD, "bind_password_file")) {
		if (ad->bind_dn && !ad->bind_password.value)
			conf_err(p->el, p->file, key_line(p, AD, "bind_dn"), 0,
			         "bind_dn needs bind_password_file");
		if (!ad->bind_dn && ad->bind_password.value)
			conf_err(p->el, p->file, key_line(p, AD, "bind_password_file"), 0,
			         "bind_password_file needs bind_dn");
	}
	if (!ad->uri || !key_ok(p, AD, "starttls"))
		return;
	if (ad->starttls && !ldap_plain)
		conf_err(p->el, p->file, key_line(p, AD, "starttls"), 0,
		         "starttls = yes needs an ldap:// uri (ldaps:// is TLS already, "
		         "ldapi:// is local)");
	if (ldap_plain && ad->bind_password.value && !ad->starttls &&
	    key_ok(p, AD, "allow_insecure") && !ad->allow_insecure)
		conf_err(p->el, p->file, key_line(p, AD, "uri"), 0,
		         "ldap:// would send the bind password in clear text: use ldaps://, "
		         "starttls = yes, or allow_insecure = yes (test beds only)");
}

static void check_graph(struct parser *p)
{
	const struct conf_graph *g = &p->c->graph;
	static const char *const http_keys[] = {"authority", "endpoint"};

	if (key_ok(p, GRAPH, "allow_insecure") && !g->allow_insecure)
		for (size_t i = 0; i < 2; i++) {
			const char *v = *(char **)field(p, key(GRAPH, http_keys[i]));

			if (v && key_ok(p, GRAPH, http_keys[i]) && strncmp(v, "http://", 7) == 0)
				conf_err(
				    p->el, p->file, key_line(p, GRAPH, http_keys[i]), 0,
				    "%s is plain http://: use https://, or allow_insecure = yes "
				    "in [graph] (test emulators only)",
				    http_keys[i]);
		}

	if (!key_ok(p, GRAPH, "client_secret_file") || !key_ok(p, GRAPH, "certificate_file") ||
	    !key_ok(p, GRAPH, "key_file"))
		return;
	if (g->client_secret.value && (g->certificate.value || g->key.value))
		conf_err(p->el, p->file, key_line(p, GRAPH, "client_secret_file"), 0,
		         "client_secret_file and certificate_file/key_file exclude each other: "
		         "choose one authentication method");
	else if (g->certificate.value && !g->key.value)
		conf_err(p->el, p->file, key_line(p, GRAPH, "certificate_file"), 0,
		         "certificate_file needs key_file");
	else if (!g->certificate.value && g->key.value)
		conf_err(p->el, p->file, key_line(p, GRAPH, "key_file"), 0,
		         "key_file needs certificate_file");
	else if (!g->client_secret.value && !g->certificate.value)
		conf_err(p->el, p->file, 0, 0,
		         "[graph]: missing client_secret_file, or certificate_file and key_file");
}

static void check_files(struct parser *p)
{
	char err[512], q[128];

	for (size_t i = 0; i < conf_keys_count; i++) {
		const struct conf_key *k = &conf_keys[i];

		if (!p->line[i] || p->bad[i])
			continue;
		if (k->type == CONF_TYPE_SECRET) {
			struct conf_secret_ref *ref = field(p, k);

			if (ref->value && conf_secret_check(ref, k->name, err, sizeof(err)) < 0)
				conf_err(p->el, p->file, p->line[i], 0, "%s", err);
		} else if (k->type == CONF_TYPE_PATH && strcmp(k->name, "ca_file") == 0) {
			const char *path = *(char **)field(p, k);
			struct stat st;
			int fd;

			if (!path)
				continue;
			conf_quote(path, q, sizeof(q));
			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
			if (fd < 0) {
				conf_err(p->el, p->file, p->line[i], 0, "ca_file '%s': %s", q,
				         strerror(errno));
				continue;
			}
			if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
				conf_err(p->el, p->file, p->line[i], 0,
				         "ca_file '%s' is not a regular file", q);
			close(fd);
		}
	}
}

static int validate(struct parser *p)
{
	int r;

	r = apply_defaults(p);
	if (r < 0)
		return r;
	check_required(p);
	check_scope(p);
	check_ad(p);
	check_graph(p);
	check_files(p);
	if (p->c->sync.rules && key_ok(p, SYNC, "rules")) {
		r = conf_rules_load(p->c, p->el, p->file, key_line(p, SYNC, "rules"));
		if (r < 0)
			return r;
	}
	conf_strv_sort(&p->c->ad.include);
	conf_strv_sort(&p->c->ad.exclude);
	conf_strv_sort(&p->c->graph.domains);
	return 0;
}

/* --- loading ----------------------------------------------------------------------------- */

static int load(const char *name, const char *text, size_t size, struct conf **ret_conf,
                struct conf_errors **ret_errors)
{
	struct conf_errlist el = {0};
	struct parser p = {.file = name};
	struct conf *c = NULL;
	int r;

	el.e = calloc(1, sizeof(*el.e));
	c = conf_new();
	if (!el.e || !c) {
		r = -ENOMEM;
		goto out;
	}
	c->path = strdup(name);
	if (!c->path) {
		r = -ENOMEM;
		goto out;
	}
	p.c = c;
	p.el = &el;

	r = parse_text(&p, text, size);
	if (r >= 0)
		r = validate(&p);
	if (r < 0)
		goto out;
	if (el.oom) {
		r = -ENOMEM;
		goto out;
	}
	if (el.e->n > 0 || el.truncated) {
		conf_errors_sort(el.e, name);
		if (el.truncated)
			conf_err_final(&el, name, "too many errors (more than %d), giving up",
			               CONF_ERRORS_MAX);
		if (el.oom) {
			r = -ENOMEM;
			goto out;
		}
		r = -EINVAL;
		goto out;
	}
	if (ret_errors)
		*ret_errors = NULL;
	*ret_conf = c;
	c = NULL;
	r = 0;
out:
	free(p.items);
	conf_free(c);
	if (r == -EINVAL && ret_errors && !el.oom) {
		*ret_errors = el.e;
		el.e = NULL;
	} else if (r < 0 && ret_errors) {
		*ret_errors = NULL;
	}
	conf_errors_free(el.e);
	return r;
}

int conf_load_string(const char *name, const char *text, struct conf **ret_conf,
                     struct conf_errors **ret_errors)
{
	if (!name || !text || !ret_conf)
		return -EINVAL;
	return load(name, text, strlen(text), ret_conf, ret_errors);
}

/* A file that cannot be read yields one error naming it, so callers print errors alike. */
static int file_error(const char *path, int error, const char *what,
                      struct conf_errors **ret_errors)
{
	struct conf_errlist el = {0};

	if (ret_errors)
		*ret_errors = NULL;
	el.e = calloc(1, sizeof(*el.e));
	if (!el.e)
		return -ENOMEM;
	conf_err(&el, path, 0, 0, "%s", what ? what : strerror(error));
	if (el.oom) {
		conf_errors_free(el.e);
		return -ENOMEM;
	}
	if (ret_errors)
		*ret_errors = el.e;
	else
		conf_errors_free(el.e);
	return -error;
}

int conf_load(const char *path, struct conf **ret_conf, struct conf_errors **ret_errors)
{
	struct stat st;
	char *text = NULL;
	size_t size = 0;
	int fd = -1, r;

	if (!path || !ret_conf)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return file_error(path, errno, NULL, ret_errors);
	if (fstat(fd, &st) < 0) {
		r = file_error(path, errno, NULL, ret_errors);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		r = file_error(path, EISDIR, NULL, ret_errors);
		goto out;
	}
	text = malloc(CONF_FILE_MAX + 1);
	if (!text) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, text + size, CONF_FILE_MAX + 1 - size);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = file_error(path, errno, NULL, ret_errors);
			goto out;
		}
		if (n == 0)
			break;
		size += (size_t)n;
		if (size > CONF_FILE_MAX) {
			r = file_error(path, EFBIG, "larger than 1 MiB", ret_errors);
			goto out;
		}
	}
	r = load(path, text, size, ret_conf, ret_errors);
out:
	free(text);
	if (fd >= 0)
		close(fd);
	return r;
}
