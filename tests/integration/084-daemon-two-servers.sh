#!/bin/bash
# Two servers on the same directory and tenant, as an active server and its standby are run.
# Both staging: after each cycle, with directory changes in between, they hold the same
# pending exports (same queue fingerprint, same counts) and send no write. Then A is promoted
# and exports; B, still staging, imports what A wrote through its Graph import and its queue
# drains to empty without a single write of its own.
. "$(dirname "$0")/../lib/common.sh"

. "$(dirname "$0")/../lib/daemon-sandbox.sh"

A=$T/a B=$T/b
write_conf "$A" server-a yes
write_conf "$B" server-b yes
start_daemon "$A"
start_daemon "$B"

status_json() { "$HYBRIDSYNCCTL" -c "$1/hybridsync.conf" status --json; }
fingerprint() { status_json "$1" | jget 'd["pending_exports"]["fingerprint"]'; }
pending_total() { status_json "$1" | jget 'd["pending_exports"]["total"]'; }
cycle_ok() { # cycle_ok DIR: one cycle that must complete
    local st
    st=$(sync_wait "$1")
    case "$st" in success|completed-*) ;; *) cat "$1/daemon.log"; hs_fail "$1: cycle status $st" ;; esac
}
same_queue() { # same_queue WHAT: both servers hold the same non-empty queue; sets QUEUE_FP
    local fa fb na nb
    fa=$(fingerprint "$A") fb=$(fingerprint "$B") na=$(pending_total "$A") nb=$(pending_total "$B")
    [ "$na" -gt 0 ] || hs_fail "$1: A holds no pending export"
    hs_assert_eq "$na" "$nb" "$1: pending exports of A and B"
    hs_assert_eq "$fa" "$fb" "$1: queue fingerprints of A and B"
    hs_assert_eq "$(key "$A" daemon.config_hash)" "$(key "$B" daemon.config_hash)" "$1: config hashes"
    QUEUE_FP=$fa
}

echo "== both staging: the same queue"
cycle_ok "$A"
cycle_ok "$B"
same_queue "initial cycles"
fp1=$QUEUE_FP

echo "== directory changes, a delta cycle on each: still the same queue"
user=$(user_dns | sed -n 3p)
printf '%s\nchangetype: modify\nreplace: displayName\ndisplayName: Renamed On Both\n' \
    "$(ldif_dn "$user")" | ldapmodify "${ADMIN[@]}" >/dev/null
ou=$(ldapsearch "${ADMIN[@]}" -LLL -b "$HS_SLAPD_BASE" '(objectClass=organizationalUnit)' 1.1 |
    sed -n 's/^dn: //p' | grep -i '^ou=' | grep -vi 'groups\|contacts\|^ou=corp' | head -1)
ldapadd "${ADMIN[@]}" >/dev/null <<LDIF
dn: cn=New Standby User,$ou
objectClass: inetOrgPerson
objectClass: adShadowUser
cn: New Standby User
sn: User
givenName: New
sAMAccountName: newstandby
userPrincipalName: newstandby@example.test
displayName: New Standby User
userAccountControl: 512
objectGUID:: $(head -c 16 /dev/urandom | base64)
LDIF
cycle_ok "$A"
cycle_ok "$B"
same_queue "after the changes"
fp2=$QUEUE_FP
[ "$fp1" != "$fp2" ] || hs_fail "the queue fingerprint did not change with the directory"
hs_assert_eq 0 "$(emu_eval 'len(writes)')" "write requests while both are staging"
hs_assert_eq 0 "$(emu_eval 'len([q for q in r if q["path"].startswith("/v1.0") and q["method"] != "GET"])')" \
    "requests other than GET (\$batch included) while both are staging"

echo "== A promoted: it exports"
write_conf "$A" server-a no
reload_wait "$A"
cycle_ok "$A"
hs_assert_eq 0 "$(pending_total "$A")" "A's pending exports after its export"
hs_assert_eq 1 "$(emu_eval 'len([u for u in s["users"] if u["displayName"] == "Renamed On Both"])')" \
    "the renamed user is in the tenant"
hs_assert_eq 1 "$(emu_eval 'len([u for u in s["users"] if u["userPrincipalName"] == "newstandby@example.test"])')" \
    "the new user is in the tenant"

echo "== B, still staging, drains through its Graph import"
writes=$(emu_eval 'len(writes)')
cycle_ok "$B"
hs_assert_eq 0 "$(pending_total "$B")" "B's pending exports after importing what A wrote"
hs_assert_eq "$writes" "$(emu_eval 'len(writes)')" "write requests from B"
hs_assert_eq true "$(status_json "$B" | jget 'str(d["staging"]).lower()')" "B is still staging"

for d in "$A" "$B"; do
    kill -TERM "$(cat "$d/pid")"
    wait "$(cat "$d/pid")" || hs_fail "hybridsyncd exited with $?"
done
echo PASS
