/* Reports (report.h): the run history as JSON, newest first, with each run's steps, counters
 * and per-object errors. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hybridsync/report.h"

static bool add_str(cJSON *o, const char *name, const char *value)
{
	cJSON *v = value ? cJSON_CreateString(value) : cJSON_CreateNull();

	if (!v || !cJSON_AddItemToObject(o, name, v)) {
		cJSON_Delete(v);
		return false;
	}
	return true;
}

static bool add_time(cJSON *o, const char *name, int64_t t)
{
	return t > 0 ? cJSON_AddNumberToObject(o, name, (double)t) != NULL
	             : cJSON_AddNullToObject(o, name) != NULL;
}

struct runs_ctx {
	struct store *s;
	cJSON *array;
	unsigned errors_limit;
};

static int on_step(const struct store_step *st, void *userdata)
{
	cJSON *steps = userdata, *o = cJSON_CreateObject();

	if (!o || !cJSON_AddItemToArray(steps, o)) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	if (!cJSON_AddNumberToObject(o, "id", (double)st->id) ||
	    !add_str(o, "connector", st->connector) ||
	    !cJSON_AddStringToObject(o, "step", store_step_type_to_string(st->step)) ||
	    !add_str(o, "status", st->status ? st->status : "running") ||
	    !add_time(o, "started", st->started) || !add_time(o, "finished", st->finished) ||
	    !cJSON_AddNumberToObject(o, "adds", (double)st->counters.adds) ||
	    !cJSON_AddNumberToObject(o, "updates", (double)st->counters.updates) ||
	    !cJSON_AddNumberToObject(o, "deletes", (double)st->counters.deletes) ||
	    !cJSON_AddNumberToObject(o, "errors", (double)st->counters.errors) ||
	    !cJSON_AddNumberToObject(o, "objects", (double)st->counters.objects))
		return -ENOMEM;
	return 0;
}

static int on_error(const struct store_run_error *e, void *userdata)
{
	cJSON *errors = userdata, *o = cJSON_CreateObject();

	if (!o || !cJSON_AddItemToArray(errors, o)) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	if (!add_str(o, "step", e->step_id ? store_step_type_to_string(e->step) : NULL) ||
	    !add_str(o, "connector", e->connector) || !add_str(o, "anchor", e->anchor) ||
	    !add_str(o, "dn", e->dn) || !add_str(o, "code", e->code) ||
	    !add_str(o, "message", e->message) || !add_str(o, "request_id", e->request_id) ||
	    !add_time(o, "time", e->time))
		return -ENOMEM;
	return 0;
}

static int on_run(const struct store_run *run, void *userdata)
{
	struct runs_ctx *c = userdata;
	cJSON *o = cJSON_CreateObject(), *steps, *errors;
	int r;

	if (!o || !cJSON_AddItemToArray(c->array, o)) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	if (!cJSON_AddNumberToObject(o, "id", (double)run->id) ||
	    !cJSON_AddStringToObject(o, "type", store_run_type_to_string(run->type)) ||
	    !add_str(o, "status", run->status ? run->status : "running") ||
	    !add_time(o, "started", run->started) || !add_time(o, "finished", run->finished) ||
	    !add_str(o, "config_hash", run->config_hash))
		return -ENOMEM;
	steps = cJSON_AddArrayToObject(o, "steps");
	if (!steps)
		return -ENOMEM;
	r = store_run_list_steps(c->s, run->id, on_step, steps);
	if (r < 0)
		return r;
	if (!cJSON_AddNumberToObject(o, "error_count", (double)run->error_count))
		return -ENOMEM;
	errors = cJSON_AddArrayToObject(o, "errors");
	if (!errors)
		return -ENOMEM;
	r = store_run_list_errors(c->s, run->id, c->errors_limit, on_error, errors);
	return r < 0 ? r : 0;
}

int report_runs(struct store *s, unsigned last_n, unsigned errors_limit, cJSON **ret)
{
	struct runs_ctx c = {.s = s, .errors_limit = errors_limit};
	int r;

	if (!s || !ret)
		return -EINVAL;
	c.array = cJSON_CreateArray();
	if (!c.array)
		return -ENOMEM;
	r = store_run_list(s, last_n, on_run, &c);
	if (r < 0) {
		cJSON_Delete(c.array);
		return r;
	}
	*ret = c.array;
	return 0;
}
