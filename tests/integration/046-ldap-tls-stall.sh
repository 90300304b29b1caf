#!/bin/bash
# 046-ldap-tls-stall: the AD connector against a server (or load balancer) that accepts the TCP
# connection and never answers the TLS handshake (tests/fixtures/ldap-stall.py): over ldaps://,
# and after a successful StartTLS answer on ldap://. libldap 2.5 retries such a handshake
# forever once a network timeout is set (OpenLDAP ITS#8047); the connector gives the handshake
# a deadline of its own, so the import ends with stopped-server-down, the LDAP error in the
# result and in the run history, and the next cycle can retry; meanwhile the handshake waits
# for the server in read(2) rather than spin. Also a server whose TCP connection never
# completes, before StartTLS. A regression hangs: the driver runs under timeout(1) so that it
# fails instead.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/ldap-import.sh"

hs_need sqlite3 openssl timeout "$HS_PY"
TOOL=${HS_TOOLS_DIR:-$HS_BUILD_DIR/tests/tools}/hs-ldap-import
[ -x "$TOOL" ] || hs_fail "test driver $TOOL is not built"
T=$(hs_mktemp)
[ "${HS_KEEP:-0}" = 1 ] || hs_on_exit "rm -rf '$T'"
unset LDAPTLS_CACERT LDAPTLS_CACERTDIR LDAPTLS_REQCERT LDAPRC LDAPCONF
export LDAPNOINIT=1
printf 'secret' >"$T/pw"
chmod 600 "$T/pw"
# A CA for ca_file: verification never gets that far.
bash "$HS_FIXTURES/mkcert.sh" "$T/ca" >/dev/null 2>&1 || hs_fail "cannot make a test CA"

# serve MODE: starts the stalling server, sets PORT
serve() {
    rm -f "$T/port"
    "$HS_PY" "$HS_FIXTURES/ldap-stall.py" --port-file "$T/port" --mode "$1" 2>/dev/null &
    SERVER=$!
    hs_on_exit "kill $SERVER 2>/dev/null"
    for ((i = 0; i < 100; i++)); do [ -s "$T/port" ] && break; sleep 0.05; done
    [ -s "$T/port" ] || hs_fail "the stalling server did not start"
    PORT=$(cat "$T/port")
}
stop_server() { kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; }
run_errors() { sqlite3 "$T/hs.db" "SELECT code FROM run_errors WHERE run_id = $1 ORDER BY id" | paste -sd' '; }

# cpu_run OUT CMD...: runs CMD with its output in OUT; prints its exit status and the CPU
# seconds (user + system) it and its children used
cpu_run() {
    "$HS_PY" - "$@" <<'PY'
import resource, subprocess, sys
with open(sys.argv[1], "w") as out:
    rc = subprocess.call(sys.argv[2:], stdout=out)
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%d %.2f" % (rc, ru.ru_utime + ru.ru_stime))
PY
}

# stalled WHAT EXPECT CONF-LINE...: the import against the stalling server stops, server down,
# with EXPECT in the error; it waits for the server without spinning (a handshake retried in a
# loop used a whole core for the 10 s: at most 2 s of CPU here, sanitizers included)
stalled() {
    local what=$1 expect=$2 out res rc cpu t0 ms
    shift 2
    ad_conf "$T/hs.conf" "$@" "bind_dn = cn=sync,dc=example,dc=test" \
        "bind_password_file = $T/pw" "base_dn = dc=example,dc=test" "ca_file = $T/ca/ca.pem"
    t0=$(hs_ms)
    res=$(cpu_run "$T/out" timeout 120 "$TOOL" -c "$T/hs.conf" --full)
    ms=$(($(hs_ms) - t0))
    STALL_MS=$ms
    read -r rc cpu <<<"$res"
    out=$(cat "$T/out")
    [ "$rc" != 124 ] || hs_fail "$what: the import did not end within 120 s (the handshake hangs)"
    echo "  $what: ended after $ms ms, $cpu s of CPU: $(field "$out" status): $(field "$out" error)"
    hs_assert_eq 1 "$rc" "$what: exit status of a stopped import"
    hs_assert_eq stopped-server-down "$(field "$out" status)" "$what: status"
    hs_assert_contains "$(field "$out" error)" "$expect" "$what: the error says what failed"
    hs_assert_eq stopped-server-down "$(run_errors "$(field "$out" run_id)")" \
        "$what: the stop is in the run history"
    "$HS_PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 2.0 else 1)' "$cpu" ||
        hs_fail "$what: the import used $cpu s of CPU waiting for the server (it spins)"
    echo "ok: $what: waited without spinning ($cpu s of CPU)"
}

serve tls
stalled "ldaps://, no answer to the ClientHello" "TLS handshake" "uri = ldaps://127.0.0.1:$PORT"
stalled "ldaps://, the next cycle" "TLS handshake" "uri = ldaps://127.0.0.1:$PORT"
stop_server

serve starttls
stalled "StartTLS accepted, then no answer to the ClientHello" "TLS handshake" \
    "uri = ldap://127.0.0.1:$PORT" "starttls = yes"
stop_server

# The TCP connection itself never completes (the connect before StartTLS is bounded by the
# network timeout, not by the 120 s operation timeout).
serve connect
stalled "StartTLS, the TCP connection never completes" "StartTLS: Can't contact LDAP server" \
    "uri = ldap://127.0.0.1:$PORT" "starttls = yes"
[ "$STALL_MS" -lt 60000 ] ||
    hs_fail "StartTLS, the TCP connection never completes: ended after $STALL_MS ms, not by the network timeout"
echo "ok: StartTLS, the TCP connection never completes: ended by the network timeout"
stop_server
echo "PASS"
