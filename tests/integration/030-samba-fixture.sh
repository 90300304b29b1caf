#!/bin/bash
# 030-samba-fixture: the Samba AD DC fixture gives the AD semantics the LDAP connector relies on.
# Checked with ldap-utils only: simple bind over ldap:// and ldaps:// (and a refusal when the CA
# is not trusted), user/group/contact creation by LDIF, binary objectGUID, highestCommittedUSN
# and uSNChanged, DirSync with a cookie (modify, rename, delete, membership), tombstones under
# Show Deleted, and ranged retrieval of a 1,600-value member attribute.
# fixtures: samba
set -euo pipefail

. "$(dirname "$0")/../lib/common.sh"
. "$HS_FIXTURES/samba/samba-lib.sh"
hs_samba_setup
hs_need openssl base64 od

t_start=$(hs_ms)
B=$HS_SAMBA_BASE
OU=OU=Fixture030,$B
A=(-x -H "$HS_SAMBA_URI" -D "$HS_SAMBA_BIND_DN" -w "$HS_SAMBA_PW")
# Nothing from the environment or ~/.ldaprc decides what the TLS checks below trust.
unset LDAPTLS_CACERT LDAPTLS_CACERTDIR LDAPTLS_REQCERT LDAPRC LDAPCONF

# lds ARGS...: ldapsearch as Administrator, plain LDIF, no continuation references or comments.
# A failing search fails the caller (an empty answer must never pass for "not found").
lds() {
    local out
    out=$(ldapsearch "${A[@]}" -LLL -o ldif-wrap=no "$@") || return
    printf '%s\n' "$out" | grep -v -e '^#' -e '^$' || true
}

# The base64 objectGUIDs in an LDIF stream on stdin, sorted, on one line.
guids() { sed -n 's/^objectGUID:: //p' | sort | paste -sd' '; }

guid_of() { # guid_of DN: the base64 objectGUID of DN
    lds -b "$1" -s base '(objectClass=*)' objectGUID | sed -n 's/^objectGUID:: //p'
}

usn() {
    ldapsearch -x -H "$HS_SAMBA_URI" -LLL -b '' -s base '(objectClass=*)' highestCommittedUSN |
        sed -n 's/^highestCommittedUSN: //p'
}

rootdse_bind() { # rootdse_bind URI [ldapsearch options]: bind as Administrator, read the rootDSE
    local uri=$1
    shift
    ldapsearch -x -H "$uri" -D "$HS_SAMBA_BIND_DN" -w "$HS_SAMBA_PW" "$@" -b '' -s base \
        '(objectClass=*)' defaultNamingContext 2>&1
}

# --- binds -------------------------------------------------------------------------------
out=$(rootdse_bind "$HS_SAMBA_URI")
hs_assert_contains "$out" "defaultNamingContext: $B" "simple bind over ldap:// (strong auth off)"
out=$(LDAPTLS_CACERT=$HS_SAMBA_CA LDAPTLS_REQCERT=demand rootdse_bind "$HS_SAMBA_LDAPS_URI")
hs_assert_contains "$out" "defaultNamingContext: $B" "simple bind over ldaps:// trusting the test CA"
out=$(LDAPTLS_CACERT=$HS_SAMBA_CA LDAPTLS_REQCERT=demand rootdse_bind "$HS_SAMBA_URI" -ZZ)
hs_assert_contains "$out" "defaultNamingContext: $B" "simple bind after StartTLS trusting the test CA"

# Another CA, made the same way: the DC's certificate must not verify against it.
other=$HS_SAMBA_DIR/other-ca
bash "$HS_FIXTURES/mkcert.sh" "$other"
rc=0
out=$(LDAPTLS_CACERT=$other/ca.pem LDAPTLS_REQCERT=demand rootdse_bind "$HS_SAMBA_LDAPS_URI") || rc=$?
[ "$rc" != 0 ] || hs_fail "ldaps:// bind succeeded with an untrusted CA: $out"
echo "ok: ldaps:// refused with an untrusted CA and LDAPTLS_REQCERT=demand (rc=$rc)"
# ldapsearch only says "Can't contact LDAP server": show that the reason is the certificate.
out=$(openssl s_client -connect 127.0.0.1:636 -CAfile "$other/ca.pem" -verify_return_error \
          </dev/null 2>&1 || true)
