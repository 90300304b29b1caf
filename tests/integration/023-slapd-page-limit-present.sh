#!/bin/bash
# Two fixture variants the import tests need that Samba cannot give:
#  * slapd.sh init --max-page-size N: a non-root account gets AD's MaxPageSize behaviour for
#    unpaged searches (sizeLimitExceeded after N entries) while paged searches with pages of at
#    most N return everything; the rootdn stays unlimited. (Unlike AD, slapd refuses a page size
#    above N with adminLimitExceeded instead of shrinking the page.)
#  * slapd.sh init --sessionlog none: a content-sync refresh with an old cookie cannot list
#    deletes, so slapd sends the present phase: every entryUUID still there, refreshDeletes=0.
# It also loads a directory generated with --memberof offline and checks memberOf without the
# overlay having run.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"

hs_need /usr/sbin/slapd /usr/sbin/slapadd ldapsearch ldapdelete openssl "$HS_PY"
SLAPD_SH=$HS_FIXTURES/slapd/slapd.sh
GEN=$HS_FIXTURES/gen-directory.py
CHECK=$HS_FIXTURES/slapd/check-manifest.py

T=$(hs_mktemp)
# hs_mktemp runs in a subshell here, so its own removal at exit is lost: register it again.
[ "${HS_KEEP:-0}" = 1 ] || hs_on_exit "rm -rf '$T'"
D=$T/slapd
bash "$SLAPD_SH" init "$D" --max-page-size 10 --sessionlog none
hs_on_exit "bash '$SLAPD_SH' stop '$D'"
"$HS_PY" "$GEN" --shape small --seed 23 --memberof --out "$T/dir.ldif" --manifest "$T/dir.json"
bash "$SLAPD_SH" load "$D" "$T/dir.ldif"
bash "$SLAPD_SH" start "$D"
eval "$(bash "$SLAPD_SH" env "$D")"
ROOT=ou=Corp,$HS_SLAPD_BASE
ADMIN=(-x -H "$HS_SLAPD_URI" -D "$HS_SLAPD_BIND_DN" -w "$HS_SLAPD_PW")
SYNC=(-x -H "$HS_SLAPD_URI" -D "$HS_SLAPD_SYNC_DN" -w "$HS_SLAPD_SYNC_PW")
total=$("$HS_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["counts"]["entries"])' "$T/dir.json")

# --- offline load with generated memberOf -------------------------------------------------------
ldapsearch "${ADMIN[@]}" -LLL -o ldif-wrap=no -b "$ROOT" '(objectClass=*)' '*' memberOf >"$T/dump.ldif"
"$HS_PY" "$CHECK" "$T/dir.json" "$T/dump.ldif" --memberof || hs_fail "slapadd-loaded directory differs"

# --- MaxPageSize-like limits --------------------------------------------------------------------
rc=0
ldapsearch "${SYNC[@]}" -LLL -b "$ROOT" '(objectClass=*)' 1.1 >"$T/unpaged.out" 2>&1 || rc=$?
hs_assert_eq 4 "$rc" "unpaged search by a non-root account: sizeLimitExceeded"
hs_assert_eq 10 "$(grep -c '^dn' "$T/unpaged.out")" "entries before the limit"
ldapsearch "${SYNC[@]}" -LLL -b "$ROOT" -E pr=10/noprompt '(objectClass=*)' 1.1 >"$T/paged.out"
hs_assert_eq "$total" "$(grep -c '^dn' "$T/paged.out")" "paged search (10 per page) returns everything"
rc=0
ldapsearch "${SYNC[@]}" -LLL -b "$ROOT" -E pr=50/noprompt '(objectClass=*)' 1.1 >/dev/null 2>&1 || rc=$?
hs_assert_eq 11 "$rc" "page size above the limit: adminLimitExceeded"
hs_assert_eq "$total" "$(ldapsearch "${ADMIN[@]}" -LLL -b "$ROOT" '(objectClass=*)' 1.1 | grep -c '^dn')" \
    "the rootdn is not limited"

# --- present phase when no session log covers the cookie -----------------------------------------
ldapsearch "${ADMIN[@]}" -b "$ROOT" -E '!sync=ro' '(objectClass=*)' entryUUID >"$T/sync1.out"
cookie=$(awk '/^# cookie: /{c=$3} END{print c}' "$T/sync1.out")
[ -n "$cookie" ] || hs_fail "the refresh returned no cookie"
del_dn=$("$HS_PY" -c 'import json,sys; print([o["dn"] for o in json.load(open(sys.argv[1]))["objects"] if o["kind"]=="user"][-1])' "$T/dir.json")
del_uuid=$(ldapsearch "${ADMIN[@]}" -LLL -b "$del_dn" -s base '(objectClass=*)' entryUUID | sed -n 's/^entryUUID: //p')
ldapdelete "${ADMIN[@]}" "$del_dn"
ldapsearch "${ADMIN[@]}" -b "$ROOT" -E "!sync=ro/$cookie" '(objectClass=*)' entryUUID >"$T/sync2.out"
hs_assert_contains "$(cat "$T/sync2.out")" "# SyncDone control refreshDeletes=0" "present phase (refreshDeletes=0)"
present=$(grep -c "^#	[0-9a-f]\{8\}-" "$T/sync2.out" || true)
hs_assert_eq "$((total - 1))" "$present" "UUIDs listed as present (all but the deleted entry)"
if grep -q "^#	$del_uuid\$" "$T/sync2.out"; then hs_fail "the deleted entry is listed as present"; fi
echo "ok: the deleted entry's UUID is absent from the present list"
echo "PASS"
