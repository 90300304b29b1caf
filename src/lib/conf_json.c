/* The config as canonical JSON: rule files read and checked, the export (sorted keys, fixed
 * number and string formats), the config hash over its outcome-deciding part, and the import
 * that turns an export back into a config file. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h> /* isfinite, a macro: no libm */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_internal.h"

#define RULES_FILES_MAX 1000
#define RULES_FILE_MAX  (4 * 1024 * 1024)
#define JSON_OUTPUT_MAX (64 * 1024 * 1024)

/* --- canonical JSON writer --------------------------------------------------------------- */

struct out {
	char *buf;
	size_t len, size;
	bool failed;           /* out of memory or over JSON_OUTPUT_MAX */
	const char *duplicate; /* a key seen twice in one object */
};

static void out_add(struct out *o, const char *s, size_t n)
{
	if (o->failed)
		return;
	if (o->len + n + 1 > o->size) {
		size_t size = o->size ? o->size : 256;
		char *b;

		while (size < o->len + n + 1)
			size *= 2;
		if (size > JSON_OUTPUT_MAX) {
			o->failed = true;
			return;
		}
		b = realloc(o->buf, size);
		if (!b) {
			o->failed = true;
			return;
		}
		o->buf = b;
		o->size = size;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void out_str(struct out *o, const char *s)
{
	out_add(o, s, strlen(s));
}

static void out_indent(struct out *o, int indent, int level)
{
	if (indent < 0)
		return;
	out_add(o, "\n", 1);
	for (int i = 0; i < indent * level; i++)
		out_add(o, " ", 1);
}

static void out_string(struct out *o, const char *s)
{
	out_add(o, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			out_add(o, esc, 2);
		} else if (c == '\n') {
			out_add(o, "\\n", 2);
		} else if (c == '\t') {
			out_add(o, "\\t", 2);
		} else if (c == '\r') {
			out_add(o, "\\r", 2);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			out_add(o, esc, 6);
		} else {
			out_add(o, s, 1);
		}
	}
	out_add(o, "\"", 1);
}

/* Integers as integers; other numbers as the shortest of %.15g/%.17g that reads back equal. */
static void out_number(struct out *o, double d)
{
	char num[40];

	if (!isfinite(d))
		snprintf(num, sizeof(num), "null");
	else if (d > -9007199254740992.0 && d < 9007199254740992.0 && d == (double)(int64_t)d)
		snprintf(num, sizeof(num), "%" PRId64, (int64_t)d);
	else {
		snprintf(num, sizeof(num), "%.15g", d);
		if (strtod(num, NULL) != d)
			snprintf(num, sizeof(num), "%.17g", d);
	}
	out_str(o, num);
}

static int cmp_item(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	int r = strcmp(x->string, y->string);

	if (r == 0) /* keep it total and stable; the caller reports the duplicate */
		return x < y ? -1 : x > y;
	return r;
}

static void out_json(struct out *o, const cJSON *item, int indent, int level)
{
	const cJSON *child;
	size_t n = 0, i;

	if (cJSON_IsNull(item)) {
		out_str(o, "null");
	} else if (cJSON_IsBool(item)) {
		out_str(o, cJSON_IsTrue(item) ? "true" : "false");
	} else if (cJSON_IsNumber(item)) {
		out_number(o, item->valuedouble);
	} else if (cJSON_IsString(item)) {
		out_string(o, item->valuestring);
	} else if (cJSON_IsArray(item)) {
		out_add(o, "[", 1);
		i = 0;
		cJSON_ArrayForEach(child, item)
		{
			if (i++)
				out_add(o, ",", 1);
			out_indent(o, indent, level + 1);
			out_json(o, child, indent, level + 1);
		}
		if (i)
			out_indent(o, indent, level);
		out_add(o, "]", 1);
	} else if (cJSON_IsObject(item)) {
		const cJSON **v;

		cJSON_ArrayForEach(child, item) n++;
		if (n == 0) {
			out_str(o, "{}");
			return;
		}
		v = calloc(n, sizeof(*v));
		if (!v) {
			o->failed = true;
			return;
		}
		i = 0;
		cJSON_ArrayForEach(child, item) v[i++] = child;
		qsort(v, n, sizeof(*v), cmp_item);
		out_add(o, "{", 1);
		for (i = 0; i < n; i++) {
			if (i && strcmp(v[i - 1]->string, v[i]->string) == 0 && !o->duplicate)
				o->duplicate = v[i]->string;
			if (i)
				out_add(o, ",", 1);
			out_indent(o, indent, level + 1);
			out_string(o, v[i]->string);
			out_str(o, indent < 0 ? ":" : ": ");
			out_json(o, v[i], indent, level + 1);
		}
		out_indent(o, indent, level);
		out_add(o, "}", 1);
		free(v);
	} else {
		out_str(o, "null"); /* raw/invalid items never come out of cJSON_Parse */
	}
}

/* Canonical text of a JSON value: compact (indent < 0) or pretty. NULL on ENOMEM. */
char *conf_json_canonical(const cJSON *item, int indent, const char **ret_duplicate)
{
	struct out o = {0};

	out_json(&o, item, indent, 0);
	if (indent >= 0)
		out_add(&o, "\n", 1);
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	if (ret_duplicate)
		*ret_duplicate = o.duplicate;
	return o.buf;
}

/* --- the rules directory ----------------------------------------------------------------- */

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

bool conf_rule_file_name_ok(const char *name)
{
	size_t len = strlen(name);

	if (name[0] == '.' || len <= 5 || len > 255 || strcmp(name + len - 5, ".json") != 0)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("._-+@", *p)))
			return false;
	return true;
}

