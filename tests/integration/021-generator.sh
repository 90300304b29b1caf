#!/bin/bash
# The directory generator (tests/fixtures/gen-directory.py) is deterministic and writes the
# shapes it promises: two runs are byte-identical (LDIF and manifest), another seed differs, both
# flavors describe the same objects, the small preset and contoso-100k have the documented counts,
# and the LDIF is ordered so that every referenced DN comes earlier. Prints the generation time.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"

hs_need "$HS_PY"
GEN=$HS_FIXTURES/gen-directory.py
T=$(hs_mktemp)
# hs_mktemp runs in a subshell here, so its own removal at exit is lost: register it again.
[ "${HS_KEEP:-0}" = 1 ] || hs_on_exit "rm -rf '$T'"
gen() { "$HS_PY" "$GEN" "$@"; }

# --- determinism ----------------------------------------------------------------------------------
gen --shape small --seed 7 --out "$T/a.ldif" --manifest "$T/a.json"
gen --shape small --seed 7 --out "$T/b.ldif" --manifest "$T/b.json"
cmp -s "$T/a.ldif" "$T/b.ldif" || hs_fail "two runs with the same seed differ (LDIF)"
cmp -s "$T/a.json" "$T/b.json" || hs_fail "two runs with the same seed differ (manifest)"
echo "ok: same seed and sizes give byte-identical LDIF and manifest"
gen --shape small --seed 7 >"$T/stdout.ldif"
cmp -s "$T/a.ldif" "$T/stdout.ldif" || hs_fail "--out - (stdout) differs from --out FILE"
echo "ok: stdout output is the same bytes"
gen --shape small --seed 8 --out "$T/c.ldif"
if cmp -s "$T/a.ldif" "$T/c.ldif"; then hs_fail "another seed gives the same LDIF"; fi
echo "ok: another seed gives another directory"
gen --flavor ad --shape small --seed 7 --out "$T/ad1.ldif" --manifest "$T/ad1.json"
gen --flavor ad --shape small --seed 7 --out "$T/ad2.ldif"
cmp -s "$T/ad1.ldif" "$T/ad2.ldif" || hs_fail "two ad-flavor runs differ"
echo "ok: the ad flavor is deterministic too"

# --- shape, order and the two flavors, checked on the LDIF itself ----------------------------------
"$HS_PY" - "$T/a.ldif" "$T/a.json" "$T/ad1.ldif" "$T/ad1.json" <<'EOF'
import base64, json, sys

def entries(path):
    out, cur = [], None
    for line in open(path, encoding="utf-8").read().split("\n"):
        if not line:
            cur = None
            continue
        if line.startswith("#"):
            continue
        a, _, v = line.partition(":")
        if v.startswith(":"):
            v = base64.b64decode(v[1:].strip())
            if a.lower() not in ("objectguid", "objectsid", "ms-ds-consistencyguid"):
                v = v.decode("utf-8")
        else:
            v = v.lstrip(" ")
        if a.lower() == "dn":
            cur = {"dn": v}
            out.append(cur)
        else:
            cur.setdefault(a.lower(), []).append(v)
    return out

def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

def check(ldif, manifest, flavor):
    es, m = entries(ldif), json.load(open(manifest))
    c = m["counts"]
    want = {"ous": 6, "users": 50, "contacts": 5, "groups": 10}
    for k, v in want.items():
        if c[k] != v:
            fail("%s: small preset has %d %s, expected %d" % (flavor, c[k], k, v))
    if len(es) != c["entries"] or c["entries"] != sum(want.values()):
        fail("%s: %d entries in the LDIF, manifest says %d" % (flavor, len(es), c["entries"]))
    kinds = [o["kind"] for o in m["objects"]]
    order = {"ou": 0, "user": 1, "contact": 2, "group": 3}
    if [order[k] for k in kinds] != sorted(order[k] for k in kinds):
        fail("%s: objects are not ordered OUs, users, contacts, groups" % flavor)
    if [e["dn"] for e in es] != [o["dn"] for o in m["objects"]]:
        fail("%s: LDIF and manifest list different DNs" % flavor)
    seen = set()
    for e, o in zip(es, m["objects"]):
        for a in ("manager", "member"):
            for v in e.get(a, []):
                if v not in seen:
                    fail("%s: %s refers to %s before it is defined" % (flavor, e["dn"], v))
        seen.add(e["dn"])
        if o["kind"] == "group" and not e.get("member"):
            fail("%s: group %s has no member" % (flavor, e["dn"]))
        guids = e.get("objectguid", [])
        if flavor == "openldap" and (len(guids) != 1 or len(guids[0]) != 16):
            fail("openldap: %s has no 16-byte objectGUID" % e["dn"])
        if flavor == "ad" and guids:
            fail("ad: %s carries an objectGUID (the DC assigns it)" % e["dn"])
    users = [e for e, o in zip(es, m["objects"]) if o["kind"] == "user"]
    uac = {int(e["useraccountcontrol"][0]) for e in users}
    if not {512, 514} <= uac or not uac <= {512, 514, 66048}:
        fail("%s: userAccountControl values %s" % (flavor, sorted(uac)))
    for a in ("samaccountname", "userprincipalname", "givenname", "sn", "displayname",
              "department", "title"):
        if any(a not in e for e in users):
            fail("%s: a user lacks %s" % (flavor, a))
    if not any("ms-ds-consistencyguid" in e for e in users):
        fail("%s: no user has mS-DS-ConsistencyGuid" % flavor)
    if not any(p.startswith("SMTP:") for e in users for p in e.get("proxyaddresses", [])):
        fail("%s: no primary SMTP proxyAddress" % flavor)
    if not any("\\," in e["dn"] for e in users):
        fail("%s: no DN needing an escaped comma" % flavor)
    if c["groups_nested"] < 1:
        fail("%s: the small preset has no nested group" % flavor)
    sams = [e["samaccountname"][0] for e in es if "samaccountname" in e]
    if len(sams) != len({s.lower() for s in sams}) or max(len(s) for s in [e["samaccountname"][0] for e in users]) > 20:
        fail("%s: sAMAccountName not unique or longer than 20" % flavor)
    print("ok: %s small preset: %d OUs, %d users (%d disabled), %d contacts, %d groups "
          "(%d nested), %d memberships; ordered, references resolve" % (
              flavor, c["ous"], c["users"], c["users_disabled"], c["contacts"], c["groups"],
              c["groups_nested"], c["memberships"]))
    return m

