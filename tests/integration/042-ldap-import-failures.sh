#!/bin/bash
# 042-ldap-import-failures: the AD connector's failure behaviour against a real slapd.
#  * a full import cancelled at a page boundary is stopped-cancelled and obsoletes nothing;
#  * the server stops in the middle of a full import (paging 7 entries at a time): the step is
#    stopped-server-down with the LDAP error in the result and in the run history, and nothing
#    is obsoleted although entries were deleted; started again, the next import completes and
#    only then are the deleted entries pending deletes;
#  * a server that is down from the start: stopped-server-down;
#  * an include OU that does not exist: stopped-error naming noSuchObject; an include that exists
#    but holds nothing: stopped-error, nothing obsoleted;
#  * TLS: ldaps:// and StartTLS with a certificate from an unknown CA are refused
#    (stopped-connectivity); with ca_file both work; without ca_file the CAs that ldap.conf or
#    the environment names are trusted, else only the system's; with ca_file a CA directory
#    from the environment is not added to it; ldap.conf's TLS_CIPHER_SUITE, TLS_CRLFILE,
#    TLS_PROTOCOL_MIN and TLS_PROTOCOL_MAX apply; a wrong password is stopped-connectivity;
#  * an oversized value (over 1 MiB) and a malformed objectGUID are per-object errors
#    (completed-warnings, recorded in the run history), everything else is imported.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/ldap-import.sh"

hs_need /usr/sbin/slapd /usr/sbin/slapadd ldapsearch ldapmodify ldapdelete sqlite3 openssl "$HS_PY"
TOOL=${HS_TOOLS_DIR:-$HS_BUILD_DIR/tests/tools}/hs-ldap-import
[ -x "$TOOL" ] || hs_fail "test driver $TOOL is not built"
T=$(hs_mktemp)
[ "${HS_KEEP:-0}" = 1 ] || hs_on_exit "rm -rf '$T'"
slapd_up 42
B=$HS_SLAPD_BASE
ROOT=ou=Corp,$B
unset LDAPTLS_CACERT LDAPTLS_CACERTDIR LDAPTLS_REQCERT LDAPRC LDAPCONF
export LDAPNOINIT=1
n_obj=$("$HS_PY" -c 'import json,sys; c=json.load(open(sys.argv[1]))["counts"]; print(c["users"]+c["contacts"]+c["groups"])' "$T/dir.json")

printf 'wrong' >"$T/badpw"
chmod 600 "$T/badpw"
conf() { # conf FILE key=value...: a config for this slapd; the keys are [ad] lines
    local f=$1
    shift
    ad_conf "$f" "bind_dn = $HS_SLAPD_SYNC_DN" "base_dn = $B" "change_tracking = none" "$@"
}
conf "$T/hs.conf" "uri = $HS_SLAPD_URI" "bind_password_file = $T/pw" "include = $ROOT" \
    "allow_insecure = yes" "page_size = 7"