hs_assert_contains "$out" "unable to get local issuer certificate" "the refusal is a certificate check"
out=$(openssl s_client -connect 127.0.0.1:636 -CAfile "$HS_SAMBA_CA" -verify_return_error \
          -verify_ip 127.0.0.1 </dev/null 2>&1 || true)
hs_assert_contains "$out" "Verify return code: 0 (ok)" "the DC certificate verifies for IP 127.0.0.1"

out=$(ldapsearch -x -H "$HS_SAMBA_URI" -D "$HS_SAMBA_BIND_DN" -w wrong -b '' -s base \
          '(objectClass=*)' 1.1 2>&1 || true)
hs_assert_contains "$out" "Invalid credentials (49)" "a wrong password is refused"

# --- objects by LDIF ---------------------------------------------------------------------
# Samba 4.17 accepts a user without unicodePwd whatever userAccountControl says: no value gives
# 546 (disabled, password not required) and even 512 (enabled, password required) is stored,
# where Windows refuses 512 without a password (0000052D). The users below therefore say 514
# (disabled), which both accept. A user who must be able to bind gets unicodePwd (the quoted
# password in UTF-16LE) in the same add; Samba takes it over ldaps:// and, with strong auth off,
# over ldap:// too.
pw='Fixture-030!pw'
pw_b64=$(printf '"%s"' "$pw" | iconv -t UTF-16LE | base64 -w0)
t=$(hs_ms)
{
    printf 'dn: %s\nobjectClass: organizationalUnit\n\n' "$OU"
    for i in 1 2 3 4; do
        printf 'dn: CN=user%d,%s\nobjectClass: user\nsAMAccountName: fx030user%d\n' "$i" "$OU" "$i"
        printf 'userPrincipalName: fx030user%d@ad.test\ngivenName: User\nsn: Number%d\n' "$i" "$i"
        printf 'displayName: User %d\nuserAccountControl: 514\n\n' "$i"
    done
    printf 'dn: CN=group1,%s\nobjectClass: group\nsAMAccountName: fx030group1\n' "$OU"
    printf 'groupType: -2147483646\nmember: CN=user1,%s\n\n' "$OU"
} | ldapadd "${A[@]}" >/dev/null
printf 'dn: CN=user5,%s\nobjectClass: user\nsAMAccountName: fx030user5\n%s\nunicodePwd:: %s\n\n' \
    "$OU" 'userAccountControl: 512' "$pw_b64" |
    LDAPTLS_CACERT=$HS_SAMBA_CA ldapadd -x -H "$HS_SAMBA_LDAPS_URI" -D "$HS_SAMBA_BIND_DN" \
        -w "$HS_SAMBA_PW" >/dev/null
echo "ok: 4 users, 1 group and 1 user with a password added in $(($(hs_ms) - t)) ms"
hs_assert_eq 6 "$(lds -b "$OU" '(|(objectClass=user)(objectClass=group))' 1.1 | grep -c '^dn:')" \
    "objects under $OU"
hs_assert_eq 514 "$(lds -b "CN=user1,$OU" -s base '(objectClass=*)' userAccountControl |
    sed -n 's/^userAccountControl: //p')" "userAccountControl of a user added without a password"
ldapsearch -x -H "$HS_SAMBA_URI" -D "fx030user5@ad.test" -w "$pw" -b '' -s base \
    '(objectClass=*)' 1.1 >/dev/null ||
    hs_fail "the user added with unicodePwd cannot bind with that password"
echo "ok: the user added with unicodePwd binds with that password"

# The privileged ldapi socket needs no bind; anonymous over TCP sees nothing below the rootDSE.
out=$(ldapsearch -x -H "$HS_SAMBA_LDAPI_URI" -LLL -b "CN=user1,$OU" -s base '(objectClass=*)' \
          sAMAccountName 2>&1)
hs_assert_contains "$out" "sAMAccountName: fx030user1" "read without a bind on HS_SAMBA_LDAPI_URI"
out=$(ldapsearch -x -H "$HS_SAMBA_URI" -LLL -b "CN=user1,$OU" -s base '(objectClass=*)' \
          sAMAccountName 2>&1 || true)
