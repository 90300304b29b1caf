/* The Graph request engine: $batch packing, concurrency, Retry-After, back-off with jitter,
 * token renewal on 401, write budget pacing, and the staging guard on every write. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "graph_internal.h"
#include "hybridsync/log.h"

static double jitter(void)
{
	unsigned short r = 0;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = 32768;
	return 0.5 + (double)r / 131070.0; /* 0.5 .. 1.0 */
}

static double backoff(unsigned attempt)
{
	double d = 0.25;

	for (unsigned i = 1; i < attempt && d < GRAPH_BACKOFF_MAX_S; i++)
		d *= 2;
	if (d > GRAPH_BACKOFF_MAX_S)
		d = GRAPH_BACKOFF_MAX_S;
	return d * jitter();
}

/* The lowest write path: nothing is written to Graph while staging, whatever called it. */
static void staging_guard(const struct graph *g, const char *method, const char *path)
{
	if (g->staging && strcmp(method, "GET") != 0) {
		log_error("BUG: Graph write %s %s attempted while staging; aborting", method, path);
		abort();
	}
}

/* The write budget: a ring of the send times of the writes in the current window. Graph
 * stamps a write when it arrives, a little after it was sent: the window is kept a little
 * longer here (5 %, from 0.2 s to 1 s) so a write never leaves it early. */
static double budget_margin(const struct graph *g)
{
	double m = 0.05 * g->budget.seconds;

	return m < 0.2 ? 0.2 : m > 1.0 ? 1.0 : m;
}

static void budget_expire(struct graph *g, double now)
{
	while (g->wcount > 0) {
		size_t tail = (g->whead + g->wcap - g->wcount) % g->wcap;
		if (g->wtimes[tail] > now - g->budget.seconds - budget_margin(g))
			break;
		g->wcount--;
	}
}

/* Seconds until `k` more writes fit in the window (0: now). */
static double budget_wait(struct graph *g, size_t k, double now)
{
	size_t over, tail;

	budget_expire(g, now);
	if (k > g->wcap)
		k = g->wcap;
	if (g->wcount + k <= g->wcap)
		return 0;
	over = g->wcount + k - g->wcap; /* this many of the oldest must leave first */
	tail = (g->whead + g->wcap - g->wcount + over - 1) % g->wcap;
	return g->wtimes[tail] + g->budget.seconds + budget_margin(g) - now;
}

static void budget_record(struct graph *g, size_t k, double now)
{
	budget_expire(g, now);
	for (size_t i = 0; i < k; i++) {
		if (g->wcount == g->wcap)
			g->wcount--; /* cannot happen after budget_wait; keeps the ring sane */
		g->wtimes[g->whead] = now;
		g->whead = (g->whead + 1) % g->wcap;
		g->wcount++;
		g->writes_total++;
	}
}

static void op_error_from_json(struct gop *op)
{
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(op->json, "error");
	const cJSON *c, *m, *inner, *rid;

	if (!cJSON_IsObject(err))
		return;
	c = cJSON_GetObjectItemCaseSensitive(err, "code");
	m = cJSON_GetObjectItemCaseSensitive(err, "message");
	if (cJSON_IsString(c))
		snprintf(op->code, sizeof(op->code), "%s", c->valuestring);
	if (cJSON_IsString(m))
		snprintf(op->message, sizeof(op->message), "%s", m->valuestring);
	inner = cJSON_GetObjectItemCaseSensitive(err, "innerError");
	rid = cJSON_GetObjectItemCaseSensitive(inner, "request-id");
	if (!op->request_id[0] && cJSON_IsString(rid))
		snprintf(op->request_id, sizeof(op->request_id), "%s", rid->valuestring);
}

