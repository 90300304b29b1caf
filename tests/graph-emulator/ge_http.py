# A small HTTP/1.1 server on asyncio: keep-alive, Content-Length and chunked bodies,
# Expect: 100-continue, TLS through the event loop. One request at a time per connection;
# the application answers with a Response, an optional delay, or an instruction to drop the
# connection without answering.

import asyncio
import email.utils
import time

MAX_HEADER = 64 * 1024
MAX_BODY = 8 * 1024 * 1024

REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 410: "Gone", 411: "Length Required",
    412: "Precondition Failed", 413: "Request Entity Too Large", 415: "Unsupported Media Type",
    424: "Failed Dependency", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}

_date_cache = [0, ""]


def http_date():
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = email.utils.formatdate(now, usegmt=True)
    return _date_cache[1]


class Request:
    __slots__ = ("method", "target", "path", "query", "headers", "body", "scheme", "host",
                 "request_id", "client_request_id", "in_batch", "batch_rid", "batch_item",
                 "conn", "started", "arrived")

    def __init__(self, method, target, headers, body, scheme):
        self.method = method
        self.target = target
        path, _, query = target.partition("?")
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.scheme = scheme
        self.host = headers.get("host") or "127.0.0.1"
        self.in_batch = False
        self.batch_rid = None
        self.batch_item = None
        self.request_id = None
        self.client_request_id = None
        self.conn = None
        self.started = time.monotonic()
        self.arrived = time.time()  # tokens are checked as of this time

    @property
    def base(self):
        return "%s://%s" % (self.scheme, self.host)


class Response:
    __slots__ = ("status", "headers", "body", "drop", "after")

    def __init__(self, status, body=b"", headers=None):
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else []
        self.drop = False
        self.after = None           # callable run after the response is handed to the socket


def drop_response():
    r = Response(0)
    r.drop = True
    return r


class HttpProtocol(asyncio.Protocol):
    """The app is called as app.dispatch(request, done) and calls done(response) once, now or
    later (latency), so a slow request never blocks the event loop."""

    def __init__(self, app, scheme):
        self.app = app
        self.scheme = scheme
        self.transport = None
        self.buf = bytearray()
        self.busy = False
        self.closing = False
        self.pending = None
        self.sent_continue = False
        self.in_loop = False

    def connection_made(self, transport):
        self.transport = transport
        self.app.connections.add(self)

    def connection_lost(self, exc):
        self.closing = True
        self.app.connections.discard(self)

    def data_received(self, data):
        self.buf += data
        if not self.busy:
            self.parse_loop()

    def parse_loop(self):
        if self.in_loop:                   # finish() called from inside dispatch()
            return
        self.in_loop = True
        try:
            while not self.busy and not self.closing:
                req = self.try_parse()
                if req is None:
                    return
                self.busy = True
                try:
                    self.app.dispatch(req, self.finish)
                except Exception as exc:   # a bug in a handler must not kill the server
                    self.app.internal_error(req, exc, self.finish)
        finally:
            self.in_loop = False

    def error_close(self, status):
        body = b'{"error":{"code":"BadRequest","message":"Malformed HTTP request."}}'
        self.write_response(Response(status, body, [("Content-Type", "application/json")]), True)
        self.closing = True
        self.transport.close()

    def try_parse(self):
        buf = self.buf
        if self.pending is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADER:
                    self.error_close(431)
                return None
            try:
                head = buf[:end].decode("latin-1")
                lines = head.split("\r\n")
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                self.error_close(400)
                return None
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            chunked = "chunked" in headers.get("transfer-encoding", "").lower()
            try:
                length = 0 if chunked else int(headers.get("content-length") or 0)
            except ValueError:
                self.error_close(400)
                return None
            if length > MAX_BODY or length < 0:
                self.error_close(413)
                return None
            keep = version == "HTTP/1.1"
            conn_hdr = headers.get("connection", "").lower()
            if "close" in conn_hdr:
                keep = False
            elif "keep-alive" in conn_hdr:
                keep = True
            self.pending = (method, target, headers, end + 4, length, chunked, keep)
            self.sent_continue = False
        method, target, headers, start, length, chunked, keep = self.pending
        if chunked:
            body, consumed = self.dechunk(start)
            if body is None:
                self.maybe_continue(headers)
                return None
        else:
            consumed = start + length
            if len(buf) < consumed:
                self.maybe_continue(headers)
                return None
            body = bytes(buf[start:consumed])
        del buf[:consumed]
        self.pending = None
        req = Request(method, target, headers, body, self.scheme)
        req.conn = keep
        return req

    def dechunk(self, pos):
        buf, out = self.buf, bytearray()
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None, 0
            try:
                size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
            except ValueError:
                self.error_close(400)
                return None, 0
            pos = eol + 2
            if size == 0:
                end = buf.find(b"\r\n", pos)      # no trailers expected; skip them if any
                while end >= 0 and end != pos:
                    pos = end + 2
                    end = buf.find(b"\r\n", pos)
                if end < 0:
                    return None, 0
                return bytes(out), end + 2
            if len(buf) < pos + size + 2:
                return None, 0
            out += buf[pos:pos + size]
            if len(out) > MAX_BODY:
                self.error_close(413)
                return None, 0
            pos += size + 2

    def maybe_continue(self, headers):
        if not self.sent_continue and headers.get("expect", "").lower() == "100-continue":
            self.sent_continue = True
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def write_response(self, resp, close):
        status = resp.status
        parts = ["HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, "Unknown")),
                 "Date: ", http_date(), "\r\n"]
        for k, v in resp.headers:
            parts.append("%s: %s\r\n" % (k, v))
        body = resp.body
        if status != 204 and status >= 200:
            parts.append("Content-Length: %d\r\n" % len(body))
        else:
            body = b""
        if close:
            parts.append("Connection: close\r\n")
        parts.append("\r\n")
        self.transport.write("".join(parts).encode("latin-1") + body)

    def finish(self, req, resp):
        if self.closing:
            return
        if resp.drop:
            self.closing = True
            self.transport.abort()
            return
        close = not req.conn
        self.write_response(resp, close)
        if resp.after is not None:
            resp.after()
        if close:
            self.closing = True
            self.transport.close()
            return
        self.busy = False
        if self.buf:
            self.parse_loop()
