#!/bin/bash
# Fails when the journal catalog and include/hybridsync/messages.h disagree: every MESSAGE_ID the
# code can log has exactly one catalog entry with a Subject, and the catalog explains no ID the
# code does not define. Also: every ID is 32 lower-case hex digits and defined once.
set -u
root=${1:?usage: check-catalog.sh SOURCE_DIR}
hdr=$root/include/hybridsync/messages.h cat=$root/systemd/hybridsync.catalog
fail=0
defined=$(sed -n 's/^#define HS_MSG_[A-Z_]*[[:space:]]*"\([^"]*\)".*/\1/p' "$hdr" | sort)
explained=$(sed -n 's/^-- \(.*\)$/\1/p' "$cat" | sort)
[ -n "$defined" ] || { echo "no MESSAGE_ID in $hdr"; exit 1; }
for id in $defined; do
    [[ $id =~ ^[0-9a-f]{32}$ ]] || { echo "not 32 lower-case hex digits: $id"; fail=1; }
done
[ -z "$(printf '%s\n' $defined | uniq -d)" ] || { echo "defined twice:" $(printf '%s\n' $defined | uniq -d); fail=1; }
[ -z "$(printf '%s\n' $explained | uniq -d)" ] || { echo "explained twice:" $(printf '%s\n' $explained | uniq -d); fail=1; }
missing=$(comm -23 <(printf '%s\n' $defined | sort -u) <(printf '%s\n' $explained | sort -u))
extra=$(comm -13 <(printf '%s\n' $defined | sort -u) <(printf '%s\n' $explained | sort -u))
[ -z "$missing" ] || { echo "no catalog entry for:" $missing; fail=1; }
[ -z "$extra" ] || { echo "catalog entries for IDs the code does not define:" $extra; fail=1; }
# each entry has a Subject line right after its header
no_subject=$(awk '/^-- / {id = $2; getline; if ($0 !~ /^Subject: ./) print id}' "$cat")
[ -z "$no_subject" ] || { echo "entries without a Subject:" $no_subject; fail=1; }
# every ID is used by the code
for name in $(sed -n 's/^#define \(HS_MSG_[A-Z_]*\).*/\1/p' "$hdr"); do
    grep -q "$name" "$root"/src/*/*.c || { echo "$name is defined but never logged"; fail=1; }
done
[ $fail = 0 ] && echo "$(printf '%s\n' $defined | wc -l) MESSAGE_IDs, each defined, logged and explained once"
exit $fail