/* The outcome of one attempt: settle the op or leave it for another round. */
static void op_outcome(struct graph *g, struct gop *op, long status, cJSON *json,
                       const char *request_id, long retry_after, const char *transport_msg,
                       int transport_error)
{
	cJSON_Delete(op->json);
	op->json = json;
	op->status = status;
	op->code[0] = op->message[0] = '\0';
	snprintf(op->request_id, sizeof(op->request_id), "%s", request_id ? request_id : "");
	if (status == 0)
		snprintf(op->message, sizeof(op->message), "%s",
		         transport_msg ? transport_msg : "no answer");
	else if (status >= 400)
		op_error_from_json(op);
	op->retry_after = -1;
	if (status == 429 || status == 503) {
		g->throttled_total++;
		op->retry_after = retry_after >= 0 ? retry_after : -1;
	}
	/* a certificate that does not verify will not verify on the next attempt either */
	if (op->attempts >= GRAPH_ATTEMPTS_MAX || transport_error == -EPROTO ||
	    transport_error == -EPROTONOSUPPORT) {
		op->settled = true;
		return;
	}
	if (status == 429 || status == 503) {
		double wait =
		    op->retry_after >= 0 ? (double)op->retry_after : backoff(op->attempts);
		op->not_before = graph_now() + wait;
		return;
	}
	if ((status == 0 || status >= 500) && op->idempotent) {
		op->not_before = graph_now() + backoff(op->attempts);
		return;
	}
	op->settled = true;
}

static char *url_of(const struct graph *g, const char *path)
{
	size_t n;
	char *u;

	if (strncasecmp(path, "https://", 8) == 0 || strncasecmp(path, "http://", 7) == 0)
		return strdup(path);
	n = strlen(g->endpoint) + strlen(path) + 8;
	u = malloc(n);
	if (u)
		snprintf(u, n, "%s/v1.0%s", g->endpoint, path);
	return u;
}

static bool is_absolute(const char *path)
{
	return strncasecmp(path, "http", 4) == 0;
}

struct unit {
	struct http_request req;
	struct gop **ops; /* the ops it carries */
	size_t n_ops;
	bool batch;
	char *url, *body;
	char *auth;
};

/* Request bodies may carry a new user's password: wiped before the memory is released. */
static void wipe_passwords(cJSON *j)
{
	for (cJSON *it = j ? j->child : NULL; it; it = it->next) {
		if (cJSON_IsString(it) && it->string && strcmp(it->string, "password") == 0)
			explicit_bzero(it->valuestring, strlen(it->valuestring));
		else
			wipe_passwords(it);
	}
}

static void unit_free(struct unit *u)
{
	http_request_clear(&u->req);
	free(u->ops);
	free(u->url);
	if (u->body) {
		explicit_bzero(u->body, strlen(u->body));
		cJSON_free(u->body);
	}
	if (u->auth) {
		explicit_bzero(u->auth, strlen(u->auth));
		free(u->auth);
	}
	memset(u, 0, sizeof(*u));
}

static int unit_build(struct graph *g, struct unit *u)
{
	if (u->batch) {
		cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "requests");
		if (!root || !arr) {
			cJSON_Delete(root);
			return -ENOMEM;
		}
		for (size_t i = 0; i < u->n_ops; i++) {
			struct gop *op = u->ops[i];
			cJSON *it = cJSON_CreateObject();
			char id[24];
			snprintf(id, sizeof(id), "%zu", i);
			if (!it || !cJSON_AddItemToArray(arr, it) ||
			    !cJSON_AddStringToObject(it, "id", id) ||
			    !cJSON_AddStringToObject(it, "method", op->method) ||
			    !cJSON_AddStringToObject(it, "url", op->path)) {
				cJSON_Delete(root);
				return -ENOMEM;
			}
			if (op->body) {
				cJSON *h = cJSON_AddObjectToObject(it, "headers");
				cJSON *b = cJSON_Duplicate(op->body, true);
				if (!h ||
				    !cJSON_AddStringToObject(h, "Content-Type",
				                             "application/json") ||
				    !b || !cJSON_AddItemToObject(it, "body", b)) {
					cJSON_Delete(b);
					cJSON_Delete(root);
					return -ENOMEM;
				}
			} else if (op->eventual) {
				cJSON *h = cJSON_AddObjectToObject(it, "headers");
				if (!h ||
				    !cJSON_AddStringToObject(h, "ConsistencyLevel", "eventual")) {
					cJSON_Delete(root);
					return -ENOMEM;
				}
			}
			staging_guard(g, op->method, op->path);
			u->req.once = u->req.once || !op->idempotent;
		}
		u->body = cJSON_PrintUnformatted(root);
		wipe_passwords(root);
		cJSON_Delete(root);
		u->url = url_of(g, "/$batch");
		u->req.method = "POST";
	} else {
		struct gop *op = u->ops[0];
		staging_guard(g, op->method, op->path);
		if (op->body)
			u->body = cJSON_PrintUnformatted(op->body);
		u->url = url_of(g, op->path);
		u->req.method = op->method;
		u->req.extra_header = op->eventual ? "ConsistencyLevel: eventual" : NULL;
		u->req.once = !op->idempotent;
	}
	if ((u->req.method[0] != 'G' && u->ops[0]->body && !u->body) || !u->url)
		return -ENOMEM;
	size_t an = g->token_len + 8;
	u->auth = malloc(an);
	if (!u->auth)
		return -ENOMEM;
	snprintf(u->auth, an, "Bearer %s", g->token);
	u->req.url = u->url;
	u->req.body = u->body;
	u->req.body_len = u->body ? strlen(u->body) : 0;
	u->req.authorization = u->auth;
	return 0;
}

