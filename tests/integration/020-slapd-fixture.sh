#!/bin/bash
# The OpenLDAP fixture (tests/fixtures/slapd/slapd.sh) does what the import tests rely on:
# a generated directory loads completely (offline slapadd for OUs/users/contacts, online ldapadd
# for groups), objectGUID comes back as 16 binary bytes, the memberof overlay fills memberOf,
# ldaps:// and StartTLS verify against the fixture's CA and are refused without it, and RFC 4533
# content sync with a cookie reports exactly a later modify and delete. Prints the start-up time.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"

hs_need /usr/sbin/slapd /usr/sbin/slapadd ldapsearch ldapadd ldapmodify ldapdelete ldapwhoami \
    openssl "$HS_PY"
SLAPD_SH=$HS_FIXTURES/slapd/slapd.sh
GEN=$HS_FIXTURES/gen-directory.py
CHECK=$HS_FIXTURES/slapd/check-manifest.py

T=$(hs_mktemp)
# hs_mktemp runs in a subshell here, so its own removal at exit is lost: register it again.
[ "${HS_KEEP:-0}" = 1 ] || hs_on_exit "rm -rf '$T'"
D=$T/slapd
t0=$(hs_ms)
bash "$SLAPD_SH" init "$D"
hs_on_exit "bash '$SLAPD_SH' stop '$D'"
echo "figure: slapd init (cn=config, base entry, test CA) $(($(hs_ms) - t0)) ms"

"$HS_PY" "$GEN" --shape small --seed 20 --only ous,users,contacts --out "$T/people.ldif" \
    --manifest "$T/manifest.json"
"$HS_PY" "$GEN" --shape small --seed 20 --only groups --out "$T/groups.ldif"
bash "$SLAPD_SH" load "$D" "$T/people.ldif"

t0=$(hs_ms)
bash "$SLAPD_SH" start "$D"
echo "figure: slapd start until the rootDSE answers $(($(hs_ms) - t0)) ms (slapd.sh's own measure: $(cat "$D/startup_ms") ms)"
bash "$SLAPD_SH" status "$D" || hs_fail "status says slapd is not running"
bash "$SLAPD_SH" add "$D" "$T/groups.ldif"

eval "$(bash "$SLAPD_SH" env "$D")"
ROOT=ou=Corp,$HS_SLAPD_BASE
ADMIN=(-x -H "$HS_SLAPD_URI" -D "$HS_SLAPD_BIND_DN" -w "$HS_SLAPD_PW")
SYNC=(-x -H "$HS_SLAPD_URI" -D "$HS_SLAPD_SYNC_DN" -w "$HS_SLAPD_SYNC_PW")
manifest() { "$HS_PY" -c "import json,sys; m=json.load(open(sys.argv[1])); print($1)" "$T/manifest.json"; }

# --- everything generated is there, as generated ------------------------------------------------
ldapsearch "${SYNC[@]}" -LLL -o ldif-wrap=no -b "$ROOT" '(objectClass=*)' '*' memberOf >"$T/dump.ldif"
hs_assert_eq "$(manifest 'm["counts"]["entries"]')" "$(grep -c '^dn' "$T/dump.ldif")" \
    "entries under $ROOT (manifest count)"
"$HS_PY" "$CHECK" "$T/manifest.json" "$T/dump.ldif" --memberof || hs_fail "directory differs from the manifest"

# --- objectGUID is binary, 16 bytes ----------------------------------------------------------------
u1_dn=$(manifest '[o["dn"] for o in m["objects"] if o["kind"]=="user"][1]')
u1_guid=$(manifest '[o["objectGUID_b64"] for o in m["objects"] if o["kind"]=="user"][1]')
got=$(ldapsearch "${SYNC[@]}" -LLL -o ldif-wrap=no -b "$u1_dn" -s base '(objectClass=*)' objectGUID |
          sed -n 's/^objectGUID:: //p')
