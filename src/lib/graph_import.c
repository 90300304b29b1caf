/* Graph import: users and groups (and group members) into the 'graph' connector space, full
 * (paged lists, obsoletion only after a complete and successful pass) or delta (/delta with the
 * deltaLink kept as a cursor; an expired link falls back to a full import). Confirms export
 * memory when Graph shows what was sent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "graph_internal.h"
#include "hybridsync/log.h"

static const char *const default_user_props[] = {
    "id",
    "displayName",
    "userPrincipalName",
    "onPremisesImmutableId",
    "accountEnabled",
    "mailNickname",
    "givenName",
    "surname",
    "mail",
    "jobTitle",
    "department",
    "companyName",
    "employeeId",
    "mobilePhone",
    "businessPhones",
    "officeLocation",
    "streetAddress",
    "city",
    "state",
    "country",
    "postalCode",
    "usageLocation",
    "proxyAddresses",
    "otherMails",
};
static const char *const default_group_props[] = {
    "id",          "displayName", "mailNickname", "mailEnabled",    "securityEnabled",
    "description", "groupTypes",  "mail",         "proxyAddresses",
};

struct imp {
	struct graph *g;
	struct store *s;
	const struct graph_import_opts *o;
	struct graph_step_result *ret;
	int64_t conn;
	int64_t gen; /* full import generation, 0 in delta */
	uint64_t seen;
	char *select_users, *select_groups; /* percent-encoded $select lists */
};

/* The $select list: the defaults or the caller's, always with id (and the anchor extension
 * and, for delta, members on groups). */
static char *make_select(const struct imp *im, bool groups, bool with_members)
{
	const char *const *p;
	size_t n, len = 0;
	char *buf, *out;
	const char *ext = groups ? im->g->anchor_extension : NULL;

	if (groups) {
		p = im->o->group_properties ? im->o->group_properties : default_group_props;
		n = im->o->group_properties ? im->o->n_group_properties
		                            : sizeof(default_group_props) / sizeof(*p);
	} else {
		p = im->o->user_properties ? im->o->user_properties : default_user_props;
		n = im->o->user_properties ? im->o->n_user_properties
		                           : sizeof(default_user_props) / sizeof(*p);
	}
	for (size_t i = 0; i < n; i++)
		len += strlen(p[i]) + 1;
	len += 64 + (ext ? strlen(ext) : 0);
	buf = malloc(len);
	if (!buf)
		return NULL;
	size_t k = (size_t)snprintf(buf, len, "id");
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(p[i], "id") == 0 || (ext && strcasecmp(p[i], ext) == 0) ||
		    strcasecmp(p[i], "members") == 0)
			continue;
		k += (size_t)snprintf(buf + k, len - k, ",%s", p[i]);
	}
	if (ext)
		k += (size_t)snprintf(buf + k, len - k, ",%s", ext);
	if (with_members)
		snprintf(buf + k, len - k, ",members");
	out = http_escape(buf);
	free(buf);
	return out;
}

static void fail_op(struct imp *im, const struct gop *op, const char *what)
{
	const char *status = graph_transient(op->status) ? "stopped-server-down" : "stopped-error";

	graph_fail(im->g, status, "%s failed: HTTP %ld %s%s%s", what, op->status, op->code,
	           op->code[0] ? ": " : "", op->message);
	store_run_add_error(im->s, im->o->run_id, im->o->step_id, NULL, NULL,
	                    op->code[0] ? op->code
	                                : (op->status ? "httpError" : "connectionFailed"),
	                    im->g->error, op->request_id[0] ? op->request_id : NULL);
}

/* --- export memory confirmation ------------------------------------------------------------ */

static bool values_equal(const struct attr_set *attrs, const char *name,
                         const struct attr_value *want, size_t n_want)
{
	struct attr_set *a = attr_set_new();
	bool eq;

	if (!a)
		return false;
	if (n_want)
		attr_set_replace(a, name, want, n_want);
	const struct attr_value *have = NULL;
	size_t n_have = 0;
	struct attr_set *b = attr_set_new();
	if (b && attr_set_get(attrs, name, &have, &n_have) == 0)
		attr_set_replace(b, name, have, n_have);
	eq = b && attr_set_equal(a, b);
	attr_set_free(a);
	attr_set_free(b);
	return eq;
}

