#!/bin/bash
# hybridsyncctl show: one object in both connector spaces and the metaverse, through the sync
# engine's preview (sync_preview). Usage errors exit 2; an unknown key exits 1 naming it; a
# known object prints a JSON object with --json and readable "key: value" lines without.
. "$(dirname "$0")/../lib/common.sh"

CTL_GRAPH_EXTRA="domains = corp.example.com"
. "$(dirname "$0")/../lib/ctl-setting.sh"
cat > "$T/fixture.json" <<'JSON'
{"cs": [{"connector": "ad", "anchor": "anchor-alice", "class": "user",
         "dn": "CN=Alice,OU=Staff,DC=corp,DC=example,DC=com",
         "attributes": {"objectClass": ["top", "person", "user"], "cn": "Alice",
                        "sAMAccountName": "alice", "displayName": "Alice Example",
                        "userPrincipalName": "alice@corp.example.com",
                        "objectGUID": "0123456789abcdef"}}]}
JSON
"$FIXTURE" "$T/hybridsync.db" "$T/fixture.json"

code() { # code EXPECTED ARGS...
    local expected=$1 got=0
    shift
    ctl "$@" > /dev/null 2>&1 || got=$?
    hs_assert_eq "$expected" "$got" "exit code of hybridsyncctl $*"
}
code 2 show
code 2 show a b
code 2 show --bogus x

rc=0
out=$(ctl show 'CN=Alice,OU=Staff,DC=corp,DC=example,DC=com' --json 2>&1) || rc=$?
case "$out" in
*"does not have yet"*)
    hs_assert_eq 1 "$rc" "show without the sync engine fails"
    hs_skip "show needs the sync engine (sync_preview is not built yet)" ;;
esac
hs_assert_eq 0 "$rc" "show of a known DN"
echo "$out" | "$HS_PY" -c 'import json,sys; d = json.load(sys.stdin); assert isinstance(d, dict) and d, d' ||
    hs_fail "show --json is not a JSON object: $out"
echo "ok: show --json is a JSON object"
text=$(ctl show alice@corp.example.com)
hs_assert_contains "$text" "Alice" "show by UPN, text"
echo "$text" | grep -q '^[A-Za-z_]*:' || hs_fail "show text has no key: value lines"
rc=0
out=$(ctl show 'CN=Nobody,DC=corp,DC=example,DC=com' 2>&1) || rc=$?
hs_assert_eq 1 "$rc" "show of an unknown DN"
hs_assert_contains "$out" "nothing matches 'CN=Nobody,DC=corp,DC=example,DC=com'" \
    "the unknown key is named"
echo "show: all checks passed"
