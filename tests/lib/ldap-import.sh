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
