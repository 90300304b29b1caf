#!/bin/bash
# hybridsyncctl config: export (the canonical JSON of hybridsyncd --check, no secret), check
# (valid: exit 0 and the hash; invalid: FILE:LINE errors, exit 1), diff (same: 0; a key in the
# hash differs: 1, named with both values; only local keys such as staging differ: 0 unless
# --all; usage: 2), import --to (refuses a non-empty directory without --force, forces
# staging = yes, 0640 files, rule files; hybridsyncd --check accepts the result and shows the
# exported hash).
. "$(dirname "$0")/../lib/common.sh"

T=$(hs_mktemp)
MARKER=SECRET-MARKER-$RANDOM$RANDOM
mkdir -p "$T/secrets" "$T/rules.d"
printf '%s-ad\n' "$MARKER" > "$T/secrets/ad-password"
printf '%s-graph\n' "$MARKER" > "$T/secrets/graph-secret"
chmod 600 "$T/secrets/"*
cat > "$T/rules.d/50-title.json" <<'EOF'
{
  "name": "In from AD - User Title",
  "description": "job title from AD",
  "direction": "inbound",
  "connector": "ad",
  "sourceObjectType": "user",
  "targetObjectType": "person",
  "linkType": "Join",
  "precedence": 50,
  "attributeFlows": [{"source": "title", "target": "jobTitle", "flowType": "Direct"}]
}
EOF
cat > "$T/primary.conf" <<EOF
[sync]
staging = no
interval = 10min
database = $T/primary.db
rules = $T/rules.d
server_name = primary
deletion_threshold = 250

[ad]
uri = ldaps://dc1.corp.example.com
bind_dn = CN=svc-sync,OU=Service,DC=corp,DC=example,DC=com
bind_password_file = $T/secrets/ad-password
base_dn = DC=corp,DC=example,DC=com
include = OU=Staff,DC=corp,DC=example,DC=com
page_size = 500

[graph]
tenant = 11111111-2222-3333-4444-555555555555
client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
client_secret_file = $T/secrets/graph-secret
domains = corp.example.com
EOF
ctl() { "$HYBRIDSYNCCTL" -c "$T/primary.conf" "$@"; }
check_hash() { "$HYBRIDSYNCD" --check -c "$1" | sed -n 's/^config hash: //p'; }
primary_hash=$(check_hash "$T/primary.conf")
[ -n "$primary_hash" ] || hs_fail "hybridsyncd --check refuses the primary config"

# --- export --------------------------------------------------------------------------------------
ctl config export > "$T/primary.json"
"$HYBRIDSYNCD" --check -c "$T/primary.conf" | sed '/^config hash: /d' > "$T/check.json"
cmp -s "$T/primary.json" "$T/check.json" || hs_fail "config export differs from hybridsyncd --check"
echo "ok: config export is the canonical JSON of hybridsyncd --check"
hs_assert_eq "$primary_hash" "$("$HS_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["config_hash"])' "$T/primary.json")" \
    "exported config_hash"
grep -q "$MARKER" "$T/primary.json" && hs_fail "a secret is in the export"

# --- check ---------------------------------------------------------------------------------------
out=$(ctl config check)
hs_assert_contains "$out" "config hash: $primary_hash" "config check prints the hash"
cp "$T/primary.conf" "$T/bad.conf"
printf 'page_size = lots\nno_such_key = 1\n' >> "$T/bad.conf"
rc=0
"$HYBRIDSYNCCTL" -c "$T/bad.conf" config check > "$T/out" 2> "$T/err" || rc=$?
hs_assert_eq 1 "$rc" "config check of a bad file"
cat "$T/err"
grep -q "^$T/bad.conf:2[0-9]: " "$T/err" || hs_fail "errors are not FILE:LINE: message"
hs_assert_eq 2 "$(grep -c "^$T/bad.conf:" "$T/err")" "every error is listed"

# --- diff ----------------------------------------------------------------------------------------
# a faithful standby: only local keys differ
sed -e 's/^staging = no/staging = yes/' -e 's/^server_name = .*/server_name = standby/' \
    -e 's/^interval = .*/interval = 30min/' -e "s|primary.db|standby.db|" \
    "$T/primary.conf" > "$T/standby.conf"
"$HYBRIDSYNCCTL" -c "$T/standby.conf" config export > "$T/standby.json"
rc=0
"$HYBRIDSYNCCTL" -c "$T/standby.conf" config diff "$T/primary.json" > "$T/diff" || rc=$?
cat "$T/diff"
hs_assert_eq 0 "$rc" "diff against a faithful standby"
grep -q '^sync.staging: false -> true  (not in the hash)$' "$T/diff" ||
    hs_fail "diff names the local key staging"
grep -q '^sync.server_name: "primary" -> "standby"  (not in the hash)$' "$T/diff" ||
    hs_fail "diff names server_name"
