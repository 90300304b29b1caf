#!/bin/bash
# Runs systemd's offline security review of hybridsyncd.service; fails unless it rates the
# unit SAFE or OK (SPEC §4).
set -euo pipefail
unit=${1:?usage: check-unit-security.sh UNIT}
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not installed"; exit 77; }
out=$(systemd-analyze security --offline=yes --no-pager "$unit" 2>&1 | tail -1)
echo "$out"
case "$out" in
*"exposure level"*": "*" SAFE"*|*"exposure level"*": "*" OK"*) exit 0 ;;
*) echo "FAIL: unit is rated worse than OK"; exit 1 ;;
esac
