#!/bin/bash
# hybridsyncctl sync and allow-deletes against a stand-in daemon (a python server on a unix
# socket that records each request and gives a set answer): the request objects, the answers
# of sync, sync --wait (exit 0 for success and completed-*, 1 for stopped-*), allow-deletes,
# refusals (exit 1 with the daemon's message), a daemon that closes or never answers
# (--timeout), no daemon (exit 3), the socket path from the environment, from the database
# and usage errors (exit 2).
. "$(dirname "$0")/../lib/common.sh"

. "$(dirname "$0")/../lib/ctl-setting.sh"
echo '{}' > "$T/empty.json"
"$FIXTURE" "$T/hybridsync.db" "$T/empty.json"

cat > "$T/fake-daemon.py" <<'EOF'
#!/usr/bin/python3
# fake-daemon.py SOCKET REQUESTS-LOG: serves one answer per connection. The answer is read
# from SOCKET.answer at each connection: a JSON line, "close" (hang up without answering) or
# "hang" (never answer). Each request line is appended to REQUESTS-LOG.
import socket, sys
path, log = sys.argv[1], sys.argv[2]
hung = []
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(4)
open(path + ".ready", "w").close()
while True:
    c, _ = s.accept()
    data = b""
    while not data.endswith(b"\n"):
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
    with open(log, "ab") as f:
        f.write(data)
    answer = open(path + ".answer").read().strip()
    if answer == "hang":
        hung.append(c)  # kept open, never answered
        continue
    if answer != "close":
        c.sendall(answer.encode() + b"\n")
    c.close()
EOF
SOCK=$T/control.sock
"$HS_PY" "$T/fake-daemon.py" "$SOCK" "$T/requests.log" &
hs_on_exit "kill $!"
for _ in $(seq 100); do [ -e "$SOCK.ready" ] && break; sleep 0.05; done
[ -e "$SOCK.ready" ] || hs_fail "the stand-in daemon did not start"

ctl() { "$HYBRIDSYNCCTL" -c "$T/hybridsync.conf" "$@"; }
answer() { printf '%s\n' "$1" > "$SOCK.answer"; }
last_request() { tail -n 1 "$T/requests.log"; }
# run EXPECTED-EXIT ARGS...: runs hybridsyncctl, sets $out (stdout and stderr)
run() {
    local expected=$1 rc=0
    shift
    out=$(ctl "$@" 2>&1) || rc=$?
    hs_assert_eq "$expected" "$rc" "exit code of hybridsyncctl $*"
}
req_is() { # req_is PYTHON-EXPR WHAT: the last request, parsed as `r`, makes EXPR true
    "$HS_PY" -c 'import json,sys; r = json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' \
        "$(last_request)" "$1" || hs_fail "$2: request was $(last_request)"
    echo "ok: $2"
}
export HYBRIDSYNC_CONTROL_SOCKET=$SOCK

# --- sync ------------------------------------------------------------------------------------
answer '{"ok":true,"queued":true}'
run 0 sync
hs_assert_eq "delta cycle queued" "$out" "sync output"
req_is 'r == {"verb": "sync", "full": False, "wait": False}' "sync request"
run 0 sync --full
req_is 'r == {"verb": "sync", "full": True, "wait": False}' "sync --full request"

answer '{"ok":true,"run_id":42,"status":"success"}'
run 0 sync --wait
hs_assert_eq "run #42: success" "$out" "sync --wait output"
req_is 'r == {"verb": "sync", "full": False, "wait": True}' "sync --wait request"
answer '{"ok":true,"run_id":43,"status":"completed-sync-errors"}'
run 0 sync --wait --full
hs_assert_eq "run #43: completed-sync-errors" "$out" "a cycle with per-object errors completes"
req_is 'r["full"] is True and r["wait"] is True' "sync --full --wait request"
answer '{"ok":true,"run_id":44,"status":"stopped-deletion-threshold-exceeded"}'
run 1 sync --wait
hs_assert_eq "run #44: stopped-deletion-threshold-exceeded" "$out" "a stopped cycle"
answer '{"ok":true,"run_id":45,"status":"stopped-server-down"}'
run 1 sync --wait

# --- allow-deletes ------------------------------------------------------------------------------
answer '{"ok":true,"fingerprint":"0123abcd","deletes":612}'
run 0 allow-deletes
hs_assert_contains "$out" "612 delete(s)" "allow-deletes names the count"
hs_assert_contains "$out" "0123abcd" "allow-deletes names the fingerprint"
req_is 'r == {"verb": "allow-deletes"}' "allow-deletes request"

# --- refusals and broken daemons ----------------------------------------------------------------
answer '{"ok":false,"error":"no deletion threshold was exceeded"}'
run 1 allow-deletes
hs_assert_contains "$out" "no deletion threshold was exceeded" "the daemon's reason is shown"
answer '{"ok":false,"error":"a cycle is already running"}'
run 1 sync --wait
hs_assert_contains "$out" "a cycle is already running" "sync refusal"
answer close
run 1 sync
hs_assert_contains "$out" "without an answer" "a daemon that hangs up"
answer 'this is not json'
run 1 sync
hs_assert_contains "$out" "not a JSON object" "a garbled answer"
answer hang
start=$(date +%s)
run 1 sync --wait --timeout 1
hs_assert_contains "$out" "no answer from hybridsyncd within 1 s" "--timeout"
[ $(($(date +%s) - start)) -lt 10 ] || hs_fail "--timeout 1 did not return promptly"

# --- no daemon --------------------------------------------------------------------------------
HYBRIDSYNC_CONTROL_SOCKET=$T/nothing-here run 3 sync
hs_assert_contains "$out" "hybridsyncd is not running" "no socket"
HYBRIDSYNC_CONTROL_SOCKET=$T/nothing-here run 3 allow-deletes
HYBRIDSYNC_CONTROL_SOCKET=$T/nothing-here run 3 sync --wait
"$HS_PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/stale.sock"
HYBRIDSYNC_CONTROL_SOCKET=$T/stale.sock run 3 sync
hs_assert_contains "$out" "hybridsyncd is not running" "a stale socket nobody listens on"

# --- the socket path the daemon recorded in the database ----------------------------------------
unset HYBRIDSYNC_CONTROL_SOCKET
printf '{"state": {"daemon.control_socket": "%s"}}\n' "$SOCK" > "$T/state.json"
"$FIXTURE" "$T/hybridsync.db" "$T/state.json"
answer '{"ok":true,"queued":true}'
run 0 sync
hs_assert_eq "delta cycle queued" "$out" "socket path from the database"

# --- usage ----------------------------------------------------------------------------------------
run 2 sync --bogus
run 2 sync extra
run 2 sync --timeout soon
run 2 sync --timeout 0
run 2 allow-deletes now
echo "control: all checks passed"
