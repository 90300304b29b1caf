#!/bin/bash
# Per-object errors reach the journal, not only the run history: a staging server imports a
# directory in which one user has an oversized value (a per-object import error). The cycle
# completes with warnings (`hybridsyncd --once` exits 0, the other objects are imported), and
# the log has exactly one line for that object, with the import error's MESSAGE_ID and the
# object's DN as fields (HYBRIDSYNC_LOG_FIELDS=1 puts the journal's fields on the stderr line).
# A Graph import that fails as a whole (Graph answers 403 to the user listing) is the step's
# stop, logged with the step: no per-object error line and no "more errors" line for it.
# A custom rule that fails for every user (more than 100 of them): 100 lines with the sync
# error's MESSAGE_ID, then one line with the number left.
. "$(dirname "$0")/../lib/common.sh"

GEN_ARGS="--users 130"
. "$(dirname "$0")/../lib/daemon-sandbox.sh"

export HYBRIDSYNC_LOG_FIELDS=1
A=$T/a
write_conf "$A" staging-a yes
victim=$(user_dns | sed -n 1p)
head -c 1200000 /dev/zero | tr '\0' 'x' >"$T/big.txt"
ldapmodify "${ADMIN[@]}" >/dev/null <<EOF2
dn: $victim
changetype: modify
replace: description
description:< file://$T/big.txt
EOF2
rc=0
"$HYBRIDSYNCD" --once -c "$A/hybridsync.conf" 2>"$A/once.log" || rc=$?
hs_assert_eq 0 "$rc" "--once exit code for a cycle with a per-object error"
hs_assert_eq completed-warnings "$(sql "$A" "SELECT status FROM runs ORDER BY id DESC LIMIT 1")" \
    "run status"
hs_assert_eq 1 "$(sql "$A" "SELECT count(*) FROM run_errors WHERE code = 'value-too-large'")" \
    "the error in the run history"
lines=$(grep -F "full-import of $victim failed: value-too-large" "$A/once.log" || true)
[ -n "$lines" ] || { cat "$A/once.log"; hs_fail "no log line for the object's error"; }
hs_assert_eq 1 "$(printf '%s\n' "$lines" | wc -l)" "log lines for the one object"
hs_assert_contains "$lines" "MESSAGE_ID=4c67769ea276482a83cd644d58d64f56 " "the import error's MESSAGE_ID"
hs_assert_contains "$lines" "HYBRIDSYNC_DN=$victim" "the object's DN as a field"
hs_assert_contains "$lines" "HYBRIDSYNC_CONNECTOR=ad" "the connector as a field"
imported=$(sql "$A" "SELECT count(*) FROM cs_objects c JOIN connectors k ON k.id = c.connector_id WHERE k.name = 'ad'")
[ "$imported" -ge 10 ] || hs_fail "only $imported objects imported besides the one in error"
echo "ok: $imported objects imported, the one error logged once"

echo "== a Graph import that fails as a whole is no per-object error"
# Graph refuses to list users (403): the import stops and records Graph's error code
emu -X POST -H 'Content-Type: application/json' --data '{"status":403,"path":"^/v1.0/users"}' \
    "$EMU/_emulator/faults" >/dev/null
rc=0
"$HYBRIDSYNCD" --once -c "$A/hybridsync.conf" 2>"$A/once2.log" || rc=$?
hs_assert_eq 1 "$rc" "--once exit code for a cycle whose Graph import stopped"
graph_status=$(sql "$A" "SELECT p.status FROM run_steps p WHERE p.run_id = (SELECT max(id) FROM runs) AND p.connector = 'graph'")
case "$graph_status" in stopped-*) echo "ok: the Graph import stopped: $graph_status" ;;
*) cat "$A/once2.log"; hs_fail "the Graph import did not stop: $graph_status" ;; esac
if grep -E "MESSAGE_ID=(4c67769ea276482a83cd644d58d64f56|ce08fe64c4ef4a6d8ddb21c143e36c02)|more per-object errors" "$A/once2.log" | grep -v -F "$victim"; then
    hs_fail "the Graph import's stop was logged as a per-object error"
fi
echo "ok: no per-object error line for the Graph import's stop"

echo "== a rule that fails for every user: 100 lines, then the count of the rest"
emu -X DELETE "$EMU/_emulator/faults" >/dev/null
mkdir "$T/rules"
cat >"$T/rules/10-fail.json" <<'JSON'
{"name": "Custom - fails", "direction": "inbound", "connector": "ad",
 "sourceObjectType": "user", "targetObjectType": "person", "linkType": "Join",
 "precedence": 50,
 "attributeFlows": [{"target": "displayName", "expression": "Error(\"no display name\")"}]}
JSON
B=$T/b
write_conf "$B" staging-b yes "rules = $T/rules"
rc=0
"$HYBRIDSYNCD" --once -c "$B/hybridsync.conf" 2>"$B/once.log" || rc=$?
n_users=$(sql "$B" "SELECT count(*) FROM cs_objects c JOIN connectors k ON k.id = c.connector_id WHERE k.name = 'ad' AND c.object_class IN ('user', 'inetOrgPerson')")
n_err=$(sql "$B" "SELECT count(*) FROM run_errors e JOIN run_steps p ON p.id = e.step_id WHERE p.step LIKE '%sync' AND e.message LIKE '%no display name%'")
[ "$n_err" -gt 100 ] || { cat "$B/once.log"; hs_fail "only $n_err sync errors for $n_users users"; }
logged=$(grep -c "MESSAGE_ID=6fc0c8628e42449983c0ec708a645b6d " "$B/once.log" || true)
hs_assert_eq 100 "$logged" "sync error lines in the log (the cap)"
hs_assert_contains "$(cat "$B/once.log")" "$((n_err - 100)) more per-object errors; 'hybridsyncctl runs' lists them all" \
    "the count of the errors not logged"
echo "ok: $n_err sync errors: 100 logged, the other $((n_err - 100)) counted"