case "$out" in
*sAMAccountName:*) hs_fail "an anonymous search over ldap:// read a user: $out" ;;
*) echo "ok: an anonymous search over ldap:// reads no user" ;;
esac

# --- objectGUID is 16 binary bytes ---------------------------------------------------------
out=$(lds -b "CN=user1,$OU" -s base '(objectClass=*)' objectGUID objectSid)
hs_assert_contains "$out" "objectGUID:: " "objectGUID is returned base64-encoded (binary)"
g1=$(guid_of "CN=user1,$OU")
hs_assert_eq 16 "$(printf '%s' "$g1" | base64 -d | wc -c)" "objectGUID length in bytes"
hs_assert_contains "$out" "objectSid:: " "objectSid is binary too"

# --- DirSync, first pass -----------------------------------------------------------------
# The base must be the naming-context head and the control critical (TESTBED §3.2).
ds_filter='(|(objectClass=user)(objectClass=group))'
ds1=$(ldapsearch "${A[@]}" -o ldif-wrap=no -b "$B" -E '!dirSync=0/0' "$ds_filter" name)
cookie=$(printf '%s\n' "$ds1" | sed -n 's/^# cookie:: //p')
[ -n "$cookie" ] || hs_fail "the first DirSync returned no cookie"
hs_assert_contains "$ds1" "dn: CN=user1,$OU" "the first DirSync returns the new users"
echo "ok: first DirSync: $(printf '%s\n' "$ds1" | grep -c '^dn:') objects and a cookie"

# --- one batch of changes: modify, rename, delete, group membership ------------------------
guid_user1=$g1
guid_user2=$(guid_of "CN=user2,$OU")
guid_user3=$(guid_of "CN=user3,$OU")
guid_group1=$(guid_of "CN=group1,$OU")
usn0=$(usn)
ldapmodify "${A[@]}" >/dev/null <<EOF
dn: CN=user1,$OU
changetype: modify
replace: description
description: changed by 030

dn: CN=user2,$OU
changetype: modrdn
newrdn: CN=user2-renamed
deleteoldrdn: 1

dn: CN=user3,$OU
changetype: delete

dn: CN=group1,$OU
changetype: modify
add: member
member: CN=user4,$OU
-
EOF
usn1=$(usn)
[ "$usn1" -gt "$usn0" ] || hs_fail "highestCommittedUSN did not grow: $usn0 -> $usn1"
echo "ok: highestCommittedUSN $usn0 -> $usn1"
# Adding user4 to the group changes the group (forward link); user4's memberOf is a back link
# and leaves user4's uSNChanged alone, so user4 is in neither delta.
expected=$(printf 'objectGUID:: %s\n' "$guid_user1" "$guid_user2" "$guid_user3" "$guid_group1" | guids)

# --- uSNChanged ----------------------------------------------------------------------------
out=$(lds -b "$B" -E '!showDeleted' "(&$ds_filter(uSNChanged>=$((usn0 + 1))))" objectGUID uSNChanged)
hs_assert_eq "$expected" "$(printf '%s\n' "$out" | guids)" \
    "objects with uSNChanged > $usn0 (Show Deleted): user1, user2, user3's tombstone, group1"

# --- DirSync with the cookie -------------------------------------------------------------
# DirSync sends only the requested attributes that changed, and leaves out an object when none
# of them did: member must be asked for, or the group is not returned.
ds2=$(ldapsearch "${A[@]}" -o ldif-wrap=no -b "$B" -E "!dirSync=0/0/$cookie" "$ds_filter" \
          name description isDeleted member)
hs_assert_eq "$expected" "$(printf '%s\n' "$ds2" | guids)" \
    "second DirSync: exactly the modified, renamed, deleted objects and the group"
