/* hybridsyncctl config: export the effective config, check it, compare two exports key by
 * key, import an export as a new (staging) server's config directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "hybridsync/sync.h"

#define EXPORT_FILE_MAX (64u << 20) /* bytes of an export read for diff or import */

static int config_export(struct ctl *ctl, int argc, char **argv)
{
	char *json;
	int r;

	if (argc > 1)
		return ctl_usage("config export", "unexpected argument '%s'", argv[1]);
	r = ctl_load_conf(ctl);
	if (r != CTL_EXIT_OK)
		return r;
	json = conf_export_json(ctl->conf, false, true);
	if (!json)
		return ctl_fail("Failed to export the configuration: %s", strerror(ENOMEM));
	fputs(json, stdout);
	free(json);
	return ctl_flush();
}

static int config_check(struct ctl *ctl, int argc, char **argv)
{
	struct conf_errors *errors = NULL;
	struct sync_rules *rules = NULL;
	char hash[CONF_HASH_HEX_SIZE];
	int r;

	if (argc > 1)
		return ctl_usage("config check", "unexpected argument '%s'", argv[1]);
	r = ctl_load_conf(ctl);
	if (r != CTL_EXIT_OK)
		return r;
	/* the rules must compile too; an engine that is not built cannot say */
	r = sync_rules_load(ctl->conf, &rules, &errors);
	sync_rules_free(rules);
	if (r < 0 && r != -EOPNOTSUPP) {
		for (size_t i = 0; errors && i < errors->n; i++)
			fprintf(stderr, "%s\n", errors->v[i].text);
		if (!errors)
			ctl_fail("Failed to compile the rules: %s", strerror(-r));
		conf_errors_free(errors);
		return CTL_EXIT_FAILURE;
	}
	conf_errors_free(errors);
	if (conf_hash(ctl->conf, hash) < 0)
		return ctl_fail("Failed to hash the configuration: %s", strerror(ENOMEM));
	printf("%s: valid\nconfig hash: %s\n", ctl->conf_path, hash);
	return ctl_flush();
}

static char *read_file(const char *path, int *ret_errno)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f) {
		*ret_errno = errno;
		return NULL;
	}
	do {
		if (cap - len < 2) {
			char *nb = cap >= EXPORT_FILE_MAX ? NULL : realloc(buf, cap + 65536);

			if (!nb) {
				*ret_errno = cap >= EXPORT_FILE_MAX ? EFBIG : ENOMEM;
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	if (buf && ferror(f)) {
		*ret_errno = EIO;
		buf = (free(buf), NULL);
	}
	if (f != stdin)
		fclose(f);
	if (buf)
		buf[len] = '\0';
	return buf;
}

/* --- diff --------------------------------------------------------------------------------- */

struct diff {
	unsigned n_covered, n_local;
	bool all;
};

/* Whether a dotted key is covered by the config hash ("sync.staging" is not). */
static bool in_hash(const char *path)
{
	char section[32];
	const char *dot = strchr(path, '.');

	if (!dot || (size_t)(dot - path) >= sizeof(section))
		return true;
	memcpy(section, path, (size_t)(dot - path));
	section[dot - path] = '\0';
	if (strcmp(section, "sync") && strcmp(section, "ad") && strcmp(section, "graph"))
		return true;
	/* only the first key below the section names the setting */
	char key[64];
	const char *end = strchr(dot + 1, '.');
	size_t len = end ? (size_t)(end - dot - 1) : strlen(dot + 1);

	if (len >= sizeof(key))
		return true;
	memcpy(key, dot + 1, len);
	key[len] = '\0';
	return conf_key_in_hash(section, key);
}

static void report_key(struct diff *d, const char *path, const cJSON *a, const cJSON *b)
{
	char *as = a ? cJSON_PrintUnformatted(a) : NULL, *bs = b ? cJSON_PrintUnformatted(b) : NULL;
	bool covered = in_hash(path);

	if (covered)
		d->n_covered++;
	else
		d->n_local++;
	printf("%s: %s -> %s%s\n", path, as ? as : "(absent)", bs ? bs : "(absent)",
	       covered ? "" : "  (not in the hash)");
	free(as);
	free(bs);
}

static int compare(struct diff *d, const char *path, const cJSON *a, const cJSON *b);

/* An array of objects that all have a string "file" (the rules) compares by file name. */
static bool keyed_by_file(const cJSON *arr)
{
	const cJSON *e;

	if (!cJSON_IsArray(arr))
		return false;
	cJSON_ArrayForEach(e, arr)
	{
		if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "file")))
			return false;
	}
	return true;
}

static const cJSON *find_file(const cJSON *arr, const char *file)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, arr)
	{
		if (strcmp(ctl_jstr(e, "file"), file) == 0)
			return e;
	}
	return NULL;
}

