#!/bin/bash
# The ad flavor of the directory generator loads into a real Samba AD DC with one ldapadd
# (password-less users with userAccountControl 512/514/66048, contacts, nested groups, managers,
# non-ASCII and comma-escaped DNs), and the DC then holds exactly what the manifest lists, each
# object with a 16-byte objectGUID the DC assigned.
# fixtures: samba
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"
. "$HS_FIXTURES/samba/samba-lib.sh"
hs_samba_setup

hs_need "$HS_PY" ldapadd ldapsearch
GEN=$HS_FIXTURES/gen-directory.py
CHECK=$HS_FIXTURES/slapd/check-manifest.py
T=$(hs_mktemp)
# hs_mktemp runs in a subshell here, so its own removal at exit is lost: register it again.
[ "${HS_KEEP:-0}" = 1 ] || hs_on_exit "rm -rf '$T'"
A=(-x -H "$HS_SAMBA_URI" -D "$HS_SAMBA_BIND_DN" -w "$HS_SAMBA_PW")

"$HS_PY" "$GEN" --flavor ad --base "$HS_SAMBA_BASE" --shape small --seed 22 \
    --out "$T/ad.ldif" --manifest "$T/ad.json"
t0=$(hs_ms)
ldapadd "${A[@]}" -f "$T/ad.ldif" >"$T/add.out" || { tail -n 5 "$T/add.out"; hs_fail "ldapadd into Samba failed"; }
echo "figure: ldapadd of the small ad-flavor directory into Samba $(($(hs_ms) - t0)) ms"

ROOT=OU=Corp,$HS_SAMBA_BASE
ldapsearch "${A[@]}" -LLL -o ldif-wrap=no -b "$ROOT" '(objectClass=*)' '*' objectGUID memberOf \
    >"$T/dump.ldif"
"$HS_PY" "$CHECK" "$T/ad.json" "$T/dump.ldif" --memberof || hs_fail "Samba holds something else than the manifest"

uac=$(ldapsearch "${A[@]}" -LLL -b "$ROOT" '(&(objectCategory=person)(objectClass=user))' userAccountControl |
          sed -n 's/^userAccountControl: //p' | sort -u | tr '\n' ' ')
hs_assert_eq "512 514 66048 " "$uac" "userAccountControl values Samba kept (no password, no PASSWD_NOTREQD)"
disabled=$(ldapsearch "${A[@]}" -LLL -b "$ROOT" '(userAccountControl:1.2.840.113556.1.4.803:=2)' 1.1 |
               grep -c '^dn' || true)
hs_assert_eq "$("$HS_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["counts"]["users_disabled"])' "$T/ad.json")" \
    "$disabled" "disabled users"
echo "PASS"
