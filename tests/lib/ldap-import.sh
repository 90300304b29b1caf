# Helpers of the AD connector's tests (integration/040-044) around the test driver
# hs-ldap-import: sourced after common.sh, with TOOL set to the driver and T to the test's
# directory (whose hs.conf is the default configuration).

# field JSON KEY: one field of the driver's JSON line
field() { "$HS_PY" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# counters JSON: "status method adds=N updates=N deletes=N errors=N"
counters() {
    "$HS_PY" -c 'import json,sys; j=json.loads(sys.argv[1]); print("%s %s adds=%d updates=%d deletes=%d errors=%d" % (j["status"], j["method"], j["adds"], j["updates"], j["deletes"], j["errors"]))' "$1"
}

# pending [CONF]: "first-RDN-value:pending" for every object with a pending import, sorted
pending() {
    "$TOOL" -c "${1:-$T/hs.conf}" --dump | "$HS_PY" -c '
import json, sys
out = []
for line in sys.stdin:
    o = json.loads(line)
    if o["pending"] != "none":
        out.append("%s:%s" % (o["dn"].split(",")[0].split("=", 1)[1], o["pending"]))
print(" ".join(sorted(out)))'
}

# rdn DN: the value of the first RDN; parent DN: the DN without it
rdn() { local r=${1%%,*}; echo "${r#*=}"; }
parent() { echo "${1#*,}"; }

# slapd_up SEED [INIT-ARG...]: a slapd in $T/slapd (stopped on exit) loaded with a small
# generated directory ($T/dir.ldif, manifest $T/dir.json). Sets SLAPD_SH, D, the HS_SLAPD_*
# variables, ADMIN (ldap* tool arguments as the admin) and writes the sync account's password
# to $T/pw (mode 600).
slapd_up() {
    local seed=$1
    shift
    SLAPD_SH=$HS_FIXTURES/slapd/slapd.sh
    D=$T/slapd
    bash "$SLAPD_SH" init "$D" "$@" 2>/dev/null
    hs_on_exit "bash '$SLAPD_SH' stop '$D'"
    "$HS_PY" "$HS_FIXTURES/gen-directory.py" --shape small --seed "$seed" --memberof \
        --out "$T/dir.ldif" --manifest "$T/dir.json"
    bash "$SLAPD_SH" load "$D" "$T/dir.ldif" 2>/dev/null
    bash "$SLAPD_SH" start "$D" 2>/dev/null
    eval "$(bash "$SLAPD_SH" env "$D")"
    ADMIN=(-x -H "$HS_SLAPD_URI" -D "$HS_SLAPD_BIND_DN" -w "$HS_SLAPD_PW")
    printf '%s' "$HS_SLAPD_SYNC_PW" >"$T/pw"
    chmod 600 "$T/pw"
}

# ad_conf FILE LINE...: a configuration for the AD connector tests. "sync: KEY = VALUE" lines go
# to [sync] (whose database is $T/hs.db unless one is given), the others to [ad]; the [graph]
# section names a tenant that these tests never contact.
ad_conf() {
    local f=$1 line db="database = $T/hs.db" sync=() ad=()
    shift
    for line in "$@"; do
        case "$line" in
        "sync: database ="*) db=${line#sync: } ;;
        "sync: "*) sync+=("${line#sync: }") ;;
        *) ad+=("$line") ;;
        esac
    done
    {
        printf '[sync]\n%s\n' "$db"
        [ "${#sync[@]}" = 0 ] || printf '%s\n' "${sync[@]}"
        printf '[ad]\n'
        printf '%s\n' "${ad[@]}"
        printf '[graph]\ntenant = 00000000-0000-0000-0000-000000000000\n'
        printf 'client_id = 00000000-0000-0000-0000-000000000000\nclient_secret_file = %s\n' "$T/pw"
        printf 'domains = example.test\n'
    } >"$f"
}