mo = check(sys.argv[1], sys.argv[2], "openldap")
ma = check(sys.argv[3], sys.argv[4], "ad")
strip = lambda o: {k: v for k, v in o.items()
                   if not k.startswith(("objectGUID", "objectSid", "mS-DS"))}
norm = lambda o: json.dumps(strip(o)).lower().replace("dc=ad,dc=test", "dc=example,dc=test") \
    .replace("ad.test", "example.test")
if [norm(o) for o in mo["objects"]] != [norm(o) for o in ma["objects"]]:
    fail("the two flavors describe different objects")
print("ok: both flavors describe the same objects (names, flags, memberships)")
EOF

# --- options override the preset ------------------------------------------------------------------
gen --users 7 --groups 3 --contacts 2 --ous 2 --avg-members 3 --seed 3 --no-nesting \
    --base dc=corp,dc=test --out "$T/tiny.ldif" --manifest "$T/tiny.json"
hs_assert_eq "7 3 2 5" "$("$HS_PY" -c 'import json,sys; c=json.load(open(sys.argv[1]))["counts"]
print(c["users"], c["groups"], c["contacts"], c["ous"])' "$T/tiny.json")" "explicit sizes (users groups contacts OUs)"
hs_assert_contains "$(cat "$T/tiny.ldif")" "userPrincipalName: " "UPNs are written"
hs_assert_contains "$(grep -m1 userPrincipalName "$T/tiny.ldif")" "@corp.test" "UPN suffix derived from --base"
gen --only groups --shape small --seed 7 --out "$T/groups-only.ldif"
hs_assert_eq 10 "$(grep -c '^dn' "$T/groups-only.ldif")" "--only groups writes only the groups"

# --- contoso-100k: counts and time (counts only: loading it is the benchmark's job) --------------
t0=$(hs_ms)
gen --shape contoso-100k --out "$T/c100k.ldif" --manifest "$T/c100k.json"
ms=$(($(hs_ms) - t0))
echo "figure: contoso-100k LDIF + manifest generated in $ms ms ($(du -m "$T/c100k.ldif" | cut -f1) MB LDIF)"
"$HS_PY" - "$T/c100k.json" "$T/c100k.ldif" <<'EOF'
import json, re, sys
m = json.load(open(sys.argv[1]))
c = m["counts"]
want = {"users": 100000, "groups": 10000, "contacts": 1000, "ous": 23}
for k, v in want.items():
    if c[k] != v:
        print("FAIL: contoso-100k has %d %s, expected %d" % (c[k], k, v), file=sys.stderr)
        sys.exit(1)
user_ous = {re.split(r"(?<!\\),", o["dn"], 1)[1] for o in m["objects"] if o["kind"] == "user"}
sizes = sorted((len(o["members"]) for o in m["objects"] if o["kind"] == "group"), reverse=True)
avg = c["memberships"] / c["groups"]
dns = sum(1 for line in open(sys.argv[2], "rb") if line.startswith((b"dn: ", b"dn:: ")))
ok = (len(user_ous) == 20 and 45 <= avg <= 55 and sum(s >= 5000 for s in sizes) == 5
      and dns == sum(want.values()) and c["entries"] == dns)
print("%s: contoso-100k: %d users in %d OUs, %d contacts, %d groups averaging %.1f members "
      "(largest %s), %d entries in the LDIF"
      % ("ok" if ok else "FAIL", c["users"], len(user_ous), c["contacts"], c["groups"], avg,
         sizes[:6], dns))
sys.exit(0 if ok else 1)
EOF
echo "PASS"
