# Shared setup of the sync engine tests (tests/integration/06x-*.sh): a config in $T with its
# database, and helpers around the hs-sync driver. Source after common.sh.
HS_SYNC=${HS_TOOLS_DIR:-$HS_BUILD_DIR/tests/tools}/hs-sync
GOLDEN=$HS_SOURCE_DIR/tests/golden
[ -x "$HS_SYNC" ] || hs_skip "hs-sync driver not built ($HS_SYNC)"

# sync_setup DIR [extra [graph] lines]: writes DIR/sync.conf (rules dir DIR/rules if it exists)
sync_setup() {
    local d=$1; shift
    mkdir -p "$d/secrets"
    echo pw >"$d/secrets/ad"; echo secret >"$d/secrets/graph"
    chmod 600 "$d/secrets/ad" "$d/secrets/graph"
    {
        echo "[sync]"
        echo "database = $d/hs.db"
        [ -d "$d/rules" ] && echo "rules = $d/rules"
        echo "[ad]"
        echo "uri = ldaps://dc1.example.test"
        echo "bind_dn = CN=svc,DC=example,DC=test"
        echo "bind_password_file = $d/secrets/ad"
        echo "base_dn = DC=example,DC=test"
        echo "[graph]"
        echo "tenant = 11111111-2222-3333-4444-555555555555"
        echo "client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
        echo "client_secret_file = $d/secrets/graph"
        echo "domains = example.test"
        echo "domains = contoso.onmicrosoft.com"
        for l in "$@"; do echo "$l"; done
    } >"$d/sync.conf"
}

# hs_sync DIR ARGS...: runs the driver on DIR's config
hs_sync() { local d=$1; shift; "$HS_SYNC" -c "$d/sync.conf" "$@"; }

# json_field JSON KEY
json_field() { "$HS_PY" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# the small generated directory as AD connector-space lines in DIR/cs.jsonl
sync_small_cs() {
    "$HS_PY" "$HS_FIXTURES/gen-directory.py" --flavor openldap --shape small --out "$1/small.ldif"
    "$HS_PY" "$GOLDEN/ldif2cs.py" "$1/small.ldif" >"$1/cs.jsonl"
}