static int confirm_attrs(struct imp *im, int64_t cs_id, const struct attr_set *attrs)
{
	struct attr_diff *mem = NULL, *left = NULL;
	int r;

	r = store_cs_get_export_memory(im->s, cs_id, &mem, NULL);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (!mem || attr_diff_count(mem) == 0)
		goto out;
	left = attr_diff_new();
	if (!left) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < attr_diff_count(mem); i++) {
		struct attr_change c;
		if (attr_diff_at(mem, i, &c) < 0)
			continue;
		if (!values_equal(attrs, c.name, c.new_values, c.n_new))
			attr_diff_put(left, c.name, c.old_values, c.n_old, c.new_values, c.n_new);
	}
	if (attr_diff_count(left) != attr_diff_count(mem))
		r = store_cs_set_export_memory(im->s, cs_id, left, im->o->run_id);
out:
	attr_diff_free(mem);
	attr_diff_free(left);
	return r < 0 ? r : 0;
}

struct member_view {
	struct imp *im;
	char **present; /* sorted */
	size_t n_present;
	char **removed; /* delta: removed ids, sorted */
	size_t n_removed;
	bool complete; /* full list: absent means removed */
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool in_list(char **v, size_t n, const char *s)
{
	return n && bsearch(&s, v, n, sizeof(*v), cmp_str);
}

static int confirm_member_cb(const struct store_export_member *m, void *userdata)
{
	struct member_view *mv = userdata;
	bool present = in_list(mv->present, mv->n_present, m->member);
	bool removed = mv->complete ? !present : in_list(mv->removed, mv->n_removed, m->member);

	if ((m->op == STORE_MEMBER_ADD && present) || (m->op == STORE_MEMBER_REMOVE && removed))
		store_cs_confirm_export_member(mv->im->s, m->cs_id, m->member);
	return 0;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* --- one object ------------------------------------------------------------------------------ */

static int ids_of(const cJSON *arr, bool want_removed, char ***ret, size_t *ret_n)
{
	const cJSON *it;
	size_t n = 0, cap = (size_t)cJSON_GetArraySize(arr);
	char **v = calloc(cap ? cap : 1, sizeof(char *));

	if (!v)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr)
	{
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
		bool removed = cJSON_GetObjectItemCaseSensitive(it, "@removed") != NULL;
		if (!cJSON_IsString(id) || removed != want_removed)
			continue;
		if (!(v[n] = strdup(id->valuestring))) {
			free_strv(v, n);
			return -ENOMEM;
		}
		n++;
	}
	qsort(v, n, sizeof(*v), cmp_str);
	*ret = v;
	*ret_n = n;
	return 0;
}

static int import_one(struct imp *im, const char *type, const cJSON *obj, int64_t *ret_cs_id)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id"), *it;
	const cJSON *nick = cJSON_GetObjectItemCaseSensitive(obj, "mailNickname");
	bool delta = im->gen == 0, groups = strcmp(type, "group") == 0;
	struct store_cs_object *old = NULL;
	struct attr_set *attrs = NULL;
	enum store_upsert_result res = STORE_UNCHANGED;
	int64_t cs_id = 0;
	int r;

