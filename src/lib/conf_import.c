/* Import of a config export (as Entra Connect's "import synchronization settings"): checks the
 * export against its own hash and writes a hybridsync.conf for a new server, staging forced. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_internal.h"

struct import {
	struct conf_errlist *el;
	FILE *f;
	const char *rules_dir;
	bool has_rules; /* the export carries rule files */
};

/* A value written back must read back the same: no control characters, no blanks at the ends,
 * nothing the parser would take for a comment. */
static bool ini_safe(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || s[0] == ' ' || s[0] == '\t' || s[len - 1] == ' ' || s[len - 1] == '\t' ||
	    s[0] == '#' || s[0] == ';')
		return false;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
		if ((s[i] == '#' || s[i] == ';') && (s[i - 1] == ' ' || s[i - 1] == '\t'))
			return false;
	}
	return true;
}

static bool json_uint(const cJSON *v, unsigned *ret)
{
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 4294967295.0) ||
	    v->valuedouble != (double)(unsigned)v->valuedouble)
		return false;
	*ret = (unsigned)v->valuedouble;
	return true;
}

static void bad(struct import *im, const char *section, const struct conf_key *k)
{
	conf_err(im->el, NULL, 0, 0, "%s.%s: value of the wrong type or not allowed in a config",
	         section, k->name);
}

static void emit_string(struct import *im, const char *section, const struct conf_key *k,
                        const cJSON *v)
{
	if (!cJSON_IsString(v) || !ini_safe(v->valuestring)) {
		bad(im, section, k);
		return;
	}
	fprintf(im->f, "%s = %s\n", k->name, v->valuestring);
}

static void emit_key(struct import *im, const char *section, const struct conf_key *k,
                     const cJSON *v)
{
	char dur[32];
	unsigned n, m;
	const cJSON *x;
	bool ok = true;

	if (k->section == CONF_SECTION_SYNC && strcmp(k->name, "rules") == 0 && im->rules_dir) {
		if (!cJSON_IsNull(v) || im->has_rules)
			fprintf(im->f, "rules = %s\n", im->rules_dir);
		return;
	}
	if (cJSON_IsNull(v)) {
		/* unset; for a key with a default, "key =" keeps it unset */
		if (k->def)
			fprintf(im->f, "%s =\n", k->name);
		return;
	}
	switch (k->type) {
	case CONF_TYPE_BOOL:
		ok = cJSON_IsBool(v);
		if (ok)
			fprintf(im->f, "%s = %s\n", k->name, cJSON_IsTrue(v) ? "yes" : "no");
		break;
	case CONF_TYPE_DURATION:
		ok = json_uint(v, &n);
		if (ok) {
			conf_format_duration(n, dur, sizeof(dur));
			fprintf(im->f, "%s = %s\n", k->name, dur);
		}
		break;
	case CONF_TYPE_UINT:
		ok = json_uint(v, &n);
		if (ok)
			fprintf(im->f, "%s = %u\n", k->name, n);
		break;
	case CONF_TYPE_THRESHOLD:
		ok = cJSON_IsObject(v) && cJSON_GetArraySize(v) == 1;
		if (ok && json_uint(cJSON_GetObjectItemCaseSensitive(v, "count"), &n))
			fprintf(im->f, "%s = %u\n", k->name, n);
		else if (ok && json_uint(cJSON_GetObjectItemCaseSensitive(v, "percent"), &n))
			fprintf(im->f, "%s = %u%%\n", k->name, n);
		else
			ok = false;
		break;
	case CONF_TYPE_WRITE_BUDGET:
		ok = cJSON_IsObject(v) && cJSON_GetArraySize(v) == 2 &&
		     json_uint(cJSON_GetObjectItemCaseSensitive(v, "writes"), &n) &&
		     json_uint(cJSON_GetObjectItemCaseSensitive(v, "seconds"), &m);
		if (ok) {
			conf_format_duration(m, dur, sizeof(dur));
			fprintf(im->f, "%s = %u/%s\n", k->name, n, dur);
		}
		break;
	case CONF_TYPE_DN_LIST:
	case CONF_TYPE_DOMAIN_LIST:
		ok = cJSON_IsArray(v);
		if (ok)
			cJSON_ArrayForEach(x, v) emit_string(im, section, k, x);
		break;
	default:
		emit_string(im, section, k, v);
		break;
	}
	if (!ok)
		bad(im, section, k);
}

