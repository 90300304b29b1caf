#!/bin/bash
# The deletion threshold, end to end: an active server (deletion_threshold = 3) exports a
# seeded directory; five users are deleted in the directory; the next cycle stops before
# writing anything (stopped-deletion-threshold-exceeded, status key, metrics, log with the
# MESSAGE_ID text) and `hybridsyncd --once` exits 1 on it. allow-deletes lets exactly that
# queue through once (audited with uid and fingerprint): a changed queue is stopped again;
# allowed again, the deletes reach Graph and the allowance is used up.
. "$(dirname "$0")/../lib/common.sh"

. "$(dirname "$0")/../lib/daemon-sandbox.sh"

A=$T/a
write_conf "$A" active-a no "deletion_threshold = 3"
start_daemon "$A"
st=$(sync_wait "$A")
case "$st" in success|completed-*) echo "ok: initial export: $st" ;; *) cat "$A/daemon.log"; hs_fail "cycle status $st" ;; esac
users=$(emu_eval 'len(s["users"])')
[ "$users" -ge 10 ] || hs_fail "only $users users exported"
echo "ok: $users users in the tenant"

echo "== five deletes in the directory: the export stops before writing"
user_dns | sed -n '2,6p' > "$T/victims"
while read -r dn; do ldapdelete "${ADMIN[@]}" "$dn"; done < "$T/victims"
writes=$(emu_eval 'len(data_writes)')
st=$(sync_wait "$A")
hs_assert_eq stopped-deletion-threshold-exceeded "$st" "cycle status"
hs_assert_eq "$writes" "$(emu_eval 'len(data_writes)')" "write requests during the stopped cycle (the lease renewal aside)"
hs_assert_eq "$users" "$(emu_eval 'len(s["users"])')" "users in the tenant"
hs_assert_eq "5 deletes > limit 3" "$(key "$A" export.threshold)" "status key export.threshold"
grep -q '^hybridsync_deletion_threshold_exceeded 1$' "$A/metrics.prom" || hs_fail "metrics do not show the threshold hit"
grep -q '^hybridsync_pending_exports{op="delete"} 5$' "$A/metrics.prom" || hs_fail "metrics do not count 5 pending deletes"
hs_assert_contains "$(cat "$A/daemon.log")" "Deletion threshold exceeded: 5 deletes > limit 3" "threshold logged"

echo "== hybridsyncd --once on the same queue exits 1"
kill -TERM "$(cat "$A/pid")"
wait "$(cat "$A/pid")" || hs_fail "hybridsyncd exited with $? on SIGTERM"
rc=0
HYBRIDSYNC_CONTROL_SOCKET=$A/control "$HYBRIDSYNCD" --once -c "$A/hybridsync.conf" 2>"$A/once.log" || rc=$?
hs_assert_eq 1 "$rc" "--once exit code for a stopped-deletion-threshold-exceeded cycle"
hs_assert_eq stopped-deletion-threshold-exceeded "$(sql "$A" "SELECT status FROM runs ORDER BY id DESC LIMIT 1")" "--once run status"
start_daemon "$A"
sync_wait "$A" >/dev/null

echo "== allow-deletes binds to the pending deletes"
out=$(ctl_request "$A" '{"verb":"allow-deletes"}')
hs_assert_eq 5 "$(jget 'd["deletes"]' <<<"$out")" "deletes allowed"
fp=$(jget 'd["fingerprint"]' <<<"$out")
hs_assert_eq "deletes-allowed|$fp" "$(sql "$A" "SELECT kind, fingerprint FROM audit_events WHERE kind = 'deletes-allowed'")" "allowance audited"
hs_assert_eq "$(id -u)" "$(sql "$A" "SELECT uid FROM audit_events WHERE kind = 'deletes-allowed'")" "the caller's uid is recorded"
sixth=$(user_dns | sed -n 2p)
ldapdelete "${ADMIN[@]}" "$sixth"
st=$(sync_wait "$A")
hs_assert_eq stopped-deletion-threshold-exceeded "$st" "a queue that changed after allow-deletes is stopped again"
hs_assert_eq "6 deletes > limit 3" "$(key "$A" export.threshold)" "status key export.threshold"
hs_assert_eq "$writes" "$(emu_eval 'len(data_writes)')" "write requests so far since the deletes (the lease renewals aside)"
out=$(ctl_request "$A" '{"verb":"allow-deletes"}')
hs_assert_eq 6 "$(jget 'd["deletes"]' <<<"$out")" "deletes allowed the second time"
echo "== a change other than a delete, imported before the export, does not void the allowance"
other=$(user_dns | sed -n 5p)
printf '%s\nchangetype: modify\nreplace: displayName\ndisplayName: Changed After Allow\n' \
    "$(ldif_dn "$other")" | ldapmodify "${ADMIN[@]}" >/dev/null
st=$(sync_wait "$A")
case "$st" in success|completed-*) echo "ok: allowed export: $st" ;; *) hs_fail "cycle status $st" ;; esac
hs_assert_eq $((users - 6)) "$(emu_eval 'len(s["users"])')" "users in the tenant after the allowed deletes"
hs_assert_eq 1 "$(emu_eval 'len([u for u in s["users"] if u["displayName"] == "Changed After Allow"])')" \
    "the change made after allow-deletes is exported with the deletes"
hs_assert_eq "" "$(key "$A" export.threshold)" "export.threshold cleared"
hs_assert_eq "" "$(key "$A" export.allow_deletes)" "the allowance is used up"
grep -q '^hybridsync_deletion_threshold_exceeded 0$' "$A/metrics.prom" || hs_fail "metrics still show the threshold hit"
deleted=$(emu_eval 'len([q for q in writes if q["method"] == "DELETE"])')
[ "$deleted" -ge 6 ] || hs_fail "expected 6 DELETE requests, saw $deleted"
echo "ok: $deleted DELETE requests"

kill -TERM "$(cat "$A/pid")"
wait "$(cat "$A/pid")" || hs_fail "hybridsyncd exited with $?"
rc=0
HYBRIDSYNC_CONTROL_SOCKET=$A/control "$HYBRIDSYNCD" --once -c "$A/hybridsync.conf" 2>>"$A/once.log" || rc=$?
hs_assert_eq "0 success" "$rc $(sql "$A" "SELECT status FROM runs ORDER BY id DESC LIMIT 1")" \
    "--once exit code and status of a completed cycle"
echo PASS
