#!/bin/bash
# 044-ldap-import-attributes: the AD connector imports the attributes the sync rules read, as
# hybridsyncd asks for them (sync_rules_attributes), not a fixed list. A custom rule reading
# employeeType makes it arrive in the connector space; roomNumber, which no rule reads, never
# does; a delta that changes only roomNumber touches nothing, one that changes employeeType
# updates exactly that user. Without the rule (the connector's default set) employeeType stays
# out.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/ldap-import.sh"

hs_need /usr/sbin/slapd /usr/sbin/slapadd ldapmodify "$HS_PY"
TOOLS=${HS_TOOLS_DIR:-$HS_BUILD_DIR/tests/tools}
TOOL=$TOOLS/hs-ldap-import
[ -x "$TOOL" ] && [ -x "$TOOLS/hs-sync" ] || hs_fail "test drivers in $TOOLS are not built"
T=$(hs_mktemp)
[ "${HS_KEEP:-0}" = 1 ] || hs_on_exit "rm -rf '$T'"
slapd_up 44
mkdir "$T/rules"
cat >"$T/rules/10-employee-type.json" <<'JSON'
[{"name": "Custom - employee type", "direction": "inbound", "connector": "ad",
  "sourceObjectType": "inetOrgPerson", "targetObjectType": "person", "linkType": "Join",
  "precedence": 50,
  "attributeFlows": [{"target": "extensionAttribute1", "source": "employeeType"}]}]
JSON
# conf FILE DB [SYNC-LINE]
conf() {
    ad_conf "$1" "sync: database = $T/$2" ${3:+"sync: $3"} "uri = $HS_SLAPD_URI" \
        "bind_dn = $HS_SLAPD_SYNC_DN" "bind_password_file = $T/pw" "base_dn = $HS_SLAPD_BASE" \
        "include = ou=Corp,$HS_SLAPD_BASE" "allow_insecure = yes"
}
conf "$T/rules.conf" rules.db "rules = $T/rules"
conf "$T/default.conf" default.db
# values CONF ATTR: "first-RDN-value=value" for every object that has ATTR, sorted
values() {
    "$TOOL" -c "$1" --dump | "$HS_PY" -c '
import base64, json, sys
out = []
for line in sys.stdin:
    o = json.loads(line)
    for name, vals in o["attrs"].items():
        if name.lower() == sys.argv[1].lower():
            rdn = o["dn"].split(",")[0].split("=", 1)[1]
            out += ["%s=%s" % (rdn, base64.b64decode(v).decode()) for v in vals]
print(" ".join(sorted(out)))' "$2"
}

# What the rules read, as the daemon passes it to the import.
attrs=$("$TOOLS/hs-sync" -c "$T/rules.conf" --attributes | sed -n 's/^ad: //p')
grep -qw employeeType <<<"$attrs" || hs_fail "the rules do not read employeeType: $attrs"
if grep -qiw roomNumber <<<"$attrs"; then hs_fail "a rule reads roomNumber: $attrs"; fi
echo "ok: the rules read employeeType and not roomNumber"

mapfile -t U < <("$HS_PY" -c '
import json, sys
print("\n".join(o["dn"] for o in json.load(open(sys.argv[1]))["objects"] if o["kind"] == "user"))' "$T/dir.json" | head -3)
[ "${#U[@]}" = 3 ] || hs_fail "the directory has fewer than 3 users"
ldapmodify "${ADMIN[@]}" >/dev/null <<LDIF
dn: ${U[0]}
changetype: modify
replace: employeeType
employeeType: Contractor
-
replace: roomNumber
roomNumber: 101

dn: ${U[1]}
changetype: modify
replace: employeeType
employeeType: Intern
LDIF

out=$("$TOOL" -c "$T/rules.conf" --rules --full) || hs_fail "full import with the rules' attributes: $out"
hs_assert_eq "$(printf '%s\n' "$(rdn "${U[0]}")=Contractor" "$(rdn "${U[1]}")=Intern" | LC_ALL=C sort | paste -sd' ')" \
    "$(values "$T/rules.conf" employeeType)" "employeeType imported where a rule reads it"
hs_assert_eq "" "$(values "$T/rules.conf" roomNumber)" "roomNumber, read by no rule, not imported"
[ -n "$(values "$T/rules.conf" displayName)" ] || hs_fail "the built-in rules' displayName is missing"
out=$("$TOOL" -c "$T/default.conf" --full) || hs_fail "full import with the default set: $out"
hs_assert_eq "" "$(values "$T/default.conf" employeeType)" "the default set has no employeeType"
echo "ok: the import requests what the rules read"

"$TOOL" -c "$T/rules.conf" --clear-pending
out=$("$TOOL" -c "$T/rules.conf" --rules) || hs_fail "delta import: $out"
hs_assert_eq "success syncrepl adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" "delta without changes"
printf 'dn: %s\nchangetype: modify\nreplace: roomNumber\nroomNumber: 202\n' "${U[0]}" |
    ldapmodify "${ADMIN[@]}" >/dev/null
out=$("$TOOL" -c "$T/rules.conf" --rules) || hs_fail "delta import: $out"
hs_assert_eq "success syncrepl adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" \
    "a change to an attribute no rule reads touches nothing"
hs_assert_eq "" "$(pending "$T/rules.conf")" "nothing pending after it"
printf 'dn: %s\nchangetype: modify\nreplace: employeeType\nemployeeType: Staff\n' "${U[1]}" |
    ldapmodify "${ADMIN[@]}" >/dev/null
out=$("$TOOL" -c "$T/rules.conf" --rules) || hs_fail "delta import: $out"
hs_assert_eq "success syncrepl adds=0 updates=1 deletes=0 errors=0" "$(counters "$out")" \
    "a change to employeeType is an update"
hs_assert_eq "$(rdn "${U[1]}"):update" "$(pending "$T/rules.conf")" "exactly that user is pending"
hs_assert_contains "$(values "$T/rules.conf" employeeType)" "$(rdn "${U[1]}")=Staff" "with the new value"
echo "PASS"
