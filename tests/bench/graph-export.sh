#!/bin/bash
# Benchmark (not a test): Graph export of USERS user creates and MEMBERS membership adds
# against the emulator with LATENCY ms per request. Prints objects/s, HTTP requests and Graph
# write operations (inner $batch items counted each) per created user and per membership
# change, and the ratio to a floor measured in the same run (HTTP round trips x latency /
# parallel connections). Then, with the emulator enforcing a write quota (Graph's 3000/150 s
# rate, window scaled down by QUOTA_SCALE) and the client budget set to the same, the share of
# the quota used.
#   tests/bench/graph-export.sh [USERS] [MEMBERS] [LATENCY_MS] [QUOTA_USERS]
# Defaults: 10000 50000 30 1000. Needs a build: HS_BUILD_DIR (default build).
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"
HS_TOOLS_DIR=${HS_TOOLS_DIR:-$HS_BUILD_DIR/tests/tools}
. "$HS_SOURCE_DIR/tests/graph-emulator/hs-graph-lib.sh"
ge_need

USERS=${1:-10000} MEMBERS=${2:-50000} LATENCY=${3:-30} QUOTA_USERS=${4:-1000}
GROUPS_N=$(( (MEMBERS + USERS - 1) / USERS ))
d=$(hs_mktemp)

mkexports() { # mkexports FILE USERS MEMBERS PREFIX
    "$HS_PY" - "$@" <<'EOF'
import json, sys
path, users, members, p = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
groups = (members + users - 1) // users if members else 0
out = []
for i in range(users):
    out.append({"op": "add", "type": "user", "anchor": "%sU%d" % (p, i), "mv": True,
                "attrs": {"displayName": "Bench %d" % i, "userPrincipalName": "%sb%d@example.test" % (p.lower(), i),
                          "mailNickname": "%sb%d" % (p.lower(), i), "accountEnabled": "true",
                          "givenName": "Bench", "surname": str(i), "jobTitle": "Tester", "department": "QA"}})
left = members
for g in range(groups):
    n = min(users, left)
    left -= n
    out.append({"op": "add", "type": "group", "anchor": "%sG%d" % (p, g), "mv": True,
                "attrs": {"displayName": "Bench group %d" % g, "mailNickname": "%sbg%d" % (p.lower(), g),
                          "mailEnabled": "false", "securityEnabled": "true"},
                "members": [{"op": "add", "anchor": "%sU%d" % (p, (g * 7919 + k) % users)} for k in range(n)]})
json.dump(out, open(path, "w"))
EOF
}

# --- throughput with latency, no quota
ge_start "$d/ge" --latency-ms "$LATENCY" --write-quota off
ge_conf "$d/hs.conf" secret "write_budget = 100000/1s" # no pacing: measure the client
mkexports "$d/exports.json" "$USERS" "$MEMBERS" B
hsg "$d/hs.conf" seed-export "$d/exports.json" >/dev/null
ge_ctl POST /reset '{"state":false}' >/dev/null
t0=$(hs_ms)
out=$(hsg "$d/hs.conf" export)
t1=$(hs_ms)
ge_ctl GET /stats >"$d/stats.json"
ge_ctl GET /state >"$d/state.json"
"$HS_PY" - "$out" "$d/stats.json" "$d/state.json" "$((t1 - t0))" "$USERS" "$MEMBERS" "$LATENCY" "$GROUPS_N" <<'EOF'
import json, sys
out, stats, state = json.loads(sys.argv[1]), json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
ms, users, members, lat, groups = map(int, sys.argv[4:9])
assert out["status"] == "success", out
assert len(state["users"]) == users, len(state["users"])
assert sum(len(g["members"]) for g in state["groups"]) == members
http = stats["requests"] - stats["batch_items"] - stats["token_requests"]  # items are logged too
writes = stats["writes"]
objects = users + groups
floor_ms = http / 4 * lat
print("graph-export: %d users + %d groups, %d membership adds, latency %d ms" % (users, groups, members, lat))
print("  wall time            %.1f s   (%.0f objects/s, %.0f membership adds/s overall)" % (ms / 1000, objects / (ms / 1000), members / (ms / 1000)))
print("  HTTP requests        %d  ($batch: %d carrying %d items)" % (http, stats["batches"], stats["batch_items"]))
print("  Graph writes         %d  (= inner operations; hs-graph counted %d)" % (writes, out["write_requests"]))
sizes = [len(g["members"]) for g in state["groups"]]
binds = sum((n + 19) // 20 for n in sizes)
print("  per created object   %.3f HTTP requests overall (lookups included), %.3f writes" % (http / objects, (writes - binds) / objects))
print("  per membership add   %.3f writes (%d members@odata.bind PATCHes of up to 20)" % (binds / members if members else 0, binds))
print("  floor (HTTP round trips x latency / 4 connections) %.1f s; measured / floor = %.2f" % (floor_ms / 1000, ms / floor_ms if floor_ms else 0))
EOF
ge_stop

# --- write quota: the emulator enforces Graph's rate (3000 per 150 s) scaled to a short
# window; the client budget is set to the same. Share of the quota used = the fastest time
# any client could take for these writes under the quota / the measured time.
W=150 B=3000
if [ "$QUOTA_USERS" -gt 0 ]; then
    scale=10
    W=$((150 / scale)) B=$((3000 / scale))
    ge_start "$d/geq" --write-quota "$B/$W"
    mkdir -p "$d/q"
    ge_conf "$d/q/hs.conf" secret "write_budget = $B/${W}s"
    mkexports "$d/q/exports.json" "$QUOTA_USERS" 0 Q
    hsg "$d/q/hs.conf" seed-export "$d/q/exports.json" >/dev/null
    ge_ctl POST /reset '{"state":false}' >/dev/null
    t0=$(hs_ms)
    out=$(hsg "$d/q/hs.conf" export)
    t1=$(hs_ms)
    stats=$(ge_ctl GET /stats)
    "$HS_PY" - "$out" "$stats" "$((t1 - t0))" "$B" "$W" "$QUOTA_USERS" <<'EOF'
import json, sys
out, stats = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ms, b, w, users = map(int, sys.argv[3:7])
assert out["status"] == "success", out
accepted = stats["writes"] - stats["quota_429"]
# the fastest any client can send N writes under a sliding window of B per W seconds:
# B at once, then B more each time a window has passed
ideal = (-(-accepted // b) - 1) * w
print("quota run: %d user creates, emulator quota %d/%ds, client budget the same" % (users, b, w))
print("  wall time %.1f s, writes %d, refused by the quota (429) %d" % (ms / 1000, stats["writes"], stats["quota_429"]))
print("  share of the quota used: %.0f %% (fastest possible under the quota %.0f s / measured)" % (100.0 * ideal / (ms / 1000.0), ideal))
EOF
fi
