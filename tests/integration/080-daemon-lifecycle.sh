#!/bin/bash
# hybridsyncd as systemd runs it, without the peers: READY=1 after start, WATCHDOG=1 pings,
# the status keys hybridsyncctl reads, the control socket (mode 0660, its JSON protocol, the
# peer-credential check), SIGHUP with a broken config (old one kept, error with file:line
# recorded) and with a good one (new hash in force, audited), the metrics file written
# atomically, SIGTERM (STOPPING=1, exit 0 within 10 s, keys cleaned up), a corrupt database
# refused at start. The directory and Graph are unreachable here: cycles stop, the daemon
# stays up.
. "$(dirname "$0")/../lib/common.sh"

hs_need sqlite3 setpriv "$HS_PY"
[ -x "$HYBRIDSYNCD" ] || hs_fail "hybridsyncd not built: $HYBRIDSYNCD"
T=$(hs_mktemp)
chmod 0711 "$HS_TMP" "$T" # the peer-credential check below runs a client as nobody

# notify_listen FILE: a NOTIFY_SOCKET listener appending every datagram (then "--") to FILE.
notify_listen() {
    "$HS_PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[1] + ".ready", "w").close()
with open(sys.argv[2], "a") as f:
    while True:
        f.write(s.recv(65536).decode() + "\n--\n")
        f.flush()
' "$T/notify.sock" "$1" &
    notify_pid=$!
    hs_on_exit "kill $notify_pid"
    for ((i = 0; i < 100; i++)); do [ -e "$T/notify.sock.ready" ] && return 0; sleep 0.05; done
    hs_fail "notify listener did not start"
}
# ctl_request SOCKET JSON: one request line, prints the answer line.
ctl_request() {
    "$HS_PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(60)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
sys.stdout.write(data.decode())
' "$1" "$2"
}
jget() { "$HS_PY" -c 'import json,sys; v=json.loads(sys.stdin.read()); print(eval(sys.argv[1], {"d": v}))' "$1"; }
key() { sqlite3 "$T/hs.db" "SELECT value FROM state WHERE key = '$1'"; }
wait_for() { # wait_for SECONDS WHAT CMD...
    local limit=$1 what=$2 i
    shift 2
    for ((i = 0; i < limit * 10; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    hs_fail "timed out waiting for: $what"
}
notified() { grep -qx "$1" "$T/notify.log"; }
count_notify() { grep -cx "$1" "$T/notify.log" || true; }

umask 077
echo secret-ad > "$T/ad-password"
echo secret-graph > "$T/graph-secret"
closed=$(hs_free_port)
write_conf() { # write_conf FILE [EXTRA [sync] LINE]
    cat > "$1" <<EOF
[sync]
staging = yes
interval = 10s
database = $T/hs.db
metrics_file = $T/metrics.prom
server_name = lifecycle-test
deletion_threshold = ${THRESHOLD:-500}
${2:-}

[ad]
uri = ldap://127.0.0.1:$closed
bind_dn = cn=sync,dc=example,dc=test
bind_password_file = $T/ad-password
allow_insecure = yes
base_dn = dc=example,dc=test

[graph]
tenant = 11111111-2222-3333-4444-555555555555
client_id = 66666666-7777-8888-9999-000000000000
client_secret_file = $T/graph-secret
authority = http://127.0.0.1:$closed
endpoint = http://127.0.0.1:$closed
allow_insecure = yes
domains = example.test
EOF
}
write_conf "$T/hs.conf"
umask 022
hash=$("$HYBRIDSYNCD" --check -c "$T/hs.conf" | sed -n 's/^config hash: //p')
[ ${#hash} = 64 ] || hs_fail "no config hash from --check"

echo "== start under a notify socket with a 1 s watchdog"
notify_listen "$T/notify.log"
export HYBRIDSYNC_CONTROL_SOCKET=$T/control
t0=$(hs_ms)
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=1000000 "$HYBRIDSYNCD" -c "$T/hs.conf" \
    2>"$T/daemon.log" &
dpid=$!
hs_on_exit "kill -9 $dpid"
wait_for 10 "READY=1" notified READY=1
echo "ok: READY=1 after $(($(hs_ms) - t0)) ms"
hs_assert_eq "$dpid" "$(key daemon.pid)" "status key daemon.pid"
hs_assert_eq 1 "$(key daemon.staging)" "status key daemon.staging"
hs_assert_eq "$hash" "$(key daemon.config_hash)" "status key daemon.config_hash = --check's hash"
hs_assert_eq "$T/control" "$(key daemon.control_socket)" "status key daemon.control_socket"
hs_assert_eq "srw-rw----" "$(stat -c %A "$T/control")" "control socket mode"
next=$(key daemon.next_cycle)
[ -n "$next" ] || hs_fail "no daemon.next_cycle"
echo "ok: next cycle at $next"

echo "== watchdog"
sleep 2
n=$(count_notify WATCHDOG=1)
[ "$n" -ge 2 ] || hs_fail "expected WATCHDOG=1 at least twice in 2 s with WatchdogSec=1s, got $n"
echo "ok: $n WATCHDOG=1 pings in ~2 s"

echo "== control socket protocol"
out=$(ctl_request "$T/control" '{"verb":"status"}')
hs_assert_eq True "$(jget 'd["ok"]' <<<"$out")" "status ok"
case "$(jget 'd["state"]' <<<"$out")" in
idle|importing|syncing) echo "ok: state $(jget 'd["state"]' <<<"$out")" ;;
*) hs_fail "unexpected state in $out" ;;
esac
hs_assert_eq "$hash" "$(jget 'd["config_hash"]' <<<"$out")" "status config_hash"
out=$(ctl_request "$T/control" '{"verb":"frobnicate"}')
hs_assert_eq "False unknown verb 'frobnicate'" "$(jget 'str(d["ok"]) + " " + d["error"]' <<<"$out")" "unknown verb"
out=$(ctl_request "$T/control" 'this is not json')
hs_assert_eq False "$(jget 'd["ok"]' <<<"$out")" "malformed request refused"
out=$(ctl_request "$T/control" '{"verb":"sync","full":"yes"}')
hs_assert_eq False "$(jget 'd["ok"]' <<<"$out")" "sync with a non-boolean full refused"
out=$(ctl_request "$T/control" '{"verb":"sync","full":false,"wait":false}')
hs_assert_eq '{"ok":true,"queued":true}' "$out" "sync without wait answers at once"
out=$(ctl_request "$T/control" '{"verb":"sync","full":true,"wait":true}')
run=$(jget 'd["run_id"]' <<<"$out")
status=$(jget 'd["status"]' <<<"$out")
hs_assert_eq "$status" "$(sqlite3 "$T/hs.db" "SELECT status FROM runs WHERE id = $run")" \
    "sync --wait answers with the run's recorded status"
hs_assert_eq initial "$(sqlite3 "$T/hs.db" "SELECT type FROM runs WHERE id = $run")" \
    "a full sync request runs an initial cycle"
case "$status" in stopped-*) echo "ok: run $run $status (no peers here)" ;; *) hs_fail "unexpected $status" ;; esac
hs_assert_eq 0 "$(sqlite3 "$T/hs.db" "SELECT count(*) FROM runs WHERE finished IS NULL AND id <= $run")" \
    "every run up to $run is finished"
