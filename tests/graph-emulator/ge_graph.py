# Microsoft Graph v1.0 resources over the emulated directory: users, groups, members, owners,
# contacts, directoryObjects, deleted items, applications/extensionProperties, delta queries.
# Handlers return (status, payload, headers); errors are raised as GraphError.

import base64
import bisect
import hashlib
import hmac
import json
import re
import time
import urllib.parse

from ge_odata import (GraphError, bad_request, not_found, compile_filter, parse_select,
                      parse_top)

JSON_CT = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
NOT_ALLOWED = GraphError(405, "Request_BadRequest",
                         "Specified HTTP method is not allowed for the request target.")
DEFAULT_PAGE = 100
SCAN_BUDGET = 50000          # log entries a delta page may walk before answering


def method_not_allowed():
    return GraphError(405, NOT_ALLOWED.code, NOT_ALLOWED.message)


def segment_error(seg):
    return GraphError(400, "BadRequest", "Resource not found for the segment '%s'." % seg)


def parse_query(query):
    """OData system query options are case-insensitive; keep the raw pairs for nextLinks."""
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True) if query else []
    opts = {}
    for k, v in pairs:
        kl = k.lower()
        if kl in opts:
            raise bad_request("Query option '%s' was specified more than once, but it must be "
                              "specified at most once." % k, "BadRequest")
        opts[kl] = v
    return opts, pairs


def encode_query(pairs):
    return "&".join("%s=%s" % (k, urllib.parse.quote(v, safe="$,()':@/=*")) for k, v in pairs)


