#!/bin/bash
# Custom rule files (hybridsync.rules(5)): a rule at precedence 50 wins over the defaults, a
# default is disabled by name and another replaced by name; a file with an error is rejected
# with file, rule and column, and a sync refused with it changes nothing.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"
. "$HS_SOURCE_DIR/tests/golden/sync-lib.sh"

T=$(hs_mktemp)
[ "${HS_KEEP:-0}" = 1 ] || hs_on_exit "rm -rf '$T'"
mkdir -p "$T/rules"
sync_setup "$T"
sync_small_cs "$T"

cat >"$T/rules/10-custom.json" <<'JSON'
{"rules": [
 {"name": "Custom - display names", "direction": "inbound", "connector": "ad",
  "sourceObjectType": "user", "targetObjectType": "person", "linkType": "Join",
  "precedence": 50,
  "scopingFilter": [[{"attribute": "department", "operator": "EQUAL", "value": "Training"}]],
  "attributeFlows": [
   {"target": "displayName", "expression": "[sn] & \", \" & [givenName]"},
   {"target": "title", "constant": "Trainer", "flowType": "Constant"}]},
 {"name": "Custom - filter contractors", "direction": "inbound", "connector": "ad",
  "sourceObjectType": "user", "targetObjectType": "person", "precedence": 60,
  "scopingFilter": [[{"attribute": "department", "operator": "STARTSWITH", "value": "market"}]],
  "attributeFlows": [{"target": "cloudFiltered", "constant": true}]},
 {"name": "Out to AAD - User Identity", "direction": "outbound", "connector": "graph",
  "sourceObjectType": "person", "targetObjectType": "user", "linkType": "Join",
  "precedence": 124,
  "attributeFlows": [{"target": "jobTitle", "source": "title"}]},
 {"name": "Custom - initial usage location", "direction": "outbound", "connector": "graph",
  "sourceObjectType": "person", "targetObjectType": "user", "linkType": "Join",
  "precedence": 50,
  "attributeFlows": [{"target": "usageLocation", "constant": "NL", "applyOnce": true}]},
 {"name": "In from AD - Group Common", "disabled": true}
]}
JSON
out=$(hs_sync "$T" --load-cs "$T/cs.jsonl" --full)
hs_assert_eq success "$(json_field "$out" status)" "full sync with custom rules"
ex=$(hs_sync "$T" --exports --no-sync)
hs_assert_contains "$ex" "displayName: Long, Sharon" "precedence 50 wins over the default displayName"
grep -q "jobTitle: Trainer" <<<"$ex" || hs_fail "constant flow of the custom rule"
hs_assert_eq 0 "$(grep -c '^    surname:' <<<"$ex")" "the replaced User Identity rule no longer flows surname"
hs_assert_eq 10 "$(grep -c '^add group' <<<"$ex")" "groups still exported"
hs_assert_eq 0 "$(grep -A3 '^add group' <<<"$ex" | grep -c 'displayName:')" \
    "Group Common disabled: groups get no displayName"
n_mkt=$(grep -c '"department": \["Marketing"\]' "$T/cs.jsonl" || true)
[ "$n_mkt" -gt 0 ] || hs_fail "the directory has no Marketing user to filter"
hs_assert_eq $((50 - n_mkt)) "$(grep -c '^add user' <<<"$ex")" "cloudFiltered users are left out"
hs_assert_eq $((50 - n_mkt)) "$(grep -c '^    usageLocation: NL' <<<"$ex")" "applyOnce: set when the user is created"
echo "ok: custom rules precede, replace and disable defaults"

# applyOnce: once the Graph user exists, a different value there is left alone
"$HS_PY" "$GOLDEN/exports2graph.py" <(hs_sync "$T" --exports --no-sync) >"$T/graph.jsonl"
sed -i 's/"usageLocation": \["NL"\]/"usageLocation": ["DE"]/' "$T/graph.jsonl"
grep -q '"DE"' "$T/graph.jsonl" || hs_fail "test setup: no usageLocation to change"
hs_sync "$T" --load-cs "$T/graph.jsonl" >/dev/null
hs_assert_eq "" "$(hs_sync "$T" --exports --no-sync | grep -E '^(add|update) user' || true)" \
    "applyOnce flows are not applied to existing Graph users"
echo "ok: applyOnce only at creation"

# preview shows the custom rule's contribution
pv=$(hs_sync "$T" --preview "sharon.long@example.test")
hs_assert_contains "$pv" '"name":"Custom - display names"' "preview lists the custom rule"
hs_assert_contains "$pv" '"displayName":"Long, Sharon"' "preview shows what it contributed"
echo "ok: preview shows rules in scope and their contributions"

# --- errors ------------------------------------------------------------------------------------
before=$(hs_sync "$T" --exports --no-sync)
cat >"$T/rules/20-bad.json" <<'JSON'
[{"name": "Bad expression", "direction": "inbound", "connector": "ad",
  "sourceObjectType": "user", "targetObjectType": "person", "precedence": 10,
  "attributeFlows": [{"target": "title", "expression": "Left([title], 3"}]},
 {"name": "Bad operator", "direction": "inbound", "connector": "ad",
  "sourceObjectType": "user", "targetObjectType": "person", "precedence": 11,
  "scopingFilter": [[{"attribute": "title", "operator": "LIKE", "value": "x"}]]}]
JSON
if err=$(hs_sync "$T" --full 2>&1); then hs_fail "a sync with a bad rule file ran"; fi
hs_assert_contains "$err" "20-bad.json: rule Bad expression: column " "file, rule and column"
hs_assert_contains "$err" "20-bad.json: rule Bad operator: unknown scoping operator \"LIKE\"" \
    "every problem is reported"
rm "$T/rules/20-bad.json"
hs_assert_eq "$before" "$(hs_sync "$T" --exports --no-sync)" "a rejected rule set changes nothing"
echo "ok: a rule file with errors is rejected with file, rule and column, nothing changes"
echo '{"name": "Nothing here", "disabled": true}' >"$T/rules/30-bad.json"
if err=$(hs_sync "$T" --full 2>&1); then hs_fail "disabling an unknown rule was accepted"; fi
hs_assert_contains "$err" "30-bad.json: rule Nothing here: " "unknown rule named"
echo "ok: disabling an unknown rule is an error"
