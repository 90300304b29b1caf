#!/bin/bash
# Crash safety of the Graph export (SPEC §3 invariant 4): the exporting process is killed with
# SIGKILL at many points (during lookups, creates, member binds, updates, deletes), then run
# again until an export completes. The tenant ends exactly as expected: every user and group
# once (groups have no unique property in Graph: a duplicate would show), every membership,
# update and delete applied, every export done.
# labels: slow
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"
. "$HS_SOURCE_DIR/tests/graph-emulator/hs-graph-lib.sh"
ge_need

d=$(hs_mktemp)
ge_start "$d/ge" --latency-ms 100
# Paced to about 5 writes a second ($batch of at most 10), so an export takes many steps to kill.
ge_conf "$d/hs.conf" secret "write_budget = 10/1s"
N=40 G=6
ge_ctl POST /seed '{"users":[
  {"displayName":"Old 1","userPrincipalName":"old1@example.test","mailNickname":"old1","accountEnabled":true,"onPremisesImmutableId":"T0xEMQ"},
  {"displayName":"Old 2","userPrincipalName":"old2@example.test","mailNickname":"old2","accountEnabled":true,"onPremisesImmutableId":"T0xEMg"},
  {"displayName":"Gone","userPrincipalName":"gone@example.test","mailNickname":"gone","accountEnabled":true,"onPremisesImmutableId":"R09ORQ"}]}' >/dev/null
hs_assert_eq success "$(hsg "$d/hs.conf" import --full | field status)" "initial import"
state=$(ge_ctl GET /state)
uid() { ge_json "[u['id'] for u in j['users'] if u['userPrincipalName'].startswith('$1@')][0]" <<<"$state"; }
old1=$(uid old1); old2=$(uid old2); gone=$(uid gone)
{
    echo '['
    for i in $(seq 1 $N); do
        printf '{"op":"add","type":"user","anchor":"S0lMTA%s","mv":true,"attrs":{"displayName":"K %s","userPrincipalName":"k%s@example.test","mailNickname":"k%s","accountEnabled":"true"}},\n' \
            "$i" "$i" "$i" "$i"
    done
    for g in $(seq 1 $G); do
        printf '{"op":"add","type":"group","anchor":"R1JQ%s","mv":true,"attrs":{"displayName":"KG %s","mailNickname":"kg%s","mailEnabled":"false","securityEnabled":"true"},"members":[%s{"op":"add","anchor":"T0xEMQ","target_id":"%s"}]},\n' \
            "$g" "$g" "$g" "$(for i in $(seq "$g" $G $N); do printf '{"op":"add","anchor":"S0lMTA%s"},' "$i"; done)" "$old1"
    done
    printf '{"op":"update","type":"user","anchor":"T0xEMQ","target_id":"%s","attrs":{"jobTitle":"Survivor"}},\n' "$old1"
    printf '{"op":"update","type":"user","anchor":"T0xEMg","target_id":"%s","attrs":{"displayName":"Old Two"}},\n' "$old2"
    printf '{"op":"delete","type":"user","anchor":"R09ORQ","target_id":"%s"}\n' "$gone"
    echo ']'
} >"$d/exports.json"
hsg "$d/hs.conf" seed-export "$d/exports.json" >/dev/null

# Kill points by progress, not by time: after the emulator has seen this many writes of the
# round (0: during the token request or the lookups), so they land whatever the machine speed.
targets=(0 1 3 5 2 4 6 1 3 5 2 4 6 8 3 5 7 2 4 6)
writes_now() { ge_ctl GET /stats | "$HS_PY" -c 'import json,sys; print(json.load(sys.stdin)["writes"])'; }
kills=0 done_ok=0
for ((round = 0; round < 60; round++)); do
    base=$(writes_now)
    "$HS_GRAPH" -c "$d/hs.conf" export >"$d/out" 2>"$d/err" &
    pid=$!
    if ((round < ${#targets[@]})); then
        while kill -0 "$pid" 2>/dev/null && (($(writes_now) - base < targets[round])); do
            sleep 0.02
        done
        if kill -9 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
            kills=$((kills + 1))
            continue
        fi
    fi
    rc=0
    wait "$pid" || rc=$?
    if [ "$rc" = 0 ] && [ "$(field status <"$d/out")" = success ]; then
        done_ok=1
        break
    fi
    cat "$d/out" "$d/err" >&2
done
[ "$done_ok" = 1 ] || hs_fail "no export completed after $round rounds"
echo "ok: $kills exports killed with SIGKILL, then one completed: $(cat "$d/out")"
[ "$kills" -ge 12 ] || hs_fail "too few kills landed ($kills): the export ran faster than the test expects"

state=$(ge_ctl GET /state)
hs_assert_eq "$((N + 2)) $((N + 2))" \
    "$(ge_json 'str(len(j["users"])) + " " + str(len(set(u["userPrincipalName"].lower() for u in j["users"])))' <<<"$state")" \
    "users: $N created and the 2 kept, each once, the deleted one gone"
hs_assert_eq "$G" "$(ge_json 'len(j["groups"])' <<<"$state")" "groups: $G, no duplicate"
hs_assert_eq "$G" "$(ge_json 'len(set(g["mailNickname"] for g in j["groups"]))' <<<"$state")" "each group once"
for g in $(seq 1 $G); do
    want=$(( $(seq "$g" $G $N | wc -l) + 1 ))
    hs_assert_eq "$want" "$(ge_json "len([x for x in j['groups'] if x['mailNickname']=='kg$g'][0]['members'])" <<<"$state")" \
        "members of kg$g"
done
hs_assert_eq Survivor "$(ge_json "[u.get('jobTitle') for u in j['users'] if u['id']=='$old1'][0]" <<<"$state")" "update applied"
hs_assert_eq "Old Two" "$(ge_json "[u['displayName'] for u in j['users'] if u['id']=='$old2'][0]" <<<"$state")" "second update applied"
hs_assert_eq 0 "$(ge_json "len([u for u in j['users'] if u['id']=='$gone'])" <<<"$state")" "delete applied"
hs_assert_eq "{\"done\": $((N + G + 3))}" \
    "$(hsg "$d/hs.conf" exports | ge_json 'dict(__import__("collections").Counter(e["state"] for e in j))')" \
    "every export done"
seq1=$(ge_last_seq)
hs_assert_eq success "$(hsg "$d/hs.conf" export | field status)" "export after recovery"
hs_assert_eq 0 "$(ge_writes_since "$seq1")" "nothing left to send"
echo "PASS"
