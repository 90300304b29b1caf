#!/bin/bash
# SIGTERM during an export, then a restart: nothing lost, nothing twice. A staging server
# queues 300 users and their groups; the emulator is slowed down; the server is promoted and,
# while it exports, stopped with SIGTERM: it exits 0 within 10 s at a batch boundary, the
# export step ends stopped-cancelled with part of the queue sent. Restarted, it finishes: the
# tenant holds each queued user and group exactly once, and the queue is empty.
# labels: slow
. "$(dirname "$0")/../lib/common.sh"

GEN_ARGS="--users 300 --groups 20"
. "$(dirname "$0")/../lib/daemon-sandbox.sh"

A=$T/a
write_conf "$A" server-a yes
start_daemon "$A"
st=$(sync_wait "$A")
case "$st" in success|completed-*) ;; *) cat "$A/daemon.log"; hs_fail "staging cycle: $st" ;; esac
want_users=$(sql "$A" "SELECT anchor FROM pending_exports WHERE op = 'add' AND object_type = 'user' ORDER BY anchor" | tr '\n' ' ')
want_groups=$(sql "$A" "SELECT anchor FROM pending_exports WHERE op = 'add' AND object_type = 'group' ORDER BY anchor" | tr '\n' ' ')
n_users=$(wc -w <<<"$want_users")
[ "$n_users" -ge 300 ] || hs_fail "only $n_users user adds queued"
echo "ok: $n_users users and $(wc -w <<<"$want_groups") groups queued"

echo "== promote, slow Graph down, SIGTERM while exporting"
emu -X POST -H 'Content-Type: application/json' --data '{"latency_ms": 300}' "$EMU/_emulator/config" >/dev/null
write_conf "$A" server-a no
kill -HUP "$(cat "$A/pid")"
for ((i = 0; i < 600; i++)); do
    [ "$(key "$A" daemon.state)" = exporting ] && break
    sleep 0.05
done
[ "$(key "$A" daemon.state)" = exporting ] || hs_fail "the promoted daemon never exported"
for ((i = 0; i < 200; i++)); do # until part of the queue has been sent
    [ "$(emu_eval 'len(s["users"])')" -gt 0 ] && break
    sleep 0.1
done
t0=$(hs_ms)
kill -TERM "$(cat "$A/pid")"
rc=0
wait "$(cat "$A/pid")" || rc=$?
ms=$(($(hs_ms) - t0))
hs_assert_eq 0 "$rc" "exit code after SIGTERM during the export"
[ "$ms" -lt 10000 ] || hs_fail "stopping during the export took $ms ms"
echo "ok: stopped in $ms ms"
hs_assert_eq stopped-cancelled "$(sql "$A" "SELECT status FROM run_steps WHERE step = 'export' ORDER BY id DESC LIMIT 1")" \
    "export step status"
sent=$(emu_eval 'len(s["users"])')
[ "$sent" -lt "$n_users" ] || hs_fail "the export was not interrupted (all $sent users sent): slow the emulator further"
echo "ok: $sent of $n_users users sent before the stop"
hs_assert_eq 0 "$(sql "$A" "SELECT count(*) FROM runs WHERE finished IS NULL")" "no run left open"
hs_assert_eq ok "$(sqlite3 "$A/hybridsync.db" 'PRAGMA integrity_check')" "database integrity"

echo "== restart: the rest goes out, nothing twice"
emu -X POST -H 'Content-Type: application/json' --data '{"latency_ms": 0}' "$EMU/_emulator/config" >/dev/null
start_daemon "$A"
for ((k = 0; k < 5; k++)); do
    st=$(sync_wait "$A")
    [ "$(sql "$A" "SELECT count(*) FROM pending_exports WHERE state != 'done'")" = 0 ] && break
done
case "$st" in success|completed-*) echo "ok: cycles after the restart end $st" ;; *) cat "$A/daemon.log"; hs_fail "after restart: $st" ;; esac
hs_assert_eq 0 "$(sql "$A" "SELECT count(*) FROM pending_exports WHERE state != 'done'")" "pending exports left"
got=$(emu_eval '" ".join(sorted(u.get("onPremisesImmutableId") or "-" for u in s["users"])) + " "')
[ "$got" = "$want_users" ] || hs_fail "users in the tenant differ from the queue (count $(wc -w <<<"$got") vs $n_users)"
echo "ok: the tenant holds each of the $n_users queued users exactly once"
got=$(emu_eval '" ".join(sorted(g.get(ext) or "-" for g in groups)) + " "')
[ "$got" = "$want_groups" ] || hs_fail "groups in the tenant differ from the queue: $got"
echo "ok: the tenant holds each queued group exactly once"
hs_assert_eq 0 "$(emu_eval 'len([q for q in writes if q["status"] >= 400])')" \
    "refused write requests (a create sent twice is refused as a conflict)"

kill -TERM "$(cat "$A/pid")"
wait "$(cat "$A/pid")" || hs_fail "hybridsyncd exited with $?"
echo PASS