out=$(ctl_request "$T/control" '{"verb":"allow-deletes"}')
hs_assert_eq True "$(jget 'd["ok"]' <<<"$out")" "allow-deletes ok"
fp=$(jget 'd["fingerprint"]' <<<"$out")
dfp=$(jget 'd["deletes_fingerprint"]' <<<"$out")
hs_assert_eq 0 "$(jget 'd["deletes"]' <<<"$out")" "allow-deletes counts no deletes"
hs_assert_eq "$dfp" "$(key export.allow_deletes)" "the allowed deletes' fingerprint recorded"
hs_assert_eq "deletes-allowed|0|$fp" \
    "$(sqlite3 "$T/hs.db" "SELECT kind, uid, fingerprint FROM audit_events ORDER BY id DESC LIMIT 1")" \
    "allow-deletes audited with the caller's uid"

echo "== peer credentials: a client running as nobody is refused by the daemon"
chmod 0666 "$T/control" # let nobody reach the daemon: the check under test is SO_PEERCRED
out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$HS_PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b"{\"verb\":\"allow-deletes\"}\n")
print(s.recv(4096).decode(), end="")' "$T/control")
hs_assert_eq '{"ok":false,"error":"permission denied"}' "$out" "uid nobody refused"
hs_assert_eq 1 "$(sqlite3 "$T/hs.db" "SELECT count(*) FROM audit_events WHERE kind = 'deletes-allowed'")" \
    "the refused request recorded nothing"