static void position(const char *text, const char *at, unsigned *line, unsigned *col)
{
	*line = 1;
	*col = 1;
	for (const char *p = text; p < at && *p; p++) {
		if (*p == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static int read_small_file(int dirfd, const char *name, char **ret, size_t *ret_len, int *err)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		*err = errno;
		return -EINVAL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*err = EINVAL;
		goto fail;
	}
	if (st.st_size > RULES_FILE_MAX) {
		*err = EFBIG;
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 2);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*err = errno;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > (size_t)st.st_size) {
			*err = EFBIG;
			goto fail;
		}
	}
	buf[len] = '\0';
	close(fd);
	*ret = buf;
	*ret_len = len;
	return 0;
fail:
	free(buf);
	close(fd);
	return -EINVAL;
}

static int load_rule_file(struct conf *c, struct conf_errlist *el, int dirfd, const char *name)
{
	struct conf_rule_file *rf;
	const char *end = NULL, *dup = NULL;
	char *text = NULL, *path = NULL, *canon = NULL;
	cJSON *json = NULL;
	size_t len;
	int r, err = 0;

	if (asprintf(&path, "%s/%s", c->sync.rules, name) < 0)
		return -ENOMEM;
	r = read_small_file(dirfd, name, &text, &len, &err);
	if (r == -ENOMEM)
		goto out;
	if (r < 0) {
		conf_err(el, path, 0, 0, "%s",
		         err == EINVAL  ? "not a regular file"
		         : err == EFBIG ? "larger than 4 MiB"
		                        : strerror(err));
		r = 0;
		goto out;
	}
	if (memchr(text, '\0', len)) {
		conf_err(el, path, 0, 0, "NUL byte in a JSON file");
		goto out;
	}
	json = cJSON_ParseWithLengthOpts(text, len + 1, &end, true);
	if (!json) {
		unsigned line, col;

		position(text, end ? end : text, &line, &col);
		conf_err(el, path, line, col, "invalid JSON");
		goto out;
	}
	canon = conf_json_canonical(json, -1, &dup);
	if (!canon) {
		r = -ENOMEM;
		goto out;
	}
	if (dup) {
		conf_err(el, path, 0, 0, "duplicate key \"%s\" in an object", dup);
		goto out;
	}
	rf = reallocarray(c->rules, c->n_rules + 1, sizeof(*rf));
	if (!rf) {
		r = -ENOMEM;
		goto out;
	}
	c->rules = rf;
	rf = &c->rules[c->n_rules];
	rf->name = strdup(name);
	if (!rf->name) {
		r = -ENOMEM;
		goto out;
	}
	rf->path = path;
	rf->canonical = canon;
	c->n_rules++;
	path = canon = NULL;
out:
	cJSON_Delete(json);
	free(canon);
	free(text);
	free(path);
	return r;
}

