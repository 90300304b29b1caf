#!/bin/bash
# 043-ldap-import-syncrepl-present: RFC 4533 delta imports when slapd cannot list deletes
# (slapd.sh init --sessionlog none): every refresh is a present phase, where the server lists
# the entryUUIDs still there and whatever is not listed was deleted. A delta with nothing
# changed deletes nothing; a delete, a modify and an add are each seen once and nothing else is
# touched; a delete of a group member also drops the membership.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/ldap-import.sh"

hs_need /usr/sbin/slapd /usr/sbin/slapadd ldapsearch ldapmodify "$HS_PY"
TOOL=${HS_TOOLS_DIR:-$HS_BUILD_DIR/tests/tools}/hs-ldap-import
[ -x "$TOOL" ] || hs_fail "test driver $TOOL is not built"
T=$(hs_mktemp)
[ "${HS_KEEP:-0}" = 1 ] || hs_on_exit "rm -rf '$T'"
slapd_up 43 --sessionlog none
B=$HS_SLAPD_BASE
ROOT=ou=Corp,$B
ad_conf "$T/hs.conf" "uri = $HS_SLAPD_URI" "bind_dn = $HS_SLAPD_SYNC_DN" "bind_password_file = $T/pw" \
    "base_dn = $B" "include = $ROOT" "allow_insecure = yes" "change_tracking = syncrepl"

n_obj=$("$HS_PY" -c 'import json,sys; c=json.load(open(sys.argv[1]))["counts"]; print(c["users"]+c["contacts"]+c["groups"])' "$T/dir.json")
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "first import: $out"
hs_assert_eq "success full adds=$n_obj updates=0 deletes=0 errors=0" "$(counters "$out")" "first import (full)"
"$TOOL" -c "$T/hs.conf" --clear-pending

# An online write, so that the cookie is older than the data and the refresh has work to do.
printf 'dn: ou=Other,%s\nchangetype: add\nobjectClass: organizationalUnit\nou: Other\n' "$B" |
    ldapmodify "${ADMIN[@]}" >/dev/null
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "delta import: $out"
hs_assert_eq "success syncrepl adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" \
    "present phase with nothing changed in scope: nothing deleted"
hs_assert_eq "" "$(pending)" "pending imports after an empty present phase"

mapfile -t U < <("$HS_PY" -c '
import json, sys
m = json.load(open(sys.argv[1]))
grouped = set(d for o in m["objects"] if o["kind"] == "group" for d in o["members"])
managers = set(o.get("manager") for o in m["objects"])
u = [o["dn"] for o in m["objects"] if o["kind"] == "user" and o["dn"].isascii()
     and "\\" not in o["dn"] and o["dn"] not in managers]
print("\n".join([[d for d in u if d in grouped][0], [d for d in u if d not in grouped][0]]))' "$T/dir.json")
DEL=${U[0]} MOD=${U[1]}
DEL_GROUPS=$(ldapsearch "${ADMIN[@]}" -LLL -o ldif-wrap=no -b "$ROOT" "(member=$DEL)" 1.1 | sed -n 's/^dn: //p')
ldapmodify "${ADMIN[@]}" >/dev/null <<EOF
dn: $DEL
changetype: delete

dn: $MOD
changetype: modify
replace: title
title: Present Phase
-

dn: cn=Pat Present,${MOD#*,}
changetype: add
objectClass: inetOrgPerson
objectClass: adShadowUser
cn: Pat Present
sn: Present
EOF
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "delta import: $out"
hs_assert_eq "success syncrepl adds=1 updates=1 deletes=1 errors=0" "$(counters "$out")" \
    "present phase: one add, one modify, one delete (not listed as present)"
expected=("Pat Present:add" "$(rdn "$MOD"):update" "$(rdn "$DEL"):delete")
while read -r g; do expected+=("$(rdn "$g"):update"); done <<<"$DEL_GROUPS"
hs_assert_eq "$(printf '%s\n' "${expected[@]}" | sort -u | paste -sd' ')" "$(pending)" \
    "pending imports: the three changes and the deleted member's groups, nothing else"
member_left=$("$TOOL" -c "$T/hs.conf" --dump | grep -c "\"member\":\[[^]]*$(rdn "$DEL")" || true)
hs_assert_eq 0 "$member_left" "groups holding a reference to the deleted user"
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "delta import: $out"
hs_assert_eq "success syncrepl adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" "a repeated delta sees nothing new"
echo "PASS"
