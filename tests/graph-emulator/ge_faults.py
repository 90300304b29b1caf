# Deterministic fault injection (status codes, dropped connections, latency), the Graph
# write quota (writes per sliding window per app+tenant), the request log and counters.

import collections
import json
import re
import time

ACTIONS = ("status", "drop", "latency")


class FaultRule:
    """One rule: which requests it matches and what it does to the ones it fires on.

    Firing is counted per rule over the requests it matches: skip the first `skip`, then fire
    on every `every`-th (default: every one), at most `count` times (default: unlimited)."""

    _next_id = 1

    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("a fault must be a JSON object")
        spec = dict(spec)
        self.id = FaultRule._next_id
        FaultRule._next_id += 1
        action = spec.pop("action", None)
        if action is None:                  # shorthands: status=429, drop=after, latency_ms=200
            if "status" in spec:
                action = "status"
            elif "drop" in spec:
                action = "drop"
                spec["when"] = spec.pop("drop")
            elif "latency_ms" in spec or "ms" in spec:
                action = "latency"
        if action not in ACTIONS:
            raise ValueError("fault action must be one of %s" % ", ".join(ACTIONS))
        self.action = action
        self.status = int(spec.pop("status", 0) or 0)
        if action == "status" and not 400 <= self.status <= 599:
            raise ValueError("status fault needs a 4xx/5xx status")
        ra = spec.pop("retry_after", "default")
        if ra == "default":
            ra = 1 if self.status in (429, 503) else None
        self.retry_after = None if ra is None else int(ra)
        self.throttle_info = spec.pop("throttle_information",
                                      "ResourceUnitLimitExceeded" if self.status == 429 else None)
        self.code = spec.pop("code", None)
        self.message = spec.pop("message", None)
        self.when = spec.pop("when", "before")
        if action == "drop" and self.when not in ("before", "after"):
            raise ValueError("drop fault: when must be before or after")
        self.ms = int(spec.pop("latency_ms", spec.pop("ms", 0)) or 0)
        self.method_src = spec.pop("method", None)
        self.path_src = spec.pop("path", None)
        self.method = re.compile(self.method_src, re.I) if self.method_src else None
        self.path = re.compile(self.path_src) if self.path_src else None
        self.scope = spec.pop("scope", "any")
        if self.scope not in ("any", "outer", "batch"):
            raise ValueError("fault scope must be any, outer or batch")
        self.count = spec.pop("count", None)
        self.every = spec.pop("every", None)
        self.skip = int(spec.pop("skip", 0) or 0)
        self.count = None if self.count is None else int(self.count)
        self.every = None if self.every is None else int(self.every)
        if self.every is not None and self.every < 1:
            raise ValueError("every must be >= 1")
        if spec:
            raise ValueError("unknown fault keys: %s" % ", ".join(sorted(spec)))
        self.matched = 0
        self.fired = 0

    def matches(self, method, path, in_batch):
        if self.scope == "outer" and in_batch or self.scope == "batch" and not in_batch:
            return False
        if self.method is not None and not self.method.fullmatch(method):
            return False
        if self.path is not None and not self.path.search(path):
            return False
        return True

    def step(self):
        """Count one matching request; True when the rule fires on it."""
        if self.count is not None and self.fired >= self.count:
            return False
        self.matched += 1
        n = self.matched - self.skip
        if n <= 0:
            return False
        if self.every is not None and n % self.every != 0:
            return False
        self.fired += 1
        return True

    def label(self):
        if self.action == "status":
            return "status:%d#%d" % (self.status, self.id)
        if self.action == "drop":
            return "drop-%s#%d" % (self.when, self.id)
        return "latency:%dms#%d" % (self.ms, self.id)

    def to_json(self):
        return {"id": self.id, "action": self.action, "status": self.status or None,
                "retry_after": self.retry_after, "when": self.when if self.action == "drop" else None,
                "latency_ms": self.ms if self.action == "latency" else None,
                "method": self.method_src, "path": self.path_src, "scope": self.scope,
                "count": self.count, "every": self.every, "skip": self.skip,
                "code": self.code, "message": self.message,
                "throttle_information": self.throttle_info,
                "matched": self.matched, "fired": self.fired,
                "exhausted": self.count is not None and self.fired >= self.count}


