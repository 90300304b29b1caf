#!/bin/bash
# The Graph emulator's start-up flags take effect: plain HTTP, --seed-file (cloud-only users and
# a group for soft-match tests), --client-secret-file, --token-lifetime (and expired access
# tokens refused), --fault in key=value form, --latency-ms and --write-quota.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"

hs_need curl "$HS_PY"
GE_DIR=$HS_SOURCE_DIR/tests/graph-emulator
tmp=$(hs_mktemp)
printf 'file-secret\n' >"$tmp/secret"
cat >"$tmp/seed.json" <<'EOF'
{"users": [
  {"userPrincipalName": "cloud.only@example.test", "displayName": "Cloud Only", "accountEnabled": true,
   "mailNickname": "cloud.only", "proxyAddresses": ["SMTP:cloud.only@example.test"]},
  {"userPrincipalName": "synced@example.test", "displayName": "Synced", "accountEnabled": true,
   "onPremisesImmutableId": "U1lOQ0VE", "onPremisesSyncEnabled": true}],
 "groups": [{"displayName": "Seeded", "mailNickname": "seeded", "mailEnabled": false,
   "securityEnabled": true, "members": ["cloud.only@example.test", "synced@example.test"]}]}
EOF

"$HS_PY" "$GE_DIR/graph-emulator.py" --port 0 --port-file "$tmp/port" --tenant flags-tenant \
    --client-id flags-app --client-secret-file "$tmp/secret" --domain example.test \
    --seed-file "$tmp/seed.json" --token-lifetime 300 --latency-ms 120 --write-quota 2/60 \
    --fault 'status=503,retry_after=2,method=GET,path=^/v1.0/groups$,count=1' \
    2>"$tmp/emulator.log" &
ge_pid=$!
hs_on_exit "kill $ge_pid 2>/dev/null; wait $ge_pid 2>/dev/null"
for ((i = 0; i < 200; i++)); do
    [ -s "$tmp/port" ] && break
    kill -0 "$ge_pid" 2>/dev/null || { cat "$tmp/emulator.log" >&2; hs_fail "emulator died at start"; }
    sleep 0.05
done
[ -s "$tmp/port" ] || hs_fail "emulator wrote no port file"
BASE=http://127.0.0.1:$(cat "$tmp/port")
jv() { "$HS_PY" "$GE_DIR/ge-client.py" eval "$1" <"$tmp/body"; }
get() { # get PATH [CURL_ARGS...] -> $status, body in $tmp/body
    status=$(curl -sS -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "${@:2}" "$BASE$1")
}

status=$(curl -sS -o "$tmp/body" -w '%{http_code}' -d grant_type=client_credentials -d client_id=flags-app \
    -d scope=https://graph.microsoft.com/.default -d client_secret=file-secret \
    "$BASE/flags-tenant/oauth2/v2.0/token")
hs_assert_eq 200 "$status" "token with the secret read from --client-secret-file"
hs_assert_eq 300 "$(jv 'd["expires_in"]')" "--token-lifetime"
TOKEN=$(jv 'd["access_token"]')

get "/v1.0/users?\$select=userPrincipalName,onPremisesSyncEnabled,proxyAddresses"
hs_assert_eq 200 "$status" "list seeded users"
hs_assert_eq '[["cloud.only@example.test", null, ["SMTP:cloud.only@example.test"]], ["synced@example.test", true, []]]' \
    "$(jv '[[u["userPrincipalName"], u["onPremisesSyncEnabled"], u["proxyAddresses"]] for u in d["value"]]')" \
    "--seed-file users, read-only attributes included"

get /v1.0/groups
hs_assert_eq 503 "$status" "--fault key=value form: first GET /groups"
hs_assert_eq 2 "$(tr -d '\r' <"$tmp/hdr" | sed -n 's/^retry-after: *//Ip')" "fault Retry-After"
get /v1.0/groups
hs_assert_eq 200 "$status" "count=1 fault is spent"
hs_assert_eq 1 "$(jv 'len(d["value"])')" "seeded group listed"
gid=$(jv 'd["value"][0]["id"]')
get "/v1.0/groups/$gid/members?\$select=userPrincipalName"
hs_assert_eq '["cloud.only@example.test", "synced@example.test"]' "$(jv 'sorted(m["userPrincipalName"] for m in d["value"])')" "seeded members"

t=$(curl -sS -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $TOKEN" "$BASE/v1.0/organization")
"$HS_PY" -c "import sys; sys.exit(0 if float('$t') >= 0.12 else 1)" || hs_fail "--latency-ms not applied ($t s)"
echo "ok: --latency-ms (${t}s)"

codes=
for i in 1 2 3; do
    status=$(curl -sS -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' -X PATCH -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' --data-binary "{\"jobTitle\":\"j$i\"}" "$BASE/v1.0/users/synced@example.test")
    codes+="$status "
done
hs_assert_eq "204 204 429 " "$codes" "--write-quota 2/60"
ra=$(tr -d '\r' <"$tmp/hdr" | sed -n 's/^retry-after: *//Ip')
[ "$ra" -ge 55 ] && [ "$ra" -le 60 ] || hs_fail "Retry-After should be about 60 s, got $ra"
echo "ok: Retry-After $ra s until the window frees"

curl -sS -X POST --data-binary '{"token_lifetime":1}' "$BASE/_emulator/config" >/dev/null
TOKEN=$(curl -sS -d grant_type=client_credentials -d client_id=flags-app \
    -d scope=https://graph.microsoft.com/.default -d client_secret=file-secret \
    "$BASE/flags-tenant/oauth2/v2.0/token" | "$HS_PY" "$GE_DIR/ge-client.py" eval 'd["access_token"]')
sleep 1.2
get /v1.0/organization
hs_assert_eq 401 "$status" "expired access token"
hs_assert_eq "Lifetime validation failed, the token is expired." "$(jv 'd["error"]["message"]')" "expiry message"
echo PASS
