#!/bin/bash
# One active server: two daemons on the same directory and tenant. A is active and holds the
# lease; B is staging and sees no drift while both configs hash alike, then drift (status key,
# log) once its threshold differs. B promoted by a reload while A's lease is fresh refuses to
# export (stopped-lease-conflict, lease.alert, metrics) and writes nothing; with
# force_promotion = yes it takes the lease and exports; A, finding B's fresh lease, stops
# exporting and alarms.
. "$(dirname "$0")/../lib/common.sh"

. "$(dirname "$0")/../lib/daemon-sandbox.sh"

A=$T/a B=$T/b
write_conf "$A" server-a no
write_conf "$B" server-b yes
start_daemon "$A"
st=$(sync_wait "$A")
case "$st" in success|completed-*) echo "ok: A exported: $st" ;; *) cat "$A/daemon.log"; hs_fail "A: $st" ;; esac
hs_assert_eq server-a "$(emu_eval 'json.loads(lease[0]["description"])["holder"]')" "lease holder"
hash_a=$(key "$A" daemon.config_hash)

echo "== B staging: same config hash, no drift"
non_get='len([q for q in r if q["path"].startswith("/v1.0") and q["method"] != "GET"])'
posts=$(emu_eval "$non_get")
start_daemon "$B"
st=$(sync_wait "$B")
case "$st" in success|completed-*) echo "ok: B cycle: $st" ;; *) cat "$B/daemon.log"; hs_fail "B: $st" ;; esac
hs_assert_eq "$posts" "$(emu_eval "$non_get")" \
    "Graph requests other than GET (\$batch included) during B's staging full import"
hs_assert_eq "$hash_a" "$(key "$B" daemon.config_hash)" "B's config hash equals A's"
hs_assert_eq "" "$(key "$B" lease.drift)" "no drift reported"
hs_assert_eq 0 "$(sql "$B" "SELECT count(*) FROM pending_exports WHERE state != 'done'")" "B's queue (A exported everything)"

echo "== B with another threshold: drift"
write_conf "$B" server-b yes "deletion_threshold = 42"
reload_wait "$B"
sync_wait "$B" >/dev/null
hs_assert_eq "$hash_a" "$(key "$B" lease.drift)" "lease.drift names the active server's hash"
hs_assert_contains "$(cat "$B/daemon.log")" "Configuration drift: the active server 'server-a' runs config hash $hash_a" "drift logged"
grep -q '^hybridsync_config_drift 1$' "$B/metrics.prom" || hs_fail "metrics do not show the drift"

echo "== a change in the directory; B promoted while A's lease is fresh"
user=$(user_dns | sed -n 4p)
printf '%s\nchangetype: modify\nreplace: displayName\ndisplayName: Changed For Failover\n' \
    "$(ldif_dn "$user")" | ldapmodify "${ADMIN[@]}" >/dev/null
write_conf "$B" server-b no
writes=$(emu_eval 'len(writes)')
reload_wait "$B"
st=$(sync_wait "$B")
hs_assert_eq stopped-lease-conflict "$st" "B's cycle status"
hs_assert_eq "$writes" "$(emu_eval 'len(writes)')" "write requests from B"
hs_assert_contains "$(key "$B" lease.alert)" "server 'server-a' holds a fresh lease" "status key lease.alert"
grep -q '^hybridsync_lease_conflict 1$' "$B/metrics.prom" || hs_fail "metrics do not show the lease conflict"
hs_assert_eq 0 "$(emu_eval 'len([u for u in s["users"] if u["displayName"] == "Changed For Failover"])')" "the change is not in the tenant"
hs_assert_eq 1 "$(sql "$B" "SELECT count(*) FROM pending_exports WHERE op = 'update' AND state != 'done'")" "B holds the update"

echo "== force_promotion = yes: B takes over"
write_conf "$B" server-b no "force_promotion = yes"
reload_wait "$B"
st=$(sync_wait "$B")
case "$st" in success|completed-*) echo "ok: B exported: $st" ;; *) cat "$B/daemon.log"; hs_fail "B: $st" ;; esac
hs_assert_eq 1 "$(emu_eval 'len([u for u in s["users"] if u["displayName"] == "Changed For Failover"])')" "the change reached the tenant"
hs_assert_eq server-b "$(emu_eval 'json.loads(lease[0]["description"])["holder"]')" "lease holder"
hs_assert_eq 1 "$(emu_eval 'len(lease)')" "one lease object"
hs_assert_eq "" "$(key "$B" lease.alert)" "B's lease alert cleared"

echo "== A finds B's fresh lease: it stops exporting and alarms"
st=$(sync_wait "$A")
hs_assert_eq stopped-lease-conflict "$st" "A's cycle status"
hs_assert_contains "$(key "$A" lease.alert)" "server 'server-b' holds a fresh lease" "A's lease.alert"
hs_assert_contains "$(cat "$A/daemon.log")" "Lease conflict" "A logs the conflict"

for d in "$A" "$B"; do
    kill -TERM "$(cat "$d/pid")"
    wait "$(cat "$d/pid")" || hs_fail "hybridsyncd exited with $?"
done
echo PASS
