#!/bin/bash
# Delta sync after each kind of AD change touches only what it must: the generated small
# directory is synced in full, its exports are "done" (Graph CS loaded as the exporter and a
# Graph import would leave it, so nothing is pending), then each change (modify, undo,
# userAccountControl disable, rename, membership add/remove, add, delete, sourceAnchor change)
# is loaded into the AD connector space and a delta sync must evaluate that object only and
# produce exactly the expected pending exports.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"
. "$HS_SOURCE_DIR/tests/golden/sync-lib.sh"

T=$(hs_mktemp)
[ "${HS_KEEP:-0}" = 1 ] || hs_on_exit "rm -rf '$T'"
sync_setup "$T"
sync_small_cs "$T"

out=$(hs_sync "$T" --load-cs "$T/cs.jsonl" --full)
hs_assert_eq 60 "$(json_field "$out" exports_changed)" "full sync: exports of 50 users + 10 groups"
hs_sync "$T" --exports --no-sync >"$T/ex0.txt"
"$HS_PY" "$GOLDEN/exports2graph.py" "$T/ex0.txt" >"$T/graph.jsonl"
out=$(hs_sync "$T" --load-cs "$T/graph.jsonl")
hs_assert_eq 60 "$(json_field "$out" objects)" "delta sync after the Graph import: the Graph objects"
hs_assert_eq "" "$(hs_sync "$T" --exports --no-sync)" "no pending export once Graph holds everything"
echo "ok: full sync, then a Graph import of what was exported leaves nothing pending"

out=$(hs_sync "$T")
hs_assert_eq 0 "$(json_field "$out" objects)" "delta sync with no change"
echo "ok: a delta sync with nothing pending evaluates nothing"

# a line of the AD CS, modified by a python expression on `o`
change() { # change ANCHOR_SUBSTRING PYTHON_STATEMENTS
    "$HS_PY" - "$T/cs.jsonl" "$1" "$2" <<'PY'
import json, sys
path, key, code = sys.argv[1:]
lines = [json.loads(l) for l in open(path)]
for o in lines:
    if key in o["dn"]:
        exec(code)
        print(json.dumps(o))
        break
else:
    sys.exit("no object matches " + key)
open(path, "w").write("".join(json.dumps(o) + "\n" for o in lines))
PY
}
delta() { # delta JSONL_TEXT -> prints the result line
    printf '%s\n' "$1" >"$T/change.jsonl"
    hs_sync "$T" --load-cs "$T/change.jsonl"
}
exports() { hs_sync "$T" --exports --no-sync; }

# --- modify -----------------------------------------------------------------------------------
line=$(change "cn=Natalie Hughes," 'o["attrs"]["title"] = ["Chief Engineer"]')
out=$(delta "$line")
hs_assert_eq 1 "$(json_field "$out" objects)" "modify: objects evaluated"
hs_assert_eq 1 "$(json_field "$out" updates)" "modify: MV updates"
hs_assert_eq 1 "$(json_field "$out" exports_changed)" "modify: exports changed"
ex=$(exports)
hs_assert_eq 1 "$(grep -c '^update user' <<<"$ex")" "modify: one update export"
hs_assert_contains "$ex" "jobTitle (old): Senior Engineer" "modify: old value"
hs_assert_contains "$ex" "jobTitle: Chief Engineer" "modify: new value"
[ "$(grep -c '^    ' <<<"$ex")" = 4 ] || hs_fail "modify: the export holds more than the title: $ex"
echo "ok: modify -> one UPDATE export with the old and new title"
out=$(hs_sync "$T")
hs_assert_eq 0 "$(json_field "$out" exports_changed)" "re-running a delta sync changes nothing"
hs_assert_eq "$ex" "$(exports)" "re-running never duplicates"