	*ret_cs_id = 0;
	if (!cJSON_IsString(id) || !id->valuestring[0] || strlen(id->valuestring) > 128)
		return -EBADMSG;
	if (cJSON_GetObjectItemCaseSensitive(obj, "@removed")) {
		if (!delta)
			return 0;
		r = store_cs_mark_deleted(im->s, im->conn, id->valuestring,
		                          strlen(id->valuestring));
		if (r == 0)
			im->ret->counters.deletes++;
		return r == -ENOENT ? 0 : r;
	}
	/* the lease object is the daemon's, not the directory's */
	if (groups && cJSON_IsString(nick) && strcasecmp(nick->valuestring, GRAPH_LEASE_NICK) == 0)
		return 0;
	r = store_cs_get_by_anchor(im->s, im->conn, id->valuestring, strlen(id->valuestring), &old);
	if (r < 0 && r != -ENOENT)
		return r;
	/* a change to an object never imported (the lease): a partial record, nothing to add */
	if (delta && !old && groups && !cJSON_GetObjectItemCaseSensitive(obj, "displayName") &&
	    !cJSON_GetObjectItemCaseSensitive(obj, "members@delta"))
		return 0;
	if (delta && old && old->attrs)
		r = attr_set_copy(old->attrs, &attrs);
	else
		r = (attrs = attr_set_new()) ? 0 : -ENOMEM;
	if (r < 0)
		goto out;
	cJSON_ArrayForEach(it, obj)
	{
		if (!it->string || strcmp(it->string, "id") == 0 || strchr(it->string, '@'))
			continue;
		r = graph_json_to_attr(attrs, it->string, it);
		if (r < 0)
			goto out;
	}
	struct store_cs_import in = {
	    .anchor = id->valuestring,
	    .anchor_len = strlen(id->valuestring),
	    .dn = id->valuestring,
	    .object_class = type,
	    .attrs = attrs,
	    .run_id = im->o->run_id,
	    .seen_gen = im->gen,
	};
	r = store_cs_upsert(im->s, im->conn, &in, &res, &cs_id);
	if (r < 0)
		goto out;
	im->seen++;
	im->ret->counters.objects++;
	if (res == STORE_ADDED)
		im->ret->counters.adds++;
	else if (res == STORE_CHANGED)
		im->ret->counters.updates++;
	r = confirm_attrs(im, cs_id, attrs);
	if (r < 0)
		goto out;
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "members@delta");
	if (groups && delta && cJSON_IsArray(md)) {
		struct member_view mv = {.im = im};
		size_t changes = 0;
		r = ids_of(md, false, &mv.present, &mv.n_present);
		if (r >= 0)
			r = ids_of(md, true, &mv.removed, &mv.n_removed);
		for (size_t i = 0; r >= 0 && i < mv.n_present; i++) {
			r = store_cs_add_ref(im->s, cs_id, "member", mv.present[i]);
			changes += r > 0;
		}
		for (size_t i = 0; r >= 0 && i < mv.n_removed; i++) {
			r = store_cs_remove_ref(im->s, cs_id, "member", mv.removed[i]);
			changes += r > 0;
		}
		if (r >= 0)
			r = store_cs_list_export_members(im->s, cs_id, confirm_member_cb, &mv);
		if (changes && res == STORE_UNCHANGED)
			im->ret->counters.updates++;
		free_strv(mv.present, mv.n_present);
		free_strv(mv.removed, mv.n_removed);
		if (r < 0)
			goto out;
	}
	*ret_cs_id = cs_id;
	r = res == STORE_UNCHANGED ? 0 : 1;
out:
	store_cs_object_free(old);
	attr_set_free(attrs);
	return r;
}

/* --- paging ---------------------------------------------------------------------------------- */

struct page_group {
	char *id;
	int64_t cs_id;
	bool unchanged;
};