class Tokens:
    """Opaque, tamper-evident paging and delta tokens."""

    def __init__(self, key):
        self.key = key

    def encode(self, d):
        raw = json.dumps(d, separators=(",", ":")).encode()
        mac = hmac.new(self.key, raw, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(raw + mac).rstrip(b"=").decode()

    def decode(self, s):
        try:
            blob = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
            raw, mac = blob[:-12], blob[-12:]
            if not hmac.compare_digest(mac, hmac.new(self.key, raw, hashlib.sha256).digest()[:12]):
                raise ValueError
            return json.loads(raw)
        except (ValueError, TypeError, json.JSONDecodeError):
            return None


class Api:
    def __init__(self, directory, key, opts, log_warning):
        self.d = directory
        self.tok = Tokens(key)
        self.delta_page = opts.delta_page_size
        self.delta_lifetime = opts.delta_token_lifetime
        self.delta_expired_mode = opts.delta_expired
        self.invalid_before = 0.0          # delta tokens issued before this are invalid
        self.invalid_mode = "gone"
        self.warn = log_warning
        self.notes = None                  # set per request: a remark for the request log

    # ---------------------------------------------------------------- routing

    def route(self, method, path, query, headers, body, base):
        """path is relative to /v1.0 and starts with '/'."""
        segs = [urllib.parse.unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        if not segs:
            raise segment_error("v1.0")
        opts, pairs = parse_query(query)
        ctx = Ctx(method, segs, opts, pairs, headers, body, base)
        head = segs[0]
        m = re.match(r"^applications\(appId='([^']*)'\)$", head)
        if m:
            return self.applications(ctx, [self.app_for_appid(m.group(1))] + segs[1:])
        if head == "users":
            return self.entity_set(ctx, self.d.users, segs[1:])
        if head == "groups":
            return self.entity_set(ctx, self.d.groups, segs[1:])
        if head in ("contacts",):
            return self.entity_set(ctx, self.d.contacts, segs[1:])
        if head == "directoryObjects":
            return self.directory_objects(ctx, segs[1:])
        if head == "directory":
            return self.directory(ctx, segs[1:])
        if head == "applications":
            return self.applications(ctx, segs[1:])
        if head == "organization":
            return self.organization(ctx, segs[1:])
        if head == "domains":
            return self.domains(ctx, segs[1:])
        raise segment_error(head)

    # ---------------------------------------------------------------- entity sets

    def entity_set(self, ctx, coll, rest):
        if not rest:
            if ctx.method == "GET":
                return self.list(ctx, coll)
            if ctx.method == "POST":
                if coll is self.d.contacts:
                    raise method_not_allowed()
                obj = (self.d.create_user if coll is self.d.users else self.d.create_group)(ctx.json())
                out = {"@odata.context": ctx.base + "/v1.0/$metadata#%s/$entity" % coll.segment}
                out.update(self.d.rep(coll, obj))
                return 201, out, [("Location", "%s/v1.0/%s/%s" % (ctx.base, coll.segment, obj["id"]))]
            raise method_not_allowed()
        key = rest[0]
        if key in ("delta", "microsoft.graph.delta", "delta()", "microsoft.graph.delta()") and len(rest) == 1:
            if ctx.method != "GET":
                raise method_not_allowed()
            return self.delta(ctx, coll)
        if key == "$count" and len(rest) == 1:
            if ctx.method != "GET":
                raise method_not_allowed()
            if not ctx.advanced:
                raise GraphError(400, "Request_BadRequest",
                                 "$count is not currently supported without the "
                                 "'ConsistencyLevel: eventual' request header.")
            return 200, str(len(coll.objs)).encode(), [("Content-Type", "text/plain")]
        if len(rest) == 1:
            if ctx.method == "GET":
                obj = self.d.get(coll, key)
                return 200, self.entity(ctx, coll, obj), []
            if ctx.method == "PATCH":
                self.d.update(coll, key, ctx.json())
                return 204, None, []
            if ctx.method == "DELETE":
                self.d.delete(coll, key)
                return 204, None, []
            raise method_not_allowed()
        obj = self.d.get(coll, key)
        oid = obj["id"]
        nav = rest[1]
        if nav == "memberOf" and len(rest) == 2:
            if ctx.method != "GET":
                raise method_not_allowed()
            gids = [g for g in self.d.member_of.get(oid, ()) if g in self.d.groups.objs]
            refs = [(g, "group") for g in sorted(gids, key=lambda g: self.d.groups.meta[g].ord)]
            return self.ref_list(ctx, refs, "%s('%s')/memberOf" % (coll.segment, oid))
        if coll is self.d.groups and nav in ("members", "owners"):
            return self.group_links(ctx, oid, nav, rest[2:])
        raise segment_error(nav)

    def entity(self, ctx, coll, obj):
        select = self.select(ctx, coll)
        ctxname = coll.segment + ("(%s)" % ",".join(select) if select else "") + "/$entity"
        out = {"@odata.context": ctx.base + "/v1.0/$metadata#" + ctxname}
        out.update(self.d.rep(coll, obj, select))
        self.expand(ctx, coll, obj, out)
        return out

    def select(self, ctx, coll):
        sel = ctx.opts.get("$select")
        if sel is None:
            return None
        extra = ("members",) if coll is self.d.groups and ctx.in_delta else ()
        return parse_select(sel, self.d.schema(coll), extra) or None

    def expand(self, ctx, coll, obj, out):
        exp = ctx.opts.get("$expand")
        if not exp:
            return
        m = re.match(r"^\s*(members|owners)\s*(?:\(\s*\$select\s*=\s*([^)]*)\))?\s*$", exp)
        if coll is not self.d.groups or not m:
            raise GraphError(400, "BadRequest",
                             "Parsing OData Select and Expand failed: Could not find a property "
                             "named '%s' on type '%s'." % (exp.split("(")[0].strip(),
                                                            coll.odata_type[1:]))
        sub = [s.strip() for s in m.group(2).split(",")] if m.group(2) else None
        links = getattr(self.d.groups.meta[obj["id"]], m.group(1))
        out[m.group(1)] = [self.d.typed_rep(mid, kind, sub)
                           for mid, kind in list(links.items())[:20]]

    # ---------------------------------------------------------------- lists

    def list(self, ctx, coll):
        schema = self.d.schema(coll)
        select = self.select(ctx, coll)
        top = parse_top(ctx.opts["$top"]) if "$top" in ctx.opts else DEFAULT_PAGE
        count_req = ctx.opts.get("$count", "").lower() == "true"
        filt = compile_filter(ctx.opts["$filter"], schema) if ctx.opts.get("$filter") else None
        if "$skip" in ctx.opts:
            raise bad_request("'$skip' is not supported by the service.")
        search = ctx.opts.get("$search")
        if search is not None and not ctx.advanced:
            raise GraphError(400, "Request_UnsupportedQuery",
                             "Request with $search query parameter only works through MSGraph "
                             "with a special request header: 'ConsistencyLevel: eventual'")
        if filt and filt.advanced and not (ctx.advanced and count_req):
            raise GraphError(400, "Request_UnsupportedQuery",
                             "Operator '%s' is not supported because the required parameters might "
                             "be missing. Try adding $count=true query parameter and "
                             "ConsistencyLevel:eventual header. Refer to "
                             "https://aka.ms/graph-docs/advanced-queries for more information"
                             % filt.advanced[0])
        preds = []
        if filt:
            preds.append(filt.pred)
        if search:
            preds.append(search_predicate(search))
        pred = (lambda o: all(p(o) for p in preds)) if preds else None
        orderby = ctx.opts.get("$orderby")
        state = None
        if "$skiptoken" in ctx.opts:
            state = self.tok.decode(ctx.opts["$skiptoken"])
            if not isinstance(state, dict) or state.get("c") != coll.segment:
                raise bad_request("Invalid skip token.", "Directory_ExpiredPageToken")
        page, more, last, total = self.page(coll, pred, filt, orderby, top, state, count_req and ctx.advanced)
        ctxname = coll.segment + ("(%s)" % ",".join(select) if select else "")
        out = {"@odata.context": ctx.base + "/v1.0/$metadata#" + ctxname}
        if total is not None:
            out["@odata.count"] = total
        out["value"] = []
        for obj in page:
            r = self.d.rep(coll, obj, select)
            self.expand(ctx, coll, obj, r)
            out["value"].append(r)
        if more:
            tok = self.tok.encode({"c": coll.segment, "a": last})
            pairs = [(k, v) for k, v in ctx.pairs if k.lower() != "$skiptoken"]
            q = encode_query(pairs)
            out["@odata.nextLink"] = "%s/v1.0/%s?%s%s$skiptoken=%s" % (
                ctx.base, coll.segment, q, "&" if q else "", tok)
        return 200, out, []

    def page(self, coll, pred, filt, orderby, top, state, want_total):
        if orderby:
            m = re.match(r"^\s*(displayName|userPrincipalName|mail|createdDateTime)\s*(asc|desc)?\s*$",
                         orderby, re.I)
            if not m or m.group(1) not in coll.props:
                raise GraphError(400, "Request_UnsupportedQuery",
                                 "Sorting not supported for '%s'." % orderby)
            key, desc = m.group(1), (m.group(2) or "").lower() == "desc"
            rows = [o for _, _, o in coll.iter_from(-1) if pred is None or pred(o)]
            rows.sort(key=lambda o: ((o.get(key) or "").lower()), reverse=desc)
            start = state.get("a", 0) if state else 0
            page = rows[start:start + top]
            more = start + top < len(rows)
            return page, more, start + top, len(rows) if want_total else None
        after = state.get("a", -1) if state else -1
        if filt is not None and filt.index_eq and coll is self.d.users:
            prop, vals = filt.index_eq
            idx = {"userprincipalname": self.d.by_upn,
                   "onpremisesimmutableid": self.d.by_imm}.get(prop.lower())
            if (idx is not None or prop == "id") and len(vals) <= top:
                hit, seen = [], set()
                for val in vals:
                    oid = idx.get(val.lower()) if idx is not None else val
                    o = coll.objs.get(oid) if oid else None
                    if (o is not None and o["id"] not in seen
                            and coll.meta[o["id"]].ord > after and pred(o)):
                        seen.add(o["id"])
                        hit.append(o)
                hit.sort(key=lambda o: coll.meta[o["id"]].ord)
                return hit, False, None, len(hit) if want_total else None
        page, last, more = [], after, False
        for ordn, _, o in coll.iter_from(after):
            if pred is not None and not pred(o):
                continue
            if len(page) == top:
                more = True
                break
            page.append(o)
            last = ordn
        total = None
        if want_total:
            total = sum(1 for _, _, o in coll.iter_from(-1) if pred is None or pred(o))
        return page, more, last, total

    def ref_list(self, ctx, refs, ctxname, render=None, refs_only=False):
        """An offset-paged list of (id, kind) references, rendered per item."""
        top = parse_top(ctx.opts["$top"]) if "$top" in ctx.opts else DEFAULT_PAGE
        start = 0
        if "$skiptoken" in ctx.opts:
            st = self.tok.decode(ctx.opts["$skiptoken"])
            if not isinstance(st, dict) or "o" not in st:
                raise bad_request("Invalid skip token.", "Directory_ExpiredPageToken")
            start = st["o"]
        if render is None:
            select = None
            if "$select" in ctx.opts:
                select = [s.strip() for s in ctx.opts["$select"].split(",") if s.strip()]
            if refs_only:
                render = lambda mid, kind: {"@odata.id": "%s/v1.0/directoryObjects/%s"
                                            % (ctx.base, mid)}
            else:
                render = lambda mid, kind: self.d.typed_rep(mid, kind, select)
        page = refs[start:start + top]
        out = {"@odata.context": ctx.base + "/v1.0/$metadata#" + ctxname}
        if ctx.advanced and ctx.opts.get("$count", "").lower() == "true":
            out["@odata.count"] = len(refs)
        out["value"] = [render(mid, kind) for mid, kind in page]
        if start + top < len(refs):
            pairs = [(k, v) for k, v in ctx.pairs if k.lower() != "$skiptoken"]
            q = encode_query(pairs)
            out["@odata.nextLink"] = "%s/v1.0/%s?%s%s$skiptoken=%s" % (
                ctx.base, ctx.path, q, "&" if q else "", self.tok.encode({"o": start + top}))
        return 200, out, []

    # ---------------------------------------------------------------- members and owners

    def group_links(self, ctx, gid, nav, rest):
        meta = self.d.groups.meta[gid]
        links = meta.members if nav == "members" else meta.owners
        if not rest or (len(rest) == 1 and rest[0] in ("$ref", "microsoft.graph.user",
                                                       "microsoft.graph.group",
                                                       "microsoft.graph.orgContact")):
            cast = rest[0] if rest and rest[0] != "$ref" else None
            if ctx.method == "POST" and rest == ["$ref"]:
                ref = ctx.json().get("@odata.id") if isinstance(ctx.json(), dict) else None
                if not isinstance(ref, str):
                    raise bad_request("Invalid object identifier '%s'." % ref)
                (self.d.add_member if nav == "members" else self.d.add_owner)(gid, ref)
                return 204, None, []
            if ctx.method != "GET":
                raise method_not_allowed()
            refs = list(links.items())
            if cast:
                kind = cast.split(".")[-1]
                refs = [(m, k) for m, k in refs if k == kind]
            name = "directoryObjects" if not cast else cast.split(".")[-1] + "s"
            return self.ref_list(ctx, refs, name, refs_only=rest == ["$ref"])
        mid = rest[0]
        if len(rest) == 2 and rest[1] == "$ref":
            if ctx.method != "DELETE":
                raise method_not_allowed()
            (self.d.remove_member if nav == "members" else self.d.remove_owner)(gid, mid)
            return 204, None, []
        if len(rest) == 1:
            if mid not in links:
                raise not_found(mid)
            if ctx.method == "GET":
                return 200, self.d.typed_rep(mid, links[mid]), []
            if ctx.method == "DELETE":
                # Graph semantics: without /$ref this deletes the member OBJECT itself.
                coll = self.d.colls[links[mid]]
                self.warn("DELETE /groups/%s/%s/%s without /$ref: deleting the %s object %s "
                          "itself (not just the link)" % (gid, nav, mid, coll.kind, mid))
                self.notes = "member-object-deleted: %s %s" % (coll.kind, mid)
                self.d.delete(coll, mid)
                return 204, None, []
            raise method_not_allowed()
        raise segment_error(rest[-1])

    # ---------------------------------------------------------------- directoryObjects

    def directory_objects(self, ctx, rest):
        if rest == ["getByIds"] or rest == ["microsoft.graph.getByIds"]:
            if ctx.method != "POST":
                raise method_not_allowed()
            body = ctx.json()
            ids = body.get("ids") if isinstance(body, dict) else None
            if not isinstance(ids, list) or len(ids) > 1000:
                raise bad_request("Invalid value specified for property 'ids'.")
            types = [t.lower() for t in body.get("types") or []]
            out = []
            for oid in ids:
                coll, obj = self.d.find(oid)
                if obj is not None and (not types or coll.kind.lower() in types):
                    r = {"@odata.type": coll.odata_type}
                    r.update(self.d.rep(coll, obj))
                    out.append(r)
            return 200, {"@odata.context": ctx.base + "/v1.0/$metadata#directoryObjects",
                         "value": out}, []
        if len(rest) == 1:
            coll, obj = self.d.find(rest[0])
            if obj is None:
                raise not_found(rest[0])
            if ctx.method == "GET":
                r = {"@odata.context": ctx.base + "/v1.0/$metadata#directoryObjects/$entity",
                     "@odata.type": coll.odata_type}
                r.update(self.d.rep(coll, obj))
                return 200, r, []
            if ctx.method == "DELETE":
                self.d.delete(coll, obj["id"])
                return 204, None, []
            raise method_not_allowed()
        raise segment_error(rest[0] if rest else "directoryObjects")

    def directory(self, ctx, rest):
        if not rest or rest[0] != "deletedItems":
            raise segment_error(rest[0] if rest else "directory")
        rest = rest[1:]
        casts = {"microsoft.graph.user": "user", "microsoft.graph.group": "group"}
        if not rest or (len(rest) == 1 and rest[0] in casts):
            if ctx.method != "GET":
                raise method_not_allowed()
            kind = casts.get(rest[0]) if rest else None
            refs = [(oid, r["kind"]) for oid, r in self.d.deleted.items()
                    if kind is None or r["kind"] == kind]
            name = "directory/deletedItems" + ("/" + rest[0] if rest else "")
            return self.ref_list(ctx, refs, name, render=lambda oid, kind: self.deleted_rep(oid))
        oid = rest[0]
        if len(rest) == 1 or (len(rest) == 2 and rest[1] in casts):
            if oid not in self.d.deleted:
                raise not_found(oid)
            if ctx.method == "GET":
                r = {"@odata.context": ctx.base + "/v1.0/$metadata#directoryObjects/$entity"}
                r.update(self.deleted_rep(oid))
                return 200, r, []
            if ctx.method == "DELETE":
                self.d.purge(oid)
                return 204, None, []
            raise method_not_allowed()
        if len(rest) == 2 and rest[1] in ("restore", "microsoft.graph.restore"):
            if ctx.method != "POST":
                raise method_not_allowed()
            coll, obj = self.d.restore(oid)
            r = {"@odata.context": ctx.base + "/v1.0/$metadata#directoryObjects/$entity",
                 "@odata.type": coll.odata_type}
            r.update(self.d.rep(coll, obj))
            return 200, r, []
        raise segment_error(rest[-1])

    def deleted_rep(self, oid):
        rec = self.d.deleted[oid]
        coll = self.d.colls[rec["kind"]]
        r = {"@odata.type": coll.odata_type}
        r.update(self.d.rep(coll, rec["obj"]))
        r["deletedDateTime"] = rec["obj"].get("deletedDateTime")
        return r

    # ---------------------------------------------------------------- applications

    def app_rep(self, ctx):
        return {"id": self.d.app_object_id, "appId": self.d.client_id,
                "displayName": "hybridsync", "signInAudience": "AzureADMyOrg"}

    def app_for_appid(self, appid):
        if appid.lower() != self.d.client_id.lower():
            raise not_found(appid)
        return self.d.app_object_id

    def applications(self, ctx, rest):
        if not rest:
            if ctx.method != "GET":
                raise method_not_allowed()
            apps = [self.app_rep(ctx)]
            f = ctx.opts.get("$filter")
            if f:
                m = re.match(r"^\s*(appId|id|displayName)\s+eq\s+'([^']*)'\s*$", f)
                if not m:
                    raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
                apps = [a for a in apps if a[m.group(1)].lower() == m.group(2).lower()]
            return 200, {"@odata.context": ctx.base + "/v1.0/$metadata#applications",
                         "value": apps}, []
        if rest[0] != self.d.app_object_id:
            raise not_found(rest[0])
        if len(rest) == 1:
            if ctx.method != "GET":
                raise method_not_allowed()
            r = {"@odata.context": ctx.base + "/v1.0/$metadata#applications/$entity"}
            r.update(self.app_rep(ctx))
            return 200, r, []
        if rest[1] != "extensionProperties":
            raise segment_error(rest[1])
        if len(rest) == 2:
            if ctx.method == "GET":
                return 200, {"@odata.context": ctx.base + "/v1.0/$metadata#applications('%s')/"
                             "extensionProperties" % rest[0],
                             "value": list(self.d.extensions.values())}, []
            if ctx.method == "POST":
                b = ctx.json()
                if not isinstance(b, dict) or not b.get("name"):
                    raise bad_request("Property name value is required but is empty or missing.")
                targets = b.get("targetObjects") or []
                if not targets or any(t not in ("User", "Group", "Application", "Device",
                                                 "Organization", "ServicePrincipal")
                                      for t in targets):
                    raise bad_request("Invalid value specified for property 'targetObjects' of "
                                      "resource 'ExtensionProperty'.")
                dt = b.get("dataType", "String")
                if dt not in ("Binary", "Boolean", "DateTime", "Integer", "LargeInteger", "String"):
                    raise bad_request("Invalid value specified for property 'dataType' of "
                                      "resource 'ExtensionProperty'.")
                d = self.d.register_extension(b["name"], dt, targets, b.get("isMultiValued"))
                r = {"@odata.context": ctx.base + "/v1.0/$metadata#applications('%s')/"
                     "extensionProperties/$entity" % rest[0]}
                r.update(d)
                return 201, r, []
            raise method_not_allowed()
        if len(rest) == 3 and ctx.method == "DELETE":
            for name, d in list(self.d.extensions.items()):
                if d["id"] == rest[2]:
                    del self.d.extensions[name]
                    return 204, None, []
            raise not_found(rest[2])
        raise method_not_allowed()

    def organization(self, ctx, rest):
        if ctx.method != "GET":
            raise method_not_allowed()
        org = {"id": self.d.tenant, "displayName": "Emulated tenant",
               "verifiedDomains": [{"name": d, "isDefault": i == 0, "isInitial": False,
                                    "type": "Managed", "capabilities": "Email, OfficeCommunicationsOnline"}
                                   for i, d in enumerate(self.d.domains)],
               "onPremisesSyncEnabled": None}
        if rest:
            if rest[0] != self.d.tenant:
                raise not_found(rest[0])
            r = {"@odata.context": ctx.base + "/v1.0/$metadata#organization/$entity"}
            r.update(org)
            return 200, r, []
        return 200, {"@odata.context": ctx.base + "/v1.0/$metadata#organization",
                     "value": [org]}, []

    def domains(self, ctx, rest):
        if ctx.method != "GET":
            raise method_not_allowed()
        doms = [{"id": d, "isVerified": True, "isDefault": i == 0, "authenticationType": "Managed",
                 "supportedServices": ["Email"]} for i, d in enumerate(self.d.domains)]
        if rest:
            for x in doms:
                if x["id"].lower() == rest[0].lower():
                    return 200, x, []
            raise not_found(rest[0])
        return 200, {"@odata.context": ctx.base + "/v1.0/$metadata#domains", "value": doms}, []

    # ---------------------------------------------------------------- delta

    def invalidate_delta(self, mode):
        if mode not in ("gone", "syncStateNotFound", "resyncRequired"):
            raise ValueError("mode must be gone, syncStateNotFound or resyncRequired")
        self.invalid_before = time.time()
        self.d.generation += 1
        self.invalid_mode = mode

    def delta_error(self, ctx, coll, mode, select):
        if mode == "gone":
            q = "$select=%s&" % ",".join(select) if select else ""
            loc = "%s/v1.0/%s/delta?%s$deltatoken=" % (ctx.base, coll.segment, q)
            return GraphError(410, "resyncRequired",
                              "The delta token is no longer valid; restart with a full "
                              "synchronization.", headers=[("Location", loc)])
        if mode == "syncStateNotFound":
            return GraphError(400, "syncStateNotFound",
                              "The sync state generation is not found. The delta token is expired "
                              "and data must be synchronized again.")
        return GraphError(400, "resyncRequired",
                          "The delta token is no longer valid, and the app must reset the sync "
                          "state.")

    def delta(self, ctx, coll):
        ctx.in_delta = True
        for bad in ("$top", "$orderby", "$expand"):
            if bad in ctx.opts and not (bad == "$expand" and coll is self.d.groups
                                        and ctx.opts[bad].strip().startswith("members")):
                raise GraphError(400, "Request_UnsupportedQuery",
                                 "The '%s' query option is not supported for delta queries." % bad)
        select = self.select(ctx, coll)
        if coll is self.d.groups and ctx.opts.get("$expand", "").strip().startswith("members"):
            select = (select or list(coll.defaults)) + ["members"]
        skip, dtok = ctx.opts.get("$skiptoken"), ctx.opts.get("$deltatoken")
        ids = None
        if "$filter" in ctx.opts:
            f = compile_filter(ctx.opts["$filter"], self.d.schema(coll))
            if not f.only_ids:
                raise GraphError(400, "Request_UnsupportedQuery",
                                 "Delta queries can be filtered by object id only.")
            ids = sorted(set(f.id_values))
        now = time.time()
        if skip or dtok:
            st = self.tok.decode(skip or dtok)
            if dtok and dtok.lower() == "latest":
                return self.delta_latest(ctx, coll, select, ids)
            if not isinstance(st, dict) or st.get("c") != coll.segment or (
                    "k" in st) != bool(skip):
                raise bad_request("The delta or skip token is not valid for this request.",
                                  "Request_BadRequest")
            issued = st["t"]
            if issued < self.invalid_before:
                raise self.delta_error(ctx, coll, self.invalid_mode, st.get("sel"))
            if now - issued > self.delta_lifetime:
                raise self.delta_error(ctx, coll, self.delta_expired_mode, st.get("sel"))
            if skip:
                since, cursor, initial = st["s"], st["k"], st["i"]
                select, ids = st.get("sel"), st.get("ids")
            else:
                since, cursor, initial = st["s"], st["s"], False
                if "$select" not in ctx.opts:
                    select = st.get("sel")
                if ids is None:
                    ids = st.get("ids")
            round_started = issued if skip else now
        else:
            if dtok == "":
                pass                    # an empty $deltatoken restarts like the initial query
            since, cursor, initial, round_started = 0, 0, True, now
        size = ctx.max_page or self.delta_page
        values, cursor, done = self.delta_walk(coll, since, cursor, select, ids, initial, size)
        ctxname = coll.segment + ("(%s)" % ",".join(s for s in select if s != "members")
                                  if select else "")
        out = {"@odata.context": ctx.base + "/v1.0/$metadata#" + ctxname}
        state = {"c": coll.segment, "sel": select, "ids": ids}
        if done:
            state.update(s=cursor, t=time.time())
            out["@odata.deltaLink"] = "%s/v1.0/%s/delta?$deltatoken=%s" % (
                ctx.base, coll.segment, self.tok.encode(state))
        else:
            state.update(s=since, k=cursor, i=initial, t=round_started)
            out["@odata.nextLink"] = "%s/v1.0/%s/delta?$skiptoken=%s" % (
                ctx.base, coll.segment, self.tok.encode(state))
        out["value"] = values
        hdrs = [("Preference-Applied", "odata.maxpagesize=%d" % ctx.max_page)] if ctx.max_page else []
        return 200, out, hdrs

    def delta_latest(self, ctx, coll, select, ids):
        state = {"c": coll.segment, "sel": select, "ids": ids, "s": len(coll.log),
                 "t": time.time()}
        return 200, {"@odata.context": ctx.base + "/v1.0/$metadata#" + coll.segment,
                     "@odata.deltaLink": "%s/v1.0/%s/delta?$deltatoken=%s" % (
                         ctx.base, coll.segment, self.tok.encode(state)),
                     "value": []}, []

    def delta_walk(self, coll, since, cursor, select, ids, initial, size):
        log, meta, tombs, objs = coll.log, coll.meta, coll.tombstones, coll.objs
        idset = set(ids) if ids is not None else None
        out = []
        i, end = cursor, len(log)
        budget = SCAN_BUDGET
        while i < end and len(out) < size and budget > 0:
            oid = log[i]
            budget -= 1
            if idset is not None and oid not in idset:
                i += 1
                continue
            m = meta.get(oid)
            if m is not None and m.last_pos == i:
                r = self.delta_rep(coll, oid, objs[oid], m, since, select, initial)
                if r is not None:
                    out.append(r)
            elif m is None and not initial:
                t = tombs.get(oid)
                if t is not None and t[0] == i:
                    out.append({"id": oid, "@removed": {"reason": t[1]}})
            i += 1
        return out, i, i >= end

    def delta_rep(self, coll, oid, obj, m, since, select, initial):
        track_members = coll is self.d.groups and (select is None or "members" in select)
        names = coll.defaults if select is None else [s for s in select if s != "members"]
        if initial or m.created_pos >= since:
            r = self.d.rep(coll, obj, names)
            if track_members and m.members:
                r["members@delta"] = [{"@odata.type": self.d.colls[k].odata_type, "id": mid}
                                      for mid, k in m.members.items()]
            return r
        pp = m.prop_pos
        changed = [n for n in names if pp.get(n, -1) >= since]
        mdelta = None
        if track_members and m.member_log:
            start = bisect.bisect_left(m.member_log, since, key=lambda e: e[0])
            if start < len(m.member_log):
                last = {}
                for pos, mid, kind, added in m.member_log[start:]:
                    last[mid] = (kind, added)
                mdelta = []
                for mid, (kind, added) in last.items():
                    e = {"@odata.type": self.d.colls[kind].odata_type, "id": mid}
                    if not added:
                        e["@removed"] = {"reason": "deleted"}
                    mdelta.append(e)
        if not changed and not mdelta:
            return None
        full = self.d.rep(coll, obj, changed)
        if mdelta:
            full["members@delta"] = mdelta
        return full


class Ctx:
    __slots__ = ("method", "segs", "opts", "pairs", "headers", "body", "base", "advanced",
                 "in_delta", "max_page", "_json", "path")

    def __init__(self, method, segs, opts, pairs, headers, body, base):
        self.method = method
        self.segs = segs
        self.path = "/".join(urllib.parse.quote(s, safe="$()'=,:@") for s in segs)
        self.opts = opts
        self.pairs = pairs
        self.headers = headers
        self.body = body
        self.base = base
        self.advanced = headers.get("consistencylevel", "").lower() == "eventual"
        self.in_delta = False
        self.max_page = None
        prefer = headers.get("prefer", "")
        m = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", prefer)
        if m:
            self.max_page = max(1, int(m.group(1)))
        self._json = None

    def json(self):
        if self._json is None:
            if not self.body:
                raise bad_request("Empty Payload. JSON content expected.", "BadRequest")
            try:
                self._json = json.loads(self.body)
            except (ValueError, UnicodeDecodeError):
                raise bad_request("Unable to read JSON request payload. Please ensure Content-Type "
                                  "header is set and payload is of valid JSON format.",
                                  "BadRequest")
        return self._json


def search_predicate(text):
    """$search="displayName:foo" AND "mail:bar": tokenized contains, case-insensitive."""
    terms = re.findall(r'"([^":]+):([^"]*)"', text)
    if not terms:
        raise GraphError(400, "Request_UnsupportedQuery", "Syntax error in $search.")
    terms = [(p, v.lower()) for p, v in terms]
    return lambda o: all(v in str(o.get(p) or "").lower() for p, v in terms)
