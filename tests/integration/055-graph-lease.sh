#!/bin/bash
# The active server's lease in the tenant: a security group with mailNickname
# "hybridsync-lease" whose description holds holder, config hash and renewal time. Read when
# absent, created once, renewed in place (never a second object), left out of the Graph
# import, and never written by a staging server.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"
. "$HS_SOURCE_DIR/tests/graph-emulator/hs-graph-lib.sh"
ge_need

d=$(hs_mktemp)
ge_start "$d/ge"
ge_conf "$d/hs.conf" secret
H1=$(printf 'a%.0s' $(seq 64)) H2=$(printf 'b%.0s' $(seq 64))

hs_assert_eq false "$(hsg "$d/hs.conf" lease-read | field found)" "no lease in a new tenant"
hs_assert_eq 0 "$(hsg "$d/hs.conf" lease-write server-a "$H1" 1700000000 | field lease_write)" "lease created"
out=$(hsg "$d/hs.conf" lease-read)
echo "$out"
hs_assert_eq "server-a $H1 1700000000" \
    "$(ge_json '"%s %s %s" % (j["holder"], j["config_hash"], j["renewed"])' <<<"$out")" "lease read back"
id1=$(field object_id <<<"$out")
state=$(ge_ctl GET /state)
hs_assert_eq '[[false, true]]' \
    "$(ge_json '[[g["mailEnabled"], g["securityEnabled"]] for g in j["groups"] if g["mailNickname"]=="hybridsync-lease"]' <<<"$state")" \
    "the lease is one security group"

hs_assert_eq 0 "$(hsg "$d/hs.conf" lease-write server-b "$H2" 1700000060 | field lease_write)" "lease renewed"
out=$(hsg "$d/hs.conf" lease-read)
hs_assert_eq "server-b $H2 1700000060 $id1" \
    "$(ge_json '"%s %s %s %s" % (j["holder"], j["config_hash"], j["renewed"], j["object_id"])' <<<"$out")" \
    "renewed in place: same object, new holder, hash and time"
hs_assert_eq 1 "$(ge_ctl GET /state | ge_json 'len(j["groups"])')" "still one object in the tenant"

hs_assert_eq success "$(hsg "$d/hs.conf" import --full | field status)" "import with a lease present"
hs_assert_eq '[]' "$(hsg "$d/hs.conf" cs)" "the lease is not in the connector space"

# a staging server reads the lease but never writes it
mkdir -p "$d/staging"
GE_STAGING=yes ge_conf "$d/staging/hs.conf" secret
hs_assert_eq server-b "$(hsg "$d/staging/hs.conf" lease-read | field holder)" "staging server reads the lease"
seq0=$(ge_last_seq)
set +e
out=$(hsg "$d/staging/hs.conf" lease-write server-c "$H1" 1700000120)
rc=$?
set -e
hs_assert_eq "1 -1" "$rc $(field lease_write <<<"$out")" "staging: lease write refused with -EPERM"
hs_assert_eq 0 "$(ge_writes_since "$seq0")" "staging: no write reached Graph"
echo "PASS"
