/* Reports (report.h): the pending exports as JSON, one object per target with its attribute
 * changes (old and new values) and membership changes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hybridsync/report.h"

/* One side of a change: a string (or null) when both sides hold at most one value, else an
 * array, so that a reader sees the same shape on both sides. */
static cJSON *side_json(const struct attr_value *v, size_t n, bool as_array)
{
	cJSON *a, *item;

	if (!as_array)
		return n ? report_value_json(v[0].data, v[0].len) : cJSON_CreateNull();
	a = cJSON_CreateArray();
	for (size_t i = 0; a && i < n; i++) {
		item = report_value_json(v[i].data, v[i].len);
		if (!item || !cJSON_AddItemToArray(a, item))
			return cJSON_Delete(item), cJSON_Delete(a), NULL;
	}
	return a;
}

static int add_attributes(cJSON *o, const struct attr_diff *d)
{
	cJSON *attrs = cJSON_AddObjectToObject(o, "attributes");
	size_t n = d ? attr_diff_count(d) : 0;

	if (!attrs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct attr_change ch;
		cJSON *c, *old, *new;
		bool arr;
		int r = attr_diff_at(d, i, &ch);

		if (r < 0)
			return r;
		arr = ch.n_old > 1 || ch.n_new > 1;
		c = cJSON_AddObjectToObject(attrs, ch.name);
		if (!c)
			return -ENOMEM;
		old = side_json(ch.old_values, ch.n_old, arr);
		if (!old || !cJSON_AddItemToObject(c, "old", old))
			return cJSON_Delete(old), -ENOMEM;
		new = side_json(ch.new_values, ch.n_new, arr);
		if (!new || !cJSON_AddItemToObject(c, "new", new))
			return cJSON_Delete(new), -ENOMEM;
	}
	return 0;
}

static cJSON *str_or_null(const char *s)
{
	return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static bool add_str(cJSON *o, const char *name, const char *value)
{
	cJSON *v = str_or_null(value);

	if (!v || !cJSON_AddItemToObject(o, name, v)) {
		cJSON_Delete(v);
		return false;
	}
	return true;
}

static bool add_int_or_null(cJSON *o, const char *name, int64_t v)
{
	return v > 0 ? cJSON_AddNumberToObject(o, name, (double)v) != NULL
	             : cJSON_AddNullToObject(o, name) != NULL;
}

static int on_member(const struct store_member_change *m, void *userdata)
{
	cJSON *members = userdata, *list, *item;

	list =
	    cJSON_GetObjectItemCaseSensitive(members, m->op == STORE_MEMBER_ADD ? "add" : "remove");
	item = cJSON_CreateObject();
	if (!item || !add_str(item, "anchor", m->member_anchor) ||
	    !add_str(item, "target_id", m->target_id) || !cJSON_AddItemToArray(list, item)) {
		cJSON_Delete(item);
		return -ENOMEM;
	}
	return 0;
}

struct list_ctx {
	struct store *s;
	cJSON *array;
	int64_t connector_id[2];
};

static const char *connector_name(struct list_ctx *l, int64_t id)
{
	return id == l->connector_id[0] ? "ad" : id == l->connector_id[1] ? "graph" : NULL;
}

static int on_export(const struct store_export *e, void *userdata)
{
	struct list_ctx *l = userdata;
	cJSON *o = cJSON_CreateObject(), *members, *err;
	int r = -ENOMEM;

	if (!o || !cJSON_AddItemToArray(l->array, o)) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	if (!cJSON_AddNumberToObject(o, "id", (double)e->id) ||
	    !add_str(o, "connector", connector_name(l, e->connector_id)) ||
	    !cJSON_AddStringToObject(o, "operation", store_export_op_to_string(e->op)) ||
	    !add_str(o, "object_type", e->object_type) || !add_str(o, "anchor", e->anchor) ||
	    !add_str(o, "dn", e->dn) || !add_str(o, "target_id", e->target_id))
		return -ENOMEM;
	r = add_attributes(o, e->changes);
	if (r < 0)
		return r;
	members = cJSON_AddObjectToObject(o, "members");
	if (!members || !cJSON_AddArrayToObject(members, "add") ||
	    !cJSON_AddArrayToObject(members, "remove"))
		return -ENOMEM;
	if (e->n_members) {
		r = store_export_list_members(l->s, e->id, on_member, members);
		if (r < 0)
			return r;
	}
	if (!cJSON_AddStringToObject(o, "state", store_export_state_to_string(e->state)) ||
	    !cJSON_AddNumberToObject(o, "attempts", e->attempts))
		return -ENOMEM;
	if (e->error_code || e->error_message) {
		err = cJSON_AddObjectToObject(o, "error");
		if (!err || !add_str(err, "code", e->error_code) ||
		    !add_str(err, "message", e->error_message) ||
		    !add_str(err, "request_id", e->request_id))
			return -ENOMEM;
	} else if (!cJSON_AddNullToObject(o, "error")) {
		return -ENOMEM;
	}
	if (!add_str(o, "rules", e->rules) || !add_int_or_null(o, "run_id", e->run_id) ||
	    !add_str(o, "cause", e->cause) || !add_int_or_null(o, "created", e->created) ||
	    !add_int_or_null(o, "updated", e->updated))
		return -ENOMEM;
	return 0;
}

int report_pending_exports(struct store *s, const struct report_export_filter *f, cJSON **ret)
{
	struct store_export_filter sf = {
	    .op_mask = f ? f->op_mask : 0,
	    .object_type = f ? f->object_type : NULL,
	    /* what is not done yet: done exports only await an import's confirmation */
	    .state_mask = (1u << STORE_EXPORT_PENDING) | (1u << STORE_EXPORT_IN_FLIGHT) |
	                  (1u << STORE_EXPORT_ERROR),
	};
	struct list_ctx l = {.s = s};
	int r;

	if (!s || !ret)
		return -EINVAL;
	r = store_get_connector(s, "ad", &l.connector_id[0]);
	if (r >= 0)
		r = store_get_connector(s, "graph", &l.connector_id[1]);
	if (r < 0)
		return r;
	l.array = cJSON_CreateArray();
	if (!l.array)
		return -ENOMEM;
	r = store_export_list(s, &sf, on_export, &l);
	if (r < 0) {
		cJSON_Delete(l.array);
		return r;
	}
	*ret = l.array;
	return 0;
}