field() { "$HS_PY" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
counters() { "$HS_PY" -c 'import json,sys; j=json.loads(sys.argv[1]); print("%s adds=%d updates=%d deletes=%d errors=%d" % (j["status"], j["adds"], j["updates"], j["deletes"], j["errors"]))' "$1"; }
pending_deletes() { "$TOOL" -c "$T/hs.conf" --dump | grep -c '"pending":"delete"' || true; }
run_errors() { sqlite3 "$T/hs.db" "SELECT code || ': ' || message FROM run_errors WHERE run_id = $1 ORDER BY id"; }
expect_stop() { # expect_stop STATUS WHAT CONF [ARGS]: the import stops with STATUS; prints the error
    local status=$1 what=$2 c=$3 out rc=0
    shift 3
    out=$("$TOOL" -c "$c" "$@") || rc=$?
    hs_assert_eq 1 "$rc" "$what: exit status of a stopped import"
    hs_assert_eq "$status" "$(field "$out" status)" "$what: status"
    echo "  error: $(field "$out" error)"
    LAST_OUT=$out
}

# --- a complete full import, then entries deleted in the directory ----------------------------
out=$("$TOOL" -c "$T/hs.conf" --full) || hs_fail "full import: $out"
hs_assert_eq "success adds=$n_obj updates=0 deletes=0 errors=0" "$(counters "$out")" "initial full import"
"$TOOL" -c "$T/hs.conf" --clear-pending
# Objects in no group and managing nobody: their deletion changes nothing else.
gone=$("$HS_PY" -c '
import json, sys
m = json.load(open(sys.argv[1]))
used = set(d for o in m["objects"] for d in o.get("members", [])) | set(o.get("manager") for o in m["objects"])
print("\n".join([o["dn"] for o in m["objects"] if o["kind"] in ("contact", "user") and o["dn"] not in used][:3]))' "$T/dir.json")
printf '%s\n' "$gone" | ldapdelete "${ADMIN[@]}"

# --- a cancelled full import obsoletes nothing -------------------------------------------------
expect_stop stopped-cancelled "cancelled after two pages" "$T/hs.conf" --full --cancel-after 14
hs_assert_eq 0 "$(pending_deletes)" "pending deletes after the cancelled full import"

# --- the server stops in the middle of the next full import -------------------------------------
expect_stop stopped-server-down "server stopped while paging" "$T/hs.conf" --full \
    --on-progress-at 14 --on-progress-exec "bash '$SLAPD_SH' stop '$D'"
hs_assert_contains "$(field "$LAST_OUT" error)" "Can't contact LDAP server" "the LDAP error is in the result"
hs_assert_eq 0 "$(pending_deletes)" "pending deletes after the interrupted full import"
hs_assert_contains "$(run_errors "$(field "$LAST_OUT" run_id)")" "stopped-server-down: " \
    "the stop is in the run history"
expect_stop stopped-server-down "server down from the start" "$T/hs.conf" --full
bash "$SLAPD_SH" start "$D" 2>/dev/null
out=$("$TOOL" -c "$T/hs.conf" --full) || hs_fail "full import after the restart: $out"
hs_assert_eq "success adds=0 updates=0 deletes=3 errors=0" "$(counters "$out")" \
    "the next full import completes and obsoletes the 3 deleted entries"
hs_assert_eq 3 "$(pending_deletes)" "pending deletes after the completed import"
"$TOOL" -c "$T/hs.conf" --clear-pending

# --- includes that do not exist or hold nothing ------------------------------------------------
conf "$T/noou.conf" "uri = $HS_SLAPD_URI" "bind_password_file = $T/pw" "include = ou=Nowhere,$B" \
    "allow_insecure = yes"
expect_stop stopped-error "include that does not exist" "$T/noou.conf" --full
hs_assert_contains "$(field "$LAST_OUT" error)" "No such object (32)" "the error names noSuchObject"
hs_assert_contains "$(field "$LAST_OUT" error)" "ou=Nowhere,$B" "the error names the include"
printf 'dn: ou=Empty,%s\nchangetype: add\nobjectClass: organizationalUnit\nou: Empty\n' "$B" |
    ldapmodify "${ADMIN[@]}" >/dev/null
conf "$T/empty.conf" "uri = $HS_SLAPD_URI" "bind_password_file = $T/pw" "include = ou=Empty,$B" \
    "allow_insecure = yes"
expect_stop stopped-error "include without objects" "$T/empty.conf" --full
hs_assert_eq 0 "$(pending_deletes)" "pending deletes after a full import that returned nothing"

# --- TLS and bind ------------------------------------------------------------------------------
bash "$HS_FIXTURES/mkcert.sh" "$T/other-ca" >/dev/null 2>&1
conf "$T/tls-bad.conf" "uri = $HS_SLAPD_LDAPS_URI" "bind_password_file = $T/pw" "include = $ROOT" \
    "ca_file = $T/other-ca/ca.pem"
expect_stop stopped-connectivity "ldaps:// with a certificate from an unknown CA" "$T/tls-bad.conf" --full
conf "$T/stls-bad.conf" "uri = $HS_SLAPD_URI" "bind_password_file = $T/pw" "include = $ROOT" \
    "starttls = yes" "ca_file = $T/other-ca/ca.pem"
expect_stop stopped-connectivity "StartTLS with a certificate from an unknown CA" "$T/stls-bad.conf" --full
conf "$T/tls.conf" "uri = $HS_SLAPD_LDAPS_URI" "bind_password_file = $T/pw" "include = $ROOT" \
    "ca_file = $HS_SLAPD_CA"
out=$("$TOOL" -c "$T/tls.conf" --full) || hs_fail "ldaps:// with ca_file: $out"
hs_assert_eq "success adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" "full import over ldaps:// with ca_file"
conf "$T/stls.conf" "uri = $HS_SLAPD_URI" "bind_password_file = $T/pw" "include = $ROOT" \
    "starttls = yes" "ca_file = $HS_SLAPD_CA"
out=$("$TOOL" -c "$T/stls.conf" --full) || hs_fail "StartTLS with ca_file: $out"
hs_assert_eq "success adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" "full import after StartTLS with ca_file"
# Without ca_file the trust is what ldap.conf, ~/.ldaprc or LDAPTLS_* names (libldap gives a
# new handle none of it); with ca_file it is that file alone. Here the slapd CA sits in a CA
# directory named by the environment.
mkdir "$T/cadir"
cp "$HS_SLAPD_CA" "$T/cadir/slapd-ca.pem"
conf "$T/tls-sys.conf" "uri = $HS_SLAPD_LDAPS_URI" "bind_password_file = $T/pw" "include = $ROOT"
expect_stop stopped-connectivity "ldaps:// without ca_file, no ldap.conf: the system's CAs only" \
    "$T/tls-sys.conf" --full
hs_assert_contains "$(field "$LAST_OUT" error)" "/etc/ssl/certs/ca-certificates.crt" \
    "the error names the CAs trusted"
unset LDAPNOINIT
export LDAPTLS_CACERTDIR=$T/cadir
out=$("$TOOL" -c "$T/tls-sys.conf" --full) || hs_fail "ldaps:// trusting LDAPTLS_CACERTDIR: $out"
hs_assert_eq "success adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" \
    "without ca_file, the CA directory of the environment is trusted"
expect_stop stopped-connectivity "ldaps:// with ca_file of another CA and the slapd CA in LDAPTLS_CACERTDIR" \
    "$T/tls-bad.conf" --full
expect_stop stopped-connectivity "StartTLS with ca_file of another CA and the slapd CA in LDAPTLS_CACERTDIR" \
    "$T/stls-bad.conf" --full
hs_assert_contains "$(field "$LAST_OUT" error)" "ca_file '$T/other-ca/ca.pem'" \
    "the error names ca_file"
unset LDAPTLS_CACERTDIR
# ldap.conf's other TLS settings apply (libldap clears them on a new handle too): a cipher
# suite that allows nothing cannot make a TLS context, even with a good ca_file
LDAPTLS_CIPHER_SUITE=NONE expect_stop stopped-connectivity \
    "ldaps:// with ca_file and TLS_CIPHER_SUITE NONE from the environment" "$T/tls.conf" --full
hs_assert_contains "$(field "$LAST_OUT" error)" "cannot set up TLS" "the error says TLS could not be set up"
# a CA file named by the environment that is not there: a clear error, not a failed handshake
export LDAPTLS_CACERT=$T/no-such-ca.pem
expect_stop stopped-error "ldaps:// without ca_file, TLS_CACERT names a missing file" \
    "$T/tls-sys.conf" --full
hs_assert_contains "$(field "$LAST_OUT" error)" "cannot read the CA file '$T/no-such-ca.pem'" \
    "the error names the file"
unset LDAPTLS_CACERT
# TLS_CRLFILE: a CRL of the slapd CA that revokes the server's certificate refuses it; one
# that revokes nothing does not
mkdir "$T/crl"
: >"$T/crl/index.txt"
echo 1000 >"$T/crl/crlnumber"
printf '[ca]\ndefault_ca = d\n[d]\ndatabase = %s\ncrlnumber = %s\ndefault_md = sha256\ndefault_crl_days = 30\n' \
    "$T/crl/index.txt" "$T/crl/crlnumber" >"$T/crl/ca.cnf"
ca_args=(-batch -config "$T/crl/ca.cnf" -cert "$HS_SLAPD_CA" -keyfile "$D/tls/ca-key.pem")
openssl ca "${ca_args[@]}" -gencrl -out "$T/crl/none.pem" 2>/dev/null
openssl ca "${ca_args[@]}" -revoke "$D/tls/cert.pem" 2>/dev/null
openssl ca "${ca_args[@]}" -gencrl -out "$T/crl/revoked.pem" 2>/dev/null
out=$(LDAPTLS_CRLFILE=$T/crl/none.pem "$TOOL" -c "$T/tls.conf" --full) ||
    hs_fail "ldaps:// with a CRL that revokes nothing: $out"
hs_assert_eq "success adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" \
    "TLS_CRLFILE revoking nothing: the certificate is accepted"
LDAPTLS_CRLFILE=$T/crl/revoked.pem expect_stop stopped-connectivity \
    "ldaps:// with TLS_CRLFILE revoking the server's certificate" "$T/tls.conf" --full
hs_assert_contains "$(field "$LAST_OUT" error)" "not revoked by TLS_CRLFILE '$T/crl/revoked.pem'" \
    "the error names the CRL"
LDAPTLS_CRLFILE=$T/crl/revoked.pem expect_stop stopped-connectivity \
    "StartTLS with TLS_CRLFILE revoking the server's certificate" "$T/stls.conf" --full
# TLS_PROTOCOL_MIN and TLS_PROTOCOL_MAX (libldap on GnuTLS ignores them; the connector passes
# them on in the priority string): TLS 1.3 at least works with this slapd, TLS 1.3 at least
# and 1.2 at most leaves no version
out=$(LDAPTLS_PROTOCOL_MIN=3.4 "$TOOL" -c "$T/tls.conf" --full) ||
    hs_fail "ldaps:// with TLS_PROTOCOL_MIN 3.4: $out"
hs_assert_eq "success adds=0 updates=0 deletes=0 errors=0" "$(counters "$out")" \
    "TLS_PROTOCOL_MIN 3.4 (TLS 1.3) against a server that speaks it"
LDAPTLS_PROTOCOL_MIN=3.4 LDAPTLS_PROTOCOL_MAX=3.3 expect_stop stopped-connectivity \
    "ldaps:// with TLS_PROTOCOL_MIN 3.4 and TLS_PROTOCOL_MAX 3.3" "$T/tls.conf" --full
hs_assert_contains "$(field "$LAST_OUT" error)" "priorities" \
    "the error gives GnuTLS's reason (no protocol left)"
LDAPTLS_CIPHER_SUITE=NORMAL:-VERS-TLS1.3 LDAPTLS_PROTOCOL_MIN=3.4 expect_stop \
    stopped-connectivity "ldaps:// with TLS_CIPHER_SUITE without TLS 1.3 and TLS_PROTOCOL_MIN 3.4" \
    "$T/tls.conf" --full
export LDAPNOINIT=1
conf "$T/badpw.conf" "uri = $HS_SLAPD_LDAPS_URI" "bind_password_file = $T/badpw" "include = $ROOT" \
    "ca_file = $HS_SLAPD_CA"
expect_stop stopped-connectivity "wrong bind password" "$T/badpw.conf" --full
hs_assert_contains "$(field "$LAST_OUT" error)" "Invalid credentials (49)" "the bind error"

# --- per-object errors ------------------------------------------------------------------------
mapfile -t U < <("$HS_PY" -c 'import json,sys; print("\n".join([o["dn"] for o in json.load(open(sys.argv[1]))["objects"] if o["kind"]=="user" and o["dn"].isascii()][:2]))' "$T/dir.json")
head -c 1200000 /dev/zero | tr '\0' 'x' >"$T/big.txt"
ldapmodify "${ADMIN[@]}" >/dev/null <<EOF
dn: ${U[0]}
changetype: modify
replace: description
description:< file://$T/big.txt

dn: ${U[1]}
changetype: modify
replace: objectGUID
objectGUID: abcde
EOF
out=$("$TOOL" -c "$T/hs.conf" --full) || hs_fail "full import with bad values: $out"
hs_assert_eq "completed-warnings adds=0 updates=0 deletes=0 errors=2" "$(counters "$out")" \
    "two per-object errors, nothing obsoleted"
errs=$(run_errors "$(field "$out" run_id)")
hs_assert_contains "$errs" "value-too-large: attribute description: a value of 1200000 bytes exceeds the limit" "oversized value"
hs_assert_contains "$errs" "invalid-value: objectGUID is 5 bytes, expected 16" "malformed objectGUID"
hs_assert_eq 0 "$(pending_deletes)" "objects with errors are not obsoleted"
echo "PASS"
