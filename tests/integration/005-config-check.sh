#!/bin/bash
# hybridsyncd --check against golden files (tests/conf-golden): each good-*.conf prints its
# .out (the normalized config and its hash) and exits 0, each bad-*.conf prints its .err
# (every error, "FILE:LINE: message") and exits 1; usage errors exit 2; the example config
# conf/hybridsync.conf passes. No secret value is ever printed.
#
# Configs refer to fixture files as @DIR@/...; the output has @DIR@ for the scratch
# directory, @STATEDIR@ for the build's state directory and @HOSTNAME@ for the host name.
# A line "# env: NAME=VALUE" in a config sets that variable for its run.
#
# HS_UPDATE_GOLDEN=1 rewrites the .out/.err files from the current output instead of
# comparing: review them with git diff before committing. Without it, nothing is accepted.
. "$(dirname "$0")/../lib/common.sh"

golden=$HS_SOURCE_DIR/tests/conf-golden
[ -x "$HYBRIDSYNCD" ] || hs_fail "hybridsyncd not built: $HYBRIDSYNCD"
T=$(hs_mktemp)
MARKER=SECRET-MARKER-$RANDOM$RANDOM

# --- fixture files (git keeps no 0600 modes, so they are made here) ---------------------------
mkdir -p "$T/secrets" "$T/creds" "$T/state" "$T/rules.d" "$T/bad-rules.d"
secret() { # secret FILE MODE
    printf '%s-%s\n' "$MARKER" "$(basename "$1")" > "$1"
    chmod "$2" "$1"
}
secret "$T/secrets/ad-password" 600
secret "$T/secrets/graph-secret" 600
secret "$T/secrets/graph-key.pem" 600
secret "$T/secrets/shared-password" 644
secret "$T/secrets/group-secret" 640
secret "$T/creds/ad-password" 400
secret "$T/creds/graph-secret" 400
printf -- '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' > "$T/secrets/graph-cert.pem"
chmod 644 "$T/secrets/graph-cert.pem"
: > "$T/secrets/empty"
chmod 600 "$T/secrets/empty"
cp "$T/secrets/graph-cert.pem" "$T/ca.pem"
cat > "$T/rules.d/10-users.json" <<'EOF'
{
  "name": "In from AD - User Trim",
  "direction": "inbound",
  "connector": "ad",
  "sourceObjectType": "user",
  "targetObjectType": "person",
  "linkType": "Join",
  "precedence": 50,
  "scopingFilter": [[{"attribute": "department", "operator": "STARTSWITH", "value": "HR"}]],
  "attributeFlows": [{"target": "displayName", "expression": "Trim([displayName])"}]
}
EOF
printf '[{"name": "In from AD - Contact Common", "disabled": true}]\n' > "$T/rules.d/20-out.json"
printf 'not a rule file\n' > "$T/rules.d/README"
printf '{\n  "name": "broken",\n  "flows": [1, 2,, 3]\n}\n' > "$T/bad-rules.d/10-broken.json"
printf '{"name": "a", "name": "b"}\n' > "$T/bad-rules.d/20-dup.json"
printf '{}\n' > "$T/bad-rules.d/30-fine.json"
mkdir -p "$T/bad-rules2.d"
printf '{"name": "Bad flow", "direction": "inbound", "connector": "ad", "sourceObjectType": "user",\n "targetObjectType": "person", "precedence": 60,\n "attributeFlows": [{"target": "displayName", "expression": "Lcase([cn])"}]}\n' \
    > "$T/bad-rules2.d/10-flow.json"
printf '{"name": "No such rule", "disabled": true}\n' > "$T/bad-rules2.d/20-override.json"

statedir=$("$HYBRIDSYNCD" --help | sed -n 's/^State directory: //p')
[ -n "$statedir" ] || hs_fail "hybridsyncd --help does not name the state directory"
host=$(hostname)

normalize() {
    sed -e "s|$T|@DIR@|g" -e "s|$statedir|@STATEDIR@|g" \
        -e "s|^\(  *\"server_name\": \)\"$host\"|\1\"@HOSTNAME@\"|"
}

# run_check CONF: runs hybridsyncd --check in $T on a copy of CONF; sets rc, out, err.
run_check() {
    local conf=$1 name envs=()
    name=$(basename "$conf")
    sed "s|@DIR@|$T|g" "$conf" > "$T/$name"
    while read -r kv; do
        envs+=("$kv")
    done < <(sed -n "s|^# env: ||p" "$T/$name")
    rc=0
    (cd "$T" && env -u CREDENTIALS_DIRECTORY ${envs[@]+"${envs[@]}"} \
        "$HYBRIDSYNCD" --check -c "$name" > "$T/stdout" 2> "$T/stderr") || rc=$?
    normalize < "$T/stdout" > "$T/stdout.n"
    normalize < "$T/stderr" > "$T/stderr.n"
    if grep -q "$MARKER" "$T/stdout" "$T/stderr"; then
        hs_fail "$name: a secret value was printed"
    fi
}

