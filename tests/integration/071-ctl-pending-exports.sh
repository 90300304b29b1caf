#!/bin/bash
# hybridsyncctl pending-exports, the CSExportAnalyzer replacement: text table, --json (old/new
# as strings for single values and arrays for multi-valued attributes, members, errors,
# provenance), --csv (RFC 4180, one row per attribute change, members as "member" rows,
# multi-valued changes one row per value), --op/--type filters, the summary and the queue
# fingerprint, usage errors.
. "$(dirname "$0")/../lib/common.sh"

. "$(dirname "$0")/../lib/ctl-setting.sh"

cat > "$T/fixture.json" <<'EOF'
{
  "exports": [
    {"op": "update", "type": "user", "anchor": "u-alice", "dn": "CN=Alice,OU=Staff,DC=corp",
     "target_id": "tid-alice", "rules": "Out to AAD - User Identity", "cause": "ad update u-alice",
     "changes": {
       "displayName": {"old": ["Alice Old"], "new": ["Alice \"Ally\" New, Jr."]},
       "proxyAddresses": {"old": ["SMTP:alice@corp.example.com", "smtp:a@old.example.com"],
                          "new": ["SMTP:alice@corp.example.com", "smtp:ally@corp.example.com"]},
       "jobTitle": {"old": ["Engineer"], "new": []}}},
    {"op": "add", "type": "group", "anchor": "g-staff", "dn": "CN=Staff,OU=Groups,DC=corp",
     "changes": {"displayName": {"new": ["Staff"]}, "mailNickname": {"new": ["staff"]}},
     "members": [{"op": "add", "anchor": "u-alice", "target_id": "tid-alice"},
                 {"op": "add", "anchor": "u-bob"},
                 {"op": "remove", "anchor": "u-carol", "target_id": "tid-carol"}]},
    {"op": "delete", "type": "user", "anchor": "u-dave", "dn": "CN=Dave,OU=Staff,DC=corp",
     "target_id": "tid-dave", "state": "error",
     "error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges",
               "request_id": "req-42"}},
    {"op": "add", "type": "contact", "anchor": "c-ext", "dn": "CN=Ext,OU=Contacts,DC=corp",
     "changes": {"mail": {"new": ["ext@partner.example"]}}}
  ]
}
EOF
"$FIXTURE" "$T/hybridsync.db" "$T/fixture.json"

# --- JSON ---------------------------------------------------------------------------------------
ctl pending-exports --json > "$T/pe.json" 2> "$T/pe.err"
"$HS_PY" - "$T/pe.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert isinstance(d, list) and len(d) == 4, d
by = {e["anchor"]: e for e in d}
for e in d:
    for k in ("operation", "object_type", "anchor", "dn", "target_id", "attributes", "members",
              "state", "error", "rules", "cause"):
        assert k in e, (k, e)
a = by["u-alice"]
assert (a["operation"], a["object_type"], a["dn"], a["target_id"]) == \
    ("update", "user", "CN=Alice,OU=Staff,DC=corp", "tid-alice"), a
assert a["attributes"]["displayName"] == {"old": "Alice Old", "new": "Alice \"Ally\" New, Jr."}
assert a["attributes"]["jobTitle"] == {"old": "Engineer", "new": None}
assert a["attributes"]["proxyAddresses"] == {
    "old": ["SMTP:alice@corp.example.com", "smtp:a@old.example.com"],
    "new": ["SMTP:alice@corp.example.com", "smtp:ally@corp.example.com"]}, a["attributes"]
assert a["rules"] == "Out to AAD - User Identity" and a["cause"] == "ad update u-alice"
assert a["state"] == "pending" and a["error"] is None
g = by["g-staff"]
assert g["operation"] == "add" and g["target_id"] is None
assert g["members"]["add"] == [{"anchor": "u-alice", "target_id": "tid-alice"},
                               {"anchor": "u-bob", "target_id": None}], g["members"]
assert g["members"]["remove"] == [{"anchor": "u-carol", "target_id": "tid-carol"}]
dv = by["u-dave"]
assert dv["operation"] == "delete" and dv["attributes"] == {} and dv["state"] == "error"
assert dv["error"] == {"code": "Authorization_RequestDenied",
                       "message": "Insufficient privileges", "request_id": "req-42"}
# canonical order: object type, then anchor
assert [e["anchor"] for e in d] == ["c-ext", "g-staff", "u-alice", "u-dave"], d
print("ok: pending-exports --json")
EOF
hs_assert_contains "$(cat "$T/pe.err")" "4 pending export(s): 2 add, 1 update, 1 delete" \
    "JSON mode: summary on stderr"
fp=$(sed -n 's/^queue fingerprint: //p' "$T/pe.err")
[[ $fp =~ ^[0-9a-f]{64}$ ]] || hs_fail "no fingerprint with --json"

# --- CSV ----------------------------------------------------------------------------------------
ctl pending-exports --csv > "$T/pe.csv" 2> /dev/null
"$HS_PY" - "$T/pe.csv" <<'EOF'
import csv, sys
raw = open(sys.argv[1], newline="").read()
assert raw.endswith("\r\n"), "RFC 4180 line ends"
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
cols = csv.reader(open(sys.argv[1], newline="")).__next__()
assert cols == ["operation", "object_type", "anchor", "dn", "target_id", "state", "error",
                "attribute", "old", "new"], cols
