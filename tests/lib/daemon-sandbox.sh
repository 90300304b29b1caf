# The end-to-end sandbox of the daemon tests (sourced after common.sh): a seeded slapd with TLS,
# the Graph emulator over HTTPS, and helpers to write configs, start daemons, talk to their
# control sockets and inspect the emulator. GEN_ARGS and EMU_ARGS add generator and emulator
# options; INTERVAL sets the daemons' interval.
hs_need /usr/sbin/slapd ldapmodify ldapadd ldapdelete sqlite3 openssl curl "$HS_PY"
[ -x "$HYBRIDSYNCD" ] || hs_fail "hybridsyncd not built: $HYBRIDSYNCD"
T=$(hs_mktemp)
[ "${HS_KEEP:-0}" = 1 ] || hs_on_exit "rm -rf '$T'"
SLAPD_SH=$HS_FIXTURES/slapd/slapd.sh
TENANT=11111111-2222-3333-4444-555555555555
CLIENT=66666666-7777-8888-9999-000000000000
bash "$HS_FIXTURES/mkcert.sh" "$T/tls" >/dev/null
"$HS_PY" "$HS_FIXTURES/gen-directory.py" --flavor openldap --shape small --seed 85 \
    --memberof ${GEN_ARGS:-} --out "$T/dir.ldif"
bash "$SLAPD_SH" init "$T/slapd" --tls "$T/tls" >/dev/null
hs_on_exit "bash '$SLAPD_SH' stop '$T/slapd'"
bash "$SLAPD_SH" load "$T/slapd" "$T/dir.ldif" >/dev/null
bash "$SLAPD_SH" start "$T/slapd" >/dev/null
eval "$(bash "$SLAPD_SH" env "$T/slapd")"
ADMIN=(-x -H "$HS_SLAPD_URI" -D "$HS_SLAPD_BIND_DN" -w "$HS_SLAPD_PW")
umask 077
printf 'e2e-graph-secret\n' > "$T/graph-secret"
printf '%s\n' "$HS_SLAPD_SYNC_PW" > "$T/ad-password"
umask 022
"$HS_PY" "$HS_SOURCE_DIR/tests/graph-emulator/graph-emulator.py" --port 0 --port-file "$T/emu.port" \
    --tls-cert "$T/tls/cert.pem" --tls-key "$T/tls/key.pem" --tenant "$TENANT" \
    --client-id "$CLIENT" --client-secret-file "$T/graph-secret" --domain example.test \
    --extension hybridsyncAnchor ${EMU_ARGS:-} 2>"$T/emulator.log" &