int conf_rules_load(struct conf *c, struct conf_errlist *el, const char *conf_file, unsigned line)
{
	struct dirent *de;
	char **names = NULL, q[128];
	size_t n = 0;
	DIR *d;
	int r = 0;

	conf_quote(c->sync.rules, q, sizeof(q));
	d = opendir(c->sync.rules);
	if (!d) {
		if (errno == ENOENT)
			conf_err(el, conf_file, line, 0, "rules directory '%s' does not exist", q);
		else
			conf_err(el, conf_file, line, 0, "rules directory '%s': %s", q,
			         strerror(errno));
		return 0;
	}
	while ((errno = 0, de = readdir(d))) {
		char **v;

		if (de->d_name[0] == '.' || strlen(de->d_name) <= 5 ||
		    strcmp(de->d_name + strlen(de->d_name) - 5, ".json") != 0)
			continue;
		if (!conf_rule_file_name_ok(de->d_name)) {
			conf_quote(de->d_name, q, sizeof(q));
			conf_err(
			    el, conf_file, line, 0,
			    "rule file name '%s' has characters other than letters, digits and "
			    "._-+@",
			    q);
			continue;
		}
		if (n >= RULES_FILES_MAX) {
			conf_err(el, conf_file, line, 0, "more than %d rule files",
			         RULES_FILES_MAX);
			break;
		}
		v = reallocarray(names, n + 1, sizeof(*v));
		if (!v || !(v[n] = strdup(de->d_name))) {
			if (v)
				names = v;
			r = -ENOMEM;
			goto out;
		}
		names = v;
		n++;
	}
	if (errno) {
		conf_err(el, conf_file, line, 0, "rules directory '%s': %s", q, strerror(errno));
		goto out;
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_name);
	for (size_t i = 0; i < n && r >= 0; i++)
		r = load_rule_file(c, el, dirfd(d), names[i]);
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return r;
}

/* --- export and hash --------------------------------------------------------------------- */

static bool add(cJSON *obj, const char *name, cJSON *v)
{
	return v && cJSON_AddItemToObject(obj, name, v);
}