static int compare_members(struct diff *d, const char *path, const cJSON *a, const cJSON *b,
                           bool by_file)
{
	const cJSON *e;
	char *sub;
	int r = 0;

	/* keys of a in order, then keys only in b */
	for (int pass = 0; pass < 2 && r >= 0; pass++) {
		const cJSON *from = pass ? b : a, *other = pass ? a : b;

		cJSON_ArrayForEach(e, from)
		{
			const char *key = by_file ? ctl_jstr(e, "file") : e->string;
			const cJSON *o = by_file ? find_file(other, key)
			                         : cJSON_GetObjectItemCaseSensitive(other, key);

			if (pass && o)
				continue;
			if ((by_file ? asprintf(&sub, "%s[%s]", path, key)
			             : asprintf(&sub, "%s%s%s", path, *path ? "." : "", key)) < 0)
				return -ENOMEM;
			if (!o)
				report_key(d, sub, pass ? NULL : e, pass ? e : NULL);
			else if (strcmp(sub, "config_hash") != 0)
				r = compare(d, sub, e, o);
			free(sub);
		}
	}
	return r;
}

static int compare(struct diff *d, const char *path, const cJSON *a, const cJSON *b)
{
	if (cJSON_IsObject(a) && cJSON_IsObject(b))
		return compare_members(d, path, a, b, false);
	if (keyed_by_file(a) && keyed_by_file(b))
		return compare_members(d, path, a, b, true);
	if (!cJSON_Compare(a, b, true))
		report_key(d, path, a, b);
	return 0;
}

static cJSON *load_export(const char *path, const char *text)
{
	const char *end = NULL;
	cJSON *doc = cJSON_ParseWithOpts(text, &end, false);

	/* `hybridsyncd --check` output is an export followed by a "config hash:" line */
	if (!doc || !cJSON_IsObject(doc) ||
	    !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(doc, "hybridsync_config"))) {
		ctl_fail("%s: not a hybridsync config export", path);
		cJSON_Delete(doc);
		return NULL;
	}
	return doc;
}

static int config_diff(struct ctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
	    {"all", no_argument, NULL, 'a'},
	    {0},
	};
	struct diff d = {0};
	const char *name[2];
	char *text[2] = {NULL, NULL};
	cJSON *doc[2] = {NULL, NULL};
	int c, ret = CTL_EXIT_FAILURE, err = 0;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		if (c != 'a')
			return CTL_EXIT_USAGE;
		d.all = true;
	}
	if (optind >= argc || argc - optind > 2)
		return ctl_usage("config diff", "takes one or two export files");
	name[0] = argv[optind];
	text[0] = read_file(name[0], &err);
	if (!text[0])
		return ctl_fail("Failed to read '%s': %s", name[0], strerror(err));
	if (argc - optind == 2) {
		name[1] = argv[optind + 1];
		text[1] = read_file(name[1], &err);
		if (!text[1]) {
			ctl_fail("Failed to read '%s': %s", name[1], strerror(err));
			goto out;
		}
	} else {
		name[1] = ctl->conf_path;
		if (ctl_load_conf(ctl) != CTL_EXIT_OK)
			goto out;
		text[1] = conf_export_json(ctl->conf, false, true);
		if (!text[1]) {
			ctl_fail("Failed to export the configuration: %s", strerror(ENOMEM));
			goto out;
		}
	}
	doc[0] = load_export(name[0], text[0]);
	doc[1] = doc[0] ? load_export(name[1], text[1]) : NULL;
	if (!doc[1])
		goto out;
	printf("--- %s (config hash %s)\n+++ %s (config hash %s)\n", name[0],
	       ctl_jstr(doc[0], "config_hash"), name[1], ctl_jstr(doc[1], "config_hash"));
	if (compare(&d, "", doc[0], doc[1]) < 0) {
		ctl_fail("Failed to compare: %s", strerror(ENOMEM));
		goto out;
	}
	if (d.n_covered + d.n_local == 0)
		printf("same configuration\n");
	else
		printf(
		    "%u key(s) differ in the hash, %u local key(s) differ (staging, paths, ...)\n",
		    d.n_covered, d.n_local);
	ret = ctl_flush();
	if (ret == CTL_EXIT_OK && (d.n_covered || (d.all && d.n_local)))
		ret = CTL_EXIT_FAILURE;
out:
	for (int i = 0; i < 2; i++) {
		cJSON_Delete(doc[i]);
		free(text[i]);
	}
	return ret;
}

/* --- import ------------------------------------------------------------------------------- */

static bool dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool empty = true;

	if (!d)
		return errno == ENOENT;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			empty = false;
	closedir(d);
	return empty;
}

static int write_file(const char *path, const char *content, mode_t mode)
{
	size_t len = strlen(content);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, content, len);
	if (n < 0 || (size_t)n != len || fchmod(fd, mode) < 0 || fsync(fd) < 0) {
		int e = n >= 0 && (size_t)n != len ? EIO : errno;

		close(fd);
		return -e;
	}
	return close(fd) < 0 ? -errno : 0;
}

