#!/bin/bash
# Graph export of pending exports: creates (with hard match on onPremisesImmutableId, soft
# match on UPN, groups adopted by the anchor extension), updates of only the changed
# attributes, deletes, membership adds (members@odata.bind, 20 per request) and removes
# (DELETE .../$ref); a permanent error is recorded on its export and in the run; the emulator
# ends with exactly the expected objects; a second export sends nothing; the next import
# confirms the export memory; a staging server sends no write at all.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"
. "$HS_SOURCE_DIR/tests/graph-emulator/hs-graph-lib.sh"
ge_need

d=$(hs_mktemp)
ge_start "$d/ge"
ge_conf "$d/hs.conf" secret
ge_ctl POST /seed "{\"users\":[
  {\"displayName\":\"Ann\",\"userPrincipalName\":\"ann@example.test\",\"mailNickname\":\"ann\",\"accountEnabled\":true,\"onPremisesImmutableId\":\"QU5O\",\"department\":\"Sales\"},
  {\"displayName\":\"Bob\",\"userPrincipalName\":\"bob@example.test\",\"mailNickname\":\"bob\",\"accountEnabled\":true,\"onPremisesImmutableId\":\"Qk9C\"},
  {\"displayName\":\"Cid\",\"userPrincipalName\":\"cid@example.test\",\"mailNickname\":\"cid\",\"accountEnabled\":true},
  {\"displayName\":\"Hard cloud\",\"userPrincipalName\":\"hard@example.test\",\"mailNickname\":\"hard\",\"accountEnabled\":true,\"onPremisesImmutableId\":\"SEFSRA\"},
  {\"displayName\":\"Soft cloud\",\"userPrincipalName\":\"soft@example.test\",\"mailNickname\":\"soft\",\"accountEnabled\":true}],
 \"groups\":[
  {\"displayName\":\"Team\",\"mailNickname\":\"team\",\"mailEnabled\":false,\"securityEnabled\":true,\"$GE_EXT\":\"VEVBTQ\",\"members\":[\"ann@example.test\",\"bob@example.test\"]},
  {\"displayName\":\"Old\",\"mailNickname\":\"old\",\"mailEnabled\":false,\"securityEnabled\":true,\"$GE_EXT\":\"T0xE\"}]}" >/dev/null
state=$(ge_ctl GET /state)
uid() { ge_json "[u['id'] for u in j['users'] if u['userPrincipalName'].startswith('$1@')][0]" <<<"$state"; }
ann=$(uid ann); bob=$(uid bob); cid=$(uid cid); hard=$(uid hard); soft=$(uid soft)
team=$(ge_json '[g["id"] for g in j["groups"] if g["mailNickname"]=="team"][0]' <<<"$state")
old=$(ge_json '[g["id"] for g in j["groups"] if g["mailNickname"]=="old"][0]' <<<"$state")
hs_assert_eq success "$(hsg "$d/hs.conf" import --full | field status)" "initial full import"

user() { # user ANCHOR NICK [DISPLAY]
    printf '{"op":"add","type":"user","anchor":"%s","mv":true,"attrs":{"displayName":"%s","userPrincipalName":"%s@example.test","mailNickname":"%s","accountEnabled":"true","jobTitle":"Engineer"}}' \
        "$1" "${3:-$2}" "$2" "$2"
}
{
    echo '['
    user VTE u1 "User One"; echo ,
    user SEFSRA hard "Hard matched"; echo ,
    user U09GVA soft "Soft matched"; echo ,
    echo '{"op":"add","type":"user","anchor":"QkFE","mv":true,"attrs":{"displayName":"Bad","userPrincipalName":"bad@not-verified.test","mailNickname":"bad","accountEnabled":"true"}},'
    for i in $(seq 1 25); do user "TS$i" "m$i"; echo ,; done
    printf '{"op":"add","type":"group","anchor":"R1","mv":true,"attrs":{"displayName":"G1","mailNickname":"g1","mailEnabled":"false","securityEnabled":"true","description":"new group"},"members":[{"op":"add","anchor":"VTE"},{"op":"add","anchor":"QU5O","target_id":"%s"}]},\n' "$ann"
    printf '{"op":"add","type":"group","anchor":"QklH","mv":true,"attrs":{"displayName":"Big","mailNickname":"big","mailEnabled":"false","securityEnabled":"true"},"members":[%s]},\n' \
        "$(for i in $(seq 1 25); do printf '{"op":"add","anchor":"TS%s"}' "$i"; [ "$i" -lt 25 ] && printf ,; done)"
    echo '{"op":"add","type":"group","anchor":"T0xE","mv":true,"attrs":{"displayName":"Old adopted","mailNickname":"old","mailEnabled":"false","securityEnabled":"true"}},'
    printf '{"op":"update","type":"user","anchor":"QU5O","target_id":"%s","attrs":{"jobTitle":"Chief","department":null},"old":{"department":"Sales"}},\n' "$ann"
    printf '{"op":"update","type":"group","anchor":"VEVBTQ","target_id":"%s","members":[{"op":"add","anchor":"VTE"},{"op":"remove","anchor":"Qk9C","target_id":"%s"}]},\n' "$team" "$bob"
    printf '{"op":"delete","type":"user","anchor":"Q0lE","target_id":"%s"}\n' "$cid"
    echo ']'
} >"$d/exports.json"
hs_assert_eq '{"seeded": 35}' "$(hsg "$d/hs.conf" seed-export "$d/exports.json" | ge_json j)" "pending exports seeded"

seq0=$(ge_last_seq)
set +e
out=$(hsg "$d/hs.conf" export)
rc=$?
set -e
echo "$out"
hs_assert_eq 0 "$rc" "an export with errors completed (exit 0)"
hs_assert_eq completed-export-errors "$(field status <<<"$out")" "export status"
hs_assert_eq 1 "$(field errors <<<"$out")" "one permanent error"
writes=$(ge_writes_since "$seq0")
hs_assert_eq "$writes" "$(field write_requests <<<"$out")" "write requests counted as the emulator saw them"

exports=$(hsg "$d/hs.conf" exports)
hs_assert_eq '{"done": 34, "error": 1}' \
    "$(ge_json 'dict(__import__("collections").Counter(e["state"] for e in j))' <<<"$exports")" "export states"
hs_assert_eq Request_BadRequest "$(ge_json '[e["error_code"] for e in j if e["anchor"]=="QkFE"][0]' <<<"$exports")" \
    "the error's Graph code is kept on the export"

# The tenant holds exactly what is expected.
state=$(ge_ctl GET /state)
got=$(ge_json 'sorted(u["userPrincipalName"] for u in j["users"])' <<<"$state")
want=$("$HS_PY" -c 'import json; print(json.dumps(sorted(["ann@example.test","bob@example.test","hard@example.test","soft@example.test","u1@example.test"]+["m%d@example.test"%i for i in range(1,26)])))')
hs_assert_eq "$want" "$got" "users in the tenant: no duplicate, Cid deleted, the bad one not created"
hs_assert_eq "Hard matched SEFSRA" "$(ge_json "[u['displayName']+' '+u['onPremisesImmutableId'] for u in j['users'] if u['id']=='$hard'][0]" <<<"$state")" "hard match adopted the cloud user"
hs_assert_eq "Soft matched U09GVA" "$(ge_json "[u['displayName']+' '+u['onPremisesImmutableId'] for u in j['users'] if u['id']=='$soft'][0]" <<<"$state")" "soft match adopted the cloud user"
hs_assert_eq "Chief None" "$(ge_json "'%s %s' % [(u.get('jobTitle'), u.get('department')) for u in j['users'] if u['id']=='$ann'][0]" <<<"$state")" "update sent only the changes (department cleared)"
u1=$(ge_json '[u["id"] for u in j["users"] if u["userPrincipalName"]=="u1@example.test"][0]' <<<"$state")
members() { ge_json "sorted([g for g in j['groups'] if g['mailNickname']=='$1'][0]['members'])" <<<"$state"; }
jsorted() { "$HS_PY" -c 'import json,sys; print(json.dumps(sorted(sys.argv[1:])))' "$@"; }
hs_assert_eq "$(jsorted "$ann" "$u1")" "$(members g1)" "members of the new group"
hs_assert_eq "$(jsorted "$ann" "$u1")" "$(members team)" "members of Team after adds and removes"
hs_assert_eq 25 "$(members big | ge_json 'len(j)')" "25 members bound (two PATCHes of at most 20)"
hs_assert_eq '["Old adopted"]' "$(ge_json '[g["displayName"] for g in j["groups"] if g["mailNickname"]=="old"]' <<<"$state")" "group adopted by its anchor extension, not created again"
hs_assert_eq 4 "$(ge_json 'len(j["groups"])' <<<"$state")" "groups in the tenant"
hs_assert_eq R1 "$(ge_json "[g['$GE_EXT'] for g in j['groups'] if g['mailNickname']=='g1'][0]" <<<"$state")" "a created group carries its anchor"
hs_assert_eq 0 "$(ge_ctl GET /stats | ge_json 'j["member_object_deletes"]')" "member removes used /\$ref"
log=$(ge_ctl GET "/requests?since=$seq0")
ge_json "sorted(set((r['method'], __import__('re').sub('[0-9a-f-]{36}', 'ID', r['path'].split('?')[0]), r['status']) for r in j['requests'] if r['is_write']))" <<<"$log"
# Old adopted (1), Team (1 add), G1 (2 adds), Big (25 adds: 20 + 5)
hs_assert_eq 5 "$(ge_json "len([r for r in j['requests'] if r['method']=='PATCH' and __import__('re').match('(/v1.0)?/groups/[^/?]+$', r['path']) and r['status']==204])" <<<"$log")" \
    "group PATCHes: one adoption and 28 member adds in 4 binds"
if ge_ctl GET "/requests?since=$seq0" | grep -q 'passwordProfile'; then
    hs_fail "a password reached the request log"
fi

# A second export sends nothing.
seq1=$(ge_last_seq)
set +e
out=$(hsg "$d/hs.conf" export)
set -e
hs_assert_eq success "$(field status <<<"$out")" "second export status"
hs_assert_eq 0 "$(ge_writes_since "$seq1")" "a second export sends no write"

# The next import confirms the export memory.
hs_assert_eq success "$(hsg "$d/hs.conf" import | field status)" "delta import after the export"
cs=$(hsg "$d/hs.conf" cs)
hs_assert_eq 0 "$(ge_json 'sum(o["attr_memory"] for o in j)' <<<"$cs")" "attribute memory confirmed by the import"
hs_assert_eq 0 "$(ge_json 'sum(len(o["member_memory"]) for o in j)' <<<"$cs")" "member memory confirmed by the import"
hs_assert_eq 0 "$(ge_json "len([o for o in j if o['id']=='$cid'])" <<<"$cs")" "the deleted user left the connector space"

# --- adds and removes interleaved in one group export: one bind and one $ref delete
g1=$(ge_ctl GET /state | ge_json '[g["id"] for g in j["groups"] if g["mailNickname"]=="g1"][0]')
printf '[{"op":"update","type":"group","anchor":"R1","target_id":"%s","members":[{"op":"add","anchor":"A1","target_id":"%s"},{"op":"remove","anchor":"QU5O","target_id":"%s"},{"op":"add","anchor":"Z9","target_id":"%s"}]}]\n' \
    "$g1" "$bob" "$ann" "$hard" >"$d/interleaved.json"
hsg "$d/hs.conf" seed-export "$d/interleaved.json" >/dev/null
seq3=$(ge_last_seq)
hs_assert_eq success "$(hsg "$d/hs.conf" export | field status)" "interleaved member changes"
hs_assert_eq "$(jsorted "$bob" "$hard" "$u1")" "$(ge_ctl GET /state | ge_json "sorted([g for g in j['groups'] if g['id']=='$g1'][0]['members'])")" \
    "members after interleaved adds and removes"
hs_assert_eq '[["DELETE", "$ref"], ["PATCH", "'"$g1"'"]]' \
    "$(ge_ctl GET "/requests?since=$seq3" | ge_json "sorted([r['method'], r['path'].split('/')[-1]] for r in j['requests'] if r['is_write'])")" \
    "one bind of two members and one \$ref delete, nothing one by one"

# --- cancellation (SIGTERM, demotion) at a batch boundary: what was not sent stays pending
printf '[%s,\n{"op":"update","type":"user","anchor":"VTE","target_id":"%s","attrs":{"jobTitle":"Later"}}]\n' \
    "$(user Q0FO cancel1)" "$u1" >"$d/cancel.json"
hsg "$d/hs.conf" seed-export "$d/cancel.json" >/dev/null
set +e
out=$(HS_GRAPH_CANCEL_AFTER=1 hsg "$d/hs.conf" export)
rc=$?
set -e
echo "$out"
hs_assert_eq "1 stopped-cancelled" "$rc $(field status <<<"$out")" "cancelled export"
exports=$(hsg "$d/hs.conf" exports)
hs_assert_eq "done pending" "$(ge_json '" ".join([e["state"] for e in j if e["anchor"] in ("Q0FO", "VTE")])' <<<"$exports")" \
    "the create went out before the cancel, the update stays pending"
hs_assert_eq Engineer "$(ge_ctl GET /state | ge_json "[u.get('jobTitle') for u in j['users'] if u['id']=='$u1'][0]")" \
    "the held update was not sent"
hs_assert_eq success "$(hsg "$d/hs.conf" export | field status)" "the next export sends the rest"
hs_assert_eq Later "$(ge_ctl GET /state | ge_json "[u.get('jobTitle') for u in j['users'] if u['id']=='$u1'][0]")" \
    "the held update arrived"

# --- staging: graph_export refuses, nothing is written
mkdir -p "$d/staging"
cp "$d/hybridsync.db" "$d/staging/hybridsync.db"
GE_STAGING=yes ge_conf "$d/staging/hs.conf" secret
echo "[$(user U1RH stg)]" >"$d/staging.json"
hsg "$d/staging/hs.conf" seed-export "$d/staging.json" >/dev/null
seq2=$(ge_last_seq)
set +e
out=$(hsg "$d/staging/hs.conf" export 2>"$d/staging/err")
rc=$?
set -e
echo "$out"
hs_assert_eq 1 "$rc" "export while staging exits 1"
hs_assert_contains "$(cat "$d/staging/err")" "staging" "the refusal is logged"
hs_assert_eq 0 "$(ge_writes_since "$seq2")" "staging: no write request reached Graph"
hs_assert_eq 0 "$(ge_ctl GET "/requests?since=$seq2" | ge_json 'len(j["requests"])')" "staging: no request at all from the export"
hs_assert_eq pending "$(hsg "$d/staging/hs.conf" exports | ge_json '[e["state"] for e in j if e["anchor"]=="U1RH"][0]')" "the held export stays pending"
echo "PASS"