static void unit_result(struct graph *g, struct unit *u, bool *ret_unauthorized)
{
	struct http_request *r = &u->req;
	cJSON *json = r->resp ? cJSON_ParseWithLength(r->resp, r->resp_len) : NULL;

	if (r->status == 401) {
		/* not an attempt: the token is renewed and the ops sent again */
		*ret_unauthorized = true;
		cJSON_Delete(json);
		for (size_t i = 0; i < u->n_ops; i++)
			u->ops[i]->attempts--;
		return;
	}
	if (!u->batch) {
		op_outcome(g, u->ops[0], r->status, json, r->request_id, r->retry_after, r->errmsg,
		           r->error);
		return;
	}
	if (r->status != 200) {
		/* the whole $batch failed: every op had that answer */
		for (size_t i = 0; i < u->n_ops; i++)
			op_outcome(g, u->ops[i], r->status,
			           json && i + 1 == u->n_ops
			               ? json
			               : (json ? cJSON_Duplicate(json, true) : NULL),
			           r->request_id, r->retry_after, r->errmsg, r->error);
		return;
	}
	cJSON *resps = cJSON_GetObjectItemCaseSensitive(json, "responses"), *it;
	bool *seen = calloc(u->n_ops, sizeof(bool));
	cJSON_ArrayForEach(it, resps)
	{
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(it, "status");
		const cJSON *hd = cJSON_GetObjectItemCaseSensitive(it, "headers");
		cJSON *body = cJSON_DetachItemFromObjectCaseSensitive(it, "body");
		const cJSON *h;
		char *end;
		unsigned long k;
		long ra = -1;
		const char *rid = NULL;

		if (!cJSON_IsString(id) || !cJSON_IsNumber(st)) {
			cJSON_Delete(body);
			continue;
		}
		errno = 0;
		k = strtoul(id->valuestring, &end, 10);
		if (errno || *end || k >= u->n_ops || (seen && seen[k])) {
			cJSON_Delete(body);
			continue;
		}
		if (seen)
			seen[k] = true;
		cJSON_ArrayForEach(h, hd)
		{
			if (!h->string)
				continue;
			if (strcasecmp(h->string, "Retry-After") == 0) {
				if (cJSON_IsNumber(h))
					ra = (long)h->valuedouble;
				else if (cJSON_IsString(h))
					ra = strtol(h->valuestring, NULL, 10);
			} else if (strcasecmp(h->string, "request-id") == 0 && cJSON_IsString(h)) {
				rid = h->valuestring;
			}
		}
		if (ra > 3600)
			ra = 3600;
		op_outcome(g, u->ops[k], (long)st->valuedouble, body, rid, ra, NULL, 0);
	}
	for (size_t i = 0; i < u->n_ops; i++)
		if (!seen || !seen[i]) /* an answer missing from the batch: as if no answer */
			op_outcome(g, u->ops[i], 0, NULL, r->request_id, -1,
			           "no answer for this request in the $batch response", 0);
	free(seen);
	cJSON_Delete(json);
}

