#!/bin/bash
# Benchmark (not a test): the AD connector against the test slapd.
#  * full import of a generated directory (default contoso-100k) into an empty store against the
#    floor measured in the same run: ldapsearch paging the same entries and attributes to
#    /dev/null; the two run in turn --runs times (default 3) and the medians are printed, with
#    the ratio (goal <= 1.5), the ratio of the fastest runs and the import's peak RSS;
#    and the store's own floor: SQLite copying the rows the import wrote into an empty store
#    in one transaction (what no import into this schema can beat); the directory's CPU
#    during each and the wall time that import's CPU and the directory's allow at best on
#    this machine's cores (the client and the server share them here);
#  * delta import (syncrepl) of 100 modified users, at 10k objects and at the full size.
#
#   tests/bench/ldap-import.sh [--shape contoso-100k|small] [--page-size N] [--runs N]
#                              [--build DIR]
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"

hs_need /usr/sbin/slapd /usr/sbin/slapadd ldapsearch ldapmodify sqlite3 /usr/bin/time "$HS_PY"
SLAPD_SH=$HS_FIXTURES/slapd/slapd.sh
GEN=$HS_FIXTURES/gen-directory.py
shape=contoso-100k page=1000 build=$HS_BUILD_DIR runs=3
while [ $# -gt 0 ]; do
    case "$1" in
    --shape) shape=$2; shift 2 ;;
    --page-size) page=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
TOOL=$build/tests/tools/hs-ldap-import
[ -x "$TOOL" ] || hs_fail "build the test driver first: $TOOL"
W=$(hs_mktemp)
[ "${HS_KEEP:-0}" = 1 ] || hs_on_exit "rm -rf '$W'"
ATTRS="objectGUID objectSid mS-DS-ConsistencyGuid sAMAccountName userPrincipalName userAccountControl
displayName givenName sn cn mail mailNickname proxyAddresses description department title
telephoneNumber mobile company employeeID employeeNumber physicalDeliveryOfficeName streetAddress l st
postalCode c co isCriticalSystemObject adminDescription groupType info objectClass entryUUID
member manager isDeleted"
FILTER='(|(objectClass=inetOrgPerson)(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=user)(objectClass=group)(objectClass=contact))'
secs() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }
TICK=$(getconf CLK_TCK)
NCPU=$(nproc)
# slapd_cpu PID: the server's user + system CPU so far, in ms
slapd_cpu() { awk -v t="$TICK" '{ printf "%d", ($14 + $15) * 1000 / t }' "/proc/$1/stat"; }

