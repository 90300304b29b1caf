#!/bin/bash
# 040-ldap-import-slapd: the AD connector against a real slapd (tests/fixtures/slapd/slapd.sh).
# A full import of a generated directory lands in the connector space exactly as ldapsearch
# reads it (every object, attribute, binary value and reference); a second full import changes
# nothing; RFC 4533 delta imports then see an add, a modify, a rename, a move within scope, a move
# out of scope, a delete (its group loses the member) and a membership change, each exactly once,
# and nothing else. The first delta after the offline load gets slapd's present phase, the
# second an explicit delete list: both are checked the same way. A cookie slapd refuses makes the
# next delta a full import that says why and obsoletes nothing.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/ldap-import.sh"

hs_need /usr/sbin/slapd /usr/sbin/slapadd ldapsearch ldapadd ldapmodify ldapdelete "$HS_PY"
TOOL=${HS_TOOLS_DIR:-$HS_BUILD_DIR/tests/tools}/hs-ldap-import
[ -x "$TOOL" ] || hs_fail "test driver $TOOL is not built"
T=$(hs_mktemp)
[ "${HS_KEEP:-0}" = 1 ] || hs_on_exit "rm -rf '$T'"
slapd_up 40
B=$HS_SLAPD_BASE
ROOT=ou=Corp,$B

ad_conf "$T/hs.conf" "uri = $HS_SLAPD_URI" "bind_dn = $HS_SLAPD_SYNC_DN" "bind_password_file = $T/pw" \
    "base_dn = $B" "include = $ROOT" "allow_insecure = yes" "page_size = 7"

# The comparison: the dump of the connector space against ldapsearch, DN by DN (both parsed,
# so escaping differences do not matter), attribute by attribute, references as DN sets.
cat >"$T/compare.py" <<'EOF'
import base64, json, re, sys, uuid

def parse_dn(dn):
    raw, parts, buf, i = dn.encode(), [], bytearray(), 0
    while i < len(raw):
        ch = raw[i:i + 1]
        if ch == b"\\":
            nxt = raw[i + 1:i + 3]
            if re.fullmatch(rb"[0-9a-fA-F]{2}", nxt):
                buf += bytes([int(nxt, 16)]); i += 3
            else:
                buf += raw[i + 1:i + 2]; i += 2
        elif ch == b",":
            parts.append(bytes(buf)); buf = bytearray(); i += 1
        else:
            buf += ch; i += 1
    parts.append(bytes(buf))
    return tuple((t.strip().lower(), v.strip()) for t, _, v in (p.partition(b"=") for p in parts))

def parse_ldif(path):
    entries, cur = [], None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line:
            if cur: entries.append(cur)
            cur = None
            continue
        if line.startswith("#"): continue
        m = re.match(r"^([^:]+)(::?) ?(.*)$", line)
        name, sep, val = m.group(1), m.group(2), m.group(3)
        v = base64.b64decode(val) if sep == "::" else val.encode()
        if name == "dn": cur = {"dn": v.decode(), "attrs": {}}
        else: cur["attrs"].setdefault(name.split(";")[0].lower(), []).append(v)
    if cur: entries.append(cur)
    return entries

dump, ldif, flavor, attrs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].lower().split(",")
got = {}
for line in open(dump):
    o = json.loads(line)
    if o["pending"] != "delete": got[parse_dn(o["dn"])] = o
errors, seen = 0, set()
def err(msg):
    global errors
    errors += 1
    if errors <= 20: print("MISMATCH:", msg)
for e in parse_ldif(ldif):
    k = parse_dn(e["dn"]); seen.add(k); o = got.get(k); a = e["attrs"]
    if o is None: err("not imported: " + e["dn"]); continue
    anchor = a["objectguid"][0].hex() if flavor == "ad" else uuid.UUID(a["entryuuid"][0].decode()).bytes.hex()
    if o["anchor"] != anchor: err("%s: anchor %s, expected %s" % (e["dn"], o["anchor"], anchor))
    oa = {n.lower(): sorted(base64.b64decode(v) for v in vs) for n, vs in o["attrs"].items()}
    for n in attrs:
        if n in ("member", "manager"):
            w = sorted(parse_dn(v.decode()) for v in a.get(n, []))
            g = sorted(parse_dn(v) for v in o["refs"].get(n, []))
            if w != g: err("%s: %s: %d values in the directory, %d imported" % (e["dn"], n, len(w), len(g)))
        elif sorted(a.get(n, [])) != oa.get(n, []):
            err("%s: %s: %r != %r" % (e["dn"], n, sorted(a.get(n, []))[:3], oa.get(n, [])[:3]))
