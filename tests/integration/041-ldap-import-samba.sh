#!/bin/bash
# 041-ldap-import-samba: the AD connector against a real Samba AD DC. A full import of a
# generated directory (two includes, one exclude) plus a group of 5,000 members lands in the
# connector space exactly as ldapsearch reads it, objectGUID as the anchor, the big group read
# completely through ranged retrieval (member;range=0-1499, then the rest). DirSync delta imports
# then see an add, a modify, a rename, a move within scope, a move out of scope, a delete (its
# groups lose the member) and membership adds and removes (also on the big group) each exactly
# once, a member removed and then renamed before the delta, and a group member moved into
# scope (its group is read again: AD does not report it as changed), and a change reported as a
# per-object error (read again by the next delta); with change_tracking = usn the uSNChanged poll does the same. A DirSync cookie the DC
# cannot read, or a uSNChanged cursor from another DC, makes the next delta a full import that
# says why and finds nothing changed (the default attributes are replicated ones only: a per-DC
# whenChanged made every group whose members changed look changed again).
# fixtures: samba
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/ldap-import.sh"
. "$HS_FIXTURES/samba/samba-lib.sh"
hs_samba_setup

hs_need "$HS_PY" ldapadd ldapmodify ldapsearch sqlite3 iconv base64
TOOL=${HS_TOOLS_DIR:-$HS_BUILD_DIR/tests/tools}/hs-ldap-import
[ -x "$TOOL" ] || hs_fail "test driver $TOOL is not built"
T=$(hs_mktemp)
[ "${HS_KEEP:-0}" = 1 ] || hs_on_exit "rm -rf '$T'"
B=$HS_SAMBA_BASE
A=(-x -H "$HS_SAMBA_URI" -D "$HS_SAMBA_BIND_DN" -w "$HS_SAMBA_PW")
ROOT=OU=Corp,$B
BIGOU=OU=Big041,$B

t0=$(hs_ms)
"$HS_PY" "$HS_FIXTURES/gen-directory.py" --flavor ad --base "$B" --shape small --seed 41 \
    --out "$T/ad.ldif" --manifest "$T/ad.json"
ldapadd "${A[@]}" -f "$T/ad.ldif" >/dev/null
N=5000
{
    printf 'dn: %s\nobjectClass: organizationalUnit\n\n' "$BIGOU"
    printf 'dn: OU=Outside041,%s\nobjectClass: organizationalUnit\n\n' "$B"
    for ((i = 0; i < N; i++)); do
        printf 'dn: CN=contact%04d,%s\nobjectClass: contact\ndisplayName: Contact %d\n\n' "$i" "$BIGOU" "$i"
    done
    printf 'dn: CN=big-group,%s\nobjectClass: group\nsAMAccountName: big041\n\n' "$BIGOU"
} | ldapadd "${A[@]}" >/dev/null
{
    printf 'dn: CN=big-group,%s\nchangetype: modify\nadd: member\n' "$BIGOU"
    for ((i = 0; i < N; i++)); do printf 'member: CN=contact%04d,%s\n' "$i" "$BIGOU"; done
    printf -- '-\n'
} | ldapmodify "${A[@]}" >/dev/null
echo "figure: directory loaded into Samba in $(($(hs_ms) - t0)) ms"

printf '%s' "$HS_SAMBA_PW" >"$T/pw"
chmod 600 "$T/pw"
write_conf() { # write_conf FILE CHANGE_TRACKING
    ad_conf "$1" "uri = $HS_SAMBA_URI" "bind_dn = $HS_SAMBA_BIND_DN" "bind_password_file = $T/pw" \
        "base_dn = $B" "include = $ROOT" "include = $BIGOU" "exclude = OU=Contacts,$ROOT" \
        "allow_insecure = yes" "page_size = 500" "change_tracking = $2"
}
write_conf "$T/hs.conf" auto
write_conf "$T/usn.conf" usn

cat >"$T/compare.py" <<'EOF'
import base64, json, re, sys

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
    return tuple((t.strip().lower(), v.strip().lower()) for t, _, v in (p.partition(b"=") for p in parts))

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

dump, attrs, exclude = sys.argv[1], sys.argv[2].lower().split(","), parse_dn(sys.argv[3])
got = {}
for line in open(dump):
    o = json.loads(line)
    if o["pending"] != "delete": got[parse_dn(o["dn"])] = o
errors, seen = 0, set()
def err(msg):
    global errors
    errors += 1
    if errors <= 20: print("MISMATCH:", msg)
