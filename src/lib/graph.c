/* The Graph connector: the client object, its configuration, the write budget and the value
 * conversions shared by import and export (see graph.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "graph_internal.h"
#include "hybridsync/attr.h"

static void secret_ref_free(struct conf_secret_ref *r)
{
	free(r->value);
	free(r->path);
	memset(r, 0, sizeof(*r));
}

static int secret_ref_copy(struct conf_secret_ref *dst, const struct conf_secret_ref *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->credential = src->credential;
	dst->check_mode = src->check_mode;
	if ((src->value && !(dst->value = strdup(src->value))) ||
	    (src->path && !(dst->path = strdup(src->path)))) {
		secret_ref_free(dst);
		return -ENOMEM;
	}
	return 0;
}

static int dup_opt(char **dst, const char *src)
{
	free(*dst);
	*dst = NULL;
	if (src && !(*dst = strdup(src)))
		return -ENOMEM;
	return 0;
}

static void forget_token(struct graph *g)
{
	if (g->token) {
		explicit_bzero(g->token, g->token_len);
		free(g->token);
	}
	g->token = NULL;
	g->token_len = 0;
	g->token_renew = 0;
}

static void conf_part_free(struct graph *g)
{
	free(g->tenant);
	free(g->client_id);
	free(g->authority);
	free(g->endpoint);
	free(g->ca_file);
	free(g->anchor_extension);
	g->tenant = g->client_id = g->authority = g->endpoint = g->ca_file = NULL;
	g->anchor_extension = NULL;
	secret_ref_free(&g->client_secret);
	secret_ref_free(&g->certificate);
	secret_ref_free(&g->key);
}

static bool is_http_url(const char *u)
{
	return u && strncasecmp(u, "http://", 7) == 0;
}

static int apply_conf(struct graph *g, const struct conf *c, char *err, size_t err_len)
{
	const struct conf_graph *cg = &c->graph;
	struct http_opts ho = {0};
	struct http *h = NULL;
	unsigned cap;
	double *w;
	int r;

	if (!cg->tenant || !cg->client_id || !cg->authority || !cg->endpoint) {
		snprintf(err, err_len,
		         "[graph]: tenant, client_id, authority and endpoint are needed");
		return -EINVAL;
	}
	if (!cg->allow_insecure && (is_http_url(cg->authority) || is_http_url(cg->endpoint))) {
		snprintf(err, err_len, "[graph]: an http:// URL needs allow_insecure = yes");
		return -EINVAL;
	}
	ho.ca_file = cg->ca_file;
	ho.allow_insecure = cg->allow_insecure;
	ho.timeout_s = 120;
	ho.connect_timeout_s = 15;
	ho.max_connections = GRAPH_PARALLEL;
	r = http_new(&ho, &h);
	if (r < 0) {
		snprintf(err, err_len, "cannot set up HTTP: %s", strerror(-r));
		return r;
	}
	conf_part_free(g);
	if (dup_opt(&g->tenant, cg->tenant) < 0 || dup_opt(&g->client_id, cg->client_id) < 0 ||
	    dup_opt(&g->authority, cg->authority) < 0 || dup_opt(&g->endpoint, cg->endpoint) < 0 ||
	    dup_opt(&g->ca_file, cg->ca_file) < 0 ||
	    dup_opt(&g->anchor_extension, cg->anchor_extension) < 0 ||
	    secret_ref_copy(&g->client_secret, &cg->client_secret) < 0 ||
	    secret_ref_copy(&g->certificate, &cg->certificate) < 0 ||
	    secret_ref_copy(&g->key, &cg->key) < 0) {
		http_free(h);
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	http_free(g->http);
	g->http = h;
	forget_token(g);
	g->allow_insecure = cg->allow_insecure;
	g->soft_match = cg->soft_match;
	g->staging = c->sync.staging;
	g->budget = cg->write_budget;
	if (g->budget.writes == 0 || g->budget.seconds == 0) {
		g->budget.writes = 3000;
		g->budget.seconds = 150;
	}
	cap = g->budget.writes;
	if (cap != g->wcap) {
		w = calloc(cap, sizeof(*w));
		if (!w)
			return -ENOMEM;
		free(g->wtimes);
		g->wtimes = w;
		g->wcap = cap;
		g->whead = g->wcount = 0;
	}
	g->parallel = GRAPH_PARALLEL;
	return 0;
}

int graph_new(const struct conf *c, struct graph **ret, char *err, size_t err_len)
{
	char dummy[8];
	struct graph *g;
	int r;

	if (!err || !err_len) {
		err = dummy;
		err_len = sizeof(dummy);
	}
	err[0] = '\0';
	if (!c || !ret)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	r = apply_conf(g, c, err, err_len);
	if (r < 0) {
		graph_free(g);
		return r;
	}
	*ret = g;
	return 0;
}

struct graph *graph_free(struct graph *g)
{
	if (!g)
		return NULL;
	forget_token(g);
	conf_part_free(g);
	http_free(g->http);
	free(g->wtimes);
	free(g);
	return NULL;
}

int graph_set_conf(struct graph *g, const struct conf *c)
{
	char err[GRAPH_ERROR_MAX];

	if (!g || !c)
		return -EINVAL;
	return apply_conf(g, c, err, sizeof(err));
}

void graph_get_budget(const struct graph *g, struct graph_budget *ret)
{
	double now = graph_now();
	uint64_t used = 0;

	memset(ret, 0, sizeof(*ret));
	if (!g)
		return;
	ret->budget = g->budget.writes;
	ret->window = g->budget.seconds;
	for (size_t i = 0; i < g->wcount; i++) {
		double t = g->wtimes[(g->whead + g->wcap - g->wcount + i) % g->wcap];
		if (t > now - g->budget.seconds)
			used++;
	}
	ret->used_window = used;
	ret->writes_total = g->writes_total;
	ret->throttled_total = g->throttled_total;
}

/* --- helpers ------------------------------------------------------------------------------ */