/* Full import: the members of the groups of one page, then their refs. */
static int import_members(struct imp *im, struct page_group *pg, size_t n)
{
	struct gop *ops;
	int r = 0;

	if (n == 0)
		return 0;
	ops = calloc(n, sizeof(*ops));
	if (!ops)
		return -ENOMEM;
	for (size_t i = 0; i < n && r >= 0; i++) {
		char path[256];
		snprintf(path, sizeof(path), "/groups/%s/members?$select=id&$top=999", pg[i].id);
		r = gop_set(&ops[i], "GET", path, NULL);
	}
	if (r >= 0)
		r = graph_run(im->g, ops, n, true);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		char **ids = NULL;
		size_t n_ids = 0, cap = 0, changes = 0;
		struct gop *op = &ops[i];

		for (;;) {
			const cJSON *val, *next, *it;
			if (op->status != 200) {
				fail_op(im, op, "reading group members");
				r = -EIO;
				break;
			}
			val = cJSON_GetObjectItemCaseSensitive(op->json, "value");
			if (!cJSON_IsArray(val)) {
				graph_fail(im->g, "stopped-error", "a member page is not a list");
				r = -EBADMSG;
				break;
			}
			cJSON_ArrayForEach(it, val)
			{
				const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
				if (!cJSON_IsString(id))
					continue;
				if (n_ids == cap) {
					size_t c = cap ? 2 * cap : 64;
					char **v = realloc(ids, c * sizeof(*v));
					if (!v) {
						r = -ENOMEM;
						break;
					}
					ids = v;
					cap = c;
				}
				if (!(ids[n_ids] = strdup(id->valuestring))) {
					r = -ENOMEM;
					break;
				}
				n_ids++;
			}
			next = cJSON_GetObjectItemCaseSensitive(op->json, "@odata.nextLink");
			if (r < 0 || !cJSON_IsString(next))
				break;
			struct gop more = {0};
			r = gop_set(&more, "GET", next->valuestring, NULL);
			if (r >= 0)
				r = graph_run(im->g, &more, 1, false);
			gop_clear(op);
			*op = more;
			if (r < 0)
				break;
		}
		if (r >= 0) {
			if (n_ids)
				qsort(ids, n_ids, sizeof(*ids), cmp_str);
			r = store_cs_set_refs(im->s, pg[i].cs_id, "member",
			                      (const char *const *)ids, n_ids, &changes);
		}
		if (r >= 0) {
			struct member_view mv = {
			    .im = im, .present = ids, .n_present = n_ids, .complete = true};
			r = store_cs_list_export_members(im->s, pg[i].cs_id, confirm_member_cb,
			                                 &mv);
		}
		if (r >= 0 && changes && pg[i].unchanged)
			im->ret->counters.updates++;
		free_strv(ids, n_ids);
	}
	for (size_t i = 0; i < n; i++)
		gop_clear(&ops[i]);
	free(ops);
	return r;
}

static bool expired_delta(const struct gop *op)
{
	return op->status == 410 ||
	       (op->status == 400 && (strcmp(op->code, "syncStateNotFound") == 0 ||
	                              strcmp(op->code, "resyncRequired") == 0));
}

/* Follows a list or delta query to its end, importing each page in one transaction.
 * ret_delta_link gets the final deltaLink when there is one. -ESTALE: an expired delta token. */
