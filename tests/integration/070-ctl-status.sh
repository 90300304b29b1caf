#!/bin/bash
# hybridsyncctl status on a store filled by hs-fixture-store: text and --json, the daemon
# stopped (no pid, a dead pid) and running (a live pid, its state keys win over the file),
# the staging flag, config hash, last cycle, queue totals and fingerprint, last reload; usage
# errors exit 2, a missing database exits 1, a config with errors still shows the status; no
# secret is ever printed.
. "$(dirname "$0")/../lib/common.sh"

FIXTURE=$HS_TOOLS_DIR/hs-fixture-store
[ -x "$FIXTURE" ] || hs_fail "test driver not built: $FIXTURE"
T=$(hs_mktemp)
MARKER=SECRET-MARKER-$RANDOM$RANDOM
export TZ=UTC

mkdir -p "$T/secrets"
printf '%s-ad\n' "$MARKER" > "$T/secrets/ad-password"
printf '%s-graph\n' "$MARKER" > "$T/secrets/graph-secret"
chmod 600 "$T/secrets/"*
cat > "$T/hybridsync.conf" <<EOF
[sync]
staging = yes
database = $T/hybridsync.db
server_name = standby-1

[ad]
uri = ldaps://dc1.corp.example.com
bind_dn = CN=svc-sync,OU=Service,DC=corp,DC=example,DC=com
bind_password_file = $T/secrets/ad-password
base_dn = DC=corp,DC=example,DC=com

[graph]
tenant = 11111111-2222-3333-4444-555555555555
client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
client_secret_file = $T/secrets/graph-secret
EOF
ctl() { "$HYBRIDSYNCCTL" -c "$T/hybridsync.conf" "$@"; }
json() { # json FILE PYTHON-EXPRESSION: evaluates the expression with `d` the parsed file
    "$HS_PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"
}
file_hash=$("$HYBRIDSYNCD" --check -c "$T/hybridsync.conf" | sed -n 's/^config hash: //p')
[ -n "$file_hash" ] || hs_fail "hybridsyncd --check gave no hash"

cat > "$T/fixture.json" <<'EOF'
{
  "state": {"daemon.state": "idle", "daemon.config_hash": "cafe",
            "daemon.reload.time": "1700000000", "daemon.reload.ok": "0",
            "daemon.reload.error": "/etc/hybridsync/hybridsync.conf:7: unknown key 'foo'"},
  "runs": [
    {"type": "initial", "status": "success",
     "steps": [{"connector": "ad", "step": "full-import", "status": "success",
                "counters": {"adds": 3, "objects": 3}}]},
    {"type": "delta", "status": "stopped-deletion-threshold-exceeded",
     "steps": [{"connector": "graph", "step": "export",
                "status": "stopped-deletion-threshold-exceeded"}]}
  ],
  "exports": [
    {"op": "add", "type": "user", "anchor": "a1", "dn": "CN=A1,DC=corp",
     "changes": {"displayName": {"new": ["A1"]}}},
    {"op": "update", "type": "user", "anchor": "a2", "dn": "CN=A2,DC=corp", "target_id": "t2",
     "changes": {"displayName": {"old": ["x"], "new": ["y"]}}},
    {"op": "delete", "type": "user", "anchor": "a3", "dn": "CN=A3,DC=corp", "target_id": "t3"},
    {"op": "delete", "type": "group", "anchor": "g4", "dn": "CN=G4,DC=corp", "target_id": "t4"}
  ]
}
EOF
"$FIXTURE" "$T/hybridsync.db" "$T/fixture.json"

# --- stopped: no pid key ----------------------------------------------------------------------
ctl status --json > "$T/status.json"
hs_assert_eq stopped "$(json "$T/status.json" 'd["state"]')" "state without a pid"
hs_assert_eq None "$(json "$T/status.json" 'd["pid"]')" "pid without a daemon"
hs_assert_eq True "$(json "$T/status.json" 'd["staging"]')" "staging from the config file"
hs_assert_eq "$file_hash" "$(json "$T/status.json" 'd["config_hash"]')" \
    "config hash of the file while stopped"
hs_assert_eq delta "$(json "$T/status.json" 'd["last_cycle"]["type"]')" "last cycle type"
hs_assert_eq stopped-deletion-threshold-exceeded \
    "$(json "$T/status.json" 'd["last_cycle"]["status"]')" "last cycle status"
hs_assert_eq True "$(json "$T/status.json" \
    'd["last_cycle"]["finished"] >= d["last_cycle"]["started"] > 1600000000')" "cycle times"
hs_assert_eq "1 1 2 4" "$(json "$T/status.json" \
    '" ".join(str(d["pending_exports"][k]) for k in ("add", "update", "delete", "total"))')" \
    "pending export totals"
fp=$(json "$T/status.json" 'd["pending_exports"]["fingerprint"]')
[[ $fp =~ ^[0-9a-f]{64}$ ]] || hs_fail "fingerprint is not 64 hex digits: $fp"
pe_fp=$(ctl pending-exports | sed -n 's/^queue fingerprint: //p')
hs_assert_eq "$fp" "$pe_fp" "status and pending-exports show the same fingerprint"
hs_assert_eq "1700000000 False" "$(json "$T/status.json" \
    '"%s %s" % (d["last_reload"]["time"], d["last_reload"]["ok"])')" "last reload"
hs_assert_eq "/etc/hybridsync/hybridsync.conf:7: unknown key 'foo'" \
    "$(json "$T/status.json" 'd["last_reload"]["error"]')" "last reload error"