# --- undo before export ------------------------------------------------------------------------
line=$(change "cn=Natalie Hughes," 'o["attrs"]["title"] = ["Senior Engineer"]')
out=$(delta "$line")
hs_assert_eq 1 "$(json_field "$out" exports_changed)" "undo: export removed"
hs_assert_eq "" "$(exports)" "a change undone before export leaves no pending export"
echo "ok: a change undone before export leaves none"

# --- userAccountControl disable ----------------------------------------------------------------
line=$(change "cn=Judy Campbell," 'o["attrs"]["userAccountControl"] = ["514"]')
out=$(delta "$line")
hs_assert_eq 1 "$(json_field "$out" objects)" "disable: objects evaluated"
ex=$(exports)
hs_assert_contains "$ex" "accountEnabled (old): true" "disable: old value"
hs_assert_contains "$ex" "accountEnabled: false" "disable: new value"
echo "ok: userAccountControl 514 -> accountEnabled false"

# --- rename: the DN moves, nothing Graph sees changes -------------------------------------------
before=$(exports)
line=$(change "cn=Sharon Long," 'o["dn"] = o["dn"].replace("ou=Berlin", "ou=Chicago")')
out=$(delta "$line")
hs_assert_eq 1 "$(json_field "$out" objects)" "rename: objects evaluated"
hs_assert_eq 0 "$(json_field "$out" exports_changed)" "rename: no export"
hs_assert_eq "$before" "$(exports)" "rename: pending exports unchanged (group memberships follow the DN)"
echo "ok: rename keeps memberships and queues nothing"

# --- membership add and remove -----------------------------------------------------------------
new_member=$(grep -o '"dn": "cn=Natalie Hughes[^"]*"' "$T/cs.jsonl" | sed 's/"dn": //; s/"//g')
line=$(change "cn=Legal Team 00004," "o['refs']['member'].append('$new_member')")
out=$(delta "$line")
hs_assert_eq 1 "$(json_field "$out" objects)" "member add: objects evaluated"
ex=$(exports)
hs_assert_eq 1 "$(grep -c '^update group' <<<"$ex")" "member add: one group update"
hs_assert_contains "$ex" "member add op8febX3kEu/Hv+9KzUgSA== -> " "member add: member anchor and Graph id"
echo "ok: membership add -> member change with anchor and Graph id"
line=$(change "cn=Legal Team 00004," "o['refs']['member'].remove('$new_member'); o['refs']['member'].pop(0)")
out=$(delta "$line")
ex=$(exports)
hs_assert_eq 1 "$(grep -c '^    member remove' <<<"$ex")" "member remove: one removal"
hs_assert_eq 0 "$(grep -c '^    member add' <<<"$ex")" "member remove: the undone add is gone"
echo "ok: membership remove"

# --- add ---------------------------------------------------------------------------------------
"$HS_PY" - "$T/cs.jsonl" >"$T/new.jsonl" <<'PY'
import json, sys
o = json.loads(open(sys.argv[1]).readline())
o["anchor"] = o["attrs"]["objectGUID"] = "b64:AAAAAAAAAAAAAAAAAAAAAQ=="
o["dn"] = "cn=New Person,ou=Berlin,ou=Corp,dc=example,dc=test"
o["attrs"]["userPrincipalName"] = ["new.person@elsewhere.example"]
o["attrs"]["sAMAccountName"] = ["new.person"]
o["attrs"]["cn"] = o["attrs"]["displayName"] = ["New Person"]
print(json.dumps(o))
PY
# preview of the pending add, before any sync: projected MV object and its ADD, nothing written
before=$(exports)
pv=$(hs_sync "$T" --load-cs "$T/new.jsonl" --no-sync --preview "cn=New Person,ou=Berlin,ou=Corp,dc=example,dc=test")
hs_assert_contains "$pv" '"projected":true' "preview: the MV object would be projected"
hs_assert_contains "$pv" '"operation":"add"' "preview: an ADD would be queued"
hs_assert_contains "$pv" '"userPrincipalName":{"old":[],"new":["new.person@contoso.onmicrosoft.com"]}' \
    "preview: the UPN that would be sent"
