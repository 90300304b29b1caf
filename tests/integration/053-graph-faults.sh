#!/bin/bash
# Graph export under every fault mode of the emulator: 429 on the whole $batch and on items
# inside it (with Retry-After), 503, 500/502/504, connections dropped before and after the
# request ran, latency, the enforced write quota, and the client-side write budget. Each time
# everything lands exactly once: the expected users and memberships, no duplicate, every
# export done.
# labels: slow
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"
. "$HS_SOURCE_DIR/tests/graph-emulator/hs-graph-lib.sh"
ge_need

d=$(hs_mktemp)
ge_start "$d/ge"
N=30
{
    echo '['
    for i in $(seq 1 $N); do
        printf '{"op":"add","type":"user","anchor":"RkE%s","mv":true,"attrs":{"displayName":"F %s","userPrincipalName":"f%s@example.test","mailNickname":"f%s","accountEnabled":"true"}},\n' \
            "$i" "$i" "$i" "$i"
    done
    printf '{"op":"add","type":"group","anchor":"RkFH","mv":true,"attrs":{"displayName":"Faulty","mailNickname":"faulty","mailEnabled":"false","securityEnabled":"true"},"members":[%s]}\n' \
        "$(for i in $(seq 1 $N); do printf '{"op":"add","anchor":"RkE%s"}' "$i"; [ "$i" -lt $N ] && printf ,; done)"
    echo ']'
} >"$d/exports.json"

# run_mode NAME FAULTS_JSON [EMULATOR_CONFIG_JSON [EXTRA_CONF_LINE]]
run_mode() {
    local name=$1 faults=$2 cfg=${3:-} extra=${4:-} w out state rc
    w=$d/$name
    mkdir -p "$w"
    ge_ctl POST /reset '{"state":true,"log":true,"quota":true,"faults":true}' >/dev/null
    ge_ctl POST /config '{"latency_ms":0,"write_quota":"3000/150"}' >/dev/null
    [ -n "$cfg" ] && ge_ctl POST /config "$cfg" >/dev/null
    ge_conf "$w/hs.conf" secret ${extra:+"$extra"}
    hsg "$w/hs.conf" seed-export "$d/exports.json" >/dev/null
    [ "$faults" != - ] && ge_ctl POST /faults "$faults" >/dev/null
    set +e
    out=$(hsg "$w/hs.conf" export)
    rc=$?
    set -e
    echo "$name: $out"
    hs_assert_eq "0 success" "$rc $(field status <<<"$out")" "$name: export completed"
    state=$(ge_ctl GET /state)
    hs_assert_eq "$N $N" "$(ge_json 'str(len(j["users"])) + " " + str(len(set(u["userPrincipalName"] for u in j["users"])))' <<<"$state")" \
        "$name: $N users, each once"
    hs_assert_eq "1 $N" "$(ge_json 'str(len(j["groups"])) + " " + str(len(j["groups"][0]["members"]))' <<<"$state")" \
        "$name: one group with $N members"
    hs_assert_eq "{\"done\": $((N + 1))}" \
        "$(hsg "$w/hs.conf" exports | ge_json 'dict(__import__("collections").Counter(e["state"] for e in j))')" \
        "$name: every export done"
    stats=$(ge_ctl GET /stats)
    echo "$name: faults applied $(ge_json 'j["faults_applied"]' <<<"$stats"), 429 $(ge_json 'j["throttled_429"]' <<<"$stats"), quota 429 $(ge_json 'j["quota_429"]' <<<"$stats"), dropped $(ge_json 'j["dropped"]' <<<"$stats"), writes $(ge_json 'j["writes"]' <<<"$stats")"
    if [ "$faults" != - ]; then
        [ "$(ge_json 'j["faults_applied"]' <<<"$stats")" -gt 0 ] || hs_fail "$name: the fault never fired"
    fi
    LAST_OUT=$out
    LAST_STATS=$stats
}

run_mode plain -
run_mode outer-429 '{"status":429,"retry_after":1,"scope":"outer","path":"^/v1.0/\\$batch$","count":2}'
[ "$(field throttled <<<"$LAST_OUT")" -ge 2 ] || hs_fail "outer-429: throttling not counted"
run_mode inner-429 '{"status":429,"retry_after":1,"scope":"batch","every":4,"count":6}'
[ "$(field throttled <<<"$LAST_OUT")" -ge 6 ] || hs_fail "inner-429: throttling not counted"
run_mode 503 '{"status":503,"retry_after":1,"method":"POST","count":3}'
run_mode 500 '{"status":500,"method":"POST","count":2}'
run_mode 502-504 '[{"status":502,"scope":"batch","count":2},{"status":504,"scope":"outer","method":"POST","count":1}]'
# the first $batch POST carries the lookups, the next ones the creates (20 and 11)
run_mode drop-before '{"drop":"before","path":"^/v1.0/\\$batch$","skip":2,"count":1}'
run_mode drop-after '{"drop":"after","path":"^/v1.0/\\$batch$","skip":2,"count":1}'
# inside a $batch: the items up to the 5th create ran, then the connection closed
run_mode drop-after-item '{"drop":"after","method":"POST","path":"^/v1.0/users$","scope":"batch","skip":4,"count":1}'
run_mode drop-after-bind '{"drop":"after","method":"PATCH","scope":"batch","count":1}'
run_mode latency - '{"latency_ms":150}'
run_mode quota - '{"write_quota":"10/2"}'
[ "$(ge_json 'j["quota_429"]' <<<"$LAST_STATS")" -gt 0 ] || hs_fail "quota: the emulator's quota never refused a write"
run_mode budget - '{"write_quota":"10/2"}' 'write_budget = 8/2s'
hs_assert_eq 0 "$(ge_json 'j["quota_429"]' <<<"$LAST_STATS")" "budget: client-side pacing kept under the quota"
echo "PASS"
