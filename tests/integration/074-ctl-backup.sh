#!/bin/bash
# hybridsyncctl backup: an online, consistent copy of a database that another process keeps
# writing (hs-fixture-store --churn stands for a busy daemon). Each copy passes SQLite's
# integrity_check, is a database hybridsyncctl reads, and holds what was committed before it
# was taken; usage errors exit 2, an unwritable target exits 1.
. "$(dirname "$0")/../lib/common.sh"

FIXTURE=$HS_TOOLS_DIR/hs-fixture-store
[ -x "$FIXTURE" ] || hs_fail "test driver not built: $FIXTURE"
T=$(hs_mktemp)
mkdir -p "$T/secrets"
echo ad > "$T/secrets/ad-password"
echo graph > "$T/secrets/graph-secret"
chmod 600 "$T/secrets/"*
conf() { # conf DATABASE
    cat <<EOF
[sync]
database = $1

[ad]
uri = ldaps://dc1.corp.example.com
bind_dn = CN=svc-sync,OU=Service,DC=corp,DC=example,DC=com
bind_password_file = $T/secrets/ad-password
base_dn = DC=corp,DC=example,DC=com

[graph]
tenant = 11111111-2222-3333-4444-555555555555
client_id = aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
client_secret_file = $T/secrets/graph-secret
EOF
}
conf "$T/live.db" > "$T/hybridsync.conf"
ctl() { "$HYBRIDSYNCCTL" -c "$T/hybridsync.conf" "$@"; }

cat > "$T/fixture.json" <<'EOF'
{"runs": [{"type": "initial", "status": "success"}],
 "exports": [{"op": "add", "type": "user", "anchor": "before-backup",
              "changes": {"displayName": {"new": ["committed first"]}}}]}
EOF
"$FIXTURE" "$T/live.db" "$T/fixture.json"

# a writer busy for the whole test
"$FIXTURE" --churn 20 "$T/live.db" > "$T/churn.out" 2>&1 &
churn=$!
hs_on_exit "kill $churn"
sleep 1

integrity() { # integrity DB: prints "ok" for a sound database
    "$HS_PY" -c 'import sqlite3, sys; c = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True); print(c.execute("PRAGMA integrity_check").fetchone()[0])' "$1"
}
for i in 1 2 3; do
    out=$(ctl backup "$T/backup-$i.db")
    hs_assert_contains "$out" "written to $T/backup-$i.db" "backup $i reported"
    [ ! -e "$T/backup-$i.db.tmp" ] || hs_fail "backup $i left its temporary file"
    hs_assert_eq ok "$(integrity "$T/backup-$i.db")" "integrity_check of backup $i"
    conf "$T/backup-$i.db" > "$T/backup-$i.conf"
    "$HYBRIDSYNCCTL" -c "$T/backup-$i.conf" pending-exports --json --type user \
        > "$T/backup-$i.json" 2> /dev/null
    n=$("$HS_PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(1 for e in d if e["anchor"] == "before-backup"))' "$T/backup-$i.json")
    hs_assert_eq 1 "$n" "backup $i holds what was committed before it"
    sleep 1
done
kill -0 "$churn" 2> /dev/null || hs_fail "the writer stopped during the backups: $(cat "$T/churn.out")"
# the copies differ: the writer kept going between them
c1=$("$HS_PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$T/backup-1.json")
c3=$("$HS_PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$T/backup-3.json")
[ "$c3" -gt 1 ] || hs_fail "the writer wrote nothing ($c1, $c3 exports)"
fp() { "$HYBRIDSYNCCTL" -c "$T/backup-$1.conf" status --json |
    "$HS_PY" -c 'import json,sys; print(json.load(sys.stdin)["pending_exports"]["fingerprint"])'; }
[ "$(fp 1)" != "$(fp 3)" ] || hs_fail "backups 1 and 3 hold the same queue: nothing was written between them"
echo "ok: backups taken beside a writer ($c1 and $c3 exports, different queues)"
kill "$churn"
wait "$churn" 2> /dev/null || true

code() { # code EXPECTED ARGS...
    local expected=$1 got=0
    shift
    ctl "$@" > /dev/null 2>&1 || got=$?
    hs_assert_eq "$expected" "$got" "exit code of hybridsyncctl $*"
}
code 2 backup
code 2 backup a b
code 1 backup "$T/no-such-dir/backup.db"
echo "backup: all checks passed"