hs_assert_eq "$before" "$(exports)" "preview writes nothing"
echo "ok: preview of a pending add shows the projection and the export, without writing"
out=$(hs_sync "$T")
hs_assert_eq 1 "$(json_field "$out" objects)" "add: objects evaluated"
hs_assert_eq 1 "$(json_field "$out" adds)" "add: MV adds"
ex=$(exports)
hs_assert_contains "$ex" "add user AAAAAAAAAAAAAAAAAAAAAQ==" "add: ADD export"
hs_assert_contains "$ex" "userPrincipalName: new.person@contoso.onmicrosoft.com" \
    "add: a UPN suffix the tenant does not have becomes the onmicrosoft.com domain"
echo "ok: add -> ADD export; unverified UPN suffix replaced"

# --- a Graph object of ours imported before its AD object -------------------------------------
printf '%s\n' '{"connector":"graph","anchor":"early-id","dn":"early-id","class":"user","attrs":{"onPremisesImmutableId":"AAAAAAAAAAAAAAAAAAAAAg==","userPrincipalName":"early@example.test","displayName":"Early"}}' >"$T/early-graph.jsonl"
out=$(hs_sync "$T" --load-cs "$T/early-graph.jsonl")
hs_assert_eq 1 "$(json_field "$out" objects)" "early Graph object: evaluated, joins nothing yet"
"$HS_PY" - "$T/new.jsonl" >"$T/early-ad.jsonl" <<'PY'
import json, sys
o = json.loads(open(sys.argv[1]).readline())
o["anchor"] = o["attrs"]["objectGUID"] = "b64:AAAAAAAAAAAAAAAAAAAAAg=="
o["dn"] = "cn=Early,ou=Berlin,ou=Corp,dc=example,dc=test"
o["attrs"]["userPrincipalName"] = ["early@example.test"]
o["attrs"]["cn"] = o["attrs"]["displayName"] = ["Early"]
print(json.dumps(o))
PY
out=$(hs_sync "$T" --load-cs "$T/early-ad.jsonl")
ex=$(exports)
hs_assert_eq 0 "$(grep -c '^add user AAAAAAAAAAAAAAAAAAAAAg==' <<<"$ex")" "no ADD for an object Graph already has"
hs_assert_contains "$ex" "update user AAAAAAAAAAAAAAAAAAAAAg==" "the Graph object is joined and updated"
hs_assert_contains "$ex" "targetId: early-id" "the update names the Graph object"
echo "ok: a Graph object imported before its AD object is joined when the AD object arrives"

# --- delete ------------------------------------------------------------------------------------
anchor=$(grep '"dn": "cn=Judy Campbell,' "$T/cs.jsonl" | "$HS_PY" -c 'import json,sys; print(json.load(sys.stdin)["anchor"])')
printf '{"connector":"ad","anchor":"%s","delete":true}\n' "$anchor" >"$T/del.jsonl"
pv=$(hs_sync "$T" --load-cs "$T/del.jsonl" --no-sync --preview "Tl4Vf3caQUqLBaYLc2LlEw==")
hs_assert_contains "$pv" '"operation":"delete"' "preview of a pending delete: the DELETE export"
hs_assert_contains "$pv" '"metaverse":null' "preview of a pending delete: no MV object left"
echo "ok: preview of a pending delete"
out=$(hs_sync "$T")
hs_assert_eq 1 "$(json_field "$out" deletes)" "delete: MV deletes"
ex=$(exports)
hs_assert_contains "$ex" "delete user Tl4Vf3caQUqLBaYLc2LlEw==" "delete: DELETE export of the Graph user"
hs_assert_eq 0 "$(grep -c 'accountEnabled (old)' <<<"$ex")" "delete: the disable update is replaced"
grep -q "member remove Tl4Vf3caQUqLBaYLc2LlEw==" <<<"$ex" || hs_fail "delete: groups lose the deleted member"
echo "ok: delete -> MV deleted, DELETE export, memberships removed"