hs_assert_eq None "$(json "$T/status.json" 'd["next_cycle"]')" "no next cycle while stopped"

ctl status > "$T/status.txt"
cat "$T/status.txt"
grep -q '^hybridsyncd: *stopped$' "$T/status.txt" || hs_fail "text: daemon not shown stopped"
grep -q '^mode: *staging' "$T/status.txt" || hs_fail "text: staging mode not shown"
grep -q "^config hash: *$file_hash\$" "$T/status.txt" || hs_fail "text: config hash"
grep -q '^last cycle: *#2 delta stopped-deletion-threshold-exceeded' "$T/status.txt" ||
    hs_fail "text: last cycle"
grep -q '^pending exports: *1 add, 1 update, 2 delete (4 total' "$T/status.txt" ||
    hs_fail "text: pending exports"
grep -q "^queue fingerprint: *$fp\$" "$T/status.txt" || hs_fail "text: fingerprint"
grep -q "^last reload: *2023-11-14 22:13:20 FAILED: /etc/hybridsync/hybridsync.conf:7" \
    "$T/status.txt" || hs_fail "text: failed reload"

# --- a pid that is gone is stopped too ----------------------------------------------------------
sleep 0 & dead=$!
wait "$dead"
printf '{"state": {"daemon.pid": "%s"}}\n' "$dead" > "$T/dead.json"
"$FIXTURE" "$T/hybridsync.db" "$T/dead.json"
ctl status --json > "$T/status.json"
hs_assert_eq stopped "$(json "$T/status.json" 'd["state"]')" "state with a dead pid"

# --- running: a live pid; the daemon's keys win over the file --------------------------------
sleep 600 & live=$!
hs_on_exit "kill $live"
cat > "$T/live.json" <<EOF
{"state": {"daemon.pid": "$live", "daemon.state": "importing",
           "daemon.step": "delta import: 40/100 objects", "daemon.staging": "0",
           "daemon.next_cycle": "2000000000",
           "export.threshold": "2 deletes > limit 1"}}
EOF
"$FIXTURE" "$T/hybridsync.db" "$T/live.json"
ctl status --json > "$T/status.json"
hs_assert_eq importing "$(json "$T/status.json" 'd["state"]')" "state of a running daemon"
hs_assert_eq "$live" "$(json "$T/status.json" 'd["pid"]')" "pid of a running daemon"
hs_assert_eq False "$(json "$T/status.json" 'd["staging"]')" "staging of the running config"
hs_assert_eq cafe "$(json "$T/status.json" 'd["config_hash"]')" "hash of the running config"
hs_assert_eq "$file_hash" "$(json "$T/status.json" 'd["config_file_hash"]')" "hash of the file"
hs_assert_eq 2000000000 "$(json "$T/status.json" 'd["next_cycle"]')" "next cycle"
ctl status > "$T/status.txt"
cat "$T/status.txt"
grep -q "^hybridsyncd: *running (pid $live), importing (delta import: 40/100 objects)" \
    "$T/status.txt" || hs_fail "text: running daemon"
grep -q '^mode: *active' "$T/status.txt" || hs_fail "text: active mode"
grep -q "^config hash: *cafe (the file has $file_hash: not loaded yet)" "$T/status.txt" ||
    hs_fail "text: a config not reloaded yet is pointed out"
grep -q '^next cycle: *2033-05-18 03:33:20' "$T/status.txt" || hs_fail "text: next cycle"
grep -q '^deletion threshold: *EXCEEDED: 2 deletes > limit 1' "$T/status.txt" ||
    hs_fail "text: threshold"

# --- a config being edited (with errors) still shows the status --------------------------------
cp "$T/hybridsync.conf" "$T/broken.conf"
printf 'no_such_key = 1\n' >> "$T/broken.conf"
rc=0
"$HYBRIDSYNCCTL" -c "$T/broken.conf" status --json > "$T/status.json" 2> "$T/err" || rc=$?
hs_assert_eq 0 "$rc" "status with a config that has errors"
hs_assert_contains "$(cat "$T/err")" "has errors" "the config errors are pointed out"
hs_assert_eq importing "$(json "$T/status.json" 'd["state"]')" "state read from its database"

# --- exit codes ---------------------------------------------------------------------------------
code() { # code EXPECTED ARGS...
    local expected=$1 got=0
    shift
    ctl "$@" > /dev/null 2>&1 || got=$?
    hs_assert_eq "$expected" "$got" "exit code of hybridsyncctl $*"
}
code 2 status --bogus
code 2 status extra
code 2 no-such-verb
code 0 status
rc=0
"$HYBRIDSYNCCTL" > /dev/null 2>&1 || rc=$?
hs_assert_eq 2 "$rc" "exit code without a command"
sed "s|^database = .*|database = $T/none.db|" "$T/hybridsync.conf" > "$T/nodb.conf"
rc=0
msg=$("$HYBRIDSYNCCTL" -c "$T/nodb.conf" status 2>&1) || rc=$?
hs_assert_eq 1 "$rc" "exit code without a database"
hs_assert_contains "$msg" "$T/none.db" "the missing database is named"
rc=0
"$HYBRIDSYNCCTL" -c "$T/no-such.conf" status > /dev/null 2>&1 || rc=$?
hs_assert_eq 1 "$rc" "exit code without a config file"

if grep -rq "$MARKER" "$T"/*.txt "$T"/*.json "$T/err"; then
    hs_fail "a secret was printed"
fi
echo "status: all checks passed"
