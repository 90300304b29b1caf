#!/bin/bash
# Staging then promotion, end to end with the real daemon, a seeded slapd and the Graph
# emulator. While staging = yes, several cycles with directory changes in between send no
# write request to Graph (the emulator's request log), yet the pending exports follow the
# directory (also after a delta cursor the directory refuses: that import runs as a full one
# and the journal says why). Then staging = no and a reload: the daemon logs and audits the promotion with the
# queue fingerprint, runs a cycle and exports; the tenant ends with exactly the objects the
# staging server had queued, and a further cycle writes nothing more.
. "$(dirname "$0")/../lib/common.sh"

. "$(dirname "$0")/../lib/daemon-sandbox.sh"

A=$T/a
write_conf "$A" staging-a yes
start_daemon "$A"

echo "== staging: three cycles with directory changes in between"
st=$(sync_wait "$A")
case "$st" in success|completed-*) echo "ok: first cycles end $st" ;; *) cat "$A/daemon.log"; hs_fail "cycle status $st" ;; esac
hs_assert_eq initial "$(sql "$A" "SELECT type FROM runs ORDER BY id LIMIT 1")" "the first cycle is an initial one"
adds=$(sql "$A" "SELECT count(*) FROM pending_exports WHERE op = 'add' AND object_type = 'user'")
[ "$adds" -gt 0 ] || hs_fail "no pending user adds after the initial cycle"
echo "ok: $adds user adds pending"

first=$(user_dns | head -1)
printf '%s\nchangetype: modify\nreplace: displayName\ndisplayName: Renamed In Staging\n' \
    "$(ldif_dn "$first")" | ldapmodify "${ADMIN[@]}" >/dev/null
ou=$(ldapsearch "${ADMIN[@]}" -LLL -b "$HS_SLAPD_BASE" '(objectClass=organizationalUnit)' 1.1 |
    sed -n 's/^dn: //p' | grep -i '^ou=' | grep -vi 'groups\|contacts\|^ou=corp' | head -1)
ldapadd "${ADMIN[@]}" >/dev/null <<EOF
dn: cn=New Hire,$ou
objectClass: inetOrgPerson
objectClass: adShadowUser
cn: New Hire
sn: Hire
givenName: New
displayName: New Hire
sAMAccountName: newhire
userPrincipalName: newhire@example.test
userAccountControl: 512
objectGUID:: $(head -c 16 /dev/urandom | base64)
EOF
st=$(sync_wait "$A")
echo "ok: cycle after a modify and an add: $st"
hs_assert_eq delta "$(sql "$A" "SELECT type FROM runs ORDER BY id DESC LIMIT 1")" "later cycles are delta cycles"
hs_assert_eq delta-sync "$(sql "$A" "SELECT step FROM run_steps WHERE run_id = (SELECT max(id) FROM runs)
    AND step LIKE '%sync'")" "the sync of a delta cycle over a still empty tenant"
hs_assert_eq $((adds + 1)) "$(sql "$A" "SELECT count(*) FROM pending_exports WHERE op = 'add' AND object_type = 'user'")" \
    "the new user joins the pending adds"

second=$(user_dns | sed -n 3p)
ldapdelete "${ADMIN[@]}" "$second"
st=$(sync_wait "$A")
echo "ok: cycle after a delete: $st"
hs_assert_eq "$adds" "$(sql "$A" "SELECT count(*) FROM pending_exports WHERE op = 'add' AND object_type = 'user'")" \
    "the deleted user left the pending adds"
# A delta cursor the directory refuses (slapd: a consumer state newer than its own, as after a
# restore from backup): that cycle's AD import runs as a full import and the journal says why.
sql "$A" "UPDATE cursors SET value = CAST('rid=000,csn=29990101000000.000000Z#000000#000#000000' AS BLOB) WHERE kind = 'syncrepl'"
st=$(sync_wait "$A")
case "$st" in success|completed-*) echo "ok: cycle with a refused cookie ends $st" ;; *) cat "$A/daemon.log"; hs_fail "cycle status $st" ;; esac
hs_assert_eq "full-import" "$(sql "$A" "SELECT step FROM run_steps WHERE run_id = (SELECT max(id) FROM runs)
    AND connector = 'ad' AND step LIKE '%import'")" "the AD import of that cycle is a full one"
grep -q "delta import ad: runs as a full import: the server refused the syncrepl cookie" "$A/daemon.log" ||
    { cat "$A/daemon.log"; hs_fail "the journal does not say why the delta import ran as a full one"; }
echo "ok: the journal says why"
hs_assert_eq "$adds" "$(sql "$A" "SELECT count(*) FROM pending_exports WHERE op = 'add' AND object_type = 'user'")" \
    "the full import changed no pending export"