double graph_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void graph_sleep(double seconds)
{
	struct timespec ts;

	if (seconds <= 0)
		return;
	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void graph_fail(struct graph *g, const char *status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(g->error, sizeof(g->error), fmt, ap);
	va_end(ap);
	g->stop_status = status;
}

bool graph_transient(long status)
{
	return status == 0 || status == 429 || status >= 500;
}

bool graph_prop_is_bool(const char *name)
{
	static const char *const b[] = {"accountEnabled",     "mailEnabled",
	                                "securityEnabled",    "showInAddressList",
	                                "isAssignableToRole", "onPremisesSyncEnabled"};
	for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++)
		if (strcasecmp(name, b[i]) == 0)
			return true;
	return false;
}

bool graph_prop_is_collection(const char *name)
{
	static const char *const c[] = {
	    "businessPhones", "otherMails",      "proxyAddresses", "imAddresses",
	    "groupTypes",     "creationOptions", "faxNumbers",     "resourceBehaviorOptions"};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if (strcasecmp(name, c[i]) == 0)
			return true;
	return false;
}

static int add_scalar(struct attr_set *set, const char *name, const cJSON *v)
{
	char num[64];

	if (cJSON_IsString(v))
		return attr_set_add_string(set, name, v->valuestring);
	if (cJSON_IsBool(v))
		return attr_set_add_string(set, name, cJSON_IsTrue(v) ? "true" : "false");
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (d >= -9e15 && d <= 9e15 && d == (double)(int64_t)d)
			snprintf(num, sizeof(num), "%" PRId64, (int64_t)d);
		else
			snprintf(num, sizeof(num), "%.17g", d);
		return attr_set_add_string(set, name, num);
	}
	if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
		char *s = cJSON_PrintUnformatted(v);
		int r;
		if (!s)
			return -ENOMEM;
		r = attr_set_add_string(set, name, s);
		cJSON_free(s);
		return r;
	}
	return 0; /* null */
}

