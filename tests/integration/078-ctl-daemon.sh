#!/bin/bash
# hybridsyncctl against the real hybridsyncd (its directory and tenant unreachable on loopback,
# so every cycle stops with stopped-server-down or stopped-connectivity): status shows it
# running with its pid, state and config hash; the control socket is found through the
# database; sync --wait reports the stopped cycle and exits 1; allow-deletes is answered;
# runs shows the cycles with their errors; after SIGTERM status says stopped and sync exits 3.
. "$(dirname "$0")/../lib/common.sh"

[ -x "$HYBRIDSYNCD" ] || hs_fail "hybridsyncd not built: $HYBRIDSYNCD"
T=$(hs_mktemp)
mkdir -p "$T/secrets"
echo ad > "$T/secrets/ad-password"
echo graph > "$T/secrets/graph-secret"
chmod 600 "$T/secrets/"*
port=$(hs_free_port)
cat > "$T/hybridsync.conf" <<EOF
[sync]
staging = yes
interval = 1h
database = $T/hybridsync.db
metrics_file = $T/metrics.prom

[ad]
uri = ldap://127.0.0.1:$port
bind_dn = CN=svc-sync,OU=Service,DC=corp,DC=example,DC=com
bind_password_file = $T/secrets/ad-password
base_dn = DC=corp,DC=example,DC=com
allow_insecure = yes

[graph]
tenant = 11111111-2222-3333-4444-555555555555
client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
client_secret_file = $T/secrets/graph-secret
authority = http://127.0.0.1:$port
endpoint = http://127.0.0.1:$port
allow_insecure = yes
EOF
ctl() { env -u HYBRIDSYNC_CONTROL_SOCKET "$HYBRIDSYNCCTL" -c "$T/hybridsync.conf" "$@"; }
json() { "$HS_PY" -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
hash=$("$HYBRIDSYNCD" --check -c "$T/hybridsync.conf" | sed -n 's/^config hash: //p')

HYBRIDSYNC_CONTROL_SOCKET=$T/control "$HYBRIDSYNCD" -c "$T/hybridsync.conf" > "$T/daemon.log" 2>&1 &
daemon=$!
hs_on_exit "kill $daemon"
for _ in $(seq 200); do
    [ -S "$T/control" ] && [ -e "$T/hybridsync.db" ] &&
        [ "$(ctl status --json 2> /dev/null | json 'd["pid"]' 2> /dev/null)" = "$daemon" ] && break
    if ! kill -0 "$daemon" 2> /dev/null; then
        grep -q "not built yet" "$T/daemon.log" && hs_skip "the daemon loop is not built yet"
        hs_fail "hybridsyncd exited: $(cat "$T/daemon.log")"
    fi
    sleep 0.05
done

ctl status --json > "$T/status.json"
hs_assert_eq "$daemon" "$(json 'd["pid"]' < "$T/status.json")" "status: the daemon's pid"
state=$(json 'd["state"]' < "$T/status.json")
[ "$state" != stopped ] || hs_fail "status: a running daemon shown stopped"
echo "ok: status: state '$state'"
hs_assert_eq True "$(json 'd["staging"]' < "$T/status.json")" "status: staging"
hs_assert_eq "$hash" "$(json 'd["config_hash"]' < "$T/status.json")" "status: the running hash"
ctl status | grep -q "^hybridsyncd: *running (pid $daemon)" || hs_fail "status text: running"

# the socket path comes from the database: ctl() unsets HYBRIDSYNC_CONTROL_SOCKET
rc=0
out=$(ctl sync --wait --timeout 120 2>&1) || rc=$?
echo "$out"
hs_assert_eq 1 "$rc" "sync --wait of a cycle whose peers are down"
[[ $out =~ ^run\ \#[0-9]+:\ stopped- ]] || hs_fail "sync --wait does not report the stopped run: $out"
run_id=$(echo "$out" | sed -n 's/^run #\([0-9]*\):.*/\1/p')

rc=0
out=$(ctl allow-deletes 2>&1) || rc=$?
echo "$out"
case $rc in
0) hs_assert_contains "$out" "delete(s)" "allow-deletes answered" ;;
1) hs_assert_contains "$out" "hybridsyncd refused:" "allow-deletes refused with a reason" ;;
*) hs_fail "allow-deletes exit $rc: $out" ;;
esac

ctl runs --json > "$T/runs.json"
hs_assert_eq "$run_id" "$(json 'next(r["id"] for r in d if r["id"] == '"$run_id"')' < "$T/runs.json")" \
    "runs lists the cycle sync --wait reported"
hs_assert_eq True "$(json 'all(r["status"].startswith("stopped-") or r["status"] == "running" for r in d)' < "$T/runs.json")" \
    "every cycle stopped (the peers are down)"
hs_assert_eq True "$(json 'next(r for r in d if r["id"] == '"$run_id"')["error_count"] > 0' < "$T/runs.json")" \
    "the stopped cycle has its errors"

kill -TERM "$daemon"
for _ in $(seq 200); do kill -0 "$daemon" 2> /dev/null || break; sleep 0.05; done
kill -0 "$daemon" 2> /dev/null && hs_fail "hybridsyncd did not stop on SIGTERM"
hs_assert_eq stopped "$(ctl status --json | json 'd["state"]')" "status after SIGTERM"
rc=0
ctl sync > /dev/null 2>&1 || rc=$?
hs_assert_eq 3 "$rc" "sync without a daemon"
echo "daemon: all checks passed"
