/* sync_preview: one object through the rules without writing anything: its CS objects, MV
 * object, the rules in scope with what each contributed, and the pending export. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync_internal.h"

void sync_preview_rule(struct sync_ctx *x, const struct sync_rule *r, const char *cs_connector,
                       const struct attr_set *values, const char *error);
void sync_preview_export(struct sync_ctx *x, const struct store_export_spec *spec, bool remove);

static cJSON *value_json(const char *name, const struct attr_value *v)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = v->data;
	bool text = !rule_attr_is_binary(name);

	for (size_t i = 0; text && i < v->len; i++)
		if (p[i] == 0 || (p[i] < 0x20 && p[i] != '\t' && p[i] != '\n' && p[i] != '\r'))
			text = false;
	if (text)
		return cJSON_CreateString(v->data);
	size_t n = v->len, cap = 4 * ((n + 2) / 3) + 8, j = 0;
	char *buf = malloc(cap);
	if (!buf)
		return NULL;
	memcpy(buf, "b64:", 4);
	j = 4;
	for (size_t i = 0; i < n; i += 3) {
		unsigned w = (unsigned)p[i] << 16;
		if (i + 1 < n)
			w |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			w |= p[i + 2];
		buf[j++] = b64[(w >> 18) & 63];
		buf[j++] = b64[(w >> 12) & 63];
		buf[j++] = i + 1 < n ? b64[(w >> 6) & 63] : '=';
		buf[j++] = i + 2 < n ? b64[w & 63] : '=';
	}
	buf[j] = 0;
	cJSON *s = cJSON_CreateString(buf);
	free(buf);
	return s;
}

static cJSON *attrs_json(const struct attr_set *a)
{
	cJSON *o = cJSON_CreateObject();
	size_t n = a ? attr_set_count(a) : 0;

	for (size_t i = 0; o && i < n; i++) {
		const char *name;
		const struct attr_value *v;
		size_t nv;
		if (attr_set_at(a, i, &name, &v, &nv) < 0)
			continue;
		if (strncmp(name, SYNC_HIDDEN_PREFIX, strlen(SYNC_HIDDEN_PREFIX)) == 0)
			continue; /* engine bookkeeping */
		if (nv == 1) {
			cJSON_AddItemToObject(o, name, value_json(name, &v[0]));
		} else {
			cJSON *arr = cJSON_AddArrayToObject(o, name);
			for (size_t k = 0; arr && k < nv; k++)
				cJSON_AddItemToArray(arr, value_json(name, &v[k]));
		}
	}
	return o;
}

char *rules_attr_set_to_json_text(const struct attr_set *a)
{
	cJSON *o = attrs_json(a);
	char *t = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	return t;
}

void sync_preview_rule(struct sync_ctx *x, const struct sync_rule *r, const char *cs_connector,
                       const struct attr_set *values, const char *error)
{
	cJSON *arr = x->pv_rules, *o;

	if (!arr)
		return;
	o = cJSON_CreateObject();
	if (!o)
		return;
	cJSON_AddStringToObject(o, "name", r->name);
	cJSON_AddStringToObject(o, "direction",
	                        r->direction == RULE_INBOUND ? "inbound" : "outbound");
	cJSON_AddStringToObject(o, "connector", cs_connector ? cs_connector : r->connector);
	cJSON_AddNumberToObject(o, "precedence", r->precedence);
	cJSON_AddStringToObject(o, "linkType", rule_link_to_string(r->link));
	cJSON_AddStringToObject(o, "source", r->file ? r->file : "built-in");
	cJSON_AddItemToObject(o, "contributed", attrs_json(values));
	if (error)
		cJSON_AddStringToObject(o, "error", error);
	cJSON_AddItemToArray(arr, o);
}

static cJSON *diff_json(const struct attr_diff *d)
{
	cJSON *o = cJSON_CreateObject();
	for (size_t i = 0; o && d && i < attr_diff_count(d); i++) {
		struct attr_change c;
		if (attr_diff_at(d, i, &c) < 0)
			continue;
		cJSON *ch = cJSON_CreateObject();
		cJSON *ov = cJSON_AddArrayToObject(ch, "old");
		cJSON *nv = cJSON_AddArrayToObject(ch, "new");
		for (size_t k = 0; k < c.n_old; k++)
			cJSON_AddItemToArray(ov, value_json(c.name, &c.old_values[k]));
		for (size_t k = 0; k < c.n_new; k++)
			cJSON_AddItemToArray(nv, value_json(c.name, &c.new_values[k]));
		cJSON_AddItemToObject(o, c.name, ch);
	}
	return o;
}