int graph_run(struct graph *g, struct gop *ops, size_t n, bool batch)
{
	struct unit *units = NULL;
	struct gop **ready = NULL;
	bool renewed = false;
	int r = 0;

	if (n == 0)
		return 0;
	units = calloc(g->parallel, sizeof(*units));
	ready = calloc(n, sizeof(*ready));
	if (!units || !ready) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		staging_guard(g, ops[i].method, ops[i].path);
		ops[i].settled = false;
		ops[i].attempts = 0;
		ops[i].not_before = 0;
	}
	for (;;) {
		size_t n_ready = 0, n_units = 0, left = 0, pos = 0;
		double now = graph_now(), soonest = 0;
		bool unauthorized = false;

		for (size_t i = 0; i < n; i++) {
			if (ops[i].settled)
				continue;
			left++;
			if (ops[i].not_before <= now)
				ready[n_ready++] = &ops[i];
			else if (soonest == 0 || ops[i].not_before < soonest)
				soonest = ops[i].not_before;
		}
		if (left == 0)
			break;
		if (n_ready == 0) {
			graph_sleep(soonest - now);
			continue;
		}
		r = graph_token(g, false);
		if (r < 0)
			goto out;
		/* pack: absolute URLs alone; the rest in $batch of up to 20 (and never more writes
		 * than the budget allows at once) when allowed; as many as the budget has room for
		 */
		size_t batch_max =
		    GRAPH_BATCH_MAX < g->budget.writes ? GRAPH_BATCH_MAX : g->budget.writes;
		size_t round_writes = 0;
		while (pos < n_ready && n_units < g->parallel) {
			struct unit *u = &units[n_units];
			size_t take = 1, writes = 0;
			/* A $batch is a POST, even of GETs: a staging server sends none. */
			if (batch && !g->staging && !is_absolute(ready[pos]->path)) {
				while (pos + take < n_ready && take < batch_max &&
				       !is_absolute(ready[pos + take]->path))
					take++;
			}
			for (size_t k = 0; k < take; k++)
				writes += ready[pos + k]->write;
			if (n_units > 0 && round_writes + writes > g->wcap)
				break;
			double wait = budget_wait(g, round_writes + writes, graph_now());
			if (wait > 0) {
				if (n_units > 0)
					break;
				log_debug("Graph write budget used up (%u/%us): pausing %.1fs",
				          g->budget.writes, g->budget.seconds, wait);
				graph_sleep(wait);
			}
			round_writes += writes;
			u->ops = calloc(take, sizeof(*u->ops));
			if (!u->ops) {
				r = -ENOMEM;
				goto out;
			}
			for (size_t k = 0; k < take; k++) {
				u->ops[k] = ready[pos + k];
				u->ops[k]->attempts++;
			}
			u->n_ops = take;
			u->batch = take > 1;
			pos += take;
			n_units++;
			r = unit_build(g, u);
			if (r < 0)
				goto out;
		}
		budget_record(g, round_writes, graph_now());
		struct http_request **reqs = calloc(n_units, sizeof(*reqs));
		if (!reqs) {
			r = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n_units; i++)
			reqs[i] = &units[i].req;
		r = http_perform(g->http, reqs, n_units);
		free(reqs);
		if (r < 0)
			goto out;
		for (size_t i = 0; i < n_units; i++) {
			unit_result(g, &units[i], &unauthorized);
			unit_free(&units[i]);
		}
		if (unauthorized) {
			if (renewed) {
				graph_fail(
				    g, "stopped-connectivity",
				    "Graph refused a freshly renewed access token (HTTP 401)");
				r = -EACCES;
				goto out;
			}
			renewed = true;
			r = graph_token(g, true);
			if (r < 0)
				goto out;
		}
	}
	r = 0;
out:
	if (units)
		for (size_t i = 0; i < g->parallel; i++)
			unit_free(&units[i]);
	free(units);
	free(ready);
	return r;
}