# bench NAME GEN-ARGS...: one directory, full import vs floor, then a 100-change delta
bench() {
    local name=$1 D=$W/$1 t0 t_ls t_imp rss out
    shift
    "$HS_PY" "$GEN" "$@" --memberof --out "$W/$name.ldif" --manifest "$W/$name.json"
    bash "$SLAPD_SH" init "$D" 2>/dev/null
    hs_on_exit "bash '$SLAPD_SH' stop '$D'"
    bash "$SLAPD_SH" load "$D" "$W/$name.ldif" 2>/dev/null
    bash "$SLAPD_SH" start "$D" 2>/dev/null
    eval "$(bash "$SLAPD_SH" env "$D")"
    spid=$(cat "$D/slapd.pid")
    printf '%s' "$HS_SLAPD_SYNC_PW" >"$W/pw"
    chmod 600 "$W/pw"
    cat >"$W/$name.conf" <<EOF
[sync]
database = $W/$name.db
[ad]
uri = $HS_SLAPD_URI
bind_dn = $HS_SLAPD_SYNC_DN
bind_password_file = $W/pw
base_dn = $HS_SLAPD_BASE
include = ou=Corp,$HS_SLAPD_BASE
allow_insecure = yes
page_size = $page
[graph]
tenant = 00000000-0000-0000-0000-000000000000
client_id = 00000000-0000-0000-0000-000000000000
client_secret_file = $W/pw
domains = example.test
EOF
    # warm the server's cache once, then floor and import in turn, $runs times: medians
    ldapsearch -x -H "$HS_SLAPD_URI" -D "$HS_SLAPD_SYNC_DN" -w "$HS_SLAPD_SYNC_PW" -LLL \
        -E pr=$page/noprompt -b "ou=Corp,$HS_SLAPD_BASE" "$FILTER" $ATTRS >/dev/null
    : >"$W/$name.runs"
    for ((run = 1; run <= runs; run++)); do
        # The previous import left ~180 MB of dirty pages: flush them first, or their writeback
        # slows the next floor down (by up to 2x here) and flatters the ratio.
        sync
        c0=$(slapd_cpu "$spid")
        t0=$(hs_ms)
        /usr/bin/time -f '%U %S' -o "$W/$name.lstime" \
            ldapsearch -x -H "$HS_SLAPD_URI" -D "$HS_SLAPD_SYNC_DN" -w "$HS_SLAPD_SYNC_PW" -LLL \
            -E pr=$page/noprompt -b "ou=Corp,$HS_SLAPD_BASE" "$FILTER" $ATTRS >/dev/null
        t_ls=$(($(hs_ms) - t0))
        c_ls=$(($(slapd_cpu "$spid") - c0))
        rm -f "$W/$name.db" "$W/$name.db-wal" "$W/$name.db-shm"
        sync
        c0=$(slapd_cpu "$spid")
        t0=$(hs_ms)
        out=$(/usr/bin/time -v -o "$W/$name.time" "$TOOL" -c "$W/$name.conf" --full)
        t_imp=$(($(hs_ms) - t0))
        c_imp=$(($(slapd_cpu "$spid") - c0))
        echo "result: $out"
        echo "$t_ls $t_imp $(awk '{printf "%.2f", $1 + $2}' "$W/$name.lstime")" \
            "$(awk '/User time/ {u=$NF} /System time/ {s=$NF} END {printf "%.2f", u + s}' "$W/$name.time")" \
            "$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$W/$name.time")" \
            "$(secs $c_ls) $(secs $c_imp)" >>"$W/$name.runs"
    done
    echo "runs: $name: ldapsearch/import wall ms: $(awk '{printf "%s%d/%d", (NR > 1 ? " " : ""), $1, $2}' "$W/$name.runs")"
    # the median of each column (runs is odd or the lower middle)
    med() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
    t_ls=$(cut -d' ' -f1 "$W/$name.runs" | med)
    t_imp=$(cut -d' ' -f2 "$W/$name.runs" | med)
    ls_cpu=$(cut -d' ' -f3 "$W/$name.runs" | med)
    cpu=$(cut -d' ' -f4 "$W/$name.runs" | med)
    rss=$(cut -d' ' -f5 "$W/$name.runs" | sort -n | tail -1)
    s_ls=$(cut -d' ' -f6 "$W/$name.runs" | med)
    s_imp=$(cut -d' ' -f7 "$W/$name.runs" | med)
    # On a shared machine the wall clock includes waiting for a CPU: CPU seconds compare fairer.
    echo "figure: $name: CPU seconds: ldapsearch $ls_cpu, import $cpu," \
        "ratio $(awk -v a="$cpu" -v b="$ls_cpu" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')" \
        "(medians of $runs; load average $(cut -d' ' -f1 /proc/loadavg))"
    echo "figure: $name: ldapsearch paged dump $(secs $t_ls) s, full import $(secs $t_imp) s," \
        "ratio $(awk -v a="$t_imp" -v b="$t_ls" 'BEGIN { printf "%.2f", a / b }') (goal <= 1.5)," \
        "import peak RSS $((rss / 1024)) MB, store $(du -m "$W/$name.db" | cut -f1) MB"
    # ldapsearch's wall time varies more than the import's on a busy virtual machine (it makes
    # many small system calls): the fastest run of each is the steadier comparison.
    b_ls=$(cut -d' ' -f1 "$W/$name.runs" | sort -n | head -1)
    b_imp=$(cut -d' ' -f2 "$W/$name.runs" | sort -n | head -1)
    echo "figure: $name: fastest of $runs: ldapsearch $(secs $b_ls) s, full import $(secs $b_imp) s," \
        "ratio $(awk -v a="$b_imp" -v b="$b_ls" 'BEGIN { printf "%.2f", a / b }')"
    # Client and server share this machine's cores: the CPU both spend bounds the wall time.
    bound=$(awk -v a="$cpu" -v b="$s_imp" -v n="$NCPU" 'BEGIN { printf "%.2f", (a + b) / n }')
    echo "figure: $name: directory CPU seconds: serving ldapsearch $s_ls, serving the import" \
        "$s_imp; import + directory CPU on $NCPU cores bounds the import at $bound s wall," \
        "$(awk -v a="$bound" -v b="$t_ls" 'BEGIN { printf "%.2f", a * 1000 / b }') x the" \
        "ldapsearch floor (the import reaches" \
        "$(awk -v a="$bound" -v b="$t_imp" 'BEGIN { printf "%.0f", a * 100000 / b }') % of that bound)"
    # The store's own floor: the rows this import wrote, copied into an empty store of the same
    # schema in one transaction by SQLite itself, then the index the bulk load rebuilds.
    rm -f "$W/floor.db" "$W/floor.db-wal" "$W/floor.db-shm"
    sqlite3 "$W/floor.db" "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL;" >/dev/null
    sqlite3 "$W/$name.db" .schema | grep -v -e sqlite_sequence -e cs_refs_target |
        sqlite3 "$W/floor.db"
    t0=$(hs_ms)
    sqlite3 "$W/floor.db" >/dev/null <<EOF
PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF; PRAGMA cache_size = -65536;
ATTACH '$W/$name.db' AS o;
BEGIN;
INSERT INTO connectors SELECT * FROM o.connectors;
INSERT INTO cs_objects SELECT * FROM o.cs_objects ORDER BY id;
INSERT INTO cs_refs SELECT * FROM o.cs_refs ORDER BY cs_id, attr, target_cs_id, target_dn;
COMMIT;
CREATE INDEX cs_refs_target ON cs_refs(target_cs_id) WHERE target_cs_id <> 0;
EOF
    t_floor=$(($(hs_ms) - t0))
    echo "figure: $name: store floor (SQLite copying the same rows in one transaction)" \
        "$(secs $t_floor) s, $(awk -v a="$t_floor" -v b="$t_ls" 'BEGIN { printf "%.2f", a / b }')" \
        "x the ldapsearch floor"
    "$TOOL" -c "$W/$name.conf" --clear-pending
    "$HS_PY" -c '
import base64, json, sys
users = [o["dn"] for o in json.load(open(sys.argv[1]))["objects"] if o["kind"] == "user"][:100]
for dn in users:
    line = ("dn: " + dn) if dn.isascii() else ("dn:: " + base64.b64encode(dn.encode()).decode())
    print(line + "\nchangetype: modify\nreplace: title\ntitle: Bench Delta\n")' "$W/$name.json" >"$W/$name.mod"
    ldapmodify -x -H "$HS_SLAPD_URI" -D "$HS_SLAPD_BIND_DN" -w "$HS_SLAPD_PW" -f "$W/$name.mod" >/dev/null
    t0=$(hs_ms)
    out=$(/usr/bin/time -v -o "$W/$name.dtime" "$TOOL" -c "$W/$name.conf")
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$W/$name.dtime")
    echo "result: $out"
    echo "figure: $name: delta import of 100 modified users $(secs $(($(hs_ms) - t0))) s (peak RSS $((rss / 1024)) MB)"
    bash "$SLAPD_SH" stop "$D"
}

bench 10k --users 9000 --groups 900 --contacts 100 --ous 10 --avg-members 20 --seed 7
bench "$shape" --shape "$shape"