emu_pid=$!
hs_on_exit "kill $emu_pid"
for ((i = 0; i < 100; i++)); do [ -s "$T/emu.port" ] && break; sleep 0.1; done
[ -s "$T/emu.port" ] || hs_fail "the Graph emulator did not start"
EMU=https://127.0.0.1:$(cat "$T/emu.port")
emu() { curl -sS --cacert "$T/tls/ca.pem" "$@"; }
# emu_eval PYEXPR: evaluates PYEXPR with s = /_emulator/state, r = the request log, writes,
# groups (the synchronized ones), lease (the lease group, hybridsyncd(8)), ext (anchor property),
# data_writes (writes other than the lease renewal)
emu_eval() {
    emu "$EMU/_emulator/state" >"$T/state.json"
    emu "$EMU/_emulator/requests?limit=1000000" >"$T/requests.json"
    "$HS_PY" -c '
import json, sys
s = json.load(open(sys.argv[2])); r = json.load(open(sys.argv[3]))["requests"]
writes = [q for q in r if q.get("is_write")]
ext = "extension_" + sys.argv[4].replace("-", "") + "_hybridsyncAnchor"
groups = [g for g in s["groups"] if g.get("mailNickname") != "hybridsync-lease"]  # not the lease
lease = [g for g in s["groups"] if g.get("mailNickname") == "hybridsync-lease"]
lease_ids = [g["id"] for g in lease]
data_writes = [q for q in writes if not any(i in q["path"] for i in lease_ids)]  # not the lease
print(eval(sys.argv[1]))' "$1" "$T/state.json" "$T/requests.json" "$CLIENT"
}
write_conf() { # write_conf DIR NAME STAGING [EXTRA [sync] LINES]
    mkdir -p "$1"
    cat > "$1/hybridsync.conf" <<EOF
[sync]
staging = $3
interval = ${INTERVAL:-1h}
database = $1/hybridsync.db
metrics_file = $1/metrics.prom
server_name = $2
${4:-}

[ad]
uri = $HS_SLAPD_LDAPS_URI
bind_dn = $HS_SLAPD_SYNC_DN
bind_password_file = $T/ad-password
base_dn = $HS_SLAPD_BASE
ca_file = $HS_SLAPD_CA
change_tracking = syncrepl

[graph]
tenant = $TENANT
client_id = $CLIENT
client_secret_file = $T/graph-secret
authority = $EMU
endpoint = $EMU
ca_file = $T/tls/ca.pem
domains = example.test
EOF
}
# DAEMON_WRAPPER (optional) prefixes a command that execs the daemon in the same process
# (e.g. "valgrind --error-exitcode=99"); DAEMON_START_WAIT: seconds to wait for the control
# socket (default 10).
start_daemon() { # start_daemon DIR: runs hybridsyncd on DIR/hybridsync.conf, pid in DIR/pid
    local wrapper=()
    [ -z "${DAEMON_WRAPPER:-}" ] || read -r -a wrapper <<<"$DAEMON_WRAPPER"
    HYBRIDSYNC_CONTROL_SOCKET=$1/control "${wrapper[@]}" "$HYBRIDSYNCD" -c "$1/hybridsync.conf" \
        2>>"$1/daemon.log" &
    echo $! > "$1/pid"
    hs_on_exit "kill -9 $! 2>/dev/null"
    for ((i = 0; i < ${DAEMON_START_WAIT:-10} * 10; i++)); do
        [ -S "$1/control" ] && return 0
        kill -0 "$(cat "$1/pid")" 2>/dev/null || break # exited: no use waiting
        sleep 0.1
    done
    cat "$1/daemon.log" >&2
    hs_fail "hybridsyncd did not open its control socket"
}
ctl_request() { # ctl_request DIR JSON: one request on DIR/control, prints the answer
    "$HS_PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
sys.stdout.write(data.decode())' "$1/control" "$2"
}
jget() { "$HS_PY" -c 'import json,sys; d=json.loads(sys.stdin.read()); print(eval(sys.argv[1]))' "$1"; }
sync_wait() { # sync_wait DIR: runs a cycle, prints its status
    ctl_request "$1" '{"verb":"sync","full":false,"wait":true}' | jget 'd["status"]'
}
key() { sqlite3 "$1/hybridsync.db" "SELECT value FROM state WHERE key = '$2'"; }
sql() { sqlite3 "$1/hybridsync.db" "$2"; }
ldif_dn() { # an LDIF "dn:" line for DN, base64 when not ASCII
    "$HS_PY" -c 'import base64,sys; d=sys.argv[1]; print("dn: "+d if d.isascii() else "dn:: "+base64.b64encode(d.encode()).decode())' "$1"
}
user_dns() { ldapsearch "${ADMIN[@]}" -LLL -o ldif-wrap=no -b "$HS_SLAPD_BASE" '(objectClass=adShadowUser)' 1.1 |
    sed -n 's/^dn: //p'; }
reload_wait() { # reload_wait DIR: SIGHUP, then wait until the new config is in force (audited)
    local n
    n=$(sql "$1" "SELECT count(*) FROM audit_events WHERE kind = 'reload'")
    kill -HUP "$(cat "$1/pid")"
    for ((i = 0; i < 600; i++)); do
        [ "$(sql "$1" "SELECT count(*) FROM audit_events WHERE kind = 'reload'")" -gt "$n" ] && return 0
        sleep 0.1
    done
    hs_fail "the reload of $1 did not take effect"
}
