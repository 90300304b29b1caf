# The setting of the hybridsyncctl tests (sourced after common.sh): a scratch directory $T, a
# config whose database is $T/hybridsync.db (peers unreachable, secrets in $T/secrets), the
# store fixture tool $FIXTURE and ctl, hybridsyncctl on that config. CTL_GRAPH_EXTRA (optional):
# lines added to its [graph] section.
FIXTURE=$HS_TOOLS_DIR/hs-fixture-store
[ -x "$FIXTURE" ] || hs_fail "test driver not built: $FIXTURE"
T=$(hs_mktemp)
mkdir -p "$T/secrets"
echo ad > "$T/secrets/ad-password"
echo graph > "$T/secrets/graph-secret"
chmod 600 "$T/secrets/"*
cat > "$T/hybridsync.conf" <<EOF
[sync]
database = $T/hybridsync.db

[ad]
uri = ldaps://dc1.corp.example.com
bind_dn = CN=svc-sync,OU=Service,DC=corp,DC=example,DC=com
bind_password_file = $T/secrets/ad-password
base_dn = DC=corp,DC=example,DC=com

[graph]
tenant = 11111111-2222-3333-4444-555555555555
client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
client_secret_file = $T/secrets/graph-secret
${CTL_GRAPH_EXTRA:-}
EOF
ctl() { "$HYBRIDSYNCCTL" -c "$T/hybridsync.conf" "$@"; }