# --- sourceAnchor change of an exported object ----------------------------------------------------
line=$(change "cn=Natalie Hughes," 'o["attrs"]["mS-DS-ConsistencyGuid"] = ["b64:EREREREREREREREREREREQ=="]')
out=$(delta "$line")
hs_assert_eq 1 "$(json_field "$out" errors)" "sourceAnchor change: one per-object error"
hs_assert_eq completed-sync-errors "$(json_field "$out" status)" "sourceAnchor change: status"
echo "ok: a changed sourceAnchor of an exported object is blocked with an error"

# --- object class changed (user -> contact): the Graph user goes, memberships with it ------------
line=$(change "cn=Marie Patel," 'o["class"] = "contact"')
out=$(delta "$line")
ma=$(grep '"dn": "cn=Marie Patel,' "$T/cs.jsonl" | "$HS_PY" -c 'import json,sys; print(json.load(sys.stdin)["anchor"][4:])')
ex=$(exports)
hs_assert_contains "$ex" "delete user $ma" "class change: DELETE of the Graph user"
grep -q "member remove $ma" <<<"$ex" || hs_fail "class change: the contact leaves the Graph groups"
echo "ok: a user that becomes a contact is deleted from Graph and its groups"

# --- deleted and re-created in AD with the same ms-DS-ConsistencyGuid: the Graph user is kept --
ja=$(grep '"dn": "cn=Jack Young,' "$T/cs.jsonl" | "$HS_PY" -c 'import json,sys; print(json.load(sys.stdin)["anchor"])')
"$HS_PY" - "$T/cs.jsonl" "$ja" >"$T/recreate.jsonl" <<'PY'
import json, sys
path, anchor = sys.argv[1:]
o = next(json.loads(l) for l in open(path) if json.loads(l)["anchor"] == anchor)
print(json.dumps({"connector": "ad", "anchor": anchor, "delete": True}))
o["anchor"] = o["attrs"]["objectGUID"] = "b64:AAAAAAAAAAAAAAAAAAAAAw=="
o["attrs"]["mS-DS-ConsistencyGuid"] = [anchor]
print(json.dumps(o))
PY
out=$(hs_sync "$T" --load-cs "$T/recreate.jsonl")
ex=$(exports)
hs_assert_eq 0 "$(grep -c "^delete user ${ja#b64:}" <<<"$ex")" "re-created: the Graph user is not deleted"
hs_assert_eq 0 "$(grep -c "^add user ${ja#b64:}" <<<"$ex")" "re-created: no second Graph user"
echo "ok: an AD object re-created with the same sourceAnchor keeps its Graph user"

# --- a Graph user deleted in the cloud is created again -----------------------------------------
gid=$(grep -B1 -A1 'cn=Sharon Long,' "$T/ex0.txt" | head -1 | awk '{print $3}')
[ -n "$gid" ] || hs_fail "test setup: no anchor for Sharon Long"
graph_id=$("$HS_PY" -c 'import hashlib,sys; h=hashlib.sha256(sys.argv[1].encode()).hexdigest(); print(f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}")' "$gid")
printf '{"connector":"graph","anchor":"%s","delete":true}\n' "$graph_id" >"$T/gdel.jsonl"
out=$(hs_sync "$T" --load-cs "$T/gdel.jsonl")
hs_assert_eq 1 "$(json_field "$out" objects)" "cloud delete: one Graph object evaluated"
hs_assert_contains "$(exports)" "add user $gid" "cloud delete: the user is created again"
echo "ok: a Graph user deleted in the cloud is provisioned again"

# --- full sync afterwards agrees with the deltas -----------------------------------------------------
before=$(exports)
out=$(hs_sync "$T" --full)
hs_assert_eq "$before" "$(exports)" "a full sync computes the same pending exports as the deltas"
echo "ok: full sync agrees with the delta syncs"