entry() { # entry GUID: the LDIF entry in $ds2 that carries that objectGUID
    printf '%s\n' "$ds2" | awk -v g="objectGUID:: $1" 'BEGIN{RS=""} index($0, g) {print}'
}
hs_assert_contains "$(entry "$guid_user1")" "description: changed by 030" "DirSync: the modified attribute"
hs_assert_contains "$(entry "$guid_user2")" "name: user2-renamed" "DirSync: the rename as a new name"
hs_assert_contains "$(entry "$guid_user2")" "parentGUID:: " "DirSync: the rename with parentGUID"
hs_assert_contains "$(entry "$guid_user3")" "isDeleted: TRUE" "DirSync: the delete as isDeleted"
hs_assert_contains "$(entry "$guid_user3")" ",CN=Deleted Objects,$B" "DirSync: the tombstone's DN"
hs_assert_contains "$(entry "$guid_group1")" "member: CN=user4,$OU" "DirSync: the group's new member"
cookie2=$(printf '%s\n' "$ds2" | sed -n 's/^# cookie:: //p')
[ -n "$cookie2" ] && [ "$cookie2" != "$cookie" ] || hs_fail "the second DirSync returned no new cookie"
ds3=$(ldapsearch "${A[@]}" -o ldif-wrap=no -b "$B" -E "!dirSync=0/0/$cookie2" "$ds_filter" name)
hs_assert_eq 0 "$(printf '%s\n' "$ds3" | grep -c '^dn:' || true)" "third DirSync, nothing changed"

# --- Show Deleted ------------------------------------------------------------------------
# objectGUID as an escaped octet string for the filter: \ca\3a...
guid_filter=$(printf '%s' "$guid_user3" | base64 -d | od -An -v -tx1 | tr -d ' \n' | sed 's/../\\&/g')
out=$(lds -b "$B" "(objectGUID=$guid_filter)" 1.1)
hs_assert_eq "" "$out" "the tombstone is invisible without Show Deleted"
out=$(lds -b "$B" -E '!1.2.840.113556.1.4.417' "(objectGUID=$guid_filter)" \
          objectGUID isDeleted lastKnownParent sAMAccountName)
hs_assert_contains "$out" "isDeleted: TRUE" "Show Deleted: the tombstone"
hs_assert_contains "$out" "objectGUID:: $guid_user3" "Show Deleted: the tombstone keeps its objectGUID"
hs_assert_contains "$out" "lastKnownParent: $OU" "Show Deleted: lastKnownParent"
hs_assert_contains "$out" "sAMAccountName: fx030user3" "Show Deleted: sAMAccountName kept"

# --- ranged member retrieval -------------------------------------------------------------
# Members are contacts: about 40 % cheaper to add than users, and just as good as link targets.
n=1600
big=CN=big-group,$OU
t=$(hs_ms)
{
    printf 'dn: OU=Contacts030,%s\nobjectClass: organizationalUnit\n\n' "$B"
    for ((i = 0; i < n; i++)); do
        printf 'dn: CN=contact%04d,OU=Contacts030,%s\nobjectClass: contact\n\n' "$i" "$B"
    done
    printf 'dn: %s\nobjectClass: group\nsAMAccountName: fx030big\n\n' "$big"
} | ldapadd "${A[@]}" >/dev/null
t1=$(hs_ms)
{
    printf 'dn: %s\nchangetype: modify\nadd: member\n' "$big"
    for ((i = 0; i < n; i++)); do
        printf 'member: CN=contact%04d,OU=Contacts030,%s\n' "$i" "$B"
    done
    printf -- '-\n'
} | ldapmodify "${A[@]}" >/dev/null
echo "ok: $n contacts added in $((t1 - t)) ms, made members of one group in $(($(hs_ms) - t1)) ms"

# ldapsearch takes the filter first: without '(objectClass=*)' the range is read as a filter.
range_count() { # range_count ATTR-REQUESTED ATTR-RETURNED
    lds -b "$big" -s base '(objectClass=*)' "$1" | grep -c "^$2: " || true
}
hs_assert_eq 1500 "$(range_count 'member;range=0-1499' 'member;range=0-1499')" "member;range=0-1499"
hs_assert_eq 100 "$(range_count 'member;range=1500-*' 'member;range=1500-\*')" "member;range=1500-*"
# Samba does not impose MaxValRange (TESTBED §3.6); Windows would answer member;range=0-1499.
echo "info: plain 'member' returned $(range_count member member) values unranged"

echo "030-samba-fixture: checks took $(($(hs_ms) - t_start)) ms after the DC was up"
