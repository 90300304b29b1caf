#!/bin/bash
# hybridsyncctl runs: --json (newest first, steps with counters, error_count and errors with
# step/anchor/dn/code/message), --last N, the text view (a line per run, a table of steps, the
# first errors), a running cycle, an empty history, usage errors.
. "$(dirname "$0")/../lib/common.sh"

. "$(dirname "$0")/../lib/ctl-setting.sh"

hs_assert_contains "$(echo '{}' > "$T/e.json"; "$FIXTURE" "$T/hybridsync.db" "$T/e.json"; ctl runs)" \
    "No runs yet." "empty history"
hs_assert_eq "[]" "$(ctl runs --json)" "empty history as JSON"

# 15 errors in one step: text shows the first 10 and says how many more
errors=$("$HS_PY" -c 'import json; print(json.dumps([{"anchor": "anc-%d" % i, "dn": "CN=User %d,DC=corp" % i, "code": "expression-error", "message": "Error(\"no UPN\") #%d" % i} for i in range(15)]))')
cat > "$T/fixture.json" <<EOF
{
  "runs": [
    {"type": "initial", "status": "success", "config_hash": "h1",
     "steps": [{"connector": "ad", "step": "full-import", "status": "success",
                "counters": {"adds": 120, "objects": 120}},
               {"connector": "graph", "step": "full-import", "status": "success",
                "counters": {"adds": 80, "objects": 80}},
               {"connector": "ad", "step": "full-sync", "status": "success",
                "counters": {"adds": 120, "objects": 200}}]},
    {"type": "delta", "status": "completed-sync-errors", "config_hash": "h1",
     "steps": [{"connector": "ad", "step": "delta-import", "status": "success",
                "counters": {"updates": 17, "deletes": 1, "objects": 18}},
               {"connector": "ad", "step": "delta-sync", "status": "completed-sync-errors",
                "counters": {"updates": 2, "errors": 15, "objects": 17},
                "errors": $errors}],
     "errors": [{"code": "lease", "message": "another server's lease is fresh"}]},
    {"type": "delta", "status": "stopped-server-down",
     "steps": [{"connector": "ad", "step": "delta-import", "status": "stopped-server-down"}],
     "errors": [{"code": "server-down", "message": "Can't contact LDAP server"}]},
    {"type": "delta", "status": null,
     "steps": [{"connector": "ad", "step": "delta-import"}]}
  ]
}
EOF
"$FIXTURE" "$T/hybridsync.db" "$T/fixture.json"

ctl runs --json > "$T/runs.json"
"$HS_PY" - "$T/runs.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert [r["id"] for r in d] == [4, 3, 2, 1], "newest first"
for r in d:
    for k in ("id", "type", "status", "started", "finished", "steps", "error_count", "errors"):
        assert k in r, (k, r)
    for s in r["steps"]:
        for k in ("connector", "step", "status", "started", "finished", "adds", "updates",
                  "deletes", "errors", "objects"):
            assert k in s, (k, s)
running, down, errs, initial = d
assert running["status"] == "running" and running["finished"] is None
assert running["steps"][0]["status"] == "running"
assert down["status"] == "stopped-server-down" and down["error_count"] == 1
assert down["errors"][0]["step"] is None and down["errors"][0]["code"] == "server-down"
assert errs["type"] == "delta" and errs["status"] == "completed-sync-errors"
assert errs["error_count"] == 16 and len(errs["errors"]) == 16
e = errs["errors"][0]
assert (e["step"], e["anchor"], e["dn"], e["code"], e["message"]) == \
    ("delta-sync", "anc-0", "CN=User 0,DC=corp", "expression-error", 'Error("no UPN") #0'), e
st = errs["steps"][0]
assert (st["connector"], st["step"], st["updates"], st["deletes"], st["objects"]) == \
    ("ad", "delta-import", 17, 1, 18), st
assert initial["type"] == "initial" and [s["step"] for s in initial["steps"]] == \
    ["full-import", "full-import", "full-sync"]
assert initial["steps"][1]["connector"] == "graph" and initial["steps"][1]["adds"] == 80
assert initial["config_hash"] == "h1"
assert initial["finished"] >= initial["started"] > 1600000000
print("ok: runs --json")
EOF
hs_assert_eq "3 2" "$(ctl runs --json --last 2 | "$HS_PY" -c \
    'import json,sys; d=json.load(sys.stdin); print(d[1]["id"], len(d))')" "--last 2"

ctl runs > "$T/runs.txt"
cat "$T/runs.txt"
grep -q '^run #4  delta  running  started .*  running  0 error(s)$' "$T/runs.txt" ||
    hs_fail "text: the running cycle"
grep -q '^run #2  delta  completed-sync-errors  started .*  took [0-9]*s  16 error(s)$' \
    "$T/runs.txt" || hs_fail "text: a run line"
grep -q '^  CONNECTOR  STEP  *STATUS  *STARTED  *DURATION  *OBJECTS  *ADDS  *UPDATES  *DELETES  *ERRORS$' \
    "$T/runs.txt" || hs_fail "text: step table header"
grep -Eq '^  ad  +delta-import  +success  +[0-9-]+ [0-9:]+  +[0-9]+s  +18  +0  +17  +1  +0$' \
    "$T/runs.txt" || hs_fail "text: a step row with its counters"
grep -q '^    ad delta-sync CN=User 0,DC=corp (anc-0): expression-error$' "$T/runs.txt" ||
    hs_fail "text: an error line"
grep -q '^      Error("no UPN") #0$' "$T/runs.txt" || hs_fail "text: the error message"
grep -q 'and 6 more (hybridsyncctl runs --json)' "$T/runs.txt" || hs_fail "text: errors capped"
grep -q '^    ad delta-sync CN=User 9,' "$T/runs.txt" || hs_fail "text: the 10th error"
grep -q 'CN=User 10,' "$T/runs.txt" && hs_fail "text: more than 10 errors shown"
hs_assert_eq 1 "$(ctl runs --last 1 | grep -c '^run #')" "text --last 1"
# status: the last finished cycle, and the open one a stopped daemon left
ctl status > "$T/status.txt"
grep -q '^last cycle: *#3 delta stopped-server-down' "$T/status.txt" ||
    hs_fail "status: the last finished cycle"
grep -q '^unfinished cycle: *#4 delta, started .*, never ended$' "$T/status.txt" ||
    hs_fail "status: the cycle left open"
hs_assert_eq "4 running" "$(ctl status --json | "$HS_PY" -c \
    'import json,sys; c=json.load(sys.stdin)["current_cycle"]; print(c["id"], c["status"])')" \
    "status --json: current_cycle"

code() { # code EXPECTED ARGS...
    local expected=$1 got=0
    shift
    ctl "$@" > /dev/null 2>&1 || got=$?
    hs_assert_eq "$expected" "$got" "exit code of hybridsyncctl $*"
}
code 2 runs --last
code 2 runs --last many
code 2 runs --last -1
code 2 runs extra
code 0 runs --last 0
echo "runs: all checks passed"
