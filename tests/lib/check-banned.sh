#!/bin/bash
# Fails when the C sources call a function STYLE.md bans (unbounded copies, unchecked parses).
set -u
root=${1:?usage: check-banned.sh SOURCE_DIR}
banned='strcpy|strcat|sprintf|vsprintf|strncpy|strtok|atoi|atol|atoll|gets'
hits=$(grep -nE "(^|[^_a-zA-Z0-9.>])($banned)[[:space:]]*\(" \
       "$root"/src/*/*.c "$root"/include/hybridsync/*.h 2>/dev/null \
       | grep -vE '^\S+:[0-9]+:\s*(\*|//)')
if [ -n "$hits" ]; then
    echo "banned functions used:"
    echo "$hits"
    exit 1
fi
echo "no banned functions in src/ and include/"
