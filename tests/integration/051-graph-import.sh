#!/bin/bash
# Graph import into the 'graph' connector space: a full import (users, groups, members, the
# anchor extension; the lease group left out), delta imports (changes, member adds and
# removes, deletions), an expired deltaLink (each answer Graph documents) falling back to a
# full import, and a failed page concluding nothing.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"
. "$HS_SOURCE_DIR/tests/graph-emulator/hs-graph-lib.sh"
ge_need

d=$(hs_mktemp)
ge_start "$d/ge" --delta-page-size 3
ge_conf "$d/hs.conf" secret
ge_ctl POST /seed "{\"users\":[
  {\"displayName\":\"Ann\",\"userPrincipalName\":\"ann@example.test\",\"mailNickname\":\"ann\",\"accountEnabled\":true,\"onPremisesImmutableId\":\"QUFB\",\"jobTitle\":\"Boss\",\"businessPhones\":[\"+1 555 0100\"]},
  {\"displayName\":\"Bob\",\"userPrincipalName\":\"bob@example.test\",\"mailNickname\":\"bob\",\"accountEnabled\":false},
  {\"displayName\":\"Cid\",\"userPrincipalName\":\"cid@example.test\",\"mailNickname\":\"cid\",\"accountEnabled\":true}],
 \"groups\":[
  {\"displayName\":\"Team\",\"mailNickname\":\"team\",\"mailEnabled\":false,\"securityEnabled\":true,\"$GE_EXT\":\"R0dH\",\"members\":[\"ann@example.test\",\"bob@example.test\"]},
  {\"displayName\":\"hybridsync lease\",\"mailNickname\":\"hybridsync-lease\",\"mailEnabled\":false,\"securityEnabled\":true,\"description\":\"{}\"}]}" >/dev/null
state=$(ge_ctl GET /state)
uid() { ge_json "[u['id'] for u in j['users'] if u['userPrincipalName'].startswith('$1@')][0]" <<<"$state"; }
ann=$(uid ann); bob=$(uid bob); cid=$(uid cid)
team=$(ge_json '[g["id"] for g in j["groups"] if g["mailNickname"]=="team"][0]' <<<"$state")

cs() { hsg "$d/hs.conf" cs; }
obj() { cs | ge_json "[o for o in j if o['id']=='$1'][0]$2"; }

# --- full import
out=$(hsg "$d/hs.conf" import --full)
echo "$out"
hs_assert_eq success "$(field status <<<"$out")" "full import status"
hs_assert_eq true "$(field full <<<"$out")" "full import flag"
hs_assert_eq 4 "$(cs | ge_json 'len(j)')" "objects in the Graph CS (the lease group left out)"
hs_assert_eq '["QUFB"]' "$(obj "$ann" "['attrs']['onPremisesImmutableId']")" "immutable id imported"
hs_assert_eq '["true"]' "$(obj "$ann" "['attrs']['accountEnabled']")" "boolean as text"
hs_assert_eq '["+1 555 0100"]' "$(obj "$ann" "['attrs']['businessPhones']")" "collection imported"
hs_assert_eq '["R0dH"]' "$(obj "$team" "['attrs']['$GE_EXT']")" "anchor extension of the group"
hs_assert_eq "$(printf '["%s", "%s"]' $(printf '%s\n' "$ann" "$bob" | sort))" \
    "$(obj "$team" "['members']")" "group members as references"
hs_assert_eq user "$(obj "$bob" "['class']")" "object class"

# --- delta: an update, a new user, a member added and one removed, a user deleted
ge_api PATCH "/users/$ann" '{"jobTitle":"Chief"}' >/dev/null
hs_assert_eq 204 "$GE_STATUS" "update in the tenant"
ge_api POST /users '{"displayName":"Dee","userPrincipalName":"dee@example.test","mailNickname":"dee","accountEnabled":true,"passwordProfile":{"password":"Xy-12345678!a"}}' >/dev/null
dee=$(ge_json 'j["id"]' <"$d/ge/api.body")
ge_api POST "/groups/$team/members/\$ref" "{\"@odata.id\":\"https://graph.microsoft.com/v1.0/directoryObjects/$cid\"}" >/dev/null
ge_api DELETE "/groups/$team/members/$bob/\$ref" >/dev/null
hs_assert_eq 204 "$GE_STATUS" "member removed in the tenant"
ge_api DELETE "/users/$bob" >/dev/null
out=$(hsg "$d/hs.conf" import)
echo "$out"
hs_assert_eq success "$(field status <<<"$out")" "delta import status"
hs_assert_eq false "$(field full <<<"$out")" "delta import is not full"
hs_assert_eq '["Chief"]' "$(obj "$ann" "['attrs']['jobTitle']")" "changed attribute"
hs_assert_eq '["Ann"]' "$(obj "$ann" "['attrs']['displayName']")" "unchanged attributes kept in a delta"
hs_assert_eq add "$(obj "$dee" "['pending']")" "new user pending add"
hs_assert_eq delete "$(obj "$bob" "['pending']")" "deleted user pending delete"
hs_assert_eq "$(printf '["%s", "%s"]' $(printf '%s\n' "$ann" "$cid" | sort))" \
    "$(obj "$team" "['members']")" "members after members@delta"
hs_assert_eq 1 "$(field deletes <<<"$out")" "delta deletes counted"

# a delta with nothing new changes nothing
out=$(hsg "$d/hs.conf" import)
hs_assert_eq "0/0/0" "$(field adds <<<"$out")/$(field updates <<<"$out")/$(field deletes <<<"$out")" \
    "empty delta: no adds, updates or deletes"

# --- expired deltaLink: every documented answer leads to a full import
for mode in gone syncStateNotFound resyncRequired; do
    ge_ctl POST /delta/invalidate "{\"mode\":\"$mode\"}" >/dev/null
    out=$(hsg "$d/hs.conf" import)
    hs_assert_eq "success true" "$(field status <<<"$out") $(field full <<<"$out")" \
        "expired delta link ($mode) falls back to a full import"
done
out=$(hsg "$d/hs.conf" import)
hs_assert_eq false "$(field full <<<"$out")" "the next import is a delta again"

# --- a failed page concludes nothing: Cid is deleted, but the group list fails
ge_api DELETE "/users/$cid" >/dev/null
ge_ctl POST /faults '{"status":403,"path":"^/v1.0/groups$","count":1}' >/dev/null
set +e
out=$(hsg "$d/hs.conf" import --full)
rc=$?
set -e
echo "$out"
hs_assert_eq 1 "$rc" "failed full import exits 1"
hs_assert_eq stopped-error "$(field status <<<"$out")" "failed full import status"
hs_assert_eq add "$(obj "$cid" "['pending']")" "no delete concluded from a failed import"
ge_ctl DELETE /faults >/dev/null
out=$(hsg "$d/hs.conf" import --full)
hs_assert_eq success "$(field status <<<"$out")" "full import after the fault"
hs_assert_eq delete "$(obj "$cid" "['pending']")" "a complete full import obsoletes the missing user"

# --- a failed delta page: the cursor stays, the next delta import gets the changes
ge_api PATCH "/users/$ann" '{"jobTitle":"Retired"}' >/dev/null
ge_ctl POST /faults '{"status":403,"path":"^/v1.0/users/delta$","count":1}' >/dev/null
set +e
out=$(hsg "$d/hs.conf" import)
rc=$?
set -e
hs_assert_eq "1 stopped-error" "$rc $(field status <<<"$out")" "failed delta page stops the step"
hs_assert_eq '["Chief"]' "$(obj "$ann" "['attrs']['jobTitle']")" "nothing imported from the failed delta"
ge_ctl DELETE /faults >/dev/null
out=$(hsg "$d/hs.conf" import)
hs_assert_eq "success false" "$(field status <<<"$out") $(field full <<<"$out")" "delta import after the fault"
hs_assert_eq '["Retired"]' "$(obj "$ann" "['attrs']['jobTitle']")" "the change arrives with the kept cursor"

# --- paging: more users than one page ($top=999) and a group with more members than one page
"$HS_PY" -c '
import json
users = [{"displayName": "P %d" % i, "userPrincipalName": "p%d@example.test" % i,
          "mailNickname": "p%d" % i, "accountEnabled": True} for i in range(1500)]
print(json.dumps({"users": users, "groups": [{"displayName": "Many", "mailNickname": "many",
    "mailEnabled": False, "securityEnabled": True,
    "members": ["p%d@example.test" % i for i in range(1200)]}]}))' >"$d/many.json"
hs_assert_eq 1501 "$(ge_ctl POST /seed "@$d/many.json" | ge_json 'len(j["users"]) + len(j["groups"])')" "seeded 1500 users and a group"
want=$(ge_ctl GET /state | ge_json 'len(j["users"]) + len([g for g in j["groups"] if g["mailNickname"] != "hybridsync-lease"])')
out=$(hsg "$d/hs.conf" import --full)
hs_assert_eq success "$(field status <<<"$out")" "full import over several pages"
cs=$(hsg "$d/hs.conf" cs)
hs_assert_eq "$want" "$(ge_json 'len([o for o in j if o["pending"] != "delete"])' <<<"$cs")" "every user and group of every page"
hs_assert_eq 1200 "$(ge_json '[len(o["members"]) for o in j if o["attrs"].get("mailNickname") == ["many"]][0]' <<<"$cs")" \
    "every member of a group larger than one page"
echo "PASS"
