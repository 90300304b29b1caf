#!/bin/bash
# 045-ldap-import-hostile: the AD connector against a server that sends what no directory should
# (tests/fixtures/ldap-hostile.py). Entries with a DN that is not one, invalid UTF-8 in a DN, an
# entryUUID that is not a UUID, no anchor, a member that is not a DN, a nonsensical range
# option, a NUL inside a value, a referral, an entry outside the include, the same anchor twice,
# an entry whose attributes cannot be decoded, no objectClass, ranged member values that the
# follow-up read does not return, a range without values: each bad entry is a per-object error
# in the run history, the good ones are imported, and a second import changes nothing. A server
# that sends bytes that are not BER (claiming a 4 GiB message), closes the connection in the
# middle of a message, pages forever without entries, or answers a paged search without the
# paged-results control (or with one that cannot be read) stops the import with an error and
# obsoletes nothing. Run under the sanitizers too, this is
# where a crash on a peer's data would show.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/ldap-import.sh"

hs_need sqlite3 "$HS_PY"
TOOL=${HS_TOOLS_DIR:-$HS_BUILD_DIR/tests/tools}/hs-ldap-import
[ -x "$TOOL" ] || hs_fail "test driver $TOOL is not built"
T=$(hs_mktemp)
[ "${HS_KEEP:-0}" = 1 ] || hs_on_exit "rm -rf '$T'"
printf 'secret' >"$T/pw"
chmod 600 "$T/pw"

# serve MODE: starts the hostile server, sets PORT
serve() {
    rm -f "$T/port"
    "$HS_PY" "$HS_FIXTURES/ldap-hostile.py" --port-file "$T/port" --mode "$1" 2>/dev/null &
    hs_on_exit "kill $! 2>/dev/null"
    SERVER=$!
    for ((i = 0; i < 100; i++)); do [ -s "$T/port" ] && break; sleep 0.05; done
    [ -s "$T/port" ] || hs_fail "the hostile server did not start"
    PORT=$(cat "$T/port")
    ad_conf "$T/hs.conf" "uri = ldap://127.0.0.1:$PORT" "bind_dn = cn=sync,dc=example,dc=test" \
        "bind_password_file = $T/pw" "base_dn = dc=example,dc=test" \
        "include = ou=Corp,dc=example,dc=test" "allow_insecure = yes" "page_size = 4"
}
stop_server() { kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; }
run_errors() { sqlite3 "$T/hs.db" "SELECT code FROM run_errors WHERE run_id = $1 ORDER BY id" | paste -sd' '; }
objects() { "$TOOL" -c "$T/hs.conf" --dump | "$HS_PY" -c '
import json, sys
print(" ".join(sorted(json.loads(l)["dn"].split(",")[0] for l in sys.stdin)))'; }
pending_deletes() { sqlite3 "$T/hs.db" "SELECT count(*) FROM cs_objects WHERE pending_import = 3"; }

# --- entries no directory should send -----------------------------------------------------------
serve bad-entries
out=$("$TOOL" -c "$T/hs.conf" --full) || hs_fail "import from the hostile server: $out"
hs_assert_eq "completed-warnings full adds=3 updates=1 deletes=0 errors=10" "$(counters "$out")" \
    "good entries imported (one returned twice), ten per-object errors"
hs_assert_eq "invalid-dn invalid-value no-anchor invalid-value invalid-value invalid-dn invalid-entry no-object-class incomplete-values incomplete-values" \
    "$(run_errors "$(field "$out" run_id)")" "each bad entry is in the run history, in order"
hs_assert_eq "cn=Good 1 Moved cn=Good 2 cn=Good Group" "$(objects)" \
    "the connector space holds the good entries (the moved one under its last DN)"
dump=$("$TOOL" -c "$T/hs.conf" --dump)
hs_assert_contains "$dump" '"displayName":["bnVsAGluc2lkZQ=="]' "a NUL inside a value is kept as bytes"
hs_assert_contains "$dump" '"member":["cn=Good 2,ou=Corp,dc=example,dc=test","cn=Nobody,ou=Corp,dc=example,dc=test"]' \
    "a member not imported is kept as a reference"
"$TOOL" -c "$T/hs.conf" --clear-pending
out=$("$TOOL" -c "$T/hs.conf" --full) || hs_fail "second import: $out"
hs_assert_eq "completed-warnings full adds=0 updates=2 deletes=0 errors=10" "$(counters "$out")" \
    "a second import: the same errors, nothing obsoleted (the object returned twice moves back, then on)"
hs_assert_eq 0 "$(pending_deletes)" "no pending delete: objects with a per-object error are not obsoleted"
stop_server

# --- servers that break off ---------------------------------------------------------------------
# Their first page holds Good 1 and Good 2 only: an import taken as complete would obsolete the
# group and count deletes.
"$TOOL" -c "$T/hs.conf" --clear-pending
for mode in garbage drop endless no-control bad-control; do
    serve "$mode"
    t0=$(hs_ms)
    rc=0
    out=$("$TOOL" -c "$T/hs.conf" --full) || rc=$?
    hs_assert_eq 1 "$rc" "$mode: the import stops"
    echo "  $mode: $(field "$out" status): $(field "$out" error) ($(($(hs_ms) - t0)) ms)"
    case "$(field "$out" status)" in
    stopped-error | stopped-server-down) ;;
    *) hs_fail "$mode: status $(field "$out" status)" ;;
    esac
    hs_assert_eq 0 "$(pending_deletes)" "$mode: nothing obsoleted"
    if [ "$mode" = garbage ] && grep -q "no answer from the server" <<<"$(field "$out" error)"; then
        hs_fail "garbage: a message claiming 4 GiB was waited for instead of refused"
    fi
    stop_server
done
echo "PASS"
