#!/bin/bash
# Figures for the Samba AD DC fixture (not a test, asserts nothing): provisioning, copying and
# starting an instance, one ldapadd of N users, restarting and copying the loaded DC, a paged
# dump, and a full and an incremental DirSync. Runs in its own network namespace; needs root.
#
#   tests/bench/samba-load.sh [N_USERS]        (default 2000; TESTBED §3.7 has 10k at about 40 s)
set -euo pipefail

. "$(dirname "$0")/../lib/common.sh"

n=${1:-2000}
case "$n" in '' | *[!0-9]*) echo "usage: samba-load.sh [N_USERS]" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || hs_skip "the Samba AD DC needs root"
hs_need samba samba-tool ldapsearch ldapadd ldapmodify unshare ip

if [ "${HS_BENCH_NETNS:-}" != 1 ]; then
    HS_BENCH_NETNS=1 exec unshare -n -- "$BASH" -c 'ip link set lo up && exec "$0" "$@"' \
        "$BASH" "$0" "$@"
fi
unset HS_BENCH_NETNS

dc=$HS_FIXTURES/samba/samba-dc.sh
T=$(hs_mktemp)
hs_on_exit "rm -rf $(printf %q "$T")" # hs_mktemp's own registration is lost in $(...)
fig() { printf '%-44s %s\n' "$1" "$2"; }

t=$(hs_ms)
bash "$dc" provision-cache "$T/cache" >/dev/null
fig "provision (fresh)" "$(($(hs_ms) - t)) ms"
t=$(hs_ms)
bash "$dc" provision-cache "$T/cache" >/dev/null
fig "provision-cache when the cache is there" "$(($(hs_ms) - t)) ms"

t=$(hs_ms)
bash "$dc" instance "$T/cache" "$T/a"
t1=$(hs_ms)
hs_on_exit "bash $(printf %q "$dc") stop $(printf %q "$T/a")"
bash "$dc" start "$T/a" >/dev/null
t2=$(hs_ms)
fig "instance copy / start until LDAP answers" "$((t1 - t)) ms / $((t2 - t1)) ms"
eval "$(bash "$dc" env "$T/a")"
A=(-x -H "$HS_SAMBA_URI" -D "$HS_SAMBA_BIND_DN" -w "$HS_SAMBA_PW")
B=$HS_SAMBA_BASE

{
    printf 'dn: OU=Bench,%s\nobjectClass: organizationalUnit\n\n' "$B"
    for ((i = 0; i < n; i++)); do
        printf 'dn: CN=bench%06d,OU=Bench,%s\nobjectClass: user\nsAMAccountName: bench%06d\n' "$i" "$B" "$i"
        printf 'userPrincipalName: bench%06d@ad.test\ngivenName: Bench\nsn: User%d\n' "$i" "$i"
        printf 'displayName: Bench User %d\nmail: bench%06d@ad.test\nuserAccountControl: 514\n\n' "$i" "$i"
    done
} >"$T/users.ldif"
t=$(hs_ms)
ldapadd "${A[@]}" -f "$T/users.ldif" >/dev/null
ms=$(($(hs_ms) - t))
fig "ldapadd of $n users" "$ms ms ($((n * 1000 / (ms > 0 ? ms : 1))) users/s)"

t=$(hs_ms)
ldapsearch "${A[@]}" -LLL -b "OU=Bench,$B" -E pr=1000/noprompt '(objectClass=user)' '*' objectGUID \
    >"$T/dump.ldif"
fig "paged dump (pr=1000) of $n users" "$(($(hs_ms) - t)) ms ($(grep -c '^dn:' "$T/dump.ldif") entries)"

t=$(hs_ms)
ldapsearch "${A[@]}" -b "$B" -E '!dirSync=0/0' '(objectClass=user)' sAMAccountName mail >"$T/ds1.out"
fig "full DirSync (users)" "$(($(hs_ms) - t)) ms ($(grep -c '^dn:' "$T/ds1.out") entries)"
cookie=$(sed -n 's/^# cookie:: //p' "$T/ds1.out")
for ((i = 0; i < 10; i++)); do
    printf 'dn: CN=bench%06d,OU=Bench,%s\nchangetype: modify\nreplace: mail\nmail: changed%d@ad.test\n\n' \
        "$i" "$B" "$i"
done | ldapmodify "${A[@]}" >/dev/null
t=$(hs_ms)
ldapsearch "${A[@]}" -b "$B" -E "!dirSync=0/0/$cookie" '(objectClass=user)' sAMAccountName mail >"$T/ds2.out"
fig "incremental DirSync after 10 changes" "$(($(hs_ms) - t)) ms ($(grep -c '^dn:' "$T/ds2.out") entries)"

t=$(hs_ms)
bash "$dc" stop "$T/a"
t1=$(hs_ms)
bash "$dc" start "$T/a" >/dev/null
fig "stop / restart with $n users" "$((t1 - t)) ms / $(($(hs_ms) - t1)) ms"
bash "$dc" stop "$T/a"

# The loaded tree as a cache of its own: the way to share a big directory between tests.
printf 'recipe=bench\norigin=%s\n' "$T/a" >"$T/a/.provisioned"
t=$(hs_ms)
bash "$dc" instance "$T/a" "$T/b"
t1=$(hs_ms)
hs_on_exit "bash $(printf %q "$dc") stop $(printf %q "$T/b")"
bash "$dc" start "$T/b" >/dev/null
fig "copy / start of the loaded DC ($(du -sh "$T/a" | cut -f1))" "$((t1 - t)) ms / $(($(hs_ms) - t1)) ms"
bash "$dc" stop "$T/b"
