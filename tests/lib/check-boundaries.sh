#!/bin/bash
# Each foreign library header may appear in exactly one module (STYLE.md): sqlite3.h in the
# store, ldap.h/lber.h in the LDAP connector, curl/curl.h in the HTTP module.
set -u
root=${1:?usage: check-boundaries.sh SOURCE_DIR}
fail=0
check() { # header allowed-file-regex
    local bad
    bad=$(grep -lE "#include[[:space:]]*<$1>" "$root"/src/*/*.c "$root"/include/hybridsync/*.h \
          2>/dev/null | grep -vE "$2")
    if [ -n "$bad" ]; then
        echo "<$1> included outside its module: $bad"
        fail=1
    fi
}
check 'sqlite3\.h' '/src/lib/store[a-z_]*\.c$'
check 'ldap\.h' '/src/lib/ldap[a-z_]*\.c$'
check 'lber\.h' '/src/lib/ldap[a-z_]*\.c$'
check 'curl/curl\.h' '/src/lib/(http|graph)[a-z_]*\.c$'
[ $fail = 0 ] && echo "foreign headers stay inside their modules"
exit $fail
