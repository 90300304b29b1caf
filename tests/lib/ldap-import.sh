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