void sync_preview_export(struct sync_ctx *x, const struct store_export_spec *spec, bool remove)
{
	cJSON *o;

	if (x->pv_export)
		cJSON_Delete(x->pv_export);
	x->pv_export = NULL;
	if (remove || !spec) {
		x->pv_export = cJSON_CreateNull();
		return;
	}
	o = cJSON_CreateObject();
	if (!o)
		return;
	cJSON_AddStringToObject(o, "operation", store_export_op_to_string(spec->op));
	cJSON_AddStringToObject(o, "objectType", spec->object_type);
	cJSON_AddStringToObject(o, "anchor", spec->anchor);
	if (spec->target_id)
		cJSON_AddStringToObject(o, "targetId", spec->target_id);
	if (spec->dn)
		cJSON_AddStringToObject(o, "dn", spec->dn);
	cJSON_AddStringToObject(o, "rules", spec->rules ? spec->rules : "");
	cJSON_AddItemToObject(o, "changes", diff_json(spec->changes));
	cJSON *m = cJSON_AddArrayToObject(o, "members");
	for (size_t i = 0; m && i < spec->n_members; i++) {
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "op", store_member_op_to_string(spec->members[i].op));
		cJSON_AddStringToObject(e, "anchor", spec->members[i].member_anchor);
		if (spec->members[i].target_id)
			cJSON_AddStringToObject(e, "targetId", spec->members[i].target_id);
		cJSON_AddItemToArray(m, e);
	}
	x->pv_export = o;
}

static cJSON *cs_json(const struct store_cs_object *o, const char *connector)
{
	cJSON *j = cJSON_CreateObject();
	if (!j)
		return NULL;
	cJSON_AddStringToObject(j, "connector", connector);
	cJSON_AddNumberToObject(j, "id", (double)o->id);
	cJSON_AddStringToObject(j, "dn", o->dn ? o->dn : "");
	cJSON_AddStringToObject(j, "objectClass", o->object_class);
	cJSON_AddStringToObject(j, "pendingImport",
	                        store_pending_import_to_string(o->pending_import));
	cJSON_AddItemToObject(j, "attributes", attrs_json(o->attrs));
	return j;
}

static int hex_or_b64_anchor(const char *key, unsigned char *out, size_t *len)
{
	/* a GUID in text form: its 16 bytes in objectGUID order */
	unsigned v[16];
	if (strlen(key) == 36 &&
	    sscanf(key, "%2x%2x%2x%2x-%2x%2x-%2x%2x-%2x%2x-%2x%2x%2x%2x%2x%2x", &v[3], &v[2], &v[1],
	           &v[0], &v[5], &v[4], &v[7], &v[6], &v[8], &v[9], &v[10], &v[11], &v[12], &v[13],
	           &v[14], &v[15]) == 16) {
		for (int i = 0; i < 16; i++)
			out[i] = (unsigned char)v[i];
		*len = 16;
		return 0;
	}
	/* base64 */
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(key), j = 0;
	unsigned acc = 0;
	int bits = 0;
	if (n == 0 || n % 4)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (key[i] == '=')
			break;
		const char *p = strchr(b64, key[i]);
		if (!p || !key[i])
			return -EINVAL;
		acc = (acc << 6) | (unsigned)(p - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (j >= 64)
				return -EINVAL;
			out[j++] = (unsigned char)(acc >> bits);
		}
	}
	*len = j;
	return 0;
}

struct upn_find {
	const char *upn;
	int64_t id;
};

static int upn_cb(const struct store_cs_object *o, void *userdata)
{
	struct upn_find *f = userdata;
	const char *u = attr_set_get_string(o->attrs, "userPrincipalName");
	if (u && strcasecmp(u, f->upn) == 0) {
		f->id = o->id;
		return 1;
	}
	return 0;
}

