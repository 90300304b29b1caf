#!/bin/bash
# Golden test of the default rules: the generated small directory (openldap flavor, loaded into
# the AD connector space as the AD connector would store it) through a full sync with the
# built-in rules gives exactly the Graph objects of tests/golden/sync-small.exports (users,
# groups, memberships; contacts and filtered objects absent). A second full sync changes
# nothing. HS_UPDATE_GOLDEN=1 rewrites the golden file.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"
. "$HS_SOURCE_DIR/tests/golden/sync-lib.sh"

T=$(hs_mktemp)
[ "${HS_KEEP:-0}" = 1 ] || hs_on_exit "rm -rf '$T'"
sync_setup "$T"
sync_small_cs "$T"

out=$(hs_sync "$T" --load-cs "$T/cs.jsonl" --full)
hs_assert_eq success "$(json_field "$out" status)" "full sync status"
hs_sync "$T" --exports --no-sync >"$T/exports.txt"
if [ "${HS_UPDATE_GOLDEN:-0}" = 1 ]; then
    cp "$T/exports.txt" "$GOLDEN/sync-small.exports"
    echo "updated $GOLDEN/sync-small.exports"
fi
if ! diff -u "$GOLDEN/sync-small.exports" "$T/exports.txt"; then
    hs_fail "pending exports differ from tests/golden/sync-small.exports"
fi
echo "ok: default rules give exactly the expected Graph objects"
hs_assert_eq 50 "$(grep -c '^add user' "$T/exports.txt")" "users (50 in the directory)"
hs_assert_eq 10 "$(grep -c '^add group' "$T/exports.txt")" "groups"
hs_assert_eq 0 "$(grep -c 'Wingtip' "$T/exports.txt")" "contacts are not exported"
# independent of the golden file: counts read from the LDIF itself
read -r disabled members <<<"$("$HS_PY" - "$T/small.ldif" <<'PY'
import sys, base64
text = open(sys.argv[1], encoding="utf-8").read()
entries = [e for e in text.split("\n\n") if e.strip()]
contacts = set()
for e in entries:
    if "adShadowContact" in e:
        contacts.add(e.split("\n")[0][4:])
disabled = sum(1 for e in entries if "\nuserAccountControl: 514" in e)
members = 0
for e in entries:
    for l in e.split("\n"):
        if l.startswith("member:: "):
            dn = base64.b64decode(l[9:]).decode()
        elif l.startswith("member: "):
            dn = l[8:]
        else:
            continue
        members += dn not in contacts
print(disabled, members)
PY
)"
hs_assert_eq "$disabled" "$(grep -c 'accountEnabled: false' "$T/exports.txt")" "disabled users (UAC 514)"
hs_assert_eq "$members" "$(grep -c '^    member add' "$T/exports.txt")" "memberships (contacts left out)"
out=$(hs_sync "$T" --full)
hs_assert_eq 0 "$(json_field "$out" exports_changed)" "a second full sync changes nothing"
echo "ok: a second full sync changes no pending export"