static void emit_section(struct import *im, enum conf_section s, const cJSON *obj)
{
	const char *name = conf_section_to_string(s);
	const cJSON *item;

	if (!cJSON_IsObject(obj)) {
		conf_err(im->el, NULL, 0, 0, "\"%s\" is missing or not an object", name);
		return;
	}
	cJSON_ArrayForEach(item, obj) if (!conf_key_find(s, item->string))
	    conf_err(im->el, NULL, 0, 0, "unknown key \"%s\" in \"%s\"", item->string, name);

	fprintf(im->f, "\n[%s]\n", name);
	if (s == CONF_SECTION_SYNC)
		fprintf(im->f, "staging = yes\n");
	for (size_t i = 0; i < conf_keys_count; i++) {
		const struct conf_key *k = &conf_keys[i];
		const cJSON *v;

		if (k->section != s)
			continue;
		/* this server's own: staging is forced, server_name and force_promotion are
		 * left to their defaults (this host's name, no) */
		if (s == CONF_SECTION_SYNC &&
		    (strcmp(k->name, "staging") == 0 || strcmp(k->name, "server_name") == 0 ||
		     strcmp(k->name, "force_promotion") == 0))
			continue;
		v = cJSON_GetObjectItemCaseSensitive(obj, k->name);
		if (v)
			emit_key(im, name, k, v);
	}
}

/* The export's hash recomputed from its own content. */
static int check_hash(struct import *im, const cJSON *root, const char *claimed)
{
	char hash[CONF_HASH_HEX_SIZE], *text;
	cJSON *copy = cJSON_Duplicate(root, true);

	if (!copy)
		return -ENOMEM;
	cJSON_DeleteItemFromObjectCaseSensitive(copy, "config_hash");
	for (size_t i = 0; i < conf_keys_count; i++) {
		const struct conf_key *k = &conf_keys[i];
		cJSON *sec =
		    cJSON_GetObjectItemCaseSensitive(copy, conf_section_to_string(k->section));

		if (sec && (k->flags & CONF_KEY_NOHASH))
			cJSON_DeleteItemFromObjectCaseSensitive(sec, k->name);
	}
	text = conf_json_canonical(copy, -1, NULL);
	cJSON_Delete(copy);
	if (!text)
		return -ENOMEM;
	if (conf_sha256_hex(text, hash) < 0) {
		free(text);
		return -EIO;
	}
	free(text);
	if (strcmp(hash, claimed) != 0)
		conf_err(im->el, NULL, 0, 0,
		         "config_hash %s does not match the content (%s): the export was changed "
		         "after it was written",
		         claimed, hash);
	return 0;
}

static int import_rules(struct import *im, const cJSON *rules, struct conf_import *imp)
{
	const cJSON *r;
	size_t n = 0;

	if (!cJSON_IsArray(rules)) {
		conf_err(im->el, NULL, 0, 0, "\"rules\" is missing or not an array");
		return 0;
	}
	imp->rules = calloc((size_t)cJSON_GetArraySize(rules) + 1, sizeof(*imp->rules));
	if (!imp->rules)
		return -ENOMEM;
	cJSON_ArrayForEach(r, rules)
	{
		const cJSON *file = cJSON_GetObjectItemCaseSensitive(r, "file");
		const cJSON *content = cJSON_GetObjectItemCaseSensitive(r, "content");
		struct conf_import_file *f;

		if (!cJSON_IsObject(r) || cJSON_GetArraySize(r) != 2 || !cJSON_IsString(file) ||
		    !content || !conf_rule_file_name_ok(file->valuestring)) {
			conf_err(im->el, NULL, 0, 0,
			         "rules[%zu]: expected {\"file\": NAME.json, \"content\": JSON}",
			         n);
			n++;
			continue;
		}
		for (size_t i = 0; i < imp->n_rules; i++)
			if (strcmp(imp->rules[i].name, file->valuestring) == 0)
				conf_err(im->el, NULL, 0, 0, "rules: file \"%s\" appears twice",
				         file->valuestring);
		f = &imp->rules[imp->n_rules];
		f->name = strdup(file->valuestring);
		f->content = conf_json_canonical(content, 2, NULL);
		if (!f->name || !f->content) {
			free(f->name);
			free(f->content);
			return -ENOMEM;
		}
		imp->n_rules++;
		n++;
	}
	return 0;
}

struct conf_import *conf_import_free(struct conf_import *imp)
{
	if (!imp)
		return NULL;
	for (size_t i = 0; i < imp->n_rules; i++) {
		free(imp->rules[i].name);
		free(imp->rules[i].content);
	}
	free(imp->rules);
	free(imp->conf_text);
	free(imp);
	return NULL;
}

