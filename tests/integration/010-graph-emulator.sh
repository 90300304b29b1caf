#!/bin/bash
# The Graph emulator behaves like the documented Microsoft Graph v1.0 API: client-credentials
# tokens (secret and certificate assertion), users and groups, uniqueness, members via $ref and
# members@odata.bind, $batch with dependsOn, delta with deltaLink, and injected faults (429 outer
# and inside $batch, 503, dropped connections, latency) plus the enforced write quota.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"

hs_need openssl curl "$HS_PY"
GE_DIR=$HS_SOURCE_DIR/tests/graph-emulator
tmp=$(hs_mktemp)
bash "$HS_FIXTURES/mkcert.sh" "$tmp/pki"
# The app's own certificate (what an admin uploads to the app registration).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=hybridsync test app" \
    -keyout "$tmp/app-key.pem" -out "$tmp/app-cert.pem" 2>/dev/null

TENANT=5f1d7e0e-3b1a-4f5e-9d55-1a2b3c4d5e6f
CLIENT=9a8b7c6d-1111-2222-3333-444455556666
SECRET='s3cret~value.for-tests'
EXT=extension_${CLIENT//-/}_hybridsyncAnchor
PASSWORD='Never-Logged!1234'

t0=$(hs_ms)
"$HS_PY" "$GE_DIR/graph-emulator.py" --port 0 --port-file "$tmp/port" \
    --tls-cert "$tmp/pki/cert.pem" --tls-key "$tmp/pki/key.pem" \
    --tenant "$TENANT" --client-id "$CLIENT" --client-secret "$SECRET" \
    --client-cert "$tmp/app-cert.pem" --domain example.test --domain corp.example.test \
    --extension hybridsyncAnchor 2>"$tmp/emulator.log" &
ge_pid=$!
hs_on_exit "kill $ge_pid 2>/dev/null; wait $ge_pid 2>/dev/null"
for ((i = 0; i < 200; i++)); do
    [ -s "$tmp/port" ] && break
    kill -0 "$ge_pid" 2>/dev/null || { cat "$tmp/emulator.log" >&2; hs_fail "emulator died at start"; }
    sleep 0.05
done
[ -s "$tmp/port" ] || hs_fail "emulator wrote no port file"
BASE=https://127.0.0.1:$(cat "$tmp/port")
echo "emulator ready on $BASE in $(($(hs_ms) - t0)) ms"

CURL=(curl -sS --cacert "$tmp/pki/ca.pem")
TOKEN_URL=$BASE/$TENANT/oauth2/v2.0/token
TOKEN=

# api METHOD PATH [JSON|- [CURL_ARGS...]]: sets $status; body in $tmp/body, headers in $tmp/hdr
api() {
    local args=("${CURL[@]}" -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' -X "$1")
    [ -n "$TOKEN" ] && args+=(-H "Authorization: Bearer $TOKEN")
    [ $# -ge 3 ] && [ "$3" != - ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
    status=$("${args[@]}" "${@:4}" "$BASE$2")
}
jv() { "$HS_PY" "$GE_DIR/ge-client.py" eval "$1" <"${2:-$tmp/body}"; }
hdr() { tr -d '\r' <"$tmp/hdr" | sed -n "s/^$1: *//Ip" | tail -1; }
ctl() { # ctl METHOD PATH [JSON] -> stdout
    if [ $# -ge 3 ]; then
        "${CURL[@]}" -X "$1" -H 'Content-Type: application/json' --data-binary "$3" "$BASE/_emulator$2"
    else
        "${CURL[@]}" -X "$1" "$BASE/_emulator$2"
    fi
}
expect() { # expect STATUS WHAT
    if [ "$status" != "$1" ]; then
        cat "$tmp/body" >&2
        hs_fail "$2: expected HTTP $1, got $status"
    fi
    echo "ok: $2 -> $status"
}
token_form() { # token_form EXTRA_CURL_ARGS... -> sets $status, body in $tmp/body
    status=$("${CURL[@]}" -o "$tmp/body" -w '%{http_code}' -d grant_type=client_credentials \
        -d "client_id=$CLIENT" --data-urlencode scope=https://graph.microsoft.com/.default \
        "$@" "$TOKEN_URL")
}
assertion() {
    "$HS_PY" "$GE_DIR/ge-client.py" assertion --cert "$tmp/app-cert.pem" --key "$tmp/app-key.pem" \
        --client-id "$CLIENT" --aud "$TOKEN_URL" "$@"
}
with_assertion() {
    token_form --data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
        --data-urlencode "client_assertion=$1"
}
user_json() { # user_json NICK [EXTRA_JSON_MEMBERS]
    printf '{"accountEnabled":true,"displayName":"%s","mailNickname":"%s","userPrincipalName":"%s@example.test","passwordProfile":{"forceChangePasswordNextSignIn":false,"password":"%s"}%s}' \
        "$1" "$1" "$1" "$PASSWORD" "${2:+,$2}"
}

echo "== token endpoint"
token_form --data-urlencode "client_secret=$SECRET"
expect 200 "token with the client secret"
hs_assert_eq Bearer "$(jv 'd["token_type"]')" "token_type"
[ "$(jv 'd["expires_in"]')" -gt 0 ] || hs_fail "expires_in not positive"
token_form --data-urlencode "client_secret=wrong"
expect 401 "token with a wrong secret"
hs_assert_eq invalid_client "$(jv 'd["error"]')" "wrong secret error"
hs_assert_eq '[7000215]' "$(jv 'd["error_codes"]')" "wrong secret error code"
hs_assert_contains "$(jv 'd["error_description"]')" "AADSTS7000215: Invalid client secret" "AADSTS text"
token_form
expect 401 "token without any credential"
hs_assert_eq '[7000218]' "$(jv 'd["error_codes"]')" "missing credential error code"
status=$("${CURL[@]}" -o "$tmp/body" -w '%{http_code}' -d grant_type=client_credentials \
    -d "client_id=$CLIENT" -d scope=https://graph.microsoft.com/.default -d "client_secret=$SECRET" \
    "$BASE/00000000-dead-beef-0000-000000000000/oauth2/v2.0/token")
expect 400 "token from an unknown tenant"
hs_assert_eq '[90002]' "$(jv 'd["error_codes"]')" "unknown tenant error code"

with_assertion "$(assertion --alg RS256)"
expect 200 "token with an RS256 certificate assertion (x5t#S256)"
with_assertion "$(assertion --alg PS256 --thumbprint sha1)"
expect 200 "token with a PS256 certificate assertion (x5t)"
TOKEN=$(jv 'd["access_token"]')
with_assertion "$(assertion --thumbprint wrong)"
expect 401 "assertion naming an unregistered certificate"
hs_assert_eq '[700027]' "$(jv 'd["error_codes"]')" "unknown key error code"
good=$(assertion)
with_assertion "${good%????????}AAAAAAAA"
expect 401 "assertion with a forged signature"
hs_assert_contains "$(jv 'd["error_description"]')" "invalid signature" "forged signature refused"
with_assertion "$(assertion --exp-in -3600)"
expect 401 "expired assertion"
hs_assert_eq '[700024]' "$(jv 'd["error_codes"]')" "expired assertion error code"
with_assertion "$("$HS_PY" "$GE_DIR/ge-client.py" assertion --cert "$tmp/app-cert.pem" \
    --key "$tmp/app-key.pem" --client-id "$CLIENT" --aud https://login.example/other/token)"
expect 401 "assertion for another audience"
with_assertion "$(assertion --no-jti)"
expect 401 "assertion without jti"

echo "== authentication on /v1.0"
saved=$TOKEN
TOKEN=
api GET /v1.0/users
expect 401 "no bearer token"
hs_assert_eq InvalidAuthenticationToken "$(jv 'd["error"]["code"]')" "401 error code"
[ -n "$(hdr request-id)" ] || hs_fail "no request-id header on the 401"
hs_assert_eq "$(hdr request-id)" "$(jv 'd["error"]["innerError"]["request-id"]')" "innerError request-id"
TOKEN=not-a-token
api GET /v1.0/users
expect 401 "bogus bearer token"
TOKEN=$saved

echo "== user round trip"
api POST /v1.0/users "$(user_json alice '"onPremisesImmutableId":"QUxJQ0UtMDE=","jobTitle":"Engineer"')"
expect 201 "create alice"
alice=$(jv 'd["id"]')
[[ $alice =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]] || hs_fail "id is not a GUID: $alice"
hs_assert_eq False "$(jv 'str("passwordProfile" in d)')" "passwordProfile not returned"
hs_assert_contains "$(hdr location)" "/v1.0/users/$alice" "Location header"
api GET "/v1.0/users/$alice"
expect 200 "read alice by id"
hs_assert_eq alice@example.test "$(jv 'd["userPrincipalName"]')" "UPN"
api GET "/v1.0/users/alice@example.test?\$select=id,onPremisesImmutableId,jobTitle,passwordProfile"
expect 200 "read alice by UPN with \$select"
hs_assert_eq '{"id": "'"$alice"'", "jobTitle": "Engineer", "onPremisesImmutableId": "QUxJQ0UtMDE=", "passwordProfile": null}' \
    "$(jv '{k: v for k, v in d.items() if not k.startswith("@")}')" \
    "selected properties only"
api PATCH "/v1.0/users/$alice" '{"jobTitle":"Manager","department":"R&D"}'
expect 204 "patch alice"
ctl GET /state >"$tmp/state.json"
hs_assert_eq '[["alice@example.test", "Manager", "R&D", "QUxJQ0UtMDE="]]' \
    "$(jv '[[u["userPrincipalName"], u["jobTitle"], u["department"], u["onPremisesImmutableId"]] for u in d["users"]]' "$tmp/state.json")" \
    "state shows exactly the patched user"
if grep -q "$PASSWORD" "$tmp/state.json" "$tmp/emulator.log"; then
    hs_fail "the password appears in the state or the log"
fi
echo "ok: password stored nowhere"

echo "== validation as Graph does it"
api POST /v1.0/users '{"accountEnabled":true,"displayName":"x","mailNickname":"x","userPrincipalName":"x@example.test"}'
expect 400 "create without passwordProfile"
hs_assert_contains "$(jv 'd["error"]["message"]')" "passwordProfile" "message names the property"
api POST /v1.0/users "$(user_json mallory | sed 's/@example.test/@not-verified.test/')"
expect 400 "UPN in an unverified domain"
hs_assert_contains "$(jv 'd["error"]["message"]')" "verified domain" "domain message"
api PATCH "/v1.0/users/$alice" '{"proxyAddresses":["SMTP:alice@example.test"]}'
expect 400 "proxyAddresses is read-only"
hs_assert_contains "$(jv 'd["error"]["message"]')" "read-only" "read-only message"
api POST /v1.0/users "$(user_json bob '"onPremisesSyncEnabled":true')"
expect 400 "onPremisesSyncEnabled is read-only"
api POST /v1.0/users "$(user_json weakpw | sed "s/$PASSWORD/password/")"
expect 400 "weak password"

echo "== uniqueness"
api POST /v1.0/users "$(user_json alice)"
expect 400 "second alice@example.test"
hs_assert_eq Request_BadRequest "$(jv 'd["error"]["code"]')" "conflict code"
hs_assert_eq 'ObjectConflict userPrincipalName' "$(jv 'd["error"]["details"][0]["code"] + " " + d["error"]["details"][0]["target"]')" "conflict details"
hs_assert_contains "$(jv 'd["error"]["message"]')" "Another object with the same value for property userPrincipalName already exists." "conflict message"
api POST /v1.0/users "$(user_json alice2 '"onPremisesImmutableId":"QUxJQ0UtMDE="')"
expect 400 "second onPremisesImmutableId"
hs_assert_eq onPremisesImmutableId "$(jv 'd["error"]["details"][0]["target"]')" "immutable id conflict target"
api GET "/v1.0/users?\$filter=onPremisesImmutableId%20eq%20'QUxJQ0UtMDE='&\$select=id"
expect 200 "hard-match lookup by onPremisesImmutableId"
hs_assert_eq "[\"$alice\"]" "$(jv '[u["id"] for u in d["value"]]')" "one match"

echo "== delete and restore"
api DELETE "/v1.0/users/$alice"
expect 204 "delete alice"
api GET "/v1.0/users/$alice"
expect 404 "alice is gone"
hs_assert_eq Request_ResourceNotFound "$(jv 'd["error"]["code"]')" "404 code"
api GET /v1.0/directory/deletedItems/microsoft.graph.user
expect 200 "list deleted users"
hs_assert_eq "[\"$alice\"]" "$(jv '[u["id"] for u in d["value"]]')" "alice in deleted items"
ctl GET /state >"$tmp/state.json"
hs_assert_eq '0 1' "$(jv 'str(d["counts"]["users"]) + " " + str(d["counts"]["deletedItems"])' "$tmp/state.json")" "state after delete"
api POST "/v1.0/directory/deletedItems/$alice/restore"
expect 200 "restore alice"
api GET "/v1.0/users/$alice?\$select=jobTitle"
expect 200 "alice is back"
hs_assert_eq Manager "$(jv 'd["jobTitle"]')" "restored with her properties"

echo "== groups and members"
ids=()
for n in u1 u2 u3; do
    api POST /v1.0/users "$(user_json "$n")"
    expect 201 "create $n"
    ids+=("$(jv 'd["id"]')")
done
u1=${ids[0]} u2=${ids[1]} u3=${ids[2]}
ref() { printf '"https://graph.microsoft.com/v1.0/directoryObjects/%s"' "$1"; }
api POST /v1.0/groups "{\"displayName\":\"Staff\",\"mailEnabled\":false,\"mailNickname\":\"staff\",\"securityEnabled\":true,\"$EXT\":\"R1JPVVAtMQ==\",\"members@odata.bind\":[$(ref "$u1"),$(ref "$u2")]}"
expect 201 "create a security group with two members and its anchor extension"
staff=$(jv 'd["id"]')
api POST /v1.0/groups '{"displayName":"Mail sec","mailEnabled":true,"mailNickname":"mailsec","securityEnabled":true}'
expect 400 "mail-enabled security group refused"
api GET "/v1.0/groups?\$filter=$EXT%20eq%20'R1JPVVAtMQ=='&\$select=id,$EXT"
expect 200 "filter groups by the anchor extension"
hs_assert_eq "[[\"$staff\", \"R1JPVVAtMQ==\"]]" "$(jv "[[g['id'], g['$EXT']] for g in d['value']]")" "group found by anchor"
api GET "/v1.0/groups/$staff/members"
expect 200 "list members"
hs_assert_eq "$(printf '%s\n' "$u1" "$u2" | sort | tr '\n' ' ')" \
    "$(jv 'sorted(m["id"] for m in d["value"])' | tr -d '[]",' | tr ' ' '\n' | sed '/^$/d' | sort | tr '\n' ' ')" "members are u1 u2"
hs_assert_eq '#microsoft.graph.user' "$(jv 'd["value"][0]["@odata.type"]')" "member @odata.type"
many=$(for i in $(seq 1 21); do ref "$u3"; echo -n ,; done)
api PATCH "/v1.0/groups/$staff" "{\"members@odata.bind\":[${many%,}]}"
expect 400 "21 members@odata.bind refused"
api PATCH "/v1.0/groups/$staff" "{\"members@odata.bind\":[$(ref "$u3"),$(ref 00000000-0000-0000-0000-00000000dead)]}"
expect 404 "bind with a missing object"
api GET "/v1.0/groups/$staff/members?\$select=id"
hs_assert_eq 2 "$(jv 'len(d["value"])')" "no member added by the failed PATCHes"
api POST "/v1.0/groups/$staff/members/\$ref" "{\"@odata.id\":$(ref "$u3")}"
expect 204 "add u3 via \$ref"
api POST "/v1.0/groups/$staff/members/\$ref" "{\"@odata.id\":$(ref "$u3")}"
expect 400 "add u3 again"
api POST "/v1.0/groups/$staff/members/\$ref" "{\"@odata.id\":$(ref 00000000-0000-0000-0000-00000000beef)}"
expect 404 "add a missing object"
api DELETE "/v1.0/groups/$staff/members/$u3/\$ref"
expect 204 "remove u3 via \$ref"
api GET "/v1.0/users/$u3"
expect 200 "u3 still exists after removal via \$ref"
api DELETE "/v1.0/groups/$staff/members/$u2"
expect 204 "DELETE member WITHOUT /\$ref"
api GET "/v1.0/users/$u2"
expect 404 "without /\$ref Graph deleted the user object itself"
grep -q "without /\$ref" "$tmp/emulator.log" || hs_fail "no warning logged for the object delete"
ctl GET "/requests" >"$tmp/req.json"
hs_assert_contains "$(jv '[r.get("note") for r in d["requests"] if r.get("note")]' "$tmp/req.json")" \
    "member-object-deleted: user $u2" "request log flags the member object delete"
api POST "/v1.0/directory/deletedItems/$u2/restore"
expect 200 "restore u2"

echo "== paging"
seed='{"users":['
for i in $(seq 1 230); do seed+="{\"userPrincipalName\":\"seed$i@example.test\",\"displayName\":\"Seed $i\",\"accountEnabled\":true},"; done
ctl POST /seed "${seed%,}]}" >/dev/null
total=$(ctl GET /stats | jv 'd["objects"]["users"]' /dev/stdin)
api GET "/v1.0/users?\$top=100&\$select=id"
expect 200 "first page"
seen=$(jv 'len(d["value"])')
hs_assert_contains "$(jv 'd["@odata.nextLink"]')" '$skiptoken=' "nextLink carries a \$skiptoken"
while next=$(jv 'd.get("@odata.nextLink", "")') && [ -n "$next" ]; do
    api GET "${next#"$BASE"}"
    expect 200 "next page"
    seen=$((seen + $(jv 'len(d["value"])')))
done
hs_assert_eq "$total" "$seen" "paging returns every user once"
api GET "/v1.0/users?\$top=1000"
expect 400 "\$top above 999"
api GET "/v1.0/users?\$filter=endswith(userPrincipalName,'@example.test')"
expect 400 "endswith needs advanced query parameters"
api GET "/v1.0/users?\$filter=endswith(userPrincipalName,'@example.test')&\$count=true&\$top=1" - \
    -H 'ConsistencyLevel: eventual'
expect 200 "endswith with ConsistencyLevel and \$count"
hs_assert_eq "$total" "$(jv 'd["@odata.count"]')" "@odata.count"

echo "== \$batch"
batch=$(cat <<EOF
{"requests":[
 {"id":"1","method":"POST","url":"/users","headers":{"Content-Type":"application/json"},"body":$(user_json carol)},
 {"id":"2","dependsOn":["1"],"method":"GET","url":"/users/carol@example.test?\$select=id,displayName"},
 {"id":"3","method":"POST","url":"users","headers":{"Content-Type":"application/json"},"body":$(user_json u1)},
 {"id":"4","dependsOn":["3"],"method":"PATCH","url":"/users/u1@example.test","headers":{"Content-Type":"application/json"},"body":{"jobTitle":"never"}}
]}
EOF
)
api POST '/v1.0/$batch' "$batch"
expect 200 "batch with dependsOn"
hs_assert_eq '{"1": 201, "2": 200, "3": 400, "4": 424}' "$(jv '{r["id"]: r["status"] for r in d["responses"]}')" "per-item statuses"
hs_assert_eq carol "$(jv '[r for r in d["responses"] if r["id"] == "2"][0]["body"]["displayName"]')" "dependent GET sees the created user"
hs_assert_eq ObjectConflict "$(jv '[r for r in d["responses"] if r["id"] == "3"][0]["body"]["error"]["details"][0]["code"]')" "inner error body"
api GET "/v1.0/users/u1@example.test?\$select=jobTitle"
hs_assert_eq None "$(jv 'str(d["jobTitle"])')" "the failed dependency did not run"
big=$(for i in $(seq 1 21); do printf '{"id":"%d","method":"GET","url":"/users?$top=1"},' "$i"; done)
api POST '/v1.0/$batch' "{\"requests\":[${big%,}]}"
expect 400 "batch of 21"
api POST '/v1.0/$batch' '{"requests":[{"id":"a","method":"GET","url":"/users"},{"id":"A","method":"GET","url":"/groups"}]}'
expect 400 "duplicate ids (case-insensitive)"
api POST '/v1.0/$batch' '{"requests":[{"id":"1","method":"POST","url":"/users","body":{}}]}'
expect 400 "write without Content-Type"

echo "== delta"
delta_all() { # delta_all URL_PATH -> collects values into $tmp/delta.json, deltaLink in $dlink
    local url=$1
    echo '[]' >"$tmp/delta.json"
    while :; do
        api GET "$url" - "${@:2}"
        expect 200 "delta page"
        "$HS_PY" -c 'import json,sys; a=json.load(open(sys.argv[1])); a+=json.load(open(sys.argv[2]))["value"]; json.dump(a,open(sys.argv[1],"w"))' "$tmp/delta.json" "$tmp/body"
        dlink=$(jv 'd.get("@odata.deltaLink", "")')
        [ -n "$dlink" ] && break
        url=$(jv 'd["@odata.nextLink"]')
        url=${url#"$BASE"}
    done
    dlink=${dlink#"$BASE"}
}
delta_all "/v1.0/users/delta?\$select=displayName,userPrincipalName" -H 'Prefer: odata.maxpagesize=50'
n=$(ctl GET /stats | jv 'd["objects"]["users"]' /dev/stdin)
hs_assert_eq "$n" "$(jv 'len(d)' "$tmp/delta.json")" "initial delta returns every user"
hs_assert_contains "$dlink" '$deltatoken=' "deltaLink carries a \$deltatoken"
api PATCH "/v1.0/users/$u1" '{"displayName":"User One"}'
expect 204 "rename u1"
api PATCH "/v1.0/users/$u3" '{"jobTitle":"not tracked"}'
expect 204 "change an unselected property of u3"
api DELETE "/v1.0/users/$u2"
expect 204 "delete u2"
api POST /v1.0/users "$(user_json dave)"
dave=$(jv 'd["id"]')
delta_all "$dlink"
hs_assert_eq "[{\"displayName\": \"User One\", \"id\": \"$u1\"}]" \
    "$(jv "[x for x in d if x['id'] == '$u1']" "$tmp/delta.json")" "changed user: id + changed property"
hs_assert_eq "[{\"@removed\": {\"reason\": \"changed\"}, \"id\": \"$u2\"}]" \
    "$(jv "[x for x in d if x['id'] == '$u2']" "$tmp/delta.json")" "soft-deleted user"
hs_assert_eq "dave@example.test" "$(jv "[x for x in d if x['id'] == '$dave'][0]['userPrincipalName']" "$tmp/delta.json")" "new user"
hs_assert_eq 0 "$(jv "len([x for x in d if x['id'] == '$u3'])" "$tmp/delta.json")" "unselected change not reported"
delta_all "/v1.0/groups/delta?\$select=displayName,members"
hs_assert_eq "[\"$u1\"]" "$(jv "[m['id'] for g in d if g['id'] == '$staff' for m in g.get('members@delta', [])]" "$tmp/delta.json")" \
    "initial group delta lists the members (u2 was deleted)"
api POST "/v1.0/groups/$staff/members/\$ref" "{\"@odata.id\":$(ref "$dave")}"
api DELETE "/v1.0/groups/$staff/members/$u1/\$ref"
expect 204 "remove u1 from the group"
delta_all "$dlink"
hs_assert_eq "[{\"@odata.type\": \"#microsoft.graph.user\", \"@removed\": {\"reason\": \"deleted\"}, \"id\": \"$u1\"}, {\"@odata.type\": \"#microsoft.graph.user\", \"id\": \"$dave\"}]" \
    "$(jv "sorted([m for g in d if g['id'] == '$staff' for m in g['members@delta']], key=lambda m: '@removed' not in m)" "$tmp/delta.json")" \
    "members@delta: one removed, one added"
api GET '/v1.0/users/delta?$deltatoken=latest'
expect 200 "\$deltatoken=latest"
hs_assert_eq '0' "$(jv 'len(d["value"])')" "latest returns no objects"
latest=$(jv 'd["@odata.deltaLink"]')
ctl POST /delta/invalidate '{"mode":"gone"}' >/dev/null
api GET "${latest#"$BASE"}"
expect 410 "invalidated delta token -> 410 Gone"
hs_assert_contains "$(hdr location)" "/v1.0/users/delta" "410 Location restarts the sync"
api GET '/v1.0/users/delta?$deltatoken=latest'
latest=$(jv 'd["@odata.deltaLink"]')
ctl POST /delta/invalidate '{"mode":"syncStateNotFound"}' >/dev/null
api GET "${latest#"$BASE"}"
expect 400 "expired delta token -> 400"
hs_assert_eq syncStateNotFound "$(jv 'd["error"]["code"]')" "syncStateNotFound code"

echo "== faults"
ctl POST /faults '{"status":429,"retry_after":7,"method":"GET","path":"^/v1.0/users$","count":1}' >/dev/null
api GET '/v1.0/users?$top=1'
expect 429 "injected 429"
hs_assert_eq 7 "$(hdr retry-after)" "Retry-After"
[ -n "$(hdr x-ms-throttle-information)" ] || hs_fail "no x-ms-throttle-information"
hs_assert_eq TooManyRequests "$(jv 'd["error"]["code"]')" "429 code"
api GET '/v1.0/users?$top=1'
expect 200 "count=1: the next request passes"
ctl POST /faults '{"status":429,"retry_after":4,"method":"POST","path":"^/v1.0/users$","scope":"batch","count":1}' >/dev/null
api POST '/v1.0/$batch' "{\"requests\":[{\"id\":\"1\",\"method\":\"POST\",\"url\":\"/users\",\"headers\":{\"Content-Type\":\"application/json\"},\"body\":$(user_json erin)},{\"id\":\"2\",\"method\":\"POST\",\"url\":\"/users\",\"headers\":{\"Content-Type\":\"application/json\"},\"body\":$(user_json frank)}]}"
expect 200 "batch with an inner 429"
hs_assert_eq '{"1": 429, "2": 201}' "$(jv '{r["id"]: r["status"] for r in d["responses"]}')" "only the first item throttled"
hs_assert_eq 4 "$(jv '[r for r in d["responses"] if r["id"] == "1"][0]["headers"]["Retry-After"]')" "inner Retry-After"
ctl POST /faults '{"status":503,"retry_after":3,"count":1,"path":"^/v1.0/groups"}' >/dev/null
api GET /v1.0/groups
expect 503 "injected 503"
hs_assert_eq 3 "$(hdr retry-after)" "503 Retry-After"
ctl POST /faults '{"status":500,"every":2,"count":2,"path":"^/v1.0/domains$"}' >/dev/null
seq5=
for i in 1 2 3 4 5; do api GET /v1.0/domains; seq5+="$status "; done
hs_assert_eq "200 500 200 500 200 " "$seq5" "every 2nd request, twice"
ctl POST /faults '{"drop":"before","path":"^/v1.0/organization$","count":1}' >/dev/null
rc=0
"${CURL[@]}" -o /dev/null -H "Authorization: Bearer $TOKEN" "$BASE/v1.0/organization" 2>/dev/null || rc=$?
case $rc in 52 | 56) echo "ok: dropped connection (curl exit $rc)" ;; *) hs_fail "expected curl exit 52/56, got $rc" ;; esac
ctl POST /faults '{"drop":"after","method":"POST","path":"^/v1.0/users$","count":1}' >/dev/null
rc=0
"${CURL[@]}" -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary "$(user_json grace)" "$BASE/v1.0/users" 2>/dev/null || rc=$?
case $rc in 52 | 56) echo "ok: connection dropped after the write (curl exit $rc)" ;; *) hs_fail "expected curl exit 52/56, got $rc" ;; esac
api GET "/v1.0/users?\$filter=userPrincipalName%20eq%20'grace@example.test'&\$select=id"
hs_assert_eq 1 "$(jv 'len(d["value"])')" "the write took effect although no answer came"
ctl GET /requests >"$tmp/req.json"
hs_assert_eq '["before", "after"]' "$(jv '[r["dropped"] for r in d["requests"] if r.get("dropped")]' "$tmp/req.json")" "request log records both drops"
ctl POST /faults '{"latency_ms":400,"path":"^/v1.0/domains$","count":1}' >/dev/null
t=$("${CURL[@]}" -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $TOKEN" "$BASE/v1.0/domains")
"$HS_PY" -c "import sys; sys.exit(0 if float('$t') >= 0.4 else 1)" || hs_fail "latency not applied ($t s)"
echo "ok: latency applied (${t}s)"
ctl POST /config '{"latency_ms":150}' >/dev/null
t=$("${CURL[@]}" -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $TOKEN" "$BASE/v1.0/domains")
"$HS_PY" -c "import sys; sys.exit(0 if float('$t') >= 0.15 else 1)" || hs_fail "fixed latency not applied ($t s)"
ctl POST /config '{"latency_ms":0}' >/dev/null
echo "ok: fixed latency (${t}s)"
ctl DELETE /faults >/dev/null

echo "== write quota"
ctl POST /config '{"write_quota":"5/2"}' >/dev/null
for i in 1 2 3 4 5; do
    api PATCH "/v1.0/users/$u3" "{\"jobTitle\":\"t$i\"}"
    expect 204 "write $i of 5"
done
api PATCH "/v1.0/users/$u3" '{"jobTitle":"t6"}'
expect 429 "sixth write inside the window"
hs_assert_eq WriteLimitExceeded "$(hdr x-ms-throttle-information)" "throttle information"
ra=$(hdr retry-after)
[[ $ra =~ ^[12]$ ]] || hs_fail "Retry-After should be 1-2 s, got '$ra'"
api GET "/v1.0/users/$u3"
expect 200 "reads are not writes"
api POST '/v1.0/$batch' "{\"requests\":[{\"id\":\"1\",\"method\":\"PATCH\",\"url\":\"/users/$u3\",\"headers\":{\"Content-Type\":\"application/json\"},\"body\":{\"jobTitle\":\"b\"}}]}"
hs_assert_eq 429 "$(jv 'd["responses"][0]["status"]')" "batch items count against the quota"
sleep "$ra"
api PATCH "/v1.0/users/$u3" '{"jobTitle":"t7"}'
expect 204 "write after Retry-After"
ctl POST /config '{"write_quota":"3000/150"}' >/dev/null

echo "== request log and stats"
ctl GET /stats >"$tmp/stats.json"
[ "$(jv 'd["quota_429"]' "$tmp/stats.json")" -ge 2 ] || hs_fail "quota 429s not counted"
hs_assert_eq 7 "$(jv 'd["batch_items"]' "$tmp/stats.json")" "batch items counted one by one"
hs_assert_eq 1 "$(jv 'd["member_object_deletes"]' "$tmp/stats.json")" "member object delete counted"
ctl GET "/requests" >"$tmp/req.json"
hs_assert_eq True "$(jv 'str(any(r["in_batch"] and r["is_write"] and r["status"] == 201 for r in d["requests"]))' "$tmp/req.json")" "inner writes logged"
hs_assert_eq False "$(jv 'str(any(r["is_write"] for r in d["requests"] if r["path"].startswith("/" ) and "oauth2" in r["path"]))' "$tmp/req.json")" "token requests are not writes"

echo "== shutdown"
kill -TERM "$ge_pid"
rc=0
wait "$ge_pid" || rc=$?
hs_assert_eq 0 "$rc" "clean exit on SIGTERM"
grep -q stopped "$tmp/emulator.log" || hs_fail "no shutdown message"
echo "PASS"