def parse_fault_arg(text):
    """--fault takes JSON or key=value[,key=value...]."""
    text = text.strip()
    if text.startswith("{"):
        return json.loads(text)
    spec = {}
    for part in text.split(","):
        if not part.strip():
            continue
        k, sep, v = part.partition("=")
        if not sep:
            raise ValueError("fault: expected key=value, got %r" % part)
        k, v = k.strip(), v.strip()
        if v.lower() in ("null", "none"):
            spec[k] = None
        elif re.fullmatch(r"-?\d+", v) and k not in ("method", "path", "message", "code"):
            spec[k] = int(v)
        else:
            spec[k] = v
    return spec


class Faults:
    def __init__(self):
        self.rules = []

    def add(self, spec):
        rule = FaultRule(spec)
        self.rules.append(rule)
        return rule

    def clear(self):
        self.rules = []

    def remove(self, rid):
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rid]
        return len(self.rules) != before

    def evaluate(self, method, path, in_batch):
        """(latency_ms, firing status/drop rule or None, labels). Latency rules add up; the
        first status/drop rule that fires wins and later rules do not see the request."""
        if not self.rules:
            return 0, None, None
        latency, labels = 0, []
        for r in self.rules:
            if not r.matches(method, path, in_batch):
                continue
            if not r.step():
                continue
            labels.append(r.label())
            if r.action == "latency":
                latency += r.ms
                continue
            return latency, r, labels
        return latency, None, labels or None


class WriteQuota:
    """Graph's identity write limit: N writes per sliding window per app+tenant."""

    def __init__(self, spec):
        self.set(spec)

    def set(self, spec):
        spec = str(spec).strip().lower()
        if spec in ("off", "0", "none", "unlimited"):
            self.limit, self.window = 0, 0.0
        else:
            n, sep, w = spec.partition("/")
            w = w.rstrip("s") if sep else "150"
            self.limit, self.window = int(n), float(w)
            if self.limit < 1 or self.window <= 0:
                raise ValueError("write quota must be N/SECONDS or off")
        self.stamps = collections.deque()
        self.rejected = 0

    def _expire(self, now):
        q, edge = self.stamps, now - self.window
        while q and q[0] <= edge:
            q.popleft()

    def take(self, now):
        """None if the write may proceed (and is counted), else Retry-After seconds."""
        if not self.limit:
            return None
        self._expire(now)
        if len(self.stamps) >= self.limit:
            self.rejected += 1
            wait = self.stamps[0] + self.window - now
            return max(1, int(wait + 0.999))
        self.stamps.append(now)
        return None

    def usage(self, now):
        if not self.limit:
            return 0.0
        self._expire(now)
        return len(self.stamps) / self.limit

    def to_json(self, now):
        return {"limit": self.limit, "window_seconds": self.window,
                "used": (self._expire(now) or len(self.stamps)) if self.limit else 0,
                "rejected": self.rejected, "enabled": bool(self.limit)}


class RequestLog:
    def __init__(self, maxlen):
        self.entries = collections.deque(maxlen=maxlen)
        self.seq = 0

    def add(self, entry):
        self.seq += 1
        entry["seq"] = self.seq
        self.entries.append(entry)
        return entry

    def since(self, seq, limit):
        out = [e for e in self.entries if e["seq"] > seq]
        return out[:limit] if limit else out

    def clear(self):
        self.entries.clear()


class Stats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.c = collections.Counter()
        self.status = collections.Counter()
        self.started = time.time()

    def count_response(self, status, is_write, in_batch):
        self.c["requests"] += 1
        if in_batch:
            self.c["batch_items"] += 1
        if is_write:
            self.c["writes"] += 1
        self.status[str(status)] += 1
        if status == 429:
            self.c["throttled_429"] += 1
        elif status >= 500:
            self.c["server_errors_5xx"] += 1

    def to_json(self):
        out = dict(self.c)
        for k in ("requests", "writes", "batch_items", "batches", "throttled_429",
                  "quota_429", "server_errors_5xx", "dropped", "faults_applied",
                  "token_requests", "tokens_issued", "token_failures", "unauthorized_401",
                  "member_object_deletes"):
            out.setdefault(k, 0)
        out["by_status"] = dict(self.status)
        out["since"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started))
        return out