static bool is_hex_hash(const char *s)
{
	if (strlen(s) != CONF_HASH_HEX_SIZE - 1)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

int conf_import_json(const char *json_text, const char *rules_dir, struct conf_import **ret,
                     struct conf_errors **ret_errors)
{
	static const char *const top[] = {
	    "hybridsync_config", "config_hash", "sync", "ad", "graph", "rules"};
	struct conf_errlist el = {0};
	struct import im = {.el = &el, .rules_dir = rules_dir};
	struct conf_import *imp = NULL;
	const cJSON *item, *version, *hash;
	const char *end = NULL;
	cJSON *root = NULL;
	size_t size = 0;
	int r = 0;

	if (ret_errors)
		*ret_errors = NULL;
	if (!json_text || !ret)
		return -EINVAL;
	el.e = calloc(1, sizeof(*el.e));
	imp = calloc(1, sizeof(*imp));
	if (!el.e || !imp) {
		r = -ENOMEM;
		goto out;
	}

	if (rules_dir && (rules_dir[0] != '/' || !ini_safe(rules_dir))) {
		conf_err(&el, NULL, 0, 0, "the rules directory must be an absolute path");
		goto done;
	}
	root = cJSON_ParseWithOpts(json_text, &end, true);
	if (!root || !cJSON_IsObject(root)) {
		unsigned line = 1, col = 1;

		for (const char *p = json_text; end && p < end && *p; p++) {
			col++;
			if (*p == '\n') {
				line++;
				col = 1;
			}
		}
		conf_err(&el, NULL, 0, 0,
		         root ? "not a config export (expected a JSON object)"
		              : "invalid JSON at line %u, column %u",
		         line, col);
		goto done;
	}
	cJSON_ArrayForEach(item, root)
	{
		bool known = false;

		for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
			known = known || strcmp(item->string, top[i]) == 0;
		if (!known)
			conf_err(&el, NULL, 0, 0, "unknown key \"%s\"", item->string);
	}
	version = cJSON_GetObjectItemCaseSensitive(root, "hybridsync_config");
	if (!cJSON_IsNumber(version) || version->valuedouble != CONF_EXPORT_VERSION) {
		conf_err(&el, NULL, 0, 0, "not a hybridsync config export of version %d",
		         CONF_EXPORT_VERSION);
		goto done;
	}
	hash = cJSON_GetObjectItemCaseSensitive(root, "config_hash");
	if (!cJSON_IsString(hash) || !is_hex_hash(hash->valuestring)) {
		conf_err(&el, NULL, 0, 0, "config_hash is missing or not a SHA-256 in hex");
		goto done;
	}
	r = check_hash(&im, root, hash->valuestring);
	if (r < 0)
		goto out;

	im.has_rules = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "rules")) > 0;
	im.f = open_memstream(&imp->conf_text, &size);
	if (!im.f) {
		r = -ENOMEM;
		goto out;
	}
	fprintf(im.f,
	        "# hybridsync.conf(5), imported from a config export (config hash %s).\n"
	        "# staging = yes is forced: review the pending exports before promoting this "
	        "server.\n"
	        "# server_name is this host's name and force_promotion is no, by default.\n"
	        "# Secrets are not part of an export: put them where bind_password_file,\n"
	        "# client_secret_file or key_file say, readable by the daemon only (mode 0600).\n",
	        hash->valuestring);
	for (int s = 0; s < CONF_SECTION_MAX; s++)
		emit_section(&im, s,
		             cJSON_GetObjectItemCaseSensitive(root, conf_section_to_string(s)));
	if (fclose(im.f) != 0) {
		im.f = NULL;
		r = -ENOMEM;
		goto out;
	}
	im.f = NULL;
	r = import_rules(&im, cJSON_GetObjectItemCaseSensitive(root, "rules"), imp);
	if (r < 0)
		goto out;
	if (imp->n_rules && !rules_dir) {
		const cJSON *sync = cJSON_GetObjectItemCaseSensitive(root, "sync");

		if (cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(sync, "rules")))
			conf_err(&el, NULL, 0, 0, "rules are exported but sync.rules is null");
	}
done:
	if (el.oom) {
		r = -ENOMEM;
		goto out;
	}
	if (el.e->n) {
		r = -EINVAL;
		goto out;
	}
	*ret = imp;
	imp = NULL;
	r = 0;
out:
	if (im.f)
		fclose(im.f);
	cJSON_Delete(root);
	conf_import_free(imp);
	if (r == -EINVAL && ret_errors) {
		*ret_errors = el.e;
		el.e = NULL;
	}
	conf_errors_free(el.e);
	return r;
}