int graph_json_to_attr(struct attr_set *set, const char *name, const cJSON *v)
{
	const cJSON *it;
	int r;

	attr_set_remove(set, name);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (cJSON_IsArray(v)) {
		cJSON_ArrayForEach(it, v)
		{
			r = add_scalar(set, name, it);
			if (r < 0)
				return r;
		}
		return 0;
	}
	r = add_scalar(set, name, v);
	return r < 0 ? r : 0;
}

cJSON *graph_attr_to_json(const char *name, const struct attr_value *values, size_t n)
{
	if (graph_prop_is_collection(name)) {
		cJSON *a = cJSON_CreateArray();
		for (size_t i = 0; a && i < n; i++) {
			cJSON *s = cJSON_CreateString(values[i].data);
			if (!s || !cJSON_AddItemToArray(a, s)) {
				cJSON_Delete(s);
				cJSON_Delete(a);
				return NULL;
			}
		}
		return a;
	}
	if (n == 0)
		return cJSON_CreateNull();
	if (graph_prop_is_bool(name))
		return cJSON_CreateBool(strcasecmp(values[0].data, "true") == 0);
	return cJSON_CreateString(values[0].data);
}

int graph_random_password(char *buf, size_t len)
{
	static const char *const classes[] = {
	    "ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz", "23456789", "!#%*+-.:=?@_~"};
	const size_t n = 16;
	unsigned char rnd[32];

	if (len < n + 1)
		return -EINVAL;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	for (size_t i = 0; i < n; i++) {
		const char *cls = classes[i < 4 ? i : rnd[i + 16] % 4];
		buf[i] = cls[rnd[i] % strlen(cls)];
	}
	/* shuffle so the first four are not always the same classes */
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = rnd[16 + i] % (i + 1);
		char t = buf[i];
		buf[i] = buf[j];
		buf[j] = t;
	}
	buf[n] = '\0';
	explicit_bzero(rnd, sizeof(rnd));
	return 0;
}

char *graph_filter_eq(const char *prop, const char *value)
{
	size_t n = strlen(prop) + 2 * strlen(value) + 16, k = 0;
	char *expr = malloc(n), *out;

	if (!expr)
		return NULL;
	k += (size_t)snprintf(expr, n, "%s eq '", prop);
	for (const char *s = value; *s; s++) {
		if (*s == '\'')
			expr[k++] = '\'';
		expr[k++] = *s;
	}
	expr[k++] = '\'';
	expr[k] = '\0';
	out = http_escape(expr);
	free(expr);
	return out;
}

char *graph_filter_in(const char *prop, const char *const *values, size_t n)
{
	size_t len = strlen(prop) + 16, k = 0;
	char *expr, *out;

	for (size_t i = 0; i < n; i++)
		len += 2 * strlen(values[i]) + 4;
	expr = malloc(len);
	if (!expr)
		return NULL;
	k += (size_t)snprintf(expr, len, "%s in (", prop);
	for (size_t i = 0; i < n; i++) {
		if (i)
			expr[k++] = ',';
		expr[k++] = '\'';
		for (const char *s = values[i]; *s; s++) {
			if (*s == '\'')
				expr[k++] = '\'';
			expr[k++] = *s;
		}
		expr[k++] = '\'';
	}
	expr[k++] = ')';
	expr[k] = '\0';
	out = http_escape(expr);
	free(expr);
	return out;
}

void gop_clear(struct gop *op)
{
	free(op->path);
	cJSON_Delete(op->body);
	cJSON_Delete(op->json);
	memset(op, 0, sizeof(*op));
}

int gop_set(struct gop *op, const char *method, const char *path, cJSON *body)
{
	gop_clear(op);
	op->method = method;
	op->body = body;
	op->path = strdup(path);
	if (!op->path)
		return -ENOMEM;
	op->write = strcmp(method, "GET") != 0;
	op->idempotent = strcmp(method, "POST") != 0;
	return 0;
}
