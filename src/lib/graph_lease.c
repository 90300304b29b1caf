/* The lease of the active server in the tenant: a security group with the fixed mailNickname
 * "hybridsync-lease" whose description carries {"holder","config_hash","renewed"} as JSON
 * (see graph.h). The Graph import leaves it out of the connector space. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_internal.h"

static int lease_find(struct graph *g, struct gop *op)
{
	char path[256];
	int r;

	snprintf(path, sizeof(path),
	         "/groups?$filter=mailNickname%%20eq%%20%%27" GRAPH_LEASE_NICK
	         "%%27&$select=id,description");
	r = gop_set(op, "GET", path, NULL);
	if (r >= 0)
		r = graph_run(g, op, 1, false);
	if (r < 0)
		return r;
	if (op->status != 200) {
		graph_fail(g, graph_transient(op->status) ? "stopped-server-down" : "stopped-error",
		           "reading the lease failed: HTTP %ld %s", op->status, op->message);
		return -EIO;
	}
	/* An answer that is not a list concludes nothing: taking it for "no lease" would create
	 * a second lease object. */
	if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(op->json, "value"))) {
		graph_fail(g, "stopped-error",
		           "reading the lease failed: the answer is not a list");
		return -EBADMSG;
	}
	return 0;
}

static void parse_lease(const cJSON *obj, struct graph_lease *l)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(obj, "description");
	cJSON *j = cJSON_IsString(d) ? cJSON_Parse(d->valuestring) : NULL;
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "holder");
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "config_hash");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "renewed");

	memset(l, 0, sizeof(*l));
	if (cJSON_IsString(id))
		snprintf(l->object_id, sizeof(l->object_id), "%s", id->valuestring);
	if (cJSON_IsString(h))
		snprintf(l->holder, sizeof(l->holder), "%s", h->valuestring);
	if (cJSON_IsString(c))
		snprintf(l->config_hash, sizeof(l->config_hash), "%s", c->valuestring);
	if (cJSON_IsNumber(t))
		l->renewed = (int64_t)t->valuedouble;
	cJSON_Delete(j);
}

int graph_lease_read(struct graph *g, struct graph_lease *ret)
{
	struct gop op = {0};
	const cJSON *first;
	int r;

	if (!g || !ret)
		return -EINVAL;
	r = lease_find(g, &op);
	if (r < 0)
		goto out;
	first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(op.json, "value"), 0);
	if (!first) {
		r = 0;
		goto out;
	}
	parse_lease(first, ret);
	r = 1;
out:
	gop_clear(&op);
	return r;
}

int graph_lease_write(struct graph *g, const char *holder, const char *config_hash, int64_t now)
{
	struct gop find = {0}, op = {0};
	cJSON *body = NULL, *data = NULL;
	const cJSON *first;
	char *desc = NULL, path[256];
	int r;

	if (!g || !holder || !config_hash)
		return -EINVAL;
	if (g->staging)
		return -EPERM;
	r = lease_find(g, &find);
	if (r < 0)
		goto out;
	data = cJSON_CreateObject();
	if (!data || !cJSON_AddStringToObject(data, "holder", holder) ||
	    !cJSON_AddStringToObject(data, "config_hash", config_hash) ||
	    !cJSON_AddNumberToObject(data, "renewed", (double)now) ||
	    !(desc = cJSON_PrintUnformatted(data)) || !(body = cJSON_CreateObject()) ||
	    !cJSON_AddStringToObject(body, "description", desc)) {
		r = -ENOMEM;
		goto out;
	}
	first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(find.json, "value"), 0);
	if (first) {
		struct graph_lease l;
		char *id;
		parse_lease(first, &l);
		id = http_escape(l.object_id);
		if (!id) {
			r = -ENOMEM;
			goto out;
		}
		snprintf(path, sizeof(path), "/groups/%s", id);
		free(id);
		r = gop_set(&op, "PATCH", path, body);
	} else {
		if (!cJSON_AddStringToObject(body, "displayName", "hybridsync lease") ||
		    !cJSON_AddStringToObject(body, "mailNickname", GRAPH_LEASE_NICK) ||
		    !cJSON_AddFalseToObject(body, "mailEnabled") ||
		    !cJSON_AddTrueToObject(body, "securityEnabled")) {
			r = -ENOMEM;
			goto out;
		}
		r = gop_set(&op, "POST", "/groups", body);
	}
	body = NULL;
	if (r >= 0)
		r = graph_run(g, &op, 1, false);
	if (r < 0)
		goto out;
	if (op.status != 204 && op.status != 200 && op.status != 201) {
		graph_fail(g, graph_transient(op.status) ? "stopped-server-down" : "stopped-error",
		           "writing the lease failed: HTTP %ld %s", op.status, op.message);
		r = -EIO;
		goto out;
	}
	r = 0;
out:
	gop_clear(&find);
	gop_clear(&op);
	cJSON_Delete(body);
	cJSON_Delete(data);
	if (desc)
		cJSON_free(desc);
	return r;
}
