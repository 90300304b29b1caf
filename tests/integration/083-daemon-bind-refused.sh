#!/bin/bash
# A directory that refuses the bind is not retried on the outage back-off: a wrong or rotated
# password (invalidCredentials, 49) or a simple bind refused without TLS (confidentialityRequired,
# 13) stops the cycle stopped-connectivity as before, but the next attempt comes at the interval
# (1 h here) or on request, because every retry is one more failed logon counted against the
# service account (AD locks it out after a few). Outages keep the 30 s back-off: a server that is
# down (stopped-server-down) and a TLS handshake that fails (stopped-connectivity) are retried
# within the window in which the refused binds are not. Each cycle makes one bind, so the runs
# of a daemon count its bind attempts. A request ('hybridsyncctl sync') retries at once, and a
# fixed password file is read by the next attempt without a restart.
# labels: slow
. "$(dirname "$0")/../lib/common.sh"

. "$(dirname "$0")/../lib/daemon-sandbox.sh"

# Longer than the first back-off (RETRY_FIRST_SECONDS, 30 s) with room for a slow machine.
WINDOW=42

BADPW=$T/badpw TLSREQ=$T/tlsreq DOWN=$T/down TLSBAD=$T/tlsbad
ad_line() { # ad_line DIR SED-EXPR: edits the [ad] section of DIR/hybridsync.conf
    sed -i "/^\[ad\]/,/^\[graph\]/ $2" "$1/hybridsync.conf"
}
runs() { sql "$1" "SELECT count(*) FROM runs WHERE finished IS NOT NULL"; }
last_error() { sql "$1" "SELECT message FROM run_errors ORDER BY id DESC LIMIT 1"; }
wait_runs() { # wait_runs DIR N SECONDS: until DIR has N finished runs
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        [ "$(runs "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    cat "$1/daemon.log" >&2
    hs_fail "$(basename "$1"): fewer than $2 finished runs after $3 s"
}

# The wrong password.
write_conf "$BADPW" badpw yes
(umask 077 && printf 'not-the-password\n' >"$T/wrong-password")
ad_line "$BADPW" "s|^bind_password_file = .*|bind_password_file = $T/wrong-password|"
# A simple bind over plain ldap:// that slapd refuses without a security layer (olcSecurity).
tlsreq=1
if printf 'dn: cn=config\nchangetype: modify\nadd: olcSecurity\nolcSecurity: simple_bind=64\n' |
    ldapmodify -Q -Y EXTERNAL -H "$HS_SLAPD_LDAPI" >/dev/null 2>&1; then
    write_conf "$TLSREQ" tlsreq yes
    ad_line "$TLSREQ" "s|^uri = .*|uri = $HS_SLAPD_URI\nallow_insecure = yes|"
else
    tlsreq=0
    echo "skip: the confidentialityRequired case (cn=config cannot be changed: not root)"
fi
# Outages: nothing listens on the port; the server's certificate is not trusted.
write_conf "$DOWN" down yes
ad_line "$DOWN" "s|^uri = .*|uri = ldaps://127.0.0.1:$(hs_free_port)|"
write_conf "$TLSBAD" tlsbad yes
bash "$HS_FIXTURES/mkcert.sh" "$T/other-ca" >/dev/null 2>&1
ad_line "$TLSBAD" "s|^ca_file = .*|ca_file = $T/other-ca/ca.pem|"

echo "== the daemons, interval 1h: the first cycle of each stops"
all=("$BADPW" "$DOWN" "$TLSBAD")
[ "$tlsreq" = 0 ] || all+=("$TLSREQ")
for d in "${all[@]}"; do start_daemon "$d"; done
for d in "${all[@]}"; do wait_runs "$d" 1 20; done
t_first=$(date +%s)
status() { sql "$1" "SELECT status FROM runs ORDER BY id LIMIT 1"; }
hs_assert_eq stopped-connectivity "$(status "$BADPW")" "wrong password: run status"
hs_assert_contains "$(last_error "$BADPW")" "Invalid credentials (49)" "wrong password: the bind error"
if [ "$tlsreq" = 1 ]; then
    hs_assert_eq stopped-connectivity "$(status "$TLSREQ")" "bind without TLS: run status"
    hs_assert_contains "$(last_error "$TLSREQ")" "Confidentiality required (13)" "bind without TLS: the bind error"
fi
hs_assert_eq stopped-server-down "$(status "$DOWN")" "server down: run status"
# the stop is in the run history once (the connector records it; the daemon did so again)
first_errors() { sql "$1" "SELECT count(*) FROM run_errors WHERE run_id = (SELECT min(id) FROM runs)"; }
hs_assert_eq 1 "$(first_errors "$BADPW")" "wrong password: one error in the run history"
hs_assert_eq 1 "$(first_errors "$DOWN")" "server down: one error in the run history"
hs_assert_eq stopped-connectivity "$(status "$TLSBAD")" "untrusted certificate: run status"

echo "== the next cycle: at the interval after a refused bind, on the back-off after an outage"
next_in() { echo $(($(key "$1" daemon.next_cycle) - $(sql "$1" "SELECT max(finished) FROM runs"))); }
for d in "$BADPW" "$TLSREQ"; do
    [ -e "$d/pid" ] || continue
    n=$(next_in "$d")
    [ "$n" -ge 3590 ] || { cat "$d/daemon.log" >&2; hs_fail "$(basename "$d"): next cycle in $n s, not at the interval"; }
    echo "ok: $(basename "$d"): next cycle in $n s"
    hs_assert_contains "$(cat "$d/daemon.log")" "refused the bind: next attempt in 3600 s" \
        "$(basename "$d"): the journal says why it waits"
done
for d in "$DOWN" "$TLSBAD"; do
    n=$(next_in "$d")
    [ "$n" -le 31 ] || hs_fail "$(basename "$d"): next cycle in $n s, not on the back-off"
    echo "ok: $(basename "$d"): next cycle in $n s"
    hs_assert_contains "$(cat "$d/daemon.log")" "A peer was unreachable: next attempt in 30 s" \
        "$(basename "$d"): the back-off in the journal"
done

echo "== ${WINDOW} s: the outages are retried, the refused binds are not"
wait_runs "$DOWN" 2 $((WINDOW + 10))
wait_runs "$TLSBAD" 2 $((WINDOW + 10))
left=$((t_first + WINDOW - $(date +%s)))
[ "$left" -le 0 ] || sleep "$left"
hs_assert_eq 1 "$(runs "$BADPW")" "wrong password: bind attempts in ${WINDOW} s"
[ "$tlsreq" = 0 ] || hs_assert_eq 1 "$(runs "$TLSREQ")" "bind without TLS: bind attempts in ${WINDOW} s"

echo "== a request retries at once; a fixed password file needs no restart"
hs_assert_eq stopped-connectivity "$(sync_wait "$BADPW")" "wrong password: the requested cycle"
hs_assert_eq 2 "$(runs "$BADPW")" "wrong password: bind attempts after the request"
n=$(next_in "$BADPW")
[ "$n" -ge 3590 ] || hs_fail "wrong password: next cycle in $n s after the request, not at the interval"
printf '%s\n' "$HS_SLAPD_SYNC_PW" >"$T/wrong-password"
st=$(sync_wait "$BADPW")
case "$st" in success|completed-*) echo "ok: the cycle after the fix: $st" ;;
*) cat "$BADPW/daemon.log" >&2; hs_fail "the cycle after the password was fixed: $st" ;; esac
echo "PASS"