chmod 0660 "$T/control"

echo "== SIGHUP with a broken config keeps the running one"
cp "$T/hs.conf" "$T/hs.conf.good"
write_conf "$T/hs.conf" "bogus_key = 1"
line=$(grep -n '^bogus_key' "$T/hs.conf" | cut -d: -f1)
: > "$T/notify.log"
kill -HUP "$dpid"
wait_for 10 "READY=1 after the failed reload" notified READY=1
notified RELOADING=1 || hs_fail "no RELOADING=1 before READY=1"
echo "ok: RELOADING=1, then READY=1"
grep -q '^MONOTONIC_USEC=[0-9]*$' "$T/notify.log" || hs_fail "RELOADING=1 without MONOTONIC_USEC"
hs_assert_eq 0 "$(key daemon.reload.ok)" "daemon.reload.ok after a failed reload"
hs_assert_contains "$(key daemon.reload.error)" "$T/hs.conf:$line:" "reload error names FILE:LINE"
hs_assert_eq "$hash" "$(key daemon.config_hash)" "the running config hash is unchanged"
hs_assert_contains "$(cat "$T/daemon.log")" "has errors, not reloading" "failed reload logged"
kill -0 "$dpid" || hs_fail "the daemon died on a bad reload"
hs_assert_eq True "$(ctl_request "$T/control" '{"verb":"status"}' | jget 'd["ok"]')" \
    "control socket still answers"

echo "== SIGHUP with a rule file that does not compile keeps the running config"
mkdir -p "$T/rules.d"
printf '{"name": "Broken", "direction": "sideways"}\n' > "$T/rules.d/10-broken.json"
write_conf "$T/hs.conf" "rules = $T/rules.d"
: > "$T/notify.log"
kill -HUP "$dpid"
wait_for 10 "READY=1 after the refused rules" notified READY=1
hs_assert_eq 0 "$(key daemon.reload.ok)" "daemon.reload.ok after a rule error"
hs_assert_contains "$(key daemon.reload.error)" "10-broken.json" "reload error names the rule file"
hs_assert_eq "$hash" "$(key daemon.config_hash)" "the running config hash is unchanged"

echo "== SIGHUP with a good config changing the threshold: new hash in force, audited"
THRESHOLD=7% write_conf "$T/hs.conf"
hash2=$("$HYBRIDSYNCD" --check -c "$T/hs.conf" | sed -n 's/^config hash: //p')
[ "$hash2" != "$hash" ] || hs_fail "the threshold should be part of the hash"
: > "$T/notify.log"
kill -HUP "$dpid"
wait_for 10 "READY=1 after the good reload" notified READY=1
wait_for 30 "new config hash in force" test "$(key daemon.config_hash)" = "$hash2"
hs_assert_eq 1 "$(key daemon.reload.ok)" "daemon.reload.ok after a good reload"
hs_assert_eq "" "$(key daemon.reload.error)" "no reload error"
hs_assert_contains "$(sqlite3 "$T/hs.db" "SELECT detail FROM audit_events WHERE kind = 'reload'")" \
    "-> $hash2" "reload audited with the new hash"
hs_assert_contains "$(cat "$T/metrics.prom")" "config_hash=\"$hash2\"" "metrics carry the new hash"