static int run_pages(struct imp *im, const char *type, const char *first, char **ret_delta_link)
{
	char *path = strdup(first);
	bool groups = strcmp(type, "group") == 0;
	int r = 0;

	if (!path)
		return -ENOMEM;
	while (path) {
		struct gop op = {0};
		const cJSON *val, *it, *next, *dl;
		struct page_group *pg = NULL;
		size_t n_pg = 0;

		if (im->o->cancelled && im->o->cancelled(im->o->userdata)) {
			graph_fail(im->g, "stopped-cancelled", "import cancelled");
			r = -ECANCELED;
			break;
		}
		r = gop_set(&op, "GET", path, NULL);
		if (r >= 0)
			r = graph_run(im->g, &op, 1, false);
		free(path);
		path = NULL;
		if (r < 0) {
			gop_clear(&op);
			break;
		}
		if (im->gen == 0 && expired_delta(&op)) {
			log_debug("Graph delta link for %ss expired (HTTP %ld %s)", type, op.status,
			          op.code);
			gop_clear(&op);
			r = -ESTALE;
			break;
		}
		if (op.status != 200) {
			fail_op(im, &op, groups ? "reading groups" : "reading users");
			gop_clear(&op);
			r = -EIO;
			break;
		}
		val = cJSON_GetObjectItemCaseSensitive(op.json, "value");
		if (!cJSON_IsArray(val)) {
			graph_fail(im->g, "stopped-error", "a %s page from Graph is not a list",
			           type);
			store_run_add_error(im->s, im->o->run_id, im->o->step_id, NULL, NULL,
			                    "badResponse", im->g->error, op.request_id);
			gop_clear(&op);
			r = -EBADMSG;
			break;
		}
		pg = calloc((size_t)cJSON_GetArraySize(val) + 1, sizeof(*pg));
		r = pg ? store_begin(im->s) : -ENOMEM;
		if (r < 0) {
			free(pg);
			gop_clear(&op);
			break;
		}
		cJSON_ArrayForEach(it, val)
		{
			int64_t cs_id = 0;
			r = import_one(im, type, it, &cs_id);
			if (r == -EBADMSG) {
				graph_fail(im->g, "stopped-error", "a %s in a Graph page has no id",
				           type);
				break;
			}
			if (r < 0)
				break;
			if (groups && im->gen && cs_id) {
				pg[n_pg].id =
				    cJSON_GetObjectItemCaseSensitive(it, "id")->valuestring;
				pg[n_pg].cs_id = cs_id;
				pg[n_pg].unchanged = r == 0;
				n_pg++;
			}
			r = 0;
		}
		if (r >= 0 && n_pg)
			r = import_members(im, pg, n_pg);
		free(pg);
		if (r < 0) {
			store_rollback(im->s);
			gop_clear(&op);
			break;
		}
		r = store_commit(im->s);
		if (r < 0) {
			gop_clear(&op);
			break;
		}
		if (im->o->progress)
			im->o->progress(im->ret->counters.objects, 0, im->o->userdata);
		next = cJSON_GetObjectItemCaseSensitive(op.json, "@odata.nextLink");
		dl = cJSON_GetObjectItemCaseSensitive(op.json, "@odata.deltaLink");
		if (cJSON_IsString(next)) {
			path = strdup(next->valuestring);
			r = path ? 0 : -ENOMEM;
		} else if (cJSON_IsString(dl) && ret_delta_link) {
			*ret_delta_link = strdup(dl->valuestring);
			r = *ret_delta_link ? 0 : -ENOMEM;
		}
		gop_clear(&op);
		if (r < 0)
			break;
	}
	free(path);
	if (r < 0 && !im->g->stop_status)
		graph_fail(im->g, "stopped-error", "Graph import failed: %s", strerror(-r));
	return r;
}

/* "latest" delta links, taken before a full import so the changes made during it come back
 * in the next delta import. */
static int latest_link(struct imp *im, const char *coll, const char *select, char **ret)
{
	struct gop op = {0};
	char path[4096];
	const cJSON *dl;
	int r;

	snprintf(path, sizeof(path), "/%s/delta?$select=%s&$deltatoken=latest", coll, select);
	r = gop_set(&op, "GET", path, NULL);
	if (r >= 0)
		r = graph_run(im->g, &op, 1, false);
	if (r < 0)
		goto out;
	dl = cJSON_GetObjectItemCaseSensitive(op.json, "@odata.deltaLink");
	if (op.status != 200 || !cJSON_IsString(dl)) {
		fail_op(im, &op, "starting delta tracking");
		r = -EIO;
		goto out;
	}
	*ret = strdup(dl->valuestring);
	r = *ret ? 0 : -ENOMEM;
out:
	gop_clear(&op);
	return r;
}

