#!/bin/bash
# Requests/s the Graph emulator sustains on loopback, plain HTTP and HTTPS, for GETs
# (a 10-user page with $select), POST creates and $batch (20 creates each), with N client
# processes on keep-alive connections. Not a test: it prints figures (and exits 1 if a
# GET/POST figure is under the 1,000 req/s the test suite relies on).
#   tests/bench/graph-emulator-rps.sh [SECONDS] [CLIENT_PROCESSES]
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"

seconds=${1:-5}
procs=${2:-4}
hs_need openssl curl "$HS_PY"
GE=$HS_SOURCE_DIR/tests/graph-emulator/graph-emulator.py
LOAD=$HS_SOURCE_DIR/tests/bench/graph-emulator-rps.py
tmp=$(hs_mktemp)
bash "$HS_FIXTURES/mkcert.sh" "$tmp/pki"
echo "graph emulator benchmark: ${seconds}s per figure, $procs client processes, $(nproc) CPUs"

below=0
for scheme in http https; do
    tls=()
    [ "$scheme" = https ] && tls=(--tls-cert "$tmp/pki/cert.pem" --tls-key "$tmp/pki/key.pem")
    rm -f "$tmp/port"
    t0=$(hs_ms)
    "$HS_PY" "$GE" --port 0 --port-file "$tmp/port" "${tls[@]}" --tenant bench --client-id app \
        --client-secret bench-secret --domain example.test --write-quota off 2>"$tmp/ge-$scheme.log" &
    pid=$!
    hs_on_exit "kill $pid 2>/dev/null"
    while [ ! -s "$tmp/port" ]; do
        kill -0 "$pid" 2>/dev/null || { cat "$tmp/ge-$scheme.log" >&2; hs_fail "emulator died"; }
        sleep 0.01
    done
    base=$scheme://127.0.0.1:$(cat "$tmp/port")
    echo "$scheme: start-up to listening: $(($(hs_ms) - t0)) ms"
    token=$(curl -sS --cacert "$tmp/pki/ca.pem" -d grant_type=client_credentials -d client_id=app \
        -d scope=https://graph.microsoft.com/.default -d client_secret=bench-secret \
        "$base/bench/oauth2/v2.0/token" | "$HS_PY" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    for mode in get post batch; do
        line=$("$HS_PY" "$LOAD" --base "$base" --token "$token" --mode "$mode" --procs "$procs" \
            --seconds "$seconds" --cafile "$tmp/pki/ca.pem")
        echo "$line"
        rps=$(sed -n 's/.* req\/s=\([0-9]*\).*/\1/p' <<<"$line")
        if [ "$mode" != batch ] && [ "${rps:-0}" -lt 1000 ]; then
            below=1
        fi
    done
    users=$(curl -sS --cacert "$tmp/pki/ca.pem" "$base/_emulator/stats" |
        "$HS_PY" -c 'import json,sys; print(json.load(sys.stdin)["objects"]["users"])')
    echo "$scheme: users in the emulator after the run: $users"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done
if [ "$below" = 1 ]; then
    echo "RESULT: below 1,000 req/s"
    exit 1
fi
echo "RESULT: every GET/POST figure at or above 1,000 req/s"