def pick(anchor, attr):
    return [(r["old"], r["new"]) for r in rows if r["anchor"] == anchor and r["attribute"] == attr]
assert pick("u-alice", "displayName") == [("Alice Old", "Alice \"Ally\" New, Jr.")]
assert pick("u-alice", "jobTitle") == [("Engineer", "")]
# a multi-valued change: one row per value removed and per value added
assert sorted(pick("u-alice", "proxyAddresses")) == \
    [("", "smtp:ally@corp.example.com"), ("smtp:a@old.example.com", "")], pick("u-alice", "proxyAddresses")
# members: the member in "new" when added, in "old" when removed
assert sorted(pick("g-staff", "member")) == [("", "u-alice"), ("", "u-bob"), ("u-carol", "")]
assert pick("g-staff", "displayName") == [("", "Staff")]
dave = [r for r in rows if r["anchor"] == "u-dave"]
assert len(dave) == 1 and dave[0]["operation"] == "delete" and dave[0]["attribute"] == ""
assert dave[0]["state"] == "error" and dave[0]["error"] == "Authorization_RequestDenied"
assert all(r["dn"] for r in rows) and len(rows) == 1 + 5 + 4 + 1, len(rows)
print("ok: pending-exports --csv")
EOF

# --- text ---------------------------------------------------------------------------------------
ctl pending-exports > "$T/pe.txt"
cat "$T/pe.txt"
head -1 "$T/pe.txt" | grep -q '^OPERATION  *TYPE  *ANCHOR  *DN  *ATTRIBUTE  *OLD  *NEW$' ||
    hs_fail "text: table header"
grep -q '^update  *user  *u-alice  *CN=Alice,OU=Staff,DC=corp  *displayName  *Alice Old  *Alice "Ally" New, Jr\.$' \
    "$T/pe.txt" || hs_fail "text: the displayName row with old and new"
grep -q '^  *proxyAddresses  *SMTP:alice@corp.example.com | smtp:a@old.example.com  *SMTP:alice@corp.example.com | smtp:ally@corp.example.com$' \
    "$T/pe.txt" || hs_fail "text: a multi-valued row"
grep -q '^  *member  *u-carol  *-$' "$T/pe.txt" || hs_fail "text: a member removed"
grep -q 'u-dave: Authorization_RequestDenied: Insufficient privileges (request req-42)' \
    "$T/pe.txt" || hs_fail "text: the export error"
grep -q '^4 pending export(s): 2 add, 1 update, 1 delete; 1 in error, 0 in flight$' "$T/pe.txt" ||
    hs_fail "text: summary"
hs_assert_eq "$fp" "$(sed -n 's/^queue fingerprint: //p' "$T/pe.txt")" "text: fingerprint"
# columns are aligned: every row's ATTRIBUTE column starts where the header's does
col=$(head -1 "$T/pe.txt" | grep -bo ATTRIBUTE | cut -d: -f1)
hs_assert_eq "displayName" "$(grep "^update" "$T/pe.txt" | cut -c$((col + 1))- | awk '{print $1}')" \
    "text: aligned columns"

# --- filters ------------------------------------------------------------------------------------
n() { "$HS_PY" -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
hs_assert_eq 2 "$(ctl pending-exports --json --op add 2>/dev/null | n)" "--op add"
hs_assert_eq 3 "$(ctl pending-exports --json --op add,delete 2>/dev/null | n)" "--op add,delete"
hs_assert_eq 3 "$(ctl pending-exports --json --op add --op delete 2>/dev/null | n)" "--op twice"
hs_assert_eq 2 "$(ctl pending-exports --json --type user 2>/dev/null | n)" "--type user"
hs_assert_eq 1 "$(ctl pending-exports --json --type user --op delete 2>/dev/null | n)" \
    "--type and --op"
out=$(ctl pending-exports --type group)
hs_assert_contains "$out" "1 listed (1 add, 0 update, 0 delete) of 4 pending export(s)" \
    "filtered summary"
hs_assert_eq "$fp" "$(echo "$out" | sed -n 's/^queue fingerprint: //p')" \
    "the fingerprint is the whole queue's"

# --- an empty queue -----------------------------------------------------------------------------
sed "s|^database = .*|database = $T/empty.db|" "$T/hybridsync.conf" > "$T/empty.conf"
echo '{}' > "$T/empty.json"
"$FIXTURE" "$T/empty.db" "$T/empty.json"
hs_assert_eq "[]" "$("$HYBRIDSYNCCTL" -c "$T/empty.conf" pending-exports --json 2>/dev/null)" \
    "empty queue as JSON"
hs_assert_contains "$("$HYBRIDSYNCCTL" -c "$T/empty.conf" pending-exports)" \
    "0 pending export(s)" "empty queue as text"

# --- usage errors -------------------------------------------------------------------------------
code() { # code EXPECTED ARGS...
    local expected=$1 got=0
    shift
    ctl "$@" > /dev/null 2>&1 || got=$?
    hs_assert_eq "$expected" "$got" "exit code of hybridsyncctl $*"
}
code 2 pending-exports --json --csv
code 2 pending-exports --op rename
code 2 pending-exports --type computer
code 2 pending-exports --op
code 2 pending-exports extra
code 0 pending-exports --csv --type contact
echo "pending-exports: all checks passed"
