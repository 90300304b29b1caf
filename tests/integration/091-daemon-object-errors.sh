#!/bin/bash
# Per-object errors reach the journal, not only the run history: a staging server imports a
# directory in which one user has an oversized value (a per-object import error). The cycle
# completes with warnings (`hybridsyncd --once` exits 0, the other objects are imported), and
# the log has one line for that object naming its DN and error code (in the journal it carries
# MESSAGE_ID 4c67769ea276482a83cd644d58d64f56 and the HYBRIDSYNC_DN field).
. "$(dirname "$0")/../lib/common.sh"

. "$(dirname "$0")/../lib/daemon-sandbox.sh"

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
imported=$(sql "$A" "SELECT count(*) FROM cs_objects c JOIN connectors k ON k.id = c.connector_id WHERE k.name = 'ad'")
[ "$imported" -ge 10 ] || hs_fail "only $imported objects imported besides the one in error"
echo "ok: $imported objects imported, the one error logged once"
