#!/bin/bash
# Demotion during an export: an active server exporting to a slowed-down Graph is set back to
# staging = yes and reloaded. The export stops at the next batch boundary within seconds
# (stopped-cancelled), the daemon keeps running in staging, what was not sent stays pending,
# and the following staging cycles write nothing. Promoted again, it sends the rest, each
# object once. Meanwhile systemd sees STATUS= progress lines ("export graph: N/M objects").
# labels: slow
. "$(dirname "$0")/../lib/common.sh"

GEN_ARGS="--users 300 --groups 20"
. "$(dirname "$0")/../lib/daemon-sandbox.sh"

# NOTIFY_SOCKET listener: every datagram appended to $T/notify.log
"$HS_PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as f:
    while True:
        f.write(s.recv(65536).decode() + "\n")
        f.flush()
' "$T/notify.sock" "$T/notify.log" &
hs_on_exit "kill $!"
for ((i = 0; i < 100; i++)); do [ -S "$T/notify.sock" ] && break; sleep 0.05; done
export NOTIFY_SOCKET=$T/notify.sock

A=$T/a
write_conf "$A" server-a yes
start_daemon "$A"
st=$(sync_wait "$A")
case "$st" in success|completed-*) ;; *) cat "$A/daemon.log"; hs_fail "staging cycle: $st" ;; esac
want_users=$(sql "$A" "SELECT anchor FROM pending_exports WHERE op = 'add' AND object_type = 'user' ORDER BY anchor" | tr '\n' ' ')
n_users=$(wc -w <<<"$want_users")
echo "ok: $n_users users queued"

echo "== promote, then demote while the export runs"
emu -X POST -H 'Content-Type: application/json' --data '{"latency_ms": 300}' "$EMU/_emulator/config" >/dev/null
write_conf "$A" server-a no
kill -HUP "$(cat "$A/pid")"
for ((i = 0; i < 600; i++)); do
    [ "$(key "$A" daemon.state)" = exporting ] && [ "$(emu_eval 'len(s["users"])')" -gt 0 ] && break
    sleep 0.1
done
[ "$(key "$A" daemon.state)" = exporting ] || hs_fail "the promoted daemon is not exporting"
write_conf "$A" server-a yes
t0=$(hs_ms)
kill -HUP "$(cat "$A/pid")"
for ((i = 0; i < 200; i++)); do
    [ "$(sql "$A" "SELECT status FROM run_steps WHERE step = 'export' ORDER BY id DESC LIMIT 1")" != "" ] && break
    sleep 0.05
done
ms=$(($(hs_ms) - t0))
hs_assert_eq stopped-cancelled "$(sql "$A" "SELECT status FROM run_steps WHERE step = 'export' ORDER BY id DESC LIMIT 1")" \
    "export step after the demotion"
[ "$ms" -lt 10000 ] || hs_fail "the export went on for $ms ms after the demotion"
echo "ok: the export stopped $ms ms after the demoting reload"
for ((i = 0; i < 100; i++)); do [ "$(key "$A" daemon.staging)" = 1 ] && break; sleep 0.1; done
hs_assert_eq 1 "$(key "$A" daemon.staging)" "daemon.staging after the demotion"
kill -0 "$(cat "$A/pid")" || hs_fail "the daemon died"
sent=$(emu_eval 'len(s["users"])')
[ "$sent" -lt "$n_users" ] || hs_fail "the export was not interrupted (all $sent users sent)"
left=$(sql "$A" "SELECT count(*) FROM pending_exports WHERE op = 'add' AND object_type = 'user' AND state != 'done'")
hs_assert_eq "$((n_users - sent))" "$left" "user adds still pending (queued - sent)"
hs_assert_contains "$(cat "$A/daemon.log")" "Demotion" "demotion logged"

echo "== staging again: cycles write nothing"
emu -X POST -H 'Content-Type: application/json' --data '{"latency_ms": 0}' "$EMU/_emulator/config" >/dev/null
writes=$(emu_eval 'len(writes)')
st=$(sync_wait "$A")
case "$st" in success|completed-*) echo "ok: staging cycle: $st" ;; *) hs_fail "staging cycle: $st" ;; esac
sync_wait "$A" >/dev/null
hs_assert_eq "$writes" "$(emu_eval 'len(writes)')" "write requests during two staging cycles"
hs_assert_eq "$((n_users - sent))" "$(sql "$A" "SELECT count(*) FROM pending_exports WHERE op = 'add' AND object_type = 'user' AND state != 'done'")" \
    "the rest is still queued"

echo "== promoted again: the rest, each object once"
write_conf "$A" server-a no
reload_wait "$A"
for ((k = 0; k < 5; k++)); do
    st=$(sync_wait "$A")
    [ "$(sql "$A" "SELECT count(*) FROM pending_exports WHERE state != 'done'")" = 0 ] && break
done
case "$st" in success|completed-*) ;; *) cat "$A/daemon.log"; hs_fail "after the second promotion: $st" ;; esac
got=$(emu_eval '" ".join(sorted(u.get("onPremisesImmutableId") or "-" for u in s["users"])) + " "')
[ "$got" = "$want_users" ] || hs_fail "users in the tenant differ from the queue (count $(wc -w <<<"$got") vs $n_users)"
echo "ok: the tenant holds each of the $n_users queued users exactly once"
hs_assert_eq 0 "$(emu_eval 'len([q for q in writes if q["status"] >= 400])')" "refused write requests"

echo "== systemd saw the progress"
grep -qE '^STATUS=export graph: [0-9,]+/[0-9,]+ objects$' "$T/notify.log" || {
    grep '^STATUS=' "$T/notify.log" | sort | uniq -c | head -20
    hs_fail "no STATUS= line with the export's progress"
}
echo "ok: $(grep -cE '^STATUS=export graph: ' "$T/notify.log") STATUS= lines for the export, e.g. '$(grep -E '^STATUS=export graph: [0-9,]+/' "$T/notify.log" | tail -1)'"
grep -q '^STATUS=full import ad' "$T/notify.log" || hs_fail "no STATUS= line for the AD import"
grep -q '^RELOADING=1' "$T/notify.log" || hs_fail "no RELOADING=1"

kill -TERM "$(cat "$A/pid")"
wait "$(cat "$A/pid")" || hs_fail "hybridsyncd exited with $?"
echo PASS