hs_assert_eq 0 "$(emu_eval 'len(writes)')" "write requests Graph received while staging"
hs_assert_eq 0 "$(emu_eval 'len([q for q in r if q["path"].startswith("/v1.0") and q["method"] != "GET"])')" \
    "requests other than GET (\$batch included) Graph received while staging"
hs_assert_eq 0 "$(emu_eval 'len(s["users"]) + len(s["groups"])')" "objects in the tenant while staging (no lease either)"
hs_assert_eq 0 "$(sql "$A" "SELECT count(*) FROM run_steps WHERE step = 'export'")" "export steps while staging"
grep -q '^hybridsync_staging 1$' "$A/metrics.prom" || hs_fail "metrics do not say staging"

echo "== promotion: staging = no and SIGHUP"
fp=$("$HYBRIDSYNCCTL" -c "$A/hybridsync.conf" status --json | jget 'd["pending_exports"]["fingerprint"]')
[ ${#fp} = 64 ] || hs_fail "hybridsyncctl status --json gives no queue fingerprint"
want_users=$(sql "$A" "SELECT anchor FROM pending_exports WHERE op = 'add' AND object_type = 'user' ORDER BY anchor" | tr '\n' ' ')
want_groups=$(sql "$A" "SELECT anchor FROM pending_exports WHERE op = 'add' AND object_type = 'group' ORDER BY anchor" | tr '\n' ' ')
runs_before=$(sql "$A" "SELECT max(id) FROM runs")
write_conf "$A" staging-a no
kill -HUP "$(cat "$A/pid")"
for ((i = 0; i < 600; i++)); do
    [ "$(sql "$A" "SELECT count(*) FROM run_steps s JOIN runs r ON r.id = s.run_id WHERE r.id > $runs_before AND s.step = 'export' AND r.finished IS NOT NULL")" -gt 0 ] && break
    sleep 0.1
done
run=$(sql "$A" "SELECT max(run_id) FROM run_steps WHERE step = 'export'")
[ -n "$run" ] || { cat "$A/daemon.log"; hs_fail "no export after the promotion"; }
hs_assert_eq success "$(sql "$A" "SELECT status FROM run_steps WHERE run_id = $run AND step = 'export'")" \
    "export step of the promotion cycle"
hs_assert_contains "$(cat "$A/daemon.log")" "Promotion: staging yes -> no (queue fingerprint $fp" \
    "promotion logged with the queue fingerprint"
hs_assert_eq "$fp" "$(sql "$A" "SELECT fingerprint FROM audit_events WHERE kind = 'staging-changed'")" \
    "promotion audited with the queue fingerprint"
hs_assert_eq 0 "$(key "$A" daemon.staging)" "status key daemon.staging"
hs_assert_eq "staging-a" "$(emu_eval 'json.loads(lease[0]["description"])["holder"]')" "the lease names this server"

echo "== the tenant holds exactly what was queued"
got=$(emu_eval '" ".join(sorted(u.get("onPremisesImmutableId") or "-" for u in s["users"])) + " "')
[ "$got" = "$want_users" ] || hs_fail "users in the tenant (by onPremisesImmutableId): expected '$want_users', got '$got'"
echo "ok: the tenant holds exactly the $(wc -w <<<"$want_users") queued users (by onPremisesImmutableId)"
got=$(emu_eval '" ".join(sorted(g.get(ext) or "-" for g in groups)) + (" " if groups else "")')
[ "$got" = "$want_groups" ] || hs_fail "groups in the tenant (by anchor extension): expected '$want_groups', got '$got'"
echo "ok: the tenant holds exactly the $(wc -w <<<"$want_groups") queued groups (by anchor extension)"
hs_assert_contains "$(emu_eval '" ".join(u["displayName"] for u in s["users"])')" "New Hire" "the user added while staging"
writes=$(emu_eval 'len(writes)')
st=$(sync_wait "$A")
echo "ok: the next cycle ends $st"
hs_assert_eq 0 "$(sql "$A" "SELECT count(*) FROM pending_exports WHERE state != 'done'")" "pending exports after the confirming cycle"
lease_writes=$(emu_eval 'len(writes)')
[ $((lease_writes - writes)) -le 1 ] || hs_fail "a cycle without changes wrote $((lease_writes - writes)) requests (only the lease renewal is expected)"
echo "ok: a cycle without changes writes at most the lease renewal ($((lease_writes - writes)))"

kill -TERM "$(cat "$A/pid")"
wait "$(cat "$A/pid")" || hs_fail "hybridsyncd exited with $?"
echo PASS
