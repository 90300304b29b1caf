#!/bin/bash
# Fails when the journal catalog and include/hybridsync/messages.h disagree: every MESSAGE_ID the
# code can log is a #define there (32 lower-case hex digits, each once), is used by the code
# (outside comments), and has exactly one catalog entry with a Subject; the catalog explains no
# ID the code does not define, and no source passes a raw ID literal instead of the #define.
set -u
root=${1:?usage: check-catalog.sh SOURCE_DIR}
hdr=$root/include/hybridsync/messages.h cat=$root/systemd/hybridsync.catalog
fail=0
# every #define HS_MSG_ line must parse as NAME "ID"
bad=$(grep -E '^[[:space:]]*#[[:space:]]*define[[:space:]]+HS_MSG_' "$hdr" |
      grep -vE '^#define HS_MSG_[A-Z0-9_]+[[:space:]]+"[0-9a-f]{32}"[[:space:]]*$')
[ -z "$bad" ] || { echo "MESSAGE_ID definitions that are not NAME \"32 lower-case hex digits\":"; echo "$bad"; fail=1; }
names=$(sed -nE 's/^#define (HS_MSG_[A-Z0-9_]+)[[:space:]]+"[0-9a-f]{32}".*/\1/p' "$hdr")
defined=$(sed -nE 's/^#define HS_MSG_[A-Z0-9_]+[[:space:]]+"([0-9a-f]{32})".*/\1/p' "$hdr" | sort)
explained=$(sed -n 's/^-- \(.*\)$/\1/p' "$cat" | sort)
[ -n "$defined" ] || { echo "no MESSAGE_ID in $hdr"; exit 1; }
d=$(printf '%s\n' $names | sort | uniq -d; printf '%s\n' $defined | uniq -d)
[ -z "$d" ] || { echo "defined twice:" $d; fail=1; }
d=$(printf '%s\n' $explained | uniq -d)
[ -z "$d" ] || { echo "explained twice:" $d; fail=1; }
missing=$(comm -23 <(printf '%s\n' $defined | sort -u) <(printf '%s\n' $explained | sort -u))
extra=$(comm -13 <(printf '%s\n' $defined | sort -u) <(printf '%s\n' $explained | sort -u))
[ -z "$missing" ] || { echo "no catalog entry for:" $missing; fail=1; }
[ -z "$extra" ] || { echo "catalog entries for IDs the code does not define:" $extra; fail=1; }
# each entry has a Subject line right after its header
no_subject=$(awk '/^-- / {id = $2; getline; if ($0 !~ /^Subject: ./) print id}' "$cat")
[ -z "$no_subject" ] || { echo "entries without a Subject:" $no_subject; fail=1; }
# the sources without their comments (block comments may span lines)
code=$(cat "$root"/src/*/*.c | sed -e 's|//.*$||' | perl -0777 -pe 's|/\*.*?\*/||gs')
for name in $names; do
    grep -qw "$name" <<<"$code" || { echo "$name is defined but never logged"; fail=1; }
done
raw=$(grep -oE '"[0-9a-f]{32}"' <<<"$code" | sort -u)
[ -z "$raw" ] || { echo "raw 32-hex literals in src/ (use the HS_MSG_ names):" $raw; fail=1; }
[ $fail = 0 ] && echo "$(printf '%s\n' $defined | wc -l) MESSAGE_IDs, each defined, logged and explained once"
exit $fail
