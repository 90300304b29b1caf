#!/bin/bash
# The Graph connector gets tokens with a client secret and with a certificate (a signed client
# assertion), renews them before they expire and once after a 401, and stops with
# stopped-connectivity and the identity platform's AADSTS text on a wrong secret. TLS is always
# verified: without the private CA the import fails.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"
. "$HS_SOURCE_DIR/tests/graph-emulator/hs-graph-lib.sh"
ge_need

d=$(hs_mktemp)
ge_start "$d/ge" --token-lifetime 2 --latency-ms 500
ge_ctl POST /seed '{"users":[{"displayName":"Ann","userPrincipalName":"ann@example.test","mailNickname":"ann","accountEnabled":true}],
  "groups":[{"displayName":"G1","mailNickname":"g1","mailEnabled":false,"securityEnabled":true,"members":["ann@example.test"]}]}' >/dev/null

# --- client secret; the token lives 2 s and the import takes longer: renewed before expiry
mkdir -p "$d/secret"
ge_conf "$d/secret/hs.conf" secret
ge_ctl POST /reset '{"state":false}' >/dev/null
out=$(hsg "$d/secret/hs.conf" import --full)
echo "$out"
hs_assert_eq success "$(field status <<<"$out")" "import with a client secret"
hs_assert_eq 2 "$(field objects <<<"$out")" "objects imported"
stats=$(ge_ctl GET /stats)
issued=$(ge_json 'j["tokens_issued"]' <<<"$stats")
[ "$issued" -ge 2 ] || hs_fail "token not renewed during a long import (issued $issued)"
echo "ok: token renewed during the import ($issued tokens)"
hs_assert_eq 0 "$(ge_json 'j["unauthorized_401"]' <<<"$stats")" "no request went out with an expired token"
if grep -rqF "$GE_SECRET" "$d/secret/hybridsync.db"; then
    hs_fail "the client secret is in the database"
fi
echo "ok: the secret is not in the database"

# --- a 401 renews the token once and the step goes on
ge_ctl POST /config '{"token_lifetime":3599,"latency_ms":0}' >/dev/null
ge_ctl POST /reset '{"state":false}' >/dev/null
ge_ctl POST /faults '{"status":401,"path":"^/v1.0/users$","count":1}' >/dev/null
out=$(hsg "$d/secret/hs.conf" import --full)
hs_assert_eq success "$(field status <<<"$out")" "import after one 401"
hs_assert_eq 2 "$(ge_ctl GET /stats | ge_json 'j["tokens_issued"]')" "one token, then one renewal after the 401"
# ... but a 401 after the renewal fails the step
ge_ctl DELETE /faults >/dev/null
ge_ctl POST /faults '{"status":401,"path":"^/v1.0/users$","count":2}' >/dev/null
set +e
out=$(hsg "$d/secret/hs.conf" import --full)
rc=$?
set -e
hs_assert_eq 1 "$rc" "exit status after two 401"
hs_assert_eq stopped-connectivity "$(field status <<<"$out")" "status after two 401"
ge_ctl DELETE /faults >/dev/null

# --- certificate: RS256 client assertion with x5t#S256
mkdir -p "$d/cert"
ge_conf "$d/cert/hs.conf" cert
ge_ctl POST /reset '{"state":false}' >/dev/null
out=$(hsg "$d/cert/hs.conf" import --full)
echo "$out"
hs_assert_eq success "$(field status <<<"$out")" "import with a certificate"
hs_assert_eq 2 "$(field objects <<<"$out")" "objects imported with a certificate"
hs_assert_eq 1 "$(ge_ctl GET /stats | ge_json 'j["tokens_issued"]')" "token issued for the assertion"

# --- a wrong secret: stopped-connectivity with the AADSTS text, nothing imported
mkdir -p "$d/wrong"
ge_conf "$d/wrong/hs.conf" wrong
set +e
out=$(hsg "$d/wrong/hs.conf" import --full)
rc=$?
set -e
echo "$out"
hs_assert_eq 1 "$rc" "exit status with a wrong secret"
hs_assert_eq stopped-connectivity "$(field status <<<"$out")" "status with a wrong secret"
hs_assert_contains "$(field error <<<"$out")" "AADSTS7000215" "the identity platform's error is reported"
hs_assert_eq 0 "$(field objects <<<"$out")" "nothing imported with a wrong secret"
hs_assert_eq '[]' "$(hsg "$d/wrong/hs.conf" cs)" "the connector space stays empty"

# --- TLS is verified: without the private CA the connection is refused
mkdir -p "$d/noca"
ge_conf "$d/noca/hs.conf" secret
sed -i '/^ca_file/d' "$d/noca/hs.conf"
set +e
out=$(hsg "$d/noca/hs.conf" import --full)
rc=$?
set -e
echo "$out"
hs_assert_eq 1 "$rc" "exit status against an untrusted certificate"
hs_assert_eq stopped-connectivity "$(field status <<<"$out")" "status against an untrusted certificate"

# --- plain http:// only with allow_insecure = yes
GE_PLAIN=1 ge_start "$d/plain"
ge_ctl POST /seed '{"users":[{"displayName":"Ann","userPrincipalName":"ann@example.test","mailNickname":"ann","accountEnabled":true},
  {"displayName":"Bob","userPrincipalName":"bob@example.test","mailNickname":"bob","accountEnabled":true}]}' >/dev/null
mkdir -p "$d/http"
ge_conf "$d/http/hs.conf" secret
set +e
hsg "$d/http/hs.conf" import --full >"$d/http/out" 2>"$d/http/err"
rc=$?
set -e
hs_assert_eq 1 "$rc" "http:// without allow_insecure is refused"
hs_assert_contains "$(cat "$d/http/err")" "allow_insecure" "the refusal names allow_insecure"
ge_conf "$d/http/hs.conf" secret "allow_insecure = yes"
out=$(hsg "$d/http/hs.conf" import --full)
hs_assert_eq "success 2" "$(field status <<<"$out") $(field objects <<<"$out")" "plain http:// with allow_insecure = yes"
echo "PASS"