for k, o in got.items():
    if k not in seen: err("imported but not in the directory: " + o["dn"])
print("compared %d objects, %d mismatches" % (len(seen), errors))
sys.exit(1 if errors else 0)
EOF
ATTRS=objectGUID,objectSid,mS-DS-ConsistencyGuid,sAMAccountName,userPrincipalName,userAccountControl,displayName,givenName,sn,cn,mail,proxyAddresses,description,department,title,telephoneNumber,company,employeeID,objectClass,entryUUID,groupType,member,manager
FILTER='(|(objectClass=inetOrgPerson)(objectClass=groupOfNames))'
compare() { # compare WHAT: the connector space equals the directory under $ROOT
    ldapsearch "${ADMIN[@]}" -LLL -o ldif-wrap=no -b "$ROOT" "$FILTER" ${ATTRS//,/ } >"$T/want.ldif"
    "$TOOL" -c "$T/hs.conf" --dump >"$T/dump.jsonl"
    "$HS_PY" "$T/compare.py" "$T/dump.jsonl" "$T/want.ldif" openldap "$ATTRS" ||
        hs_fail "$1: the connector space differs from the directory"
    echo "ok: $1: the connector space equals the directory"
}
ldif_dn() { "$HS_PY" -c '
import base64, sys
dn = sys.argv[1]
print(("dn: " + dn) if dn.isascii() else ("dn:: " + base64.b64encode(dn.encode()).decode()))' "$1"; }

# --- full import -----------------------------------------------------------------------------
out=$("$TOOL" -c "$T/hs.conf" --full) || hs_fail "full import failed: $out"
total=$(grep -c "^dn: .*$ROOT\$\|^dn:: " "$T/dir.ldif" || true)
n_obj=$("$HS_PY" -c 'import json,sys; m=json.load(open(sys.argv[1])); c=m["counts"]; print(c["users"]+c["contacts"]+c["groups"])' "$T/dir.json")
hs_assert_eq "success full adds=$n_obj updates=0 deletes=0 errors=0" "$(counters "$out")" "first full import"
compare "full import"

out=$("$TOOL" -c "$T/hs.conf" --clear-pending && "$TOOL" -c "$T/hs.conf" --full) || hs_fail "second full import: $out"
hs_assert_eq "success full adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" "a second full import changes nothing"
hs_assert_eq "" "$(pending)" "pending imports after an unchanged full import"
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "delta import: $out"
hs_assert_eq "success syncrepl adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" "delta import without changes"

# --- delta import: one of each change ----------------------------------------------------------
users=$("$HS_PY" -c '
import json, sys
m = json.load(open(sys.argv[1]))
grouped = set(d for o in m["objects"] if o["kind"] == "group" for d in o["members"])
managers = set(o.get("manager") for o in m["objects"])
# Managers are left alone: slapd keeps a manager value pointing at a moved or deleted entry.
u = [o["dn"] for o in m["objects"] if o["kind"] == "user" and o["dn"].isascii()
     and "\\" not in o["dn"] and o["dn"] not in managers]
free = [d for d in u if d not in grouped]
member = [d for d in u if d in grouped]
g = [o for o in m["objects"] if o["kind"] == "group" and len(o["members"]) < 10]
print("\n".join([free[0], free[1], free[2], free[3], member[0], free[4], g[0]["dn"]]))' "$T/dir.json")
mapfile -t U <<<"$users"
MOD=${U[0]} REN=${U[1]} MOV=${U[2]} OUT=${U[3]} DEL=${U[4]} ADDM=${U[5]} GRP=${U[6]}
DEL_GROUPS=$(ldapsearch "${ADMIN[@]}" -LLL -o ldif-wrap=no -b "$ROOT" "(member=$DEL)" 1.1 | sed -n 's/^dn: //p')
[ -n "$DEL_GROUPS" ] || hs_fail "the user to delete is in no group"
other_ou=$(ldapsearch "${ADMIN[@]}" -LLL -b "$ROOT" -s one '(ou=*)' 1.1 | sed -n 's/^dn: //p' |
               grep -v -i "^ou=groups\|^ou=contacts" | grep -v -i "$(parent "$MOV")" | head -n 1)
ldapmodify "${ADMIN[@]}" >/dev/null <<EOF
dn: ou=Outside,$B
changetype: add
objectClass: organizationalUnit
ou: Outside

dn: cn=Nora New,$(parent "$MOD")
changetype: add
objectClass: inetOrgPerson
objectClass: adShadowUser
cn: Nora New
sn: New
sAMAccountName: nora.new
displayName: Nora New

dn: $MOD
changetype: modify
replace: displayName
displayName: Changed By 040

dn: $REN
changetype: modrdn
newrdn: cn=$(rdn "$REN") Renamed
deleteoldrdn: 1

dn: $MOV
changetype: modrdn
newrdn: cn=$(rdn "$MOV")
deleteoldrdn: 1
newsuperior: $other_ou

dn: $OUT
changetype: modrdn
newrdn: cn=$(rdn "$OUT")
deleteoldrdn: 1
newsuperior: ou=Outside,$B

dn: $DEL
changetype: delete

dn: $GRP
changetype: modify
add: member
member: $ADDM
EOF
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "delta import: $out"
hs_assert_eq "success syncrepl adds=1 updates=4 deletes=2 errors=0" "$(counters "$out")" \
    "delta import (present phase after the offline load): add, modify, rename, move, member, 2 deletes"
expected=("Nora New:add" "$(rdn "$MOD"):update" "$(rdn "$REN") Renamed:update" "$(rdn "$MOV"):update"
          "$(rdn "$OUT"):delete" "$(rdn "$DEL"):delete" "$(rdn "$GRP"):update")
while read -r g; do expected+=("$(rdn "$g"):update"); done <<<"$DEL_GROUPS"
want=$(printf '%s\n' "${expected[@]}" | sort -u | paste -sd' ')
hs_assert_eq "$want" "$(pending)" "pending imports: exactly the changed objects and the deleted user's groups"
compare "after the first delta"
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "delta import: $out"
hs_assert_eq "success syncrepl adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" "a repeated delta sees nothing new"

# --- second round: the session log now covers the cookie (explicit delete list) ---------------
"$TOOL" -c "$T/hs.conf" --clear-pending
DEL2=${U[0]}
ldapmodify "${ADMIN[@]}" >/dev/null <<EOF
dn: $DEL2
changetype: delete

dn: cn=Nora New,$(parent "$MOD")
changetype: modify
replace: title
title: Second Round
EOF
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "delta import: $out"
hs_assert_eq "success syncrepl adds=0 updates=1 deletes=1 errors=0" "$(counters "$out")" \
    "second delta (explicit delete list): one modify, one delete"
hs_assert_eq "$(printf '%s\n' "Nora New:update" "$(rdn "$DEL2"):delete" | sort | paste -sd' ')" "$(pending)" \
    "pending imports after the second delta"
compare "after the second delta"

# --- a cookie the server refuses: a full import instead, which obsoletes nothing it saw ---------
"$TOOL" -c "$T/hs.conf" --clear-pending
# A consumer state newer than the server's own is what a directory restored from a backup sees;
# slapd refuses it (53).
"$HS_PY" - "$T/hs.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = db.execute("UPDATE cursors SET value = ? WHERE kind = 'syncrepl'",
               (b"rid=000,csn=29990101000000.000000Z#000000#000#000000",)).rowcount
db.commit()
assert n == 1, "expected one syncrepl cursor, found %d" % n
EOF
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "delta import with a refused cookie: $out"
hs_assert_eq "success full adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" \
    "a refused cookie: the delta runs as a full import, which changes nothing"
hs_assert_contains "$(field "$out" note)" "the server refused the syncrepl cookie" "the note says why"
hs_assert_contains "$(field "$out" note)" "(53)" "with the server's answer"
hs_assert_eq "" "$(pending)" "nothing pending after the fallback"
compare "after the fallback"
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "delta import after the fallback: $out"
hs_assert_eq "success syncrepl adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" \
    "the fallback stored a fresh cookie: deltas again"
hs_assert_eq "" "$(field "$out" note)" "no note on a delta that ran as one"
echo "PASS"
