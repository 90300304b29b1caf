#!/bin/bash
# labels: slow
# The daemon's steady state under valgrind (memcheck), end to end with a seeded slapd and the
# Graph emulator: staging cycles with directory changes in between, a good and a broken SIGHUP
# reload, a promotion with its export, more cycles, then SIGTERM. Any memcheck error (invalid
# read/write, uninitialised value, bad free) or any definitely/indirectly lost block fails.
. "$(dirname "$0")/../lib/common.sh"

hs_need valgrind
# A sanitizer build cannot run under valgrind (ASan's shadow memory): skip it visibly.
if ldd "$HYBRIDSYNCD" 2>/dev/null | grep -q 'libasan' ||
    grep -q '__asan_init' "$HYBRIDSYNCD" 2>/dev/null; then
    hs_skip "$HYBRIDSYNCD is an AddressSanitizer build (valgrind cannot run it)"
fi

. "$(dirname "$0")/../lib/daemon-sandbox.sh"

A=$T/a
VG_LOG=$A/valgrind.log
mkdir -p "$A"
DAEMON_WRAPPER="valgrind --error-exitcode=99 --leak-check=full \
--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
--track-origins=yes --num-callers=30 --log-file=$VG_LOG"
DAEMON_START_WAIT=120

cycle() { # cycle WHAT: one cycle on the control socket, which must end well
    local st t0=$SECONDS
    st=$(sync_wait "$A")
    case "$st" in
    success | completed-*) echo "ok: $1: cycle ends $st ($((SECONDS - t0)) s under valgrind)" ;;
    *) cat "$A/daemon.log" >&2; hs_fail "$1: cycle status '$st'" ;;
    esac
}
alive() { kill -0 "$(cat "$A/pid")" 2>/dev/null || { cat "$A/daemon.log" >&2; hs_fail "hybridsyncd died: $1"; }; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$(cat "$A/pid")/status"; }

write_conf "$A" staging-vg yes
t0=$SECONDS
start_daemon "$A"
echo "ok: control socket up after $((SECONDS - t0)) s under valgrind"

echo "== a good reload while the initial cycle runs: it takes over when the cycle ends"
INTERVAL=2h write_conf "$A" staging-vg yes
reload_wait "$A"
hs_assert_eq 1 "$(key "$A" daemon.reload.ok)" "the good reload took effect"

echo "== control socket: odd requests are answered, not fatal"
hs_assert_contains "$(ctl_request "$A" 'not json')" '"ok":false' "a malformed request is refused"
hs_assert_contains "$(ctl_request "$A" '{"verb":"no-such-verb"}')" "unknown verb" "an unknown verb is refused"
hs_assert_contains "$(ctl_request "$A" '{"verb":"sync","full":"yes"}')" "must be booleans" "a bad sync request is refused"
# an over-long request (answered "request too long", or reset when the rest is unread) and
# a client that closes halfway through its request
"$HS_PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
try:
    s.sendall(b"x" * 5000 + b"\n")
    print(s.recv(4096).decode())
except OSError as e:
    print(e)
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"{\"ve")
s.close()' "$A/control"
alive "after odd control requests"
hs_assert_contains "$(ctl_request "$A" '{"verb":"status"}')" '"ok":true' "status answers"

echo "== staging: cycles with directory changes in between"
cycle "initial"
first=$(user_dns | head -1)
printf '%s\nchangetype: modify\nreplace: displayName\ndisplayName: Renamed Under Valgrind\n' \
    "$(ldif_dn "$first")" | ldapmodify "${ADMIN[@]}" >/dev/null
ou=$(ldapsearch "${ADMIN[@]}" -LLL -b "$HS_SLAPD_BASE" '(objectClass=organizationalUnit)' 1.1 |
    sed -n 's/^dn: //p' | grep -i '^ou=' | grep -vi 'groups\|contacts\|^ou=corp' | head -1)
ldapadd "${ADMIN[@]}" >/dev/null <<EOF
dn: cn=Valgrind Hire,$ou
objectClass: inetOrgPerson
objectClass: adShadowUser
cn: Valgrind Hire
sn: Hire
givenName: Valgrind
displayName: Valgrind Hire
sAMAccountName: vghire
userPrincipalName: vghire@example.test
userAccountControl: 512
objectGUID:: $(head -c 16 /dev/urandom | base64)
EOF
cycle "after a modify and an add"
ldapdelete "${ADMIN[@]}" "$(user_dns | sed -n 3p)"
cycle "after a delete"
rss1=$(rss)
hs_assert_eq 0 "$(emu_eval 'len(writes)')" "write requests Graph received while staging"