/* The secret files the new config names: they are not in the export and must be supplied. */
static void print_secrets(const char *conf_text)
{
	static const char *const keys[] = {"bind_password_file", "client_secret_file",
	                                   "certificate_file", "key_file"};
	const char *p = conf_text;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		for (size_t i = 0; i < 4; i++) {
			size_t k = strlen(keys[i]);

			if (len > k && strncmp(p, keys[i], k) == 0 &&
			    (p[k] == ' ' || p[k] == '=')) {
				const char *v = memchr(p, '=', len);

				if (v) {
					v++;
					while (v < p + len && *v == ' ')
						v++;
					printf("     %s: %.*s\n", keys[i],
					       (int)(len - (size_t)(v - p)), v);
				}
			}
		}
		p = nl ? nl + 1 : NULL;
	}
}

static int config_import(int argc, char **argv)
{
	enum { OPT_TO = 0x100, OPT_FORCE };
	static const struct option options[] = {
	    {"to", required_argument, NULL, OPT_TO},
	    {"force", no_argument, NULL, OPT_FORCE},
	    {0},
	};
	struct conf_errors *errors = NULL;
	struct conf_import *imp = NULL;
	const char *dir = NULL;
	char *text = NULL, *conf_path = NULL, *rules_dir = NULL, *p = NULL;
	bool force = false;
	int c, r, err = 0, ret = CTL_EXIT_FAILURE;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		if (c == OPT_TO)
			dir = optarg;
		else if (c == OPT_FORCE)
			force = true;
		else
			return CTL_EXIT_USAGE;
	}
	if (optind + 1 != argc || !dir)
		return ctl_usage("config import", "takes an export FILE and --to DIR");
	if (dir[0] != '/')
		return ctl_usage("config import", "--to takes an absolute directory, not '%s'",
		                 dir);
	if (!force && !dir_is_empty(dir))
		return ctl_fail("%s exists and is not empty (use --force to write into it)", dir);
	text = read_file(argv[optind], &err);
	if (!text)
		return ctl_fail("Failed to read '%s': %s", argv[optind], strerror(err));
	if (asprintf(&conf_path, "%s/hybridsync.conf", dir) < 0 ||
	    asprintf(&rules_dir, "%s/rules.d", dir) < 0) {
		ctl_fail("%s", strerror(ENOMEM));
		goto out;
	}
	r = conf_import_json(text, rules_dir, &imp, &errors);
	if (r < 0) {
		for (size_t i = 0; errors && i < errors->n; i++)
			fprintf(stderr, "%s: %s\n", argv[optind], errors->v[i].text);
		if (!errors)
			ctl_fail("Failed to import '%s': %s", argv[optind], strerror(-r));
		goto out;
	}
	if ((mkdir(dir, 0750) < 0 && errno != EEXIST) ||
	    (imp->n_rules && mkdir(rules_dir, 0750) < 0 && errno != EEXIST)) {
		ctl_fail("Failed to create '%s': %s", dir, strerror(errno));
		goto out;
	}
	r = write_file(conf_path, imp->conf_text, 0640);
	if (r < 0) {
		ctl_fail("Failed to write '%s': %s", conf_path, strerror(-r));
		goto out;
	}
	for (size_t i = 0; i < imp->n_rules; i++) {
		p = (free(p), NULL);
		if (asprintf(&p, "%s/%s", rules_dir, imp->rules[i].name) < 0) {
			ctl_fail("%s", strerror(ENOMEM));
			goto out;
		}
		r = write_file(p, imp->rules[i].content, 0640);
		if (r < 0) {
			ctl_fail("Failed to write '%s': %s", p, strerror(-r));
			goto out;
		}
	}
	printf("wrote %s (staging = yes)", conf_path);
	if (imp->n_rules)
		printf(" and %zu rule file(s) in %s", imp->n_rules, rules_dir);
	printf("\n\nNext steps:\n"
	       "  1. Supply the secrets (not in the export), readable by hybridsyncd only:\n");
	print_secrets(imp->conf_text);
	printf("  2. Review server_name, database and the other local paths in %s.\n"
	       "  3. Check it:   hybridsyncd --check -c %s\n"
	       "     The config hash must equal the exported one.\n"
	       "  4. Start the daemon: it stays in staging mode until you set staging = no.\n",
	       conf_path, conf_path);
	ret = ctl_flush();
out:
	free(p);
	free(text);
	free(conf_path);
	free(rules_dir);
	conf_import_free(imp);
	conf_errors_free(errors);
	return ret;
}

int verb_config(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return ctl_usage("config", "needs a subcommand: export, check, diff or import");
	if (strcmp(argv[1], "export") == 0)
		return config_export(ctl, argc - 1, argv + 1);
	if (strcmp(argv[1], "check") == 0)
		return config_check(ctl, argc - 1, argv + 1);
	if (strcmp(argv[1], "diff") == 0)
		return config_diff(ctl, argc - 1, argv + 1);
	if (strcmp(argv[1], "import") == 0)
		return config_import(argc - 1, argv + 1);
	return ctl_usage("config", "unknown subcommand '%s'", argv[1]);
}