hs_assert_eq "$u1_guid" "$got" "objectGUID of $u1_dn (base64, as generated)"
hs_assert_eq 16 "$(printf '%s' "$got" | base64 -d | wc -c)" "objectGUID length in bytes"
hs_assert_eq 1 "$(ldapsearch "${SYNC[@]}" -LLL -b "$ROOT" "(objectGUID=$("$HS_PY" -c '
import base64,sys; print("".join("\\%02x" % b for b in base64.b64decode(sys.argv[1])))' "$u1_guid"))" 1.1 |
    grep -c '^dn')" "equality search on the binary objectGUID"

# --- memberOf from the overlay (groups were added online) -----------------------------------------
big_dn=$(manifest '[o["dn"] for o in m["objects"] if o["kind"]=="group"][0]')
member_dn=$(manifest '[o["members"][0] for o in m["objects"] if o["kind"]=="group"][0]')
hs_assert_contains "$(ldapsearch "${SYNC[@]}" -LLL -o ldif-wrap=no -b "$member_dn" -s base \
    '(objectClass=*)' memberOf)" "memberOf: $big_dn" "memberOf of a member of '$big_dn'"
disabled=$(ldapsearch "${SYNC[@]}" -LLL -b "$ROOT" '(userAccountControl:1.2.840.113556.1.4.803:=2)' 1.1 |
               grep -c '^dn' || true)
hs_assert_eq "$(manifest 'm["counts"]["users_disabled"]')" "$disabled" \
    "disabled users found with AD's bitwise filter"

# --- TLS: ldaps:// and StartTLS verify with the CA, and are refused without it --------------------
hs_assert_eq "dn:$HS_SLAPD_SYNC_DN" "$(LDAPTLS_CACERT=$HS_SLAPD_CA LDAPTLS_REQCERT=demand \
    ldapwhoami -x -H "$HS_SLAPD_LDAPS_URI" -D "$HS_SLAPD_SYNC_DN" -w "$HS_SLAPD_SYNC_PW")" \
    "bind over ldaps:// verified with the fixture CA"
hs_assert_eq "dn:$HS_SLAPD_SYNC_DN" "$(LDAPTLS_CACERT=$HS_SLAPD_CA LDAPTLS_REQCERT=demand \
    ldapwhoami -ZZ -x -H "$HS_SLAPD_URI" -D "$HS_SLAPD_SYNC_DN" -w "$HS_SLAPD_SYNC_PW")" \
    "bind after StartTLS verified with the fixture CA"
if env -u LDAPTLS_CACERT -u LDAPTLS_CACERTDIR LDAPTLS_REQCERT=demand \
    ldapwhoami -x -H "$HS_SLAPD_LDAPS_URI" -D "$HS_SLAPD_SYNC_DN" -w "$HS_SLAPD_SYNC_PW" \
    >"$T/tls-refused.out" 2>&1; then
    hs_fail "ldaps:// without the test CA was accepted"
fi
echo "ok: ldaps:// without the test CA is refused ($(head -n 1 "$T/tls-refused.out"))"
if env -u LDAPTLS_CACERT -u LDAPTLS_CACERTDIR LDAPTLS_REQCERT=demand \
    ldapwhoami -ZZ -x -H "$HS_SLAPD_URI" -D "$HS_SLAPD_SYNC_DN" -w "$HS_SLAPD_SYNC_PW" >/dev/null 2>&1; then
    hs_fail "StartTLS without the test CA was accepted"
fi
echo "ok: StartTLS without the test CA is refused"

# --- RFC 4533 content sync: a cookie, then exactly the later changes ------------------------------
ldapsearch "${SYNC[@]}" -b "$ROOT" -E '!sync=ro' '(objectClass=*)' entryUUID >"$T/sync1.out"
cookie=$(awk '/^# cookie: /{c=$3} END{print c}' "$T/sync1.out")
[ -n "$cookie" ] || hs_fail "the refresh returned no cookie"
echo "ok: refresh returned cookie $cookie"
hs_assert_eq "$(manifest 'm["counts"]["entries"]')" "$(grep -c '^dn' "$T/sync1.out")" \
    "entries in the initial refresh"

mod_dn=$(manifest '[o["dn"] for o in m["objects"] if o["kind"]=="user"][2]')
# The user to delete is a group member: the memberof overlay drops it from the group as well.
del_dn=$member_dn
del_uuid=$(ldapsearch "${SYNC[@]}" -LLL -b "$del_dn" -s base '(objectClass=*)' entryUUID |
               sed -n 's/^entryUUID: //p')
mod_uuid=$(ldapsearch "${SYNC[@]}" -LLL -b "$mod_dn" -s base '(objectClass=*)' entryUUID |
               sed -n 's/^entryUUID: //p')
"$HS_PY" -c '
import base64, sys
dn = sys.argv[1]
line = ("dn: " + dn) if dn.isascii() else ("dn:: " + base64.b64encode(dn.encode()).decode())
print(line + "\nchangetype: modify\nreplace: displayName\ndisplayName: Changed By Test\n")' "$mod_dn" |
    ldapmodify "${ADMIN[@]}" >/dev/null
ldapdelete "${ADMIN[@]}" "$del_dn"

ldapsearch "${SYNC[@]}" -b "$ROOT" -E "!sync=ro/$cookie" '(objectClass=*)' entryUUID displayName \
    >"$T/sync2.out"
changed=$(sed -n 's/^# SyncState control, UUID \([^ ]*\) .*/\1/p' "$T/sync2.out" | sort | tr '\n' ' ')
deleted=$(awk '/^# syncUUIDs:/{on=1; next} on && /^#\t/{sub(/^#\t/, ""); print; next} {on=0}' \
              "$T/sync2.out" | sort | tr '\n' ' ')
hs_assert_eq "$mod_uuid " "$changed" "entries the delta refresh sends (only the modified one)"
hs_assert_eq "$del_uuid " "$deleted" "UUIDs the delta refresh reports deleted"
hs_assert_contains "$(cat "$T/sync2.out")" "displayName: Changed By Test" "the modified value is sent"
hs_assert_contains "$(cat "$T/sync2.out")" "# SyncDone control refreshDeletes=1" \
    "deletes come as an explicit list (accesslog session log)"
cookie2=$(awk '/^# cookie: /{c=$3} END{print c}' "$T/sync2.out")
if [ -z "$cookie2" ] || [ "$cookie2" = "$cookie" ]; then
    hs_fail "the delta refresh did not move the cookie"
fi
ldapsearch "${SYNC[@]}" -b "$ROOT" -E "!sync=ro/$cookie2" '(objectClass=*)' entryUUID >"$T/sync3.out"
hs_assert_eq 0 "$(grep -c '^dn' "$T/sync3.out" || true)" "entries sent for an up-to-date cookie"
hs_assert_eq "" "$(grep '^# syncUUIDs' "$T/sync3.out" || true)" "deletes reported for an up-to-date cookie"

# --- stop and start again keeps the data --------------------------------------------------------
bash "$SLAPD_SH" stop "$D"
if bash "$SLAPD_SH" status "$D"; then hs_fail "slapd still runs after stop"; fi
t0=$(hs_ms)
bash "$SLAPD_SH" start "$D"
echo "figure: slapd restart until the rootDSE answers $(($(hs_ms) - t0)) ms"
hs_assert_eq "$(($(manifest 'm["counts"]["entries"]') - 1))" \
    "$(ldapsearch "${SYNC[@]}" -LLL -b "$ROOT" '(objectClass=*)' 1.1 | grep -c '^dn')" \
    "entries after a restart (one deleted)"
echo "PASS"