echo "== a broken reload: refused, the running config stays"
printf '[sync]\nstaging = perhaps\nno_such_key = 1\n' >"$A/hybridsync.conf"
kill -HUP "$(cat "$A/pid")"
for ((i = 0; i < 600; i++)); do [ "$(key "$A" daemon.reload.ok)" = 0 ] && break; sleep 0.1; done
hs_assert_eq 0 "$(key "$A" daemon.reload.ok)" "the broken reload is refused"
alive "after a broken reload"
cycle "after the broken reload"

echo "== promotion: staging = no and SIGHUP, the export runs"
runs_before=$(sql "$A" "SELECT max(id) FROM runs")
INTERVAL=2h write_conf "$A" staging-vg no
kill -HUP "$(cat "$A/pid")"
for ((i = 0; i < 1800; i++)); do
    [ "$(sql "$A" "SELECT count(*) FROM run_steps s JOIN runs r ON r.id = s.run_id WHERE r.id > $runs_before AND s.step = 'export' AND r.finished IS NOT NULL")" -gt 0 ] && break
    sleep 0.1
done
run=$(sql "$A" "SELECT max(run_id) FROM run_steps WHERE step = 'export'")
[ -n "$run" ] || { cat "$A/daemon.log" >&2; hs_fail "no export after the promotion"; }
hs_assert_eq success "$(sql "$A" "SELECT status FROM run_steps WHERE run_id = $run AND step = 'export'")" \
    "export step of the promotion cycle"
users=$(emu_eval 'len(s["users"])')
[ "$users" -gt 0 ] || hs_fail "the promotion exported no user"
echo "ok: the promotion exported $users users"

echo "== steady state: more cycles, one with a change"
cycle "after the promotion"
printf '%s\nchangetype: modify\nreplace: displayName\ndisplayName: Renamed Again\n' \
    "$(ldif_dn "$first")" | ldapmodify "${ADMIN[@]}" >/dev/null
cycle "after a modify (exported)"
cycle "without changes"
hs_assert_eq 0 "$(sql "$A" "SELECT count(*) FROM pending_exports WHERE state != 'done'")" \
    "pending exports in the steady state"
hs_assert_contains "$(emu_eval '" ".join(u["displayName"] for u in s["users"])')" "Renamed Again" \
    "the last change reached the tenant"
rss2=$(rss)
echo "figure: RSS under valgrind after the staging cycles ${rss1} kB, at the end ${rss2} kB"

echo "== SIGTERM during a full cycle, with a client waiting for it"
n=$(grep -c 'Cycle requested on the control socket' "$A/daemon.log")
hs_assert_contains "$(ctl_request "$A" '{"verb":"sync","full":true,"wait":false}')" '"queued":true' "a full cycle is queued"
ctl_request "$A" '{"verb":"sync","full":false,"wait":true}' >"$A/waiter.out" &
waiter=$!
for ((i = 0; i < 300; i++)); do
    [ "$(grep -c 'Cycle requested on the control socket' "$A/daemon.log")" -ge $((n + 2)) ] && break
    sleep 0.1
done
kill -TERM "$(cat "$A/pid")"
rc=0
wait "$(cat "$A/pid")" || rc=$?
wait "$waiter" || true
hs_assert_contains "$(cat "$A/waiter.out")" "the daemon stopped before the cycle finished" \
    "the client waiting for a cycle is answered at the stop"
[ "$rc" != 99 ] || { cat "$VG_LOG" >&2; hs_fail "valgrind found errors or leaks (exit 99), see above"; }
hs_assert_eq 0 "$rc" "hybridsyncd's exit code under valgrind"
grep -q "ERROR SUMMARY: 0 errors" "$VG_LOG" || { cat "$VG_LOG" >&2; hs_fail "valgrind reported errors (or did not run)"; }
if grep -E '(definitely|indirectly) lost: [1-9]' "$VG_LOG"; then
    cat "$VG_LOG" >&2
    hs_fail "valgrind reported leaks, see above"
fi
echo "ok: no memcheck error and no definite or indirect leak ($(grep -o 'in use at exit: .*' "$VG_LOG" | head -1))"
echo PASS