for ldif in sys.argv[4:]:
    for e in parse_ldif(ldif):
        k = parse_dn(e["dn"])
        if k[-len(exclude):] == exclude: continue
        seen.add(k); o = got.get(k); a = e["attrs"]
        if o is None: err("not imported: " + e["dn"]); continue
        if o["anchor"] != a["objectguid"][0].hex(): err("%s: anchor differs" % e["dn"])
        oa = {n.lower(): sorted(base64.b64decode(v) for v in vs) for n, vs in o["attrs"].items()}
        for n in attrs:
            if n in ("member", "manager"):
                w = sorted(parse_dn(v.decode()) for v in a.get(n, []))
                g = sorted(parse_dn(v) for v in o["refs"].get(n, []))
                if w != g: err("%s: %s: %d values in the directory, %d imported" % (e["dn"], n, len(w), len(g)))
            elif sorted(a.get(n, [])) != oa.get(n, []):
                err("%s: %s: %r != %r" % (e["dn"], n, sorted(a.get(n, []))[:3], oa.get(n, [])[:3]))
for k, o in got.items():
    if k not in seen: err("imported but not expected: " + o["dn"])
print("compared %d objects, %d mismatches" % (len(seen), errors))
sys.exit(1 if errors else 0)
EOF
ATTRS=objectGUID,objectSid,sAMAccountName,userPrincipalName,userAccountControl,displayName,givenName,sn,cn,mail,proxyAddresses,description,department,title,telephoneNumber,company,employeeID,objectClass,groupType,member,manager
FILTER='(&(|(objectClass=user)(objectClass=group)(objectClass=contact))(!(objectClass=computer)))'
compare() { # compare WHAT: the connector space equals the directory in scope
    local base i=0 files=()
    for base in "$ROOT" "$BIGOU"; do
        ldapsearch "${A[@]}" -LLL -o ldif-wrap=no -b "$base" "$FILTER" ${ATTRS//,/ } >"$T/want$i.ldif"
        files+=("$T/want$i.ldif")
        i=$((i + 1))
    done
    "$TOOL" -c "$T/hs.conf" --dump >"$T/dump.jsonl"
    "$HS_PY" "$T/compare.py" "$T/dump.jsonl" "$ATTRS" "OU=Contacts,$ROOT" "${files[@]}" ||
        hs_fail "$1: the connector space differs from the directory"
    echo "ok: $1: the connector space equals the directory"
}
refs_of() { # refs_of RDN-VALUE: number of member refs of that object in the dump
    "$TOOL" -c "$T/hs.conf" --dump | "$HS_PY" -c '
import json, sys
for line in sys.stdin:
    o = json.loads(line)
    if o["dn"].split(",")[0].split("=", 1)[1] == sys.argv[1]: print(len(o["refs"].get("member", [])))' "$1"
}

# --- full import -----------------------------------------------------------------------------
n_obj=$("$HS_PY" -c 'import json,sys; c=json.load(open(sys.argv[1]))["counts"]; print(c["users"]+c["groups"]+1+int(sys.argv[2]))' "$T/ad.json" "$N")
t0=$(hs_ms)
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "full import failed: $out"
echo "figure: full import of $n_obj objects from Samba in $(($(hs_ms) - t0)) ms"
hs_assert_eq "success full adds=$n_obj updates=0 deletes=0 errors=0" "$(counters "$out")" \
    "first import (no cursor yet: full; the excluded contacts OU left out)"
compare "full import"
hs_assert_eq "$N" "$(refs_of big-group)" "members of the big group (ranged retrieval)"
"$TOOL" -c "$T/hs.conf" --clear-pending
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "delta import: $out"
hs_assert_eq "success dirsync adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" "DirSync without changes"

# --- DirSync delta: one of each change --------------------------------------------------------
users=$("$HS_PY" -c '
import json, sys
m = json.load(open(sys.argv[1]))
grouped = set(d for o in m["objects"] if o["kind"] == "group" for d in o["members"])
managers = set(o.get("manager") for o in m["objects"])
u = [o["dn"] for o in m["objects"] if o["kind"] == "user" and o["dn"].isascii()
     and "\\" not in o["dn"] and o["dn"] not in managers]
free = [d for d in u if d not in grouped]
member = [d for d in u if d in grouped]
g = [o for o in m["objects"] if o["kind"] == "group" and 2 < len(o["members"]) < 10 and o["dn"].isascii()]
print("\n".join([free[0], free[1], free[2], free[3], member[0], free[4], g[0]["dn"], g[0]["members"][0], member[1]]))' "$T/ad.json")
mapfile -t U <<<"$users"
MOD=${U[0]} REN=${U[1]} MOV=${U[2]} OUT=${U[3]} DEL=${U[4]} ADDM=${U[5]} GRP=${U[6]} REMM=${U[7]} DEL2=${U[8]}
DEL_GROUPS=$(ldapsearch "${A[@]}" -LLL -o ldif-wrap=no -b "$ROOT" "(member=$DEL)" 1.1 | sed -n 's/^dn: //p')
[ -n "$DEL_GROUPS" ] || hs_fail "the user to delete is in no group"
other_ou=$(ldapsearch "${A[@]}" -LLL -b "$ROOT" -s one '(ou=*)' 1.1 | sed -n 's/^dn: //p' |
               grep -v -i "^OU=Groups\|^OU=Contacts" | grep -v -i "^$(parent "$MOV")\$" | head -n 1)
ldapmodify "${A[@]}" >/dev/null <<EOF
dn: CN=Nora New,$(parent "$MOD")
changetype: add
objectClass: user
sAMAccountName: nora.new041
displayName: Nora New

dn: $MOD
changetype: modify
replace: displayName
displayName: Changed By 041

dn: $REN
changetype: modrdn
newrdn: CN=$(rdn "$REN") Renamed
deleteoldrdn: 1

dn: $MOV
changetype: modrdn
newrdn: CN=$(rdn "$MOV")
deleteoldrdn: 1
newsuperior: $other_ou

dn: $OUT
changetype: modrdn
newrdn: CN=$(rdn "$OUT")
deleteoldrdn: 1
newsuperior: OU=Outside041,$B

dn: $DEL
changetype: delete

dn: $GRP
changetype: modify
add: member
member: $ADDM
-
delete: member
member: $REMM
-

dn: CN=big-group,$BIGOU
changetype: modify
delete: member
member: CN=contact0007,$BIGOU
-
EOF
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "delta import: $out"
hs_assert_eq "success dirsync adds=1 updates=5 deletes=2 errors=0" "$(counters "$out")" \
    "DirSync delta: add, modify, rename, move, two group changes, delete, move out of scope"
expected=("Nora New:add" "$(rdn "$MOD"):update" "$(rdn "$REN") Renamed:update" "$(rdn "$MOV"):update"
          "$(rdn "$OUT"):delete" "$(rdn "$DEL"):delete" "$(rdn "$GRP"):update" "big-group:update")
while read -r g; do expected+=("$(rdn "$g"):update"); done <<<"$DEL_GROUPS"
want=$(printf '%s\n' "${expected[@]}" | sort -u | paste -sd' ')
hs_assert_eq "$want" "$(pending)" "pending imports: exactly the changed objects and the deleted user's groups"
compare "after the DirSync delta"
hs_assert_eq "$((N - 1))" "$(refs_of big-group)" "members of the big group after one was removed"
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "delta import: $out"
hs_assert_eq "success dirsync adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" "a repeated DirSync sees nothing new"

# --- group members that change DN without the group changing -------------------------------
# A member removed and then renamed before the next delta: DirSync names the removed member by
# its new DN, which the store does not know yet (the rename comes later in the same delta).
# A user created outside the scope, put in a group, then moved in (AD rewrites the group's
# member value, and the group is not reported as changed): the group must list it.
STAN="CN=Stan Staging041,OU=Outside041,$B"
"$TOOL" -c "$T/hs.conf" --clear-pending
ldapmodify "${A[@]}" >/dev/null <<EOF
dn: $STAN
changetype: add
objectClass: user
sAMAccountName: stan041

dn: $GRP
changetype: modify
add: member
member: $STAN
-
delete: member
member: $ADDM
-

dn: $ADDM
changetype: modrdn
newrdn: CN=$(rdn "$ADDM") Later
deleteoldrdn: 1
EOF
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "delta import: $out"
echo "  $(counters "$out")"
compare "a member removed, then renamed, before the delta"
"$TOOL" -c "$T/hs.conf" --clear-pending
ldapmodify "${A[@]}" >/dev/null <<EOF
dn: $STAN
changetype: modrdn
newrdn: CN=Stan Staging041
deleteoldrdn: 1
newsuperior: $(parent "$MOD")
EOF
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "delta import: $out"
hs_assert_eq "success dirsync adds=1 updates=1 deletes=0 errors=0" "$(counters "$out")" \
    "a member moved into scope: added, and its group read again"
hs_assert_eq "Stan Staging041:add $(rdn "$GRP"):update" "$(pending)" \
    "pending imports: the user moved in and its group"
compare "a group member moved into scope"

# A change that a delta reports instead of importing (a per-object error: here a value over a
# limit lowered to 64 bytes) is not lost when the cursor moves past it: the next delta reads the
# object again whole, although nothing changed since.
"$TOOL" -c "$T/hs.conf" --clear-pending
ldapmodify "${A[@]}" >/dev/null <<EOF
dn: $MOD
changetype: modify
replace: title
title: Retried 041
-
replace: description
description: $(printf 'x%.0s' $(seq 100))
-
EOF
out=$("$TOOL" -c "$T/hs.conf" --value-max 64) || hs_fail "delta import: $out"
hs_assert_eq "completed-warnings dirsync adds=0 updates=0 deletes=0 errors=1" "$(counters "$out")" \
    "a change with a value over the limit: a per-object error"
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "delta import: $out"
hs_assert_eq "success dirsync adds=0 updates=1 deletes=0 errors=0" "$(counters "$out")" \
    "the next delta reads that object again"
compare "a change read again after a per-object error"
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "delta import: $out"
hs_assert_eq "success dirsync adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" \
    "then nothing more"

# --- a DirSync cookie the DC refuses: a full import instead, which changes nothing -------------
"$TOOL" -c "$T/hs.conf" --clear-pending
good=$(sqlite3 "$T/hs.db" "SELECT hex(value) FROM cursors WHERE kind = 'dirsync'")
[ -n "$good" ] || hs_fail "no DirSync cookie stored"
# the cookie's header kept, its body (the DC's invocation id and USNs) replaced by junk
sqlite3 "$T/hs.db" "UPDATE cursors SET value = x'${good:0:16}' || randomblob(length(value) - 8) WHERE kind = 'dirsync'"
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "delta import with a refused DirSync cookie: $out"
hs_assert_eq "success full adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" \
    "a refused DirSync cookie: the delta runs as a full import, which changes nothing"
hs_assert_contains "$(field "$out" note)" "the server refused the DirSync cookie" "the note says why"
hs_assert_eq "" "$(pending)" "nothing pending after the fallback"
out=$("$TOOL" -c "$T/hs.conf") || hs_fail "delta import after the fallback: $out"
hs_assert_eq "success dirsync adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" \
    "the fallback stored a fresh DirSync cookie: deltas again"

# --- uSNChanged poll ---------------------------------------------------------------------------
"$TOOL" -c "$T/hs.conf" --clear-pending
DEL2_GROUPS=$(ldapsearch "${A[@]}" -LLL -o ldif-wrap=no -b "$ROOT" "(member=$DEL2)" 1.1 | sed -n 's/^dn: //p')
[ -n "$DEL2_GROUPS" ] || hs_fail "the second user to delete is in no group"
ldapmodify "${A[@]}" >/dev/null <<EOF
dn: CN=Nora New,$(parent "$MOD")
changetype: modify
replace: title
title: Polled
-

dn: $DEL2
changetype: delete
EOF
out=$("$TOOL" -c "$T/usn.conf") || hs_fail "usn delta import: $out"
hs_assert_eq "success usn adds=0 updates=1 deletes=1 errors=0" "$(counters "$out")" \
    "uSNChanged delta: one modify, one delete (tombstone under Show Deleted)"
expected=("Nora New:update" "$(rdn "$DEL2"):delete")
while read -r g; do expected+=("$(rdn "$g"):update"); done <<<"$DEL2_GROUPS"
hs_assert_eq "$(printf '%s\n' "${expected[@]}" | sort -u | paste -sd' ')" "$(pending)" \
    "pending imports after the uSNChanged delta (the deleted user's groups lose it)"
compare "after the uSNChanged delta"

# The cursor names the DC whose USNs it counts (its invocationId): from another DC, or from this
# one restored from a backup, it means nothing, and the delta runs as a full import.
cur=$(sqlite3 "$T/hs.db" "SELECT CAST(value AS TEXT) FROM cursors WHERE kind = 'usn'")
[[ "$cur" =~ ^[0-9a-f]{32}\ [0-9]+$ ]] || hs_fail "the uSNChanged cursor is not '<invocationId> <usn>': $cur"
"$TOOL" -c "$T/hs.conf" --clear-pending
sqlite3 "$T/hs.db" "UPDATE cursors SET value = CAST('0123456789abcdef0123456789abcdef ${cur#* }' AS BLOB) WHERE kind = 'usn'"
out=$("$TOOL" -c "$T/usn.conf") || hs_fail "uSNChanged delta with another DC's cursor: $out"
hs_assert_eq "success full adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" \
    "a cursor from another DC: the delta runs as a full import, which changes nothing"
hs_assert_contains "$(field "$out" note)" "the domain controller changed (now ${cur%% *}" "the note says why"
out=$("$TOOL" -c "$T/usn.conf") || hs_fail "uSNChanged delta after the fallback: $out"
hs_assert_eq "success usn adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" \
    "deltas resume with this DC's cursor"

# A cursor older than the forest's tombstone lifetime (Samba: 180 days) may have missed
# deletions whose tombstones are gone: the delta runs as a full import, and says why. One a day
# short of it still runs as a delta.
ttl=$(ldapsearch "${A[@]}" -LLL -o ldif-wrap=no \
    -b "CN=Directory Service,CN=Windows NT,CN=Services,CN=Configuration,$B" -s base \
    '(objectClass=*)' tombstoneLifetime | sed -n 's/^tombstoneLifetime: //p')
ttl=${ttl:-60}
# usn.conf polls uSNChanged; hs.conf too at first (the full import of usn.conf stored no DirSync
# cookie), then, after its own full import stored one, uses DirSync.
for run in usn:usn hs:usn hs:dirsync; do
    conf=${run%:*} method=${run#*:}
    sqlite3 "$T/hs.db" "UPDATE cursors SET updated = strftime('%s', 'now') - $((ttl - 2)) * 86400"
    out=$("$TOOL" -c "$T/$conf.conf") || hs_fail "delta with a cursor $((ttl - 2)) days old: $out"
    hs_assert_contains "$(counters "$out")" "success $method adds=0" \
        "$conf: a $method cursor $((ttl - 2)) days old (tombstone lifetime $ttl days): a delta"
    sqlite3 "$T/hs.db" "UPDATE cursors SET updated = strftime('%s', 'now') - $((ttl + 1)) * 86400"
    out=$("$TOOL" -c "$T/$conf.conf") || hs_fail "delta with a cursor $((ttl + 1)) days old: $out"
    hs_assert_eq "success full adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" \
        "$conf: a $method cursor $((ttl + 1)) days old: a full import, which changes nothing"
    hs_assert_contains "$(field "$out" note)" "beyond the forest's tombstone lifetime ($ttl days)" \
        "$conf: the note says why"
done

# --- an account without the replication right: DirSync is refused, uSNChanged is polled --------
pw='Svc-041-sync!'
printf 'dn: CN=svc041,%s\nobjectClass: user\nsAMAccountName: svc041\nuserAccountControl: 512\nunicodePwd:: %s\n\n' \
    "$B" "$(printf '"%s"' "$pw" | iconv -t UTF-16LE | base64 -w0)" |
    ldapadd "${A[@]}" >/dev/null
printf '%s' "$pw" >"$T/svcpw"
chmod 600 "$T/svcpw"
sed -e "s|^database = .*|database = $T/svc.db|" -e "s|^bind_dn = .*|bind_dn = CN=svc041,$B|" \
    -e "s|^bind_password_file = .*|bind_password_file = $T/svcpw|" "$T/hs.conf" >"$T/svc.conf"
out=$("$TOOL" -c "$T/svc.conf") || hs_fail "full import as an ordinary account: $out"
hs_assert_eq "success full" "$(field "$out" status) $(field "$out" method)" "first import as an ordinary account"
hs_assert_eq "usn" "$(sqlite3 "$T/svc.db" "SELECT group_concat(kind) FROM cursors")" \
    "cursors kept (DirSync refused at the full import: only the USN cursor)"
printf 'dn: %s\nchangetype: modify\nreplace: title\ntitle: Polled Again\n' "CN=Nora New,$(parent "$MOD")" |
    ldapmodify "${A[@]}" >/dev/null
out=$("$TOOL" -c "$T/svc.conf") || hs_fail "delta import as an ordinary account: $out"
hs_assert_eq "success usn adds=0 updates=1 deletes=0 errors=0" "$(counters "$out")" \
    "delta as an ordinary account falls back to the uSNChanged poll"
echo "PASS"