failures=0
compare() { # compare WHAT EXPECTED-FILE ACTUAL-FILE
    if [ "${HS_UPDATE_GOLDEN:-0}" = 1 ]; then
        cp "$3" "$2"
        echo "updated: $2"
    elif [ ! -f "$2" ]; then
        echo "FAIL: $1: golden file $(basename "$2") is missing (HS_UPDATE_GOLDEN=1 writes it)"
        failures=$((failures + 1))
    elif ! diff -u "$2" "$3"; then
        echo "FAIL: $1: output differs from $(basename "$2")"
        failures=$((failures + 1))
    else
        echo "ok: $1"
    fi
}

n_good=0 n_bad=0
for conf in "$golden"/good-*.conf; do
    name=$(basename "$conf" .conf)
    run_check "$conf"
    n_good=$((n_good + 1))
    if [ "$rc" != 0 ] || [ -s "$T/stderr" ]; then
        echo "FAIL: $name: exit $rc (expected 0), stderr:"
        cat "$T/stderr"
        failures=$((failures + 1))
        continue
    fi
    compare "$name" "$golden/$name.out" "$T/stdout.n"
done
for conf in "$golden"/bad-*.conf; do
    name=$(basename "$conf" .conf)
    run_check "$conf"
    n_bad=$((n_bad + 1))
    if [ "$rc" != 1 ] || [ -s "$T/stdout" ]; then
        echo "FAIL: $name: exit $rc (expected 1), stdout:"
        cat "$T/stdout"
        failures=$((failures + 1))
        continue
    fi
    compare "$name" "$golden/$name.err" "$T/stderr.n"
done
[ "$n_good" -ge 6 ] && [ "$n_bad" -ge 12 ] || hs_fail "too few golden cases ($n_good good, $n_bad bad)"

# --- the hash line repeats config_hash; a faithful standby shows the same hash ------------------
run_check "$golden/good-full.conf"
hash_line=$(sed -n 's/^config hash: //p' "$T/stdout")
json_hash=$(sed -n 's/^  "config_hash": "\(.*\)",$/\1/p' "$T/stdout")
hs_assert_eq "$json_hash" "$hash_line" "config hash line matches config_hash"
sed -e 's/^staging = no/staging = yes/' -e 's/^server_name = .*/server_name = standby/' \
    -e 's/^force_promotion = yes/force_promotion = no/' -e 's/^interval = .*/interval = 5min/' \
    -e 's|@DIR@/state/|@DIR@/standby-state/|' "$golden/good-full.conf" > "$T/secrets/standby.conf"
run_check "$T/secrets/standby.conf"
hs_assert_eq "$hash_line" "$(sed -n 's/^config hash: //p' "$T/stdout")" "standby hash"

# --- the example config stays valid ------------------------------------------------------------
mkdir -p "$T/etc/rules.d"
secret "$T/etc/ad-password" 600
secret "$T/etc/graph-secret" 600
sed -e "s|/etc/hybridsync/|$T/etc/|g" "$HS_SOURCE_DIR/conf/hybridsync.conf" > "$T/example.conf"
rc=0
"$HYBRIDSYNCD" --check -c "$T/example.conf" > "$T/stdout" 2> "$T/stderr" || rc=$?
if [ "$rc" != 0 ]; then
    cat "$T/stderr"
    hs_fail "conf/hybridsync.conf does not pass --check (exit $rc)"
fi
echo "ok: conf/hybridsync.conf passes --check"

# --- exit codes ---------------------------------------------------------------------------------
code() { # code EXPECTED ARGS...: hybridsyncd ARGS exits EXPECTED
    local expected=$1 got=0
    shift
    "$HYBRIDSYNCD" "$@" > /dev/null 2>&1 || got=$?
    hs_assert_eq "$expected" "$got" "exit code of hybridsyncd $*"
}
code 2 --check --no-such-option
code 2 --check extra-argument
code 2 --check -c
code 0 --help
code 1 --check -c "$T/no-such.conf"
code 1 --check -c "$T"
msg=$("$HYBRIDSYNCD" --check -c "$T/no-such.conf" 2>&1) || true
hs_assert_eq "$T/no-such.conf: No such file or directory" "$msg" "unreadable config message"
"$HYBRIDSYNCD" --help | grep -q -- "--check" || hs_fail "--help does not mention --check"

[ "$failures" = 0 ] || hs_fail "$failures golden case(s) failed"
echo "all $n_good good and $n_bad bad config cases match their golden files"
