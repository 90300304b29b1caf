#!/usr/bin/python3
# Microsoft Graph v1.0 + identity platform emulator for hybridsync's tests: OAuth2 client
# credentials, users, groups, members, $batch, delta queries, OData errors, the write quota and
# deterministic fault injection, with an unauthenticated /_emulator API for assertions.
# Python standard library only. See README.md in this directory.

import sys
sys.dont_write_bytecode = True      # keep the source tree free of __pycache__

import argparse
import asyncio
import json
import os
import re
import signal
import ssl
import time
import uuid

from ge_auth import Auth, AuthError, load_certificates
from ge_directory import Directory
from ge_faults import Faults, RequestLog, Stats, WriteQuota, parse_fault_arg
from ge_graph import Api, JSON_CT
from ge_http import HttpProtocol, Response, drop_response
from ge_odata import GraphError

WRITE_METHODS = frozenset(("POST", "PATCH", "PUT", "DELETE"))
TOKEN_PATH = re.compile(r"^/([^/]+)/oauth2/v2\.0/token/?$")
MAX_BATCH = 20


def jdump(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def iso_ms(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


class App:
    def __init__(self, opts):
        self.opts = opts
        self.loop = None
        self.connections = set()
        certs = []
        for path in opts.client_cert or []:
            certs.extend(load_certificates(path))
        secret = opts.client_secret
        if opts.client_secret_file:
            with open(opts.client_secret_file) as f:
                secret = f.read().strip()
        self.auth = Auth(opts.tenant, opts.client_id, secret, certs, opts.token_lifetime,
                         opts.domain, opts.assertion_skew)
        self.dir = Directory(opts.tenant, opts.client_id, opts.domain,
                             opts.soft_delete_security_groups)
        for ext in opts.extension or []:
            self.dir.register_extension(ext)
        self.api = Api(self.dir, os.urandom(32), opts, self.warn)
        self.faults = Faults()
        for f in opts.fault or []:
            self.faults.add(parse_fault_arg(f))
        self.quota = WriteQuota(opts.write_quota)
        self.latency_ms = opts.latency_ms
        self.log = RequestLog(opts.log_max)
        self.stats = Stats()
        if opts.seed_file:
            with open(opts.seed_file) as f:
                self.seed(json.load(f))

    def warn(self, msg):
        sys.stderr.write("graph-emulator: WARNING: %s\n" % msg)
        sys.stderr.flush()

    # ------------------------------------------------------------------ responses

    def headers(self, req, ctype=JSON_CT):
        return [("Content-Type", ctype), ("request-id", req.request_id),
                ("client-request-id", req.client_request_id),
                ("OData-Version", "4.0"), ("Cache-Control", "no-cache"),
                ("Strict-Transport-Security", "max-age=31536000")]

    def error_payload(self, req, err):
        e = {"code": err.code, "message": err.message}
        if err.details:
            e["details"] = err.details
        e["innerError"] = {"date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
                           "request-id": req.request_id,
                           "client-request-id": req.client_request_id}
        return {"error": e}

    def error_response(self, req, err):
        resp = Response(err.status, jdump(self.error_payload(req, err)), self.headers(req))
        resp.headers.extend(err.headers)
        return resp

    def internal_error(self, req, exc, done):
        import traceback
        traceback.print_exc()
        if req.request_id is None:
            req.request_id = req.client_request_id = str(uuid.uuid4())
        done(req, self.error_response(req, GraphError(500, "UnknownError",
                                                      "Emulator bug: %s" % exc)))

    def fault_error(self, req, rule, is_token):
        st = rule.status
        hdrs = []
        if rule.retry_after is not None:
            hdrs.append(("Retry-After", str(rule.retry_after)))
        if st == 429:
            hdrs.append(("x-ms-throttle-information", rule.throttle_info or "ResourceUnitLimitExceeded"))
            hdrs.append(("x-ms-throttle-scope", "Tenant_Application/ReadWrite/%s/%s"
                         % (self.opts.client_id, self.opts.tenant)))
        if is_token:
            err = AuthError(st, "temporarily_unavailable" if st in (429, 503) else "server_error",
                            90024 if st == 429 else 90006,
                            rule.message or "The service is temporarily unavailable.")
            body = self.auth.error_body(err, req.request_id)
            return Response(st, jdump(body), self.headers(req, "application/json; charset=utf-8") + hdrs)
        code, msg = {429: ("TooManyRequests", "Too many requests. Please retry again later."),
                     500: ("UnknownError", "An internal server error occurred."),
                     502: ("BadGateway", "Bad gateway."),
                     503: ("serviceNotAvailable", "Service is unavailable. Try the request again "
                           "after a delay."),
                     504: ("GatewayTimeout", "The operation timed out."),
                     }.get(st, ("generalException", "Injected error."))
        err = GraphError(st, rule.code or code, rule.message or msg, headers=hdrs)
        return self.error_response(req, err)

    def quota_error(self, req, retry_after):
        self.stats.c["quota_429"] += 1
        return self.error_response(req, GraphError(
            429, "TooManyRequests", "Too many requests. The write limit for this application "
            "and tenant has been exceeded; retry after %d seconds." % retry_after,
            headers=[("Retry-After", str(retry_after)),
                     ("x-ms-throttle-information", "WriteLimitExceeded"),
                     ("x-ms-throttle-scope", "Tenant_Application/Write/%s/%s"
                      % (self.opts.client_id, self.opts.tenant))]))

    # ------------------------------------------------------------------ dispatch

    def dispatch(self, req, done):
        if req.path.startswith("/_emulator"):
            req.request_id = req.client_request_id = str(uuid.uuid4())
            try:
                resp = self.control(req)
            except GraphError as e:
                resp = self.error_response(req, e)
            except (ValueError, KeyError, TypeError) as e:
                resp = Response(400, jdump({"error": str(e)}), [("Content-Type", "application/json")])
            done(req, resp)
            return
        req.request_id = str(uuid.uuid4())
        req.client_request_id = req.headers.get("client-request-id") or req.request_id
        latency, rule, labels = self.faults.evaluate(req.method, req.path, False)
        latency += self.latency_ms
        if latency > 0:
            self.loop.call_later(latency / 1000.0, self.process, req, done, rule, labels, latency)
        else:
            self.process(req, done, rule, labels, 0)

    def process(self, req, done, rule, labels, latency):
        try:
            self._process(req, done, rule, labels, latency)
        except Exception as exc:
            self.internal_error(req, exc, done)

    def _process(self, req, done, rule, labels, latency):
        path = req.path
        tm = TOKEN_PATH.match(path)
        is_graph = path == "/v1.0" or path.startswith("/v1.0/")
        is_write = is_graph and req.method in WRITE_METHODS and path != "/v1.0/$batch"
        entry = {"time": iso_ms(time.time()), "method": req.method, "path": req.target,
                 "status": None, "is_write": is_write, "in_batch": False,
                 "fault": ",".join(labels) if labels else None,
                 "request_id": req.request_id, "client_request_id": req.client_request_id}
        if tm:
            entry["kind"] = "token"
        if rule is not None:
            self.stats.c["faults_applied"] += 1
        if rule is not None and rule.action == "status":
            resp = self.fault_error(req, rule, bool(tm))
            return self.finish(req, done, resp, entry, is_write)
        if rule is not None and rule.when == "before":
            entry["dropped"] = "before"
            self.stats.c["dropped"] += 1
            return self.finish(req, done, drop_response(), entry, is_write)
        extra_delay = 0
        if tm:
            resp = self.token(req, tm.group(1))
        elif is_graph:
            resp, extra_delay = self.graph(req, is_write, entry)
        else:
            seg = path.strip("/").split("/")[0] or "/"
            resp = self.error_response(req, GraphError(
                400, "BadRequest", "Invalid version: %s" % seg if seg != "/" else
                "Invalid version."))
        if rule is not None:                  # drop after the request took effect
            entry["dropped"] = "after"
            entry["status"] = resp.status
            self.stats.c["dropped"] += 1
            resp = drop_response()
        if extra_delay:
            self.loop.call_later(extra_delay / 1000.0, self.finish, req, done, resp, entry,
                                 is_write)
            return
        self.finish(req, done, resp, entry, is_write)

    def take_note(self, entry):
        if self.api.notes:
            entry["note"] = self.api.notes
            if self.api.notes.startswith("member-object-deleted"):
                self.stats.c["member_object_deletes"] += 1
            self.api.notes = None

    def finish(self, req, done, resp, entry, is_write):
        if entry.get("status") is None:
            entry["status"] = 0 if resp.drop else resp.status
        self.take_note(entry)
        entry["duration_ms"] = round((time.monotonic() - req.started) * 1000, 1)
        self.log.add(entry)
        self.stats.count_response(entry["status"], is_write, False)
        if self.opts.verbose:
            sys.stderr.write("graph-emulator: %s %s -> %s%s\n" % (
                req.method, req.target, entry["status"],
                " [%s]" % entry["fault"] if entry["fault"] else ""))
        done(req, resp)

    # ------------------------------------------------------------------ token endpoint

    def token(self, req, tenant):
        self.stats.c["token_requests"] += 1
        hdrs = self.headers(req, "application/json; charset=utf-8")[:3] + [
            ("Cache-Control", "no-store, no-cache"), ("Pragma", "no-cache")]
        if req.method != "POST":
            err = AuthError(400, "invalid_request", 900561,
                            "The endpoint only accepts POST, OPTIONS requests. Received a %s "
                            "request." % req.method)
        else:
            base = req.base
            urls = {"%s/%s/oauth2/v2.0/token" % (base, tenant),
                    "https://login.microsoftonline.com/%s/oauth2/v2.0/token" % tenant}
            for alias in (self.opts.tenant,) + tuple(self.opts.domain):
                urls.add("%s/%s/oauth2/v2.0/token" % (base, alias))
                urls.add("https://login.microsoftonline.com/%s/oauth2/v2.0/token" % alias)
            port = base.rsplit(":", 1)[-1] if base.count(":") == 2 else None
            if port:
                for host in ("127.0.0.1", "localhost"):
                    urls.add("%s://%s:%s/%s/oauth2/v2.0/token" % (req.scheme, host, port, tenant))
            try:
                tok = self.auth.token(tenant, req.body, urls)
                self.stats.c["tokens_issued"] += 1
                return Response(200, jdump(tok), hdrs)
            except AuthError as e:
                err = e
        self.stats.c["token_failures"] += 1
        return Response(err.status, jdump(self.auth.error_body(err, req.request_id)), hdrs)

    # ------------------------------------------------------------------ graph

    def graph(self, req, is_write, entry):
        """(response, extra delay in ms from latency faults on batch items)."""
        why = self.auth.check_bearer(req.headers.get("authorization"), req.arrived)
        if why is not None:
            self.stats.c["unauthorized_401"] += 1
            resp = self.error_response(req, GraphError(401, "InvalidAuthenticationToken", why))
            resp.headers.append(("WWW-Authenticate",
                                 'Bearer realm="", authorization_uri="https://login.microsoftonline.com'
                                 '/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"'))
            return resp, 0
        if req.path == "/v1.0/$batch":
            if req.method != "POST":
                return self.error_response(req, GraphError(
                    405, "Request_BadRequest",
                    "Specified HTTP method is not allowed for the request target.")), 0
            return self.batch(req, entry)
        status, payload, hdrs = self.call(req.method, req.path[5:], req.query, req.headers,
                                          req.body, req.base, is_write)
        return self.make_response(req, status, payload, hdrs), 0

    def call(self, method, path, query, headers, body, base, is_write):
        """One Graph operation (outer or inside $batch): quota, then the handler."""
        if is_write:
            ra = self.quota.take(time.monotonic())
            if ra is not None:
                return 429, ("quota", ra), []
        try:
            status, payload, hdrs = self.api.route(method, path, query, headers, body, base)
        except GraphError as e:
            return e.status, e, list(e.headers)
        if is_write:
            hdrs = list(hdrs) + [("x-ms-resource-unit", "1")]
            use = self.quota.usage(time.monotonic())
            if use >= 0.8:
                hdrs.append(("x-ms-throttle-limit-percentage", "%.1f" % use))
        return status, payload, hdrs

    def make_response(self, req, status, payload, hdrs):
        if isinstance(payload, tuple) and payload[0] == "quota":
            return self.quota_error(req, payload[1])
        if isinstance(payload, GraphError):
            r = self.error_response(req, payload)
            return r
        if payload is None:
            return Response(status, b"", self.headers(req)[1:] + list(hdrs))
        if isinstance(payload, bytes):
            return Response(status, payload, self.headers(req, "text/plain")[0:3] + list(hdrs))
        return Response(status, jdump(payload), self.headers(req) + list(hdrs))

    # ------------------------------------------------------------------ $batch

    def batch(self, req, entry):
        self.stats.c["batches"] += 1

        def outer_error(msg):
            return self.error_response(req, GraphError(400, "BadRequest", msg)), 0

        try:
            doc = json.loads(req.body or b"null")
        except (ValueError, UnicodeDecodeError):
            return outer_error("Invalid batch payload format.")
        items = doc.get("requests") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            return outer_error("Invalid batch payload format.")
        if len(items) > MAX_BATCH:
            return outer_error("Number of batch request steps exceeds the maximum of %d." % MAX_BATCH)
        if not items:
            return outer_error("Invalid batch payload format: the requests collection is empty.")
        seen = {}
        for it in items:
            if (not isinstance(it, dict) or not isinstance(it.get("id"), str) or not it["id"]
                    or not isinstance(it.get("method"), str) or not isinstance(it.get("url"), str)):
                return outer_error("Invalid batch payload format.")
            key = it["id"].lower()
            if key in seen:
                return outer_error("Batch request contains duplicate request id '%s'." % it["id"])
            seen[key] = it
            hdrs = it.get("headers") or {}
            if not isinstance(hdrs, dict):
                return outer_error("Invalid batch payload format.")
            m = it["method"].upper()
            if m not in ("GET", "POST", "PATCH", "PUT", "DELETE"):
                return outer_error("Invalid HTTP method '%s' in request id '%s'." % (it["method"], it["id"]))
            has_ct = any(k.lower() == "content-type" for k in hdrs)
            if m in ("POST", "PATCH", "PUT") and ("body" not in it or not has_ct):
                return outer_error("Write request id : %s does not contain Content-Type header or body."
                                   % it["id"])
            deps = it.get("dependsOn") or []
            if not isinstance(deps, list) or not all(isinstance(x, str) for x in deps):
                return outer_error("Invalid batch payload format.")
        for it in items:
            for dep in it.get("dependsOn") or []:
                if dep.lower() not in seen:
                    return outer_error("Request id '%s' depends on '%s', which is not in the batch."
                                       % (it["id"], dep))
        # run in array order, each item after its dependencies
        done_status, order, pending = {}, [], list(items)
        while pending:
            ready = [it for it in pending
                     if all(d.lower() in done_status for d in it.get("dependsOn") or [])]
            if not ready:
                return outer_error("Batch request dependencies contain a cycle.")
            for it in ready:
                done_status[it["id"].lower()] = None
                order.append(it)
                pending.remove(it)
        results, extra_delay = {}, 0
        status_of = {}
        for it in order:
            r, delay, drop = self.batch_item(req, it, status_of)
            extra_delay += delay
            if drop is not None:
                entry["dropped"] = "mid-batch (%s item %s)" % (drop, it["id"])
                entry["status"] = 0
                self.stats.c["dropped"] += 1
                return drop_response(), 0
            results[it["id"]] = r
            status_of[it["id"].lower()] = r["status"]
        out = {"responses": [results[it["id"]] for it in items]}
        return Response(200, jdump(out), self.headers(req)), extra_delay

    def batch_item(self, outer, it, status_of):
        """(response dict, latency ms, drop-kind or None)"""
        method = it["method"].upper()
        url = it["url"]
        rid = str(uuid.uuid4())
        hdrs = {k.lower(): str(v) for k, v in (it.get("headers") or {}).items()}
        crid = hdrs.get("client-request-id") or outer.client_request_id
        rel = url if url.startswith("/") else "/" + url
        path, _, query = rel.partition("?")
        is_write = method in WRITE_METHODS
        entry = {"time": iso_ms(time.time()), "method": method, "path": url, "status": None,
                 "is_write": is_write, "in_batch": True, "batch_request_id": outer.request_id,
                 "batch_item_id": it["id"], "fault": None, "request_id": rid,
                 "client_request_id": crid}

        class Inner:                        # what error_response needs
            request_id = rid
            client_request_id = crid

        def result(status, payload, extra):
            h = {"Cache-Control": "no-cache", "request-id": rid, "client-request-id": crid}
            for k, v in extra:
                h[k] = v
            r = {"id": it["id"], "status": status, "headers": h}
            if isinstance(payload, GraphError):
                r["body"] = self.error_payload(Inner, payload)
                h["Content-Type"] = "application/json"
            elif isinstance(payload, bytes):
                r["body"] = payload.decode("utf-8", "replace")
                h["Content-Type"] = "text/plain"
            elif payload is not None:
                r["body"] = payload
                h["Content-Type"] = JSON_CT
            entry["status"] = status
            self.log.add(entry)
            self.stats.count_response(status, is_write, True)
            return r

        for dep in it.get("dependsOn") or []:
            st = status_of.get(dep.lower())
            if st is None or st >= 400:
                return result(424, GraphError(424, "FailedDependency",
                                              "The request id '%s' depends on the request id '%s', "
                                              "which failed." % (it["id"], dep)), []), 0, None
        gpath = "/v1.0" + path
        latency, rule, labels = self.faults.evaluate(method, gpath, True)
        entry["fault"] = ",".join(labels) if labels else None
        if rule is not None:
            self.stats.c["faults_applied"] += 1
        if rule is not None and rule.action == "status":
            resp = self.fault_error(Inner, rule, False)
            err = json.loads(resp.body)["error"]
            ge = GraphError(rule.status, err["code"], err["message"])
            extra = [(k, v) for k, v in resp.headers
                     if k.lower() in ("retry-after", "x-ms-throttle-information", "x-ms-throttle-scope")]
            return result(rule.status, ge, extra), latency, None
        if rule is not None and rule.when == "before":
            entry["dropped"] = "before"
            entry["status"] = 0
            self.log.add(entry)
            return None, 0, "before"
        if url.lower().startswith(("http://", "https://")):
            return result(400, GraphError(400, "BadRequest",
                                          "Invalid request URI: batch request URLs must be "
                                          "relative to the version, e.g. /users."), []), latency, None
        if path.rstrip("/") == "/$batch":
            return result(400, GraphError(400, "BadRequest", "Nested batch requests are not "
                                          "supported."), []), latency, None
        body = it.get("body")
        raw = None
        if body is not None:
            if isinstance(body, (dict, list)):
                raw = jdump(body)
            elif isinstance(body, str):
                raw = body.encode("utf-8")
        status, payload, extra = self.call(method, path, query, hdrs, raw, outer.base, is_write)
        self.take_note(entry)
        if isinstance(payload, tuple) and payload[0] == "quota":
            self.stats.c["quota_429"] += 1
            ra = payload[1]
            payload = GraphError(429, "TooManyRequests",
                                 "Too many requests. The write limit for this application and "
                                 "tenant has been exceeded; retry after %d seconds." % ra)
            extra = [("Retry-After", str(ra)), ("x-ms-throttle-information", "WriteLimitExceeded"),
                     ("x-ms-throttle-scope", "Tenant_Application/Write/%s/%s"
                      % (self.opts.client_id, self.opts.tenant))]
        if rule is not None:                # drop after this item took effect
            entry["dropped"] = "after"
            entry["status"] = status
            self.log.add(entry)
            return None, 0, "after"
        return result(status, payload, extra), latency, None

    # ------------------------------------------------------------------ seeding

    def seed(self, doc):
        if not isinstance(doc, dict):
            raise ValueError("seed: expected a JSON object")
        out = {"users": [], "groups": [], "contacts": [], "extensions": []}
        for ext in doc.get("extensions") or []:
            if isinstance(ext, str):
                d = self.dir.register_extension(ext)
            else:
                d = self.dir.register_extension(ext["name"], ext.get("dataType", "String"),
                                                ext.get("targetObjects", ["User", "Group"]),
                                                ext.get("isMultiValued", False))
            out["extensions"].append(d["name"])
        for u in doc.get("users") or []:
            u = dict(u)
            groups = u.pop("memberOf", None)
            obj = self.dir.create_user(u, seed=True)
            out["users"].append({"id": obj["id"], "userPrincipalName": obj["userPrincipalName"]})
        for c in doc.get("contacts") or []:
            obj = self.dir.create_contact(dict(c))
            out["contacts"].append({"id": obj["id"], "displayName": obj.get("displayName")})
        pending_members = []
        for g in doc.get("groups") or []:
            g = dict(g)
            members = g.pop("members", [])
            owners = g.pop("owners", [])
            obj = self.dir.create_group(g, seed=True)
            meta = self.dir.groups.meta[obj["id"]]
            for o in owners:
                oid = self._seed_ref(o)
                meta.owners[oid] = self.dir.find(oid)[0].kind
            pending_members.append((obj["id"], members))
            out["groups"].append({"id": obj["id"], "displayName": obj.get("displayName")})
        for gid, members in pending_members:      # after all groups exist: nesting works
            for m in members:
                mid = self._seed_ref(m)
                if mid not in self.dir.groups.meta[gid].members:
                    self.dir._link(gid, mid, self.dir.find(mid)[0].kind)
        return out

    def _seed_ref(self, ref):
        if ref in self.dir.users.objs or ref in self.dir.groups.objs or ref in self.dir.contacts.objs:
            return ref
        oid = self.dir.by_upn.get(str(ref).lower())
        if oid:
            return oid
        for g in self.dir.groups.objs.values():
            if g.get("displayName") == ref or g.get("mailNickname") == ref:
                return g["id"]
        raise ValueError("seed: unknown member reference %r" % ref)

    # ------------------------------------------------------------------ control API

    def control(self, req):
        m, path = req.method, req.path.rstrip("/")
        q = dict(p.split("=", 1) if "=" in p else (p, "") for p in req.query.split("&") if p)
        ok = lambda obj, st=200: Response(st, jdump(obj), [("Content-Type", "application/json")])

        def body():
            if not req.body:
                return {}
            return json.loads(req.body)

        if path == "/_emulator/health" and m == "GET":
            return ok({"ok": True, "tenant": self.opts.tenant})
        if path == "/_emulator/state" and m == "GET":
            return ok(self.dir.dump())
        if path == "/_emulator/requests" and m == "GET":
            since = int(q.get("since", 0) or 0)
            limit = int(q.get("limit", 0) or 0)
            reqs = self.log.since(since, limit)
            return ok({"requests": reqs, "last_seq": self.log.seq})
        if path == "/_emulator/stats" and m == "GET":
            s = self.stats.to_json()
            s["write_quota"] = self.quota.to_json(time.monotonic())
            s["objects"] = {"users": len(self.dir.users.objs), "groups": len(self.dir.groups.objs),
                            "contacts": len(self.dir.contacts.objs),
                            "deletedItems": len(self.dir.deleted)}
            s["faults"] = [r.to_json() for r in self.faults.rules]
            s["latency_ms"] = self.latency_ms
            return ok(s)
        if path == "/_emulator/reset" and m == "POST":
            b = body()
            done = []
            if b.get("state", True):
                self.dir.reset()
                self.dir.extensions.clear()
                for ext in self.opts.extension or []:
                    self.dir.register_extension(ext)
                self.api.invalid_before = time.time()   # old delta tokens point into the old log
                done.append("state")
            if b.get("log", True):
                self.log.clear()
                self.stats.reset()
                done.append("log")
            if b.get("quota", True):
                self.quota.set(self.opts.write_quota if b.get("write_quota") is None
                               else b["write_quota"])
                done.append("quota")
            if b.get("faults", False):
                self.faults.clear()
                done.append("faults")
            return ok({"reset": done})
        if path == "/_emulator/seed" and m == "POST":
            try:
                return ok(self.seed(body()))
            except GraphError as e:
                raise ValueError("seed: %s" % e.message)
        if path == "/_emulator/faults":
            if m == "GET":
                return ok({"faults": [r.to_json() for r in self.faults.rules]})
            if m == "POST":
                b = body()
                specs = b if isinstance(b, list) else [b]
                added = [self.faults.add(s).to_json() for s in specs]
                return ok({"faults": added}, 201)
            if m == "DELETE":
                n = len(self.faults.rules)
                self.faults.clear()
                return ok({"removed": n})
        fm = re.match(r"^/_emulator/faults/(\d+)$", path)
        if fm and m == "DELETE":
            if not self.faults.remove(int(fm.group(1))):
                return ok({"error": "no such fault"}, 404)
            return ok({"removed": 1})
        if path == "/_emulator/config" and m in ("GET", "POST"):
            if m == "POST":
                b = body()
                if "latency_ms" in b:
                    self.latency_ms = int(b["latency_ms"])
                if "write_quota" in b:
                    self.quota.set(b["write_quota"])
                    self.opts.write_quota = b["write_quota"]
                if "token_lifetime" in b:
                    self.auth.token_lifetime = int(b["token_lifetime"])
                if "delta_expired" in b:
                    self.api.delta_expired_mode = b["delta_expired"]
                if "delta_token_lifetime" in b:
                    self.api.delta_lifetime = float(b["delta_token_lifetime"])
                if "delta_page_size" in b:
                    self.api.delta_page = int(b["delta_page_size"])
            return ok({"latency_ms": self.latency_ms,
                       "write_quota": self.quota.to_json(time.monotonic()),
                       "token_lifetime": self.auth.token_lifetime,
                       "delta_expired": self.api.delta_expired_mode,
                       "delta_token_lifetime": self.api.delta_lifetime,
                       "delta_page_size": self.api.delta_page})
        if path == "/_emulator/delta/invalidate" and m == "POST":
            mode = body().get("mode", "gone")
            self.api.invalidate_delta(mode)
            return ok({"invalidated": True, "mode": mode})
        if path == "/_emulator/tokens/expire" and m == "POST":
            return ok({"expired": self.auth.expire_all()})
        if path == "/_emulator/tokens" and m == "POST":
            return ok(self.auth.issue())
        return ok({"error": "no such control endpoint: %s %s" % (m, path)}, 404)


# ---------------------------------------------------------------------- start-up

def parse_args(argv):
    p = argparse.ArgumentParser(prog="graph-emulator.py",
                                description="Microsoft Graph v1.0 emulator for tests (loopback only).")
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1; 0 picks a free one")
    p.add_argument("--port-file", help="write the port here once listening")
    p.add_argument("--tls-cert", help="server certificate (PEM); HTTPS when given with --tls-key")
    p.add_argument("--tls-key", help="server private key (PEM)")
    p.add_argument("--tenant", default="00000000-0000-0000-0000-0000000000aa")
    p.add_argument("--client-id", default="00000000-0000-0000-0000-0000000000bb")
    p.add_argument("--client-secret", help="the app's client secret")
    p.add_argument("--client-secret-file", help="read the client secret from this file")
    p.add_argument("--client-cert", action="append",
                   help="the app's registered certificate (PEM); repeatable")
    p.add_argument("--domain", action="append", help="verified domain; repeatable (first = default)")
    p.add_argument("--extension", action="append",
                   help="register a directory extension (full extension_<appid>_name or short "
                        "name) on users and groups; repeatable")
    p.add_argument("--token-lifetime", type=int, default=3599, help="access token lifetime, s")
    p.add_argument("--assertion-skew", type=int, default=300,
                   help="clock skew allowed on client assertion exp/nbf, s")
    p.add_argument("--latency-ms", type=int, default=0, help="fixed latency added to every request")
    p.add_argument("--write-quota", default="3000/150",
                   help="writes per window, N/SECONDS, or 'off' (default 3000/150)")
    p.add_argument("--seed-file", help="JSON document loaded like POST /_emulator/seed")
    p.add_argument("--fault", action="append",
                   help="fault rule, JSON or key=value,... (see README); repeatable")
    p.add_argument("--delta-page-size", type=int, default=100)
    p.add_argument("--delta-token-lifetime", type=float, default=7 * 86400,
                   help="seconds a delta token stays valid (Graph: 7 days)")
    p.add_argument("--delta-expired", default="syncStateNotFound",
                   choices=("gone", "syncStateNotFound", "resyncRequired"),
                   help="answer for a delta token older than --delta-token-lifetime")
    p.add_argument("--soft-delete-security-groups", action="store_true",
                   help="send deleted security groups to deletedItems (default: deleted "
                        "permanently, as the Graph docs revision this follows says)")
    p.add_argument("--log-max", type=int, default=200000, help="request log entries kept")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    opts = p.parse_args(argv)
    if bool(opts.tls_cert) != bool(opts.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if not opts.domain:
        opts.domain = ["contoso.onmicrosoft.com"]
    if not (opts.client_secret or opts.client_secret_file or opts.client_cert):
        opts.client_secret = "emulator-secret"
    try:
        WriteQuota(opts.write_quota)
        for f in opts.fault or []:
            parse_fault_arg(f)
    except ValueError as e:
        p.error(str(e))
    return opts


async def serve(app, opts):
    loop = asyncio.get_running_loop()
    app.loop = loop
    ctx = None
    scheme = "http"
    if opts.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(opts.tls_cert, opts.tls_key)
        ctx.set_alpn_protocols(["http/1.1"])
        scheme = "https"
    server = await loop.create_server(lambda: HttpProtocol(app, scheme), "127.0.0.1", opts.port,
                                      ssl=ctx, reuse_address=True, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    if opts.port_file:
        tmp = opts.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, opts.port_file)
    sys.stderr.write("graph-emulator: listening on %s://127.0.0.1:%d (tenant %s, client %s, "
                     "write quota %s)\n" % (scheme, port, opts.tenant, opts.client_id,
                                            opts.write_quota))
    sys.stderr.flush()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    for conn in list(app.connections):
        if conn.transport is not None:
            conn.transport.close()
    await server.wait_closed()
    sys.stderr.write("graph-emulator: stopped after %d requests\n" % app.stats.c["requests"])


def main(argv):
    opts = parse_args(argv)
    try:
        app = App(opts)
    except (OSError, ValueError, GraphError) as e:
        sys.stderr.write("graph-emulator: %s\n" % getattr(e, "message", e))
        return 2
    asyncio.run(serve(app, opts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
