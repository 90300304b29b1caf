# Shared helpers for integration scenarios, fixtures and benchmarks. Source it, do not run it:
#   . "$(dirname "$0")/../lib/common.sh"
# Scenarios get a scratch directory ($HS_TMP) and a cleanup stack that runs on any exit.

set -euo pipefail

HS_SOURCE_DIR=${HS_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
HS_BUILD_DIR=${HS_BUILD_DIR:-$HS_SOURCE_DIR/build}
HS_FIXTURE_CACHE=${HS_FIXTURE_CACHE:-$HS_BUILD_DIR/fixture-cache}
HYBRIDSYNCD=${HYBRIDSYNCD:-$HS_BUILD_DIR/src/daemon/hybridsyncd}
HYBRIDSYNCCTL=${HYBRIDSYNCCTL:-$HS_BUILD_DIR/src/ctl/hybridsyncctl}
HS_FIXTURES=$HS_SOURCE_DIR/tests/fixtures
HS_PY=/usr/bin/python3
export HS_SOURCE_DIR HS_BUILD_DIR HS_FIXTURE_CACHE HYBRIDSYNCD HYBRIDSYNCCTL

_hs_cleanups=()

# hs_on_exit CMD...: run CMD when the script exits (last registered runs first).
hs_on_exit() {
    _hs_cleanups+=("$*")
}

_hs_run_cleanups() {
    local rc=$? i
    set +e
    for ((i = ${#_hs_cleanups[@]} - 1; i >= 0; i--)); do
        eval "${_hs_cleanups[$i]}" >/dev/null 2>&1
    done
    exit $rc
}
trap _hs_run_cleanups EXIT
trap 'exit 130' INT TERM

# One scratch root per script, removed at exit unless HS_KEEP=1. It is created here, in the
# script's own shell, because a cleanup registered inside $(...) would be lost with the subshell.
HS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/hs.XXXXXX")
if [ "${HS_KEEP:-0}" != 1 ]; then
    _hs_cleanups+=("rm -rf '$HS_TMP'")
else
    echo "keeping $HS_TMP" >&2
fi
export HS_TMP

# hs_mktemp: a fresh scratch directory inside $HS_TMP (safe to call as d=$(hs_mktemp)).
hs_mktemp() {
    mktemp -d "$HS_TMP/t.XXXXXX"
}

hs_log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }

# A missing peer is a visible skip (CTest SKIP_RETURN_CODE 77), never a pass.
hs_skip() {
    echo "SKIP: $*"
    exit 77
}

hs_fail() {
    echo "FAIL: $*" >&2
    exit 1
}

hs_need() { # hs_need CMD...: skip unless every command exists
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] || hs_skip "$c is not installed"
    done
}

hs_assert_eq() { # hs_assert_eq EXPECTED ACTUAL WHAT
    if [ "$1" != "$2" ]; then
        hs_fail "$3: expected '$1', got '$2'"
    fi
    echo "ok: $3 = '$2'"
}

hs_assert_contains() { # hs_assert_contains HAYSTACK NEEDLE WHAT
    case "$1" in
    *"$2"*) echo "ok: $3" ;;
    *) hs_fail "$3: '$2' not found in: $1" ;;
    esac
}

# hs_free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
hs_free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# hs_wait_tcp PORT [TIMEOUT_S]: wait until something accepts on 127.0.0.1:PORT.
hs_wait_tcp() {
    local port=$1 limit=${2:-30} i
    for ((i = 0; i < limit * 20; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# hs_wait_ldap URI [TIMEOUT_S]: poll the rootDSE until the server answers.
hs_wait_ldap() {
    local uri=$1 limit=${2:-30} i
    for ((i = 0; i < limit * 20; i++)); do
        if ldapsearch -x -H "$uri" -b '' -s base -o nettimeout=1 '(objectClass=*)' \
               namingContexts >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# hs_ms: milliseconds since the epoch (for fixture start-up figures).
hs_ms() { date +%s%3N; }