static int full_import(struct imp *im)
{
	char *link_users = NULL, *link_groups = NULL, *sel_gd = NULL, path[4096];
	uint64_t n = 0;
	int r;

	im->ret->full = true;
	r = store_next_generation(im->s, &im->gen);
	if (r < 0)
		return r;
	sel_gd = make_select(im, true, true);
	if (!sel_gd)
		return -ENOMEM;
	r = latest_link(im, "users", im->select_users, &link_users);
	if (r >= 0)
		r = latest_link(im, "groups", sel_gd, &link_groups);
	if (r >= 0) {
		snprintf(path, sizeof(path), "/users?$select=%s&$top=999", im->select_users);
		r = run_pages(im, "user", path, NULL);
	}
	if (r >= 0) {
		snprintf(path, sizeof(path), "/groups?$select=%s&$top=999", im->select_groups);
		r = run_pages(im, "group", path, NULL);
	}
	/* Only a complete, successful pass that saw something may conclude deletions. */
	if (r >= 0 && im->seen > 0) {
		r = store_begin(im->s);
		if (r >= 0)
			r = store_cs_mark_unseen_as_deleted(im->s, im->conn, im->gen, &n);
		if (r >= 0)
			r = store_set_cursor(im->s, im->conn, "users", STORE_CURSOR_DELTALINK,
			                     link_users, strlen(link_users));
		if (r >= 0)
			r = store_set_cursor(im->s, im->conn, "groups", STORE_CURSOR_DELTALINK,
			                     link_groups, strlen(link_groups));
		if (r >= 0)
			r = store_cs_resolve_refs(im->s, im->conn, NULL);
		if (r >= 0)
			r = store_commit(im->s);
		else
			store_rollback(im->s);
		im->ret->counters.deletes += n;
	} else if (r >= 0) {
		log_debug("Graph full import saw no object: nothing obsoleted, no cursor kept");
	}
	free(link_users);
	free(link_groups);
	free(sel_gd);
	return r;
}

static int delta_import(struct imp *im)
{
	static const char *const parts[] = {"users", "groups"};
	static const char *const types[] = {"user", "group"};
	char *links[2] = {NULL, NULL}, *next[2] = {NULL, NULL};
	int r = 0;

	for (int i = 0; i < 2; i++) {
		size_t len;
		r = store_get_cursor(im->s, im->conn, parts[i], STORE_CURSOR_DELTALINK,
		                     (void **)&links[i], &len, NULL);
		if (r == -ENOENT) {
			r = -ESTALE;
			goto out;
		}
		if (r < 0)
			goto out;
	}
	for (int i = 0; i < 2; i++) {
		r = run_pages(im, types[i], links[i], &next[i]);
		if (r < 0)
			goto out;
		if (next[i]) {
			r = store_set_cursor(im->s, im->conn, parts[i], STORE_CURSOR_DELTALINK,
			                     next[i], strlen(next[i]));
			if (r < 0)
				goto out;
		}
	}
	r = store_cs_resolve_refs(im->s, im->conn, NULL);
out:
	for (int i = 0; i < 2; i++) {
		free(links[i]);
		free(next[i]);
	}
	return r;
}

int graph_import(struct graph *g, struct store *s, const struct graph_import_opts *o,
                 struct graph_step_result *ret)
{
	struct imp im = {.g = g, .s = s, .o = o, .ret = ret};
	int r;

	if (!g || !s || !o || !ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	g->error[0] = '\0';
	g->stop_status = NULL;
	uint64_t throttled0 = g->throttled_total;
	r = store_get_connector(s, GRAPH_CONNECTOR, &im.conn);
	if (r < 0)
		return r;
	im.select_users = make_select(&im, false, false);
	im.select_groups = make_select(&im, true, false);
	if (!im.select_users || !im.select_groups) {
		r = -ENOMEM;
		goto out;
	}
	if (o->full) {
		r = full_import(&im);
	} else {
		r = delta_import(&im);
		if (r == -ESTALE) {
			log_debug("Graph delta cursor missing or expired: running a full import");
			r = store_delete_cursors(s, im.conn);
			if (r >= 0) {
				g->error[0] = '\0';
				g->stop_status = NULL;
				r = full_import(&im);
			}
		}
	}
out:
	ret->throttled = g->throttled_total - throttled0;
	if (r >= 0) {
		snprintf(ret->status, sizeof(ret->status), "success");
	} else {
		snprintf(ret->status, sizeof(ret->status), "%s",
		         g->stop_status ? g->stop_status : "stopped-error");
		snprintf(ret->error, sizeof(ret->error), "%s",
		         g->error[0] ? g->error : strerror(-r));
		ret->counters.errors++;
	}
	free(im.select_users);
	free(im.select_groups);
	return r < 0 && r != -ENOMEM ? 0 : r;
}
