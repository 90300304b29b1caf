#!/bin/bash
# docs/hybridsyncctl.8 documents every command and option hybridsyncctl --help lists, every
# exit status, and renders without warnings.
. "$(dirname "$0")/../lib/common.sh"

man=$HS_SOURCE_DIR/docs/hybridsyncctl.8
[ -f "$man" ] || hs_fail "missing $man"
help=$("$HYBRIDSYNCCTL" --help)
for verb in $(echo "$help" | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p' | sort -u); do
    grep -q "^\.It Cm $verb\b" "$man" || hs_fail "the man page has no entry for '$verb'"
    echo "ok: '$verb' is documented"
done
for sub in export check diff import; do
    grep -q "^\.It Cm config $sub\b" "$man" || hs_fail "the man page has no entry for 'config $sub'"
done
for opt in $(echo "$help" | grep -o -- '--[a-z][a-z-]*' | sort -u); do
    grep -q "Fl -${opt#--}\b" "$man" || hs_fail "the man page does not document $opt"
    echo "ok: $opt is documented"
done
for code in 0 1 2 3; do
    sed -n '/^\.Sh EXIT STATUS/,/^\.Sh/p' "$man" | grep -q "^\.It $code\$" ||
        hs_fail "exit status $code is not documented"
done
for col in operation object_type anchor dn target_id state error attribute old new; do
    sed -n '/^\.Sh CSV OUTPUT/,/^\.Sh/p' "$man" | grep -q "$col" ||
        hs_fail "CSV column $col is not documented"
done
if command -v groff > /dev/null; then
    warnings=$(groff -mdoc -Tutf8 -ww -z "$man" 2>&1)
    [ -z "$warnings" ] || hs_fail "groff warns: $warnings"
    echo "ok: renders without warnings"
fi
echo "man page: all checks passed"