static cJSON *string_or_null(const char *s)
{
	return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static cJSON *export_value(const struct conf_key *k, const void *field)
{
	cJSON *v;

	switch (k->type) {
	case CONF_TYPE_BOOL:
		return cJSON_CreateBool(*(const bool *)field);
	case CONF_TYPE_DURATION:
	case CONF_TYPE_UINT:
		return cJSON_CreateNumber(*(const unsigned *)field);
	case CONF_TYPE_THRESHOLD: {
		const struct conf_threshold *t = field;

		v = cJSON_CreateObject();
		if (v &&
		    !add(v, conf_threshold_kind_to_string(t->kind), cJSON_CreateNumber(t->value)))
			v = (cJSON_Delete(v), NULL);
		return v;
	}
	case CONF_TYPE_WRITE_BUDGET: {
		const struct conf_write_budget *b = field;

		v = cJSON_CreateObject();
		if (v && (!add(v, "writes", cJSON_CreateNumber(b->writes)) ||
		          !add(v, "seconds", cJSON_CreateNumber(b->seconds))))
			v = (cJSON_Delete(v), NULL);
		return v;
	}
	case CONF_TYPE_CHANGE_TRACKING:
		return cJSON_CreateString(
		    conf_change_tracking_to_string(*(const enum conf_change_tracking *)field));
	case CONF_TYPE_SECRET:
		/* the reference (a path or a credential name), never the secret */
		return string_or_null(((const struct conf_secret_ref *)field)->value);
	case CONF_TYPE_DN_LIST:
	case CONF_TYPE_DOMAIN_LIST: {
		const struct conf_strv *l = field;

		v = cJSON_CreateArray();
		for (size_t i = 0; v && i < l->n; i++) {
			cJSON *s = cJSON_CreateString(l->v[i]);

			if (!s || !cJSON_AddItemToArray(v, s)) {
				cJSON_Delete(s);
				v = (cJSON_Delete(v), NULL);
			}
		}
		return v;
	}
	default:
		return string_or_null(*(char *const *)field);
	}
}

static cJSON *export_tree(const struct conf *c, bool for_hash)
{
	cJSON *root = cJSON_CreateObject(), *sections[CONF_SECTION_MAX] = {0}, *rules;

	if (!root || !add(root, "hybridsync_config", cJSON_CreateNumber(CONF_EXPORT_VERSION)))
		goto fail;
	for (int s = 0; s < CONF_SECTION_MAX; s++) {
		sections[s] = cJSON_CreateObject();
		if (!add(root, conf_section_to_string(s), sections[s]))
			goto fail;
	}
	for (size_t i = 0; i < conf_keys_count; i++) {
		const struct conf_key *k = &conf_keys[i];

		if (for_hash && (k->flags & CONF_KEY_NOHASH))
			continue;
		if (!add(sections[k->section], k->name,
		         export_value(k, (const char *)c + k->offset)))
			goto fail;
	}
	rules = cJSON_CreateArray();
	if (!add(root, "rules", rules))
		goto fail;
	for (size_t i = 0; i < c->n_rules; i++) {
		cJSON *r = cJSON_CreateObject(), *content = cJSON_Parse(c->rules[i].canonical);

		if (!r || !cJSON_AddItemToArray(rules, r)) {
			cJSON_Delete(r);
			cJSON_Delete(content);
			goto fail;
		}
		if (!add(r, "file", cJSON_CreateString(c->rules[i].name)) ||
		    !add(r, "content", content)) {
			cJSON_Delete(content);
			goto fail;
		}
	}
	return root;
fail:
	cJSON_Delete(root);
	return NULL;
}

int conf_sha256_hex(const char *text, char ret[CONF_HASH_HEX_SIZE])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL) != 1 || n != 32)
		return -EIO;
	for (unsigned i = 0; i < n; i++)
		snprintf(ret + 2 * i, 3, "%02x", md[i]);
	return 0;
}

int conf_hash(const struct conf *c, char ret[CONF_HASH_HEX_SIZE])
{
	char *text = conf_export_json(c, true, false);
	int r;

	if (!text)
		return -ENOMEM;
	r = conf_sha256_hex(text, ret);
	free(text);
	return r;
}

char *conf_export_json(const struct conf *c, bool for_hash, bool pretty)
{
	cJSON *root;
	char *text = NULL;

	if (!c)
		return NULL;
	root = export_tree(c, for_hash);
	if (!root)
		return NULL;
	if (!for_hash) {
		char hash[CONF_HASH_HEX_SIZE];

		if (conf_hash(c, hash) < 0 || !add(root, "config_hash", cJSON_CreateString(hash)))
			goto out;
	}
	text = conf_json_canonical(root, for_hash || !pretty ? -1 : 2, NULL);
out:
	cJSON_Delete(root);
	return text;
}

bool conf_key_in_hash(const char *section, const char *key)
{
	for (int s = 0; s < CONF_SECTION_MAX; s++)
		if (section && strcmp(section, conf_section_to_string(s)) == 0) {
			const struct conf_key *k = key ? conf_key_find(s, key) : NULL;

			return k && !(k->flags & CONF_KEY_NOHASH);
		}
	/* the rules' content is covered; so is the format version */
	return section &&
	       (strcmp(section, "rules") == 0 || strcmp(section, "hybridsync_config") == 0);
}