echo "== metrics file: complete at every read while the daemon rewrites it"
"$HS_PY" - "$T/metrics.prom" "$T/control" <<'EOF'
import socket, sys, time
path, ctl = sys.argv[1], sys.argv[2]
def sync():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(ctl); s.sendall(b'{"verb":"sync","full":false,"wait":false}\n'); s.recv(100); s.close()
import os
reads, inodes, end = 0, set(), time.time() + 5
while time.time() < end:
    if reads % 50 == 0:
        sync()
    with open(path) as f:
        inodes.add(os.fstat(f.fileno()).st_ino)
        text = f.read()
    reads += 1
    assert text.startswith("# HELP hybridsync_info"), "partial file (start): %r" % text[:80]
    assert text.endswith("# EOF\n"), "partial file (end): %r" % text[-80:]
assert len(inodes) >= 5, "the daemon rewrote the file only %d times" % len(inodes)
print("ok: %d reads of %d versions of the metrics file, every one complete" % (reads, len(inodes)))
EOF
for m in 'hybridsync_staging 1' 'hybridsync_pending_exports{op="delete"} 0' \
    'hybridsync_connector_objects{connector="ad"} 0' 'hybridsync_interval_seconds 10'; do
    grep -qF "$m" "$T/metrics.prom" || hs_fail "metrics lack '$m'"
done
echo "ok: metrics name staging, pending exports, objects, interval"
[ ! -e "$T/metrics.prom.tmp" ] || hs_fail "a temporary metrics file was left behind"

echo "== a second daemon on the same database or control socket is refused"
if "$HYBRIDSYNCD" -c "$T/hs.conf" 2>"$T/second.log"; then hs_fail "second daemon started"; fi
hs_assert_contains "$(cat "$T/second.log")" "in use by hybridsyncd pid $dpid" "second daemon names the first"
sed "s|^database = .*|database = $T/other.db|" "$T/hs.conf" > "$T/other.conf"
if "$HYBRIDSYNCD" -c "$T/other.conf" 2>"$T/second.log"; then hs_fail "second daemon started"; fi
hs_assert_contains "$(cat "$T/second.log")" "is in use" "second daemon names the busy socket"
kill -0 "$dpid" || hs_fail "the first daemon died"

echo "== SIGTERM"
: > "$T/notify.log"
t0=$(hs_ms)
kill -TERM "$dpid"
rc=0
wait "$dpid" || rc=$?
ms=$(($(hs_ms) - t0))
hs_assert_eq 0 "$rc" "exit code after SIGTERM"
[ "$ms" -lt 10000 ] || hs_fail "stopping took $ms ms"
echo "ok: stopped in $ms ms"
notified STOPPING=1 || hs_fail "no STOPPING=1"
hs_assert_eq "" "$(key daemon.pid)" "daemon.pid removed"
hs_assert_eq stopped "$(key daemon.state)" "daemon.state"
[ ! -e "$T/control" ] || hs_fail "control socket left behind"
hs_assert_eq 0 "$(sqlite3 "$T/hs.db" "SELECT count(*) FROM runs WHERE finished IS NULL")" \
    "no run left open"

echo "== a corrupt database is refused with a clear message"
cp "$T/hs.db" "$T/bad.db"
size=$(stat -c %s "$T/bad.db")
[ "$size" -gt 16384 ] || hs_fail "database unexpectedly small ($size bytes)"
dd if=/dev/urandom of="$T/bad.db" bs=4096 seek=2 count=$(((size / 4096) - 2)) conv=notrunc 2>/dev/null
sed -i "s|^database = .*|database = $T/bad.db|" "$T/hs.conf"
rc=0
"$HYBRIDSYNCD" -c "$T/hs.conf" 2>"$T/corrupt.log" || rc=$?
hs_assert_eq 1 "$rc" "exit code on a corrupt database"
hs_assert_contains "$(cat "$T/corrupt.log")" "$T/bad.db" "the message names the file"
grep -qiE 'corrupt|malformed|not a database' "$T/corrupt.log" || {
    cat "$T/corrupt.log"
    hs_fail "the message does not say the file is damaged"
}
echo "ok: $(grep -iE 'corrupt|malformed|not a database' "$T/corrupt.log" | head -1)"
echo PASS
