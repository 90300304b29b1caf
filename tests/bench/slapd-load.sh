#!/bin/bash
# Benchmark (not a test): build the contoso-100k directory (SPEC §7) in the test slapd and measure
# the "raw read floor", a paged ldapsearch dump of every entry to /dev/null, which the full-import
# figure is compared with. Prints one "figure:" line per measurement.
#
#   tests/bench/slapd-load.sh [--shape contoso-100k|contoso-1m|small] [--runs N] [--no-memberof]
#                             [--keep DIR]
#
# --keep DIR builds the instance in DIR and leaves it stopped there (reuse it with
# `slapd.sh start DIR/slapd`); otherwise everything goes to a scratch directory removed at exit.
# By default the generator also writes memberOf, so the offline-loaded directory looks like one
# built online (slapadd bypasses the memberof overlay).
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"

hs_need /usr/sbin/slapd /usr/sbin/slapadd ldapsearch /usr/bin/time "$HS_PY"
SLAPD_SH=$HS_FIXTURES/slapd/slapd.sh
GEN=$HS_FIXTURES/gen-directory.py

shape=contoso-100k runs=3 memberof=--memberof keep=''
while [ $# -gt 0 ]; do
    case "$1" in
    --shape) shape=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --no-memberof) memberof=''; shift ;;
    --keep) keep=$2; shift 2 ;;
    *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done

if [ -n "$keep" ]; then
    mkdir -p "$keep"
    W=$(cd "$keep" && pwd)
    [ ! -e "$W/slapd" ] || hs_fail "$W/slapd exists already"
else
    W=$(hs_mktemp)
    # hs_mktemp runs in a subshell here, so its own removal at exit is lost: register it again.
    [ "${HS_KEEP:-0}" = 1 ] || hs_on_exit "rm -rf '$W'"
fi
D=$W/slapd

secs() { awk -v ms="$1" 'BEGIN { printf "%.2f s", ms / 1000 }'; }

t0=$(hs_ms)
"$HS_PY" "$GEN" --shape "$shape" $memberof --out "$W/dir.ldif" --manifest "$W/dir.json"
echo "figure: generate $shape LDIF + manifest: $(secs $(($(hs_ms) - t0))) ($(du -m "$W/dir.ldif" | cut -f1) MB LDIF)"
counts=$("$HS_PY" -c 'import json,sys; c=json.load(open(sys.argv[1]))["counts"]
print("%d entries: %d users, %d groups, %d contacts, %d OUs, %d memberships" % (c["entries"], c["users"], c["groups"], c["contacts"], c["ous"], c["memberships"]))' "$W/dir.json")
entries=$("$HS_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["counts"]["entries"])' "$W/dir.json")
echo "figure: directory: $counts"

t0=$(hs_ms)
bash "$SLAPD_SH" init "$D" 2>/dev/null
echo "figure: slapd init: $(secs $(($(hs_ms) - t0)))"
hs_on_exit "bash '$SLAPD_SH' stop '$D'"

t0=$(hs_ms)
/usr/bin/time -f '%M' -o "$W/slapadd.rss" /usr/sbin/slapadd -q -w -F "$D/slapd.d" \
    -b dc=example,dc=test -l "$W/dir.ldif"
echo "figure: slapadd -q -w: $(secs $(($(hs_ms) - t0))) (maxrss $(($(cat "$W/slapadd.rss") / 1024)) MB, DB $(du -sm "$D/db" | cut -f1) MB)"

bash "$SLAPD_SH" start "$D" 2>/dev/null
echo "figure: slapd start with the loaded DB: $(cat "$D/startup_ms") ms"
eval "$(bash "$SLAPD_SH" env "$D")"
A=(-x -H "$HS_SLAPD_URI" -D "$HS_SLAPD_BIND_DN" -w "$HS_SLAPD_PW")
ROOT=ou=Corp,$HS_SLAPD_BASE

# dump LABEL ARGS...: time a search to /dev/null, check the entry count once.
dump() {
    local label=$1 i t0 ms all=
    shift
    n=$(ldapsearch "${A[@]}" -LLL "$@" | grep -c '^dn' || true)
    [ "$n" = "$entries" ] || hs_fail "$label returned $n entries, expected $entries"
    for ((i = 0; i < runs; i++)); do
        t0=$(hs_ms)
        ldapsearch "${A[@]}" "$@" >/dev/null
        ms=$(($(hs_ms) - t0))
        all+="${all:+ / }$(secs "$ms")"
    done
    echo "figure: $label: $all ($entries entries)"
}

dump "paged dump pr=1000, all user attributes (raw read floor)" -b "$ROOT" -E pr=1000/noprompt '(objectClass=*)'
dump "paged dump pr=1000, '*' memberOf entryUUID" -b "$ROOT" -E pr=1000/noprompt '(objectClass=*)' '*' memberOf entryUUID
dump "paged dump pr=1000, DNs only (1.1)" -b "$ROOT" -E pr=1000/noprompt '(objectClass=*)' 1.1
dump "content-sync full refresh (!sync=ro), '*' entryUUID" -b "$ROOT" -E '!sync=ro' '(objectClass=*)' '*' entryUUID
rss=$(awk '/VmHWM/{print int($2/1024)}' "/proc/$(cat "$D/slapd.pid")/status" 2>/dev/null || echo '?')
echo "figure: slapd peak RSS after the dumps: $rss MB"
if [ -n "$keep" ]; then
    bash "$SLAPD_SH" stop "$D"
    echo "kept: $D (start with: bash $SLAPD_SH start $D)"
fi
