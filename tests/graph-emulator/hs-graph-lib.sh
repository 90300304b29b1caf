# Helpers for the Graph connector scenarios (tests/integration/05x-graph-*.sh) and the Graph
# export benchmark: start the emulator over TLS, write a hybridsync config pointing at it, run
# the hs-graph test driver, query the emulator. Source after tests/lib/common.sh.

GE_DIR=$HS_SOURCE_DIR/tests/graph-emulator
GE_TENANT=5f1d7e0e-3b1a-4f5e-9d55-1a2b3c4d5e6f
GE_CLIENT=9a8b7c6d-1111-2222-3333-444455556666
GE_SECRET='s3cret~value.for-tests'
GE_EXT=extension_${GE_CLIENT//-/}_hybridsyncAnchor
HS_GRAPH=${HS_TOOLS_DIR:-$HS_BUILD_DIR/tests/tools}/hs-graph

ge_need() {
    hs_need openssl curl "$HS_PY"
    [ -x "$HS_GRAPH" ] || hs_skip "the hs-graph driver is not built ($HS_GRAPH)"
}

# ge_start DIR [EMULATOR_ARGS...]: TLS emulator with the app's secret and certificate
# (GE_PLAIN=1: plain HTTP). Sets GE_BASE, GE_PID, GE_WORK.
ge_start() {
    GE_WORK=$1
    shift
    mkdir -p "$GE_WORK"
    [ -f "$GE_WORK/pki/ca.pem" ] || bash "$HS_FIXTURES/mkcert.sh" "$GE_WORK/pki" >/dev/null
    if [ ! -f "$GE_WORK/app-cert.pem" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=hybridsync test app" \
            -keyout "$GE_WORK/app-key.pem" -out "$GE_WORK/app-cert.pem" 2>/dev/null
        chmod 600 "$GE_WORK/app-key.pem"
    fi
    rm -f "$GE_WORK/port"
    local tls=(--tls-cert "$GE_WORK/pki/cert.pem" --tls-key "$GE_WORK/pki/key.pem") scheme=https
    if [ "${GE_PLAIN:-0}" = 1 ]; then # plain HTTP (allow_insecure tests)
        tls=()
        scheme=http
    fi
    "$HS_PY" "$GE_DIR/graph-emulator.py" --port 0 --port-file "$GE_WORK/port" "${tls[@]}" \
        --tenant "$GE_TENANT" --client-id "$GE_CLIENT" --client-secret "$GE_SECRET" \
        --client-cert "$GE_WORK/app-cert.pem" --domain example.test \
        --extension hybridsyncAnchor "$@" 2>>"$GE_WORK/emulator.log" &
    GE_PID=$!
    hs_on_exit "kill $GE_PID 2>/dev/null; wait $GE_PID 2>/dev/null"
    local i
    for ((i = 0; i < 200; i++)); do
        [ -s "$GE_WORK/port" ] && break
        kill -0 "$GE_PID" 2>/dev/null || { cat "$GE_WORK/emulator.log" >&2; hs_fail "emulator died at start"; }
        sleep 0.05
    done
    [ -s "$GE_WORK/port" ] || hs_fail "emulator wrote no port file"
    GE_BASE=$scheme://127.0.0.1:$(cat "$GE_WORK/port")
}

ge_stop() {
    kill "$GE_PID" 2>/dev/null || true
    wait "$GE_PID" 2>/dev/null || true
}

# ge_conf FILE [auth: secret|cert|wrong] [EXTRA [graph] LINES...]: a config using the emulator.
ge_conf() {
    local file=$1 auth=${2:-secret} dir
    shift 2 || shift $#
    dir=$(dirname "$file")
    umask 077
    case $auth in
    secret) printf '%s\n' "$GE_SECRET" >"$dir/graph-secret"
            auth="client_secret_file = $dir/graph-secret" ;;
    wrong) printf '%s\n' "not-the-secret" >"$dir/graph-secret"
           auth="client_secret_file = $dir/graph-secret" ;;
    cert) auth="certificate_file = $GE_WORK/app-cert.pem
key_file = $GE_WORK/app-key.pem" ;;
    esac
    cat >"$file" <<EOF
[sync]
staging = ${GE_STAGING:-no}
database = $dir/hybridsync.db
server_name = test-server

[ad]
uri = ldaps://127.0.0.1:1
base_dn = dc=example,dc=test

[graph]
tenant = $GE_TENANT
client_id = $GE_CLIENT
$auth
authority = $GE_BASE
endpoint = $GE_BASE
ca_file = $GE_WORK/pki/ca.pem
domains = example.test
EOF
    local l
    for l in "$@"; do printf '%s\n' "$l" >>"$file"; done
}

# ge_ctl METHOD PATH [JSON]: the emulator's control API.
ge_ctl() {
    if [ $# -ge 3 ]; then
        curl -sS --cacert "$GE_WORK/pki/ca.pem" -X "$1" -H 'Content-Type: application/json' \
            --data-binary "$3" "$GE_BASE/_emulator$2"
    else
        curl -sS --cacert "$GE_WORK/pki/ca.pem" -X "$1" "$GE_BASE/_emulator$2"
    fi
}

# jq-like: ge_json 'PYTHON EXPRESSION over j' < JSON
ge_json() {
    "$HS_PY" -c 'import json,sys; j=json.load(sys.stdin); r=eval(sys.argv[1]); print(r if isinstance(r,str) else json.dumps(r, sort_keys=True))' "$1"
}

# ge_writes: write requests the emulator logged since SEQ (default 0), batch items counted.
ge_writes_since() {
    ge_ctl GET "/requests?since=${1:-0}&limit=1000000" |
        ge_json 'len([r for r in j["requests"] if r["is_write"]])'
}
ge_last_seq() {
    ge_ctl GET "/requests?limit=1" | ge_json 'j["last_seq"]'
}

# hsg CONF ARGS...: the driver; its JSON line on stdout.
hsg() {
    local conf=$1
    shift
    "$HS_GRAPH" -c "$conf" "$@"
}

# field NAME < JSON-LINE
field() { ge_json "j[\"$1\"]"; }

# ge_api METHOD PATH [JSON]: a Graph v1.0 call with a token from the control API (what an
# admin or another tool does in the tenant); prints the body, $GE_STATUS gets the HTTP status.
ge_api() {
    local tok args
    tok=$(ge_ctl POST /tokens | ge_json 'j["access_token"]')
    args=(curl -sS --cacert "$GE_WORK/pki/ca.pem" -o "$GE_WORK/api.body" -w '%{http_code}'
          -X "$1" -H "Authorization: Bearer $tok")
    [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
    GE_STATUS=$("${args[@]}" "$GE_BASE/v1.0$2")
    cat "$GE_WORK/api.body"
}