rc=0
ctl config diff --all "$T/primary.json" "$T/standby.json" > /dev/null || rc=$?
hs_assert_eq 1 "$rc" "diff --all counts local keys"
rc=0
out=$(ctl config diff "$T/primary.json" "$T/primary.json") || rc=$?
hs_assert_eq 0 "$rc" "diff of a file with itself"
hs_assert_contains "$out" "same configuration" "diff says the same"
rc=0
out=$(ctl config diff "$T/primary.json") || rc=$?
hs_assert_eq 0 "$rc" "diff of the export against this server"

# keys covered by the hash: exit 1, each named with both values
sed -e 's/^page_size = .*/page_size = 1000/' -e 's/^deletion_threshold = .*/deletion_threshold = 5%/' \
    "$T/primary.conf" > "$T/drift.conf"
sed -i 's/"precedence": 50/"precedence": 60/' "$T/rules.d/50-title.json"
"$HYBRIDSYNCCTL" -c "$T/drift.conf" config export > "$T/drift.json"
sed -i 's/"precedence": 60/"precedence": 50/' "$T/rules.d/50-title.json"
rc=0
ctl config diff "$T/primary.json" "$T/drift.json" > "$T/diff" || rc=$?
cat "$T/diff"
hs_assert_eq 1 "$rc" "diff of differing configs"
grep -q '^ad.page_size: 500 -> 1000$' "$T/diff" || hs_fail "diff names ad.page_size"
grep -q '^sync.deletion_threshold.count: 250 -> (absent)$' "$T/diff" ||
    hs_fail "diff names the threshold"
grep -q '^sync.deletion_threshold.percent: (absent) -> 5$' "$T/diff" ||
    hs_fail "diff names the new threshold kind"
grep -q '^rules\[50-title.json\].content.precedence: 50 -> 60$' "$T/diff" ||
    hs_fail "diff names the rule's key by file"
grep -q "^--- $T/primary.json (config hash $primary_hash)\$" "$T/diff" || hs_fail "diff header"
# the output of hybridsyncd --check is accepted too
"$HYBRIDSYNCD" --check -c "$T/drift.conf" > "$T/drift.check"
rc=0
ctl config diff "$T/primary.json" "$T/drift.check" > /dev/null || rc=$?
hs_assert_eq 1 "$rc" "diff reads hybridsyncd --check output"

echo 'not json' > "$T/garbage.json"
code() { # code EXPECTED ARGS...
    local expected=$1 got=0
    shift
    ctl "$@" > /dev/null 2>&1 || got=$?
    hs_assert_eq "$expected" "$got" "exit code of hybridsyncctl $*"
}
code 2 config diff
code 2 config diff a b c
code 2 config
code 2 config frobnicate
code 2 config export extra
code 2 config import "$T/primary.json"
code 1 config diff "$T/garbage.json" "$T/primary.json"
code 1 config diff "$T/no-such.json"

# --- import ---------------------------------------------------------------------------------------
mkdir -p "$T/new/etc"
touch "$T/new/etc/leftover"
rc=0
out=$(ctl config import "$T/primary.json" --to "$T/new/etc" 2>&1) || rc=$?
hs_assert_eq 1 "$rc" "import refuses a non-empty directory"
hs_assert_contains "$out" "--force" "the refusal names --force"
[ -e "$T/new/etc/hybridsync.conf" ] && hs_fail "a refused import wrote a file"
rc=0
ctl config import "$T/primary.json" --to "$T/new/etc" --force > "$T/import.out" || rc=$?
cat "$T/import.out"
hs_assert_eq 0 "$rc" "import --force"
hs_assert_contains "$(cat "$T/import.out")" "$T/secrets/ad-password" "the secrets to supply are named"
hs_assert_eq 640 "$(stat -c %a "$T/new/etc/hybridsync.conf")" "mode of the new config"
[ -f "$T/new/etc/rules.d/50-title.json" ] || hs_fail "the rule file was not written"
grep -q '^staging = yes' "$T/new/etc/hybridsync.conf" || hs_fail "import did not force staging"
grep -q "^rules = $T/new/etc/rules.d\$" "$T/new/etc/hybridsync.conf" ||
    hs_fail "the new config does not point at its rules"
grep -q "$MARKER" "$T/new/etc/hybridsync.conf" && hs_fail "a secret is in the imported config"
hs_assert_eq "$primary_hash" "$(check_hash "$T/new/etc/hybridsync.conf")" \
    "hybridsyncd --check accepts the import, same hash"
# into a fresh directory (created), then a tampered export is refused
ctl config import "$T/primary.json" --to "$T/fresh" > /dev/null
hs_assert_eq "$primary_hash" "$(check_hash "$T/fresh/hybridsync.conf")" "import into a new directory"
sed 's/"page_size": 500/"page_size": 501/' "$T/primary.json" > "$T/tampered.json"
rc=0
ctl config import "$T/tampered.json" --to "$T/tampered" > /dev/null 2>&1 || rc=$?
hs_assert_eq 1 "$rc" "an export whose hash does not match is refused"
[ -e "$T/tampered/hybridsync.conf" ] && hs_fail "a refused import wrote a config"
echo "config: all checks passed"