/* Finds the AD (or Graph) CS object of `key`. */
static int find_cs(struct sync_ctx *x, const char *key, struct store_cs_object **ret,
                   const char **ret_conn)
{
	struct store_mv_object *mv = NULL;
	unsigned char bin[64];
	size_t len;
	int r;

	*ret_conn = "ad";
	if (store_cs_get_by_dn(x->s, x->ad_id, key, ret) == 0)
		return 0;
	if (store_mv_get_by_source_anchor(x->s, key, &mv) == 0) {
		r = store_cs_get_by_mv(x->s, x->ad_id, mv->id, ret);
		if (r == -ENOENT) {
			*ret_conn = "graph";
			r = store_cs_get_by_mv(x->s, x->graph_id, mv->id, ret);
		}
		store_mv_object_free(mv);
		if (r != -ENOENT)
			return r;
	}
	if (hex_or_b64_anchor(key, bin, &len) == 0 &&
	    store_cs_get_by_anchor(x->s, x->ad_id, bin, len, ret) == 0)
		return 0;
	if (store_cs_get_by_anchor(x->s, x->ad_id, key, strlen(key), ret) == 0)
		return 0;
	*ret_conn = "graph";
	if (store_cs_get_by_anchor(x->s, x->graph_id, key, strlen(key), ret) == 0)
		return 0;
	if (strchr(key, '@')) {
		struct upn_find f = {key, 0};
		*ret_conn = "ad";
		r = store_cs_iterate(x->s, x->ad_id, upn_cb, &f);
		if (r < 0)
			return r;
		if (f.id)
			return store_cs_get(x->s, f.id, ret);
	}
	return -ENOENT;
}

int sync_preview(struct store *s, const struct sync_rules *rules, const char *key, char **ret_json)
{
	struct sync_ctx x;
	struct sync_result res = {0};
	struct sync_opts o = {0};
	struct store_cs_object *cs = NULL, *other = NULL;
	struct store_mv_object *mv = NULL;
	const char *conn;
	cJSON *root = NULL;
	int r;

	if (!s || !rules || !key || !ret_json)
		return -EINVAL;
	if ((r = sync_ctx_init(&x, s, rules, &o, &res)) < 0)
		return r;
	x.preview = true;
	if ((r = find_cs(&x, key, &cs, &conn)) < 0)
		goto out;
	root = cJSON_CreateObject();
	x.pv_rules = cJSON_CreateArray();
	if (!root || !x.pv_rules) {
		r = -ENOMEM;
		goto out;
	}
	cJSON_AddStringToObject(root, "key", key);
	cJSON *css = cJSON_AddArrayToObject(root, "connectorSpace");
	cJSON_AddItemToArray(css, cs_json(cs, conn));
	if (cs->mv_id) {
		const char *oc = strcmp(conn, "ad") == 0 ? "graph" : "ad";
		if (store_cs_get_by_mv(s, strcmp(oc, "ad") == 0 ? x.ad_id : x.graph_id, cs->mv_id,
		                       &other) == 0)
			cJSON_AddItemToArray(css, cs_json(other, oc));
	}
	/* the object synced as now, without writing: inbound (join, projection, precedence),
	 * then outbound on the MV object as it would be */
	if ((r = sync_cs_object(&x, cs, conn)) < 0)
		goto out;
	if (store_mv_get(s, x.pv_mv, &mv) < 0)
		mv = NULL;
	if (x.pv_attrs && (mv || x.pv_type)) {
		struct store_mv_object tmp = {
		    .id = mv ? mv->id : 0,
		    .object_type = mv ? mv->object_type : (char *)x.pv_type,
		    .attrs = x.pv_attrs,
		};
		tmp.source_anchor = (char *)attr_set_get_string(x.pv_attrs, "sourceAnchor");
		if (!tmp.source_anchor && mv)
			tmp.source_anchor = mv->source_anchor;
		cJSON *m = cJSON_AddObjectToObject(root, "metaverse");
		if (tmp.id)
			cJSON_AddNumberToObject(m, "id", (double)tmp.id);
		else
			cJSON_AddBoolToObject(m, "projected", true);
		cJSON_AddStringToObject(m, "objectType", tmp.object_type);
		if (tmp.source_anchor)
			cJSON_AddStringToObject(m, "sourceAnchor", tmp.source_anchor);
		cJSON_AddItemToObject(m, "attributes", attrs_json(x.pv_attrs));
		if ((r = sync_outbound_obj(&x, &tmp)) < 0)
			goto out;
	} else {
		cJSON_AddNullToObject(root, "metaverse");
	}
	cJSON_AddItemToObject(root, "rules", x.pv_rules);
	x.pv_rules = NULL;
	/* the pending export as computed now, and as stored */
	if (x.pv_export) {
		cJSON_AddItemToObject(root, "pendingExport", x.pv_export);
		x.pv_export = NULL;
	} else
		cJSON_AddNullToObject(root, "pendingExport");
	char *t = cJSON_PrintUnformatted(root);
	if (!t) {
		r = -ENOMEM;
		goto out;
	}
	*ret_json = t;
	r = 0;
out:
	cJSON_Delete(root);
	cJSON_Delete(x.pv_rules);
	cJSON_Delete(x.pv_export);
	store_cs_object_free(cs);
	store_cs_object_free(other);
	store_mv_object_free(mv);
	sync_ctx_done(&x);
	return r;
}
