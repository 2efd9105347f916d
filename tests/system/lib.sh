# SPDX-License-Identifier: MIT
# Shared by the system tests: the binary under test, a fresh world-readable temp directory removed on
# exit, assertions, and running commands as the unprivileged test user.
set -euo pipefail

SRC=${SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
FIX=$SRC/tests/fixtures
T=$(mktemp -d /tmp/ctr-test.XXXXXX)
chmod 755 "$T"
export CONTAINER_DATA_DIR=$T/data
# A copy the test user can execute whatever the permissions of the build tree.
mkdir -p "$T/bin"
cp "${CONTAINER_BIN:?set CONTAINER_BIN to the container binary}" "$T/bin/container"
chmod 755 "$T/bin/container"
C=$T/bin/container
TEST_USER=${CONTAINER_TEST_USER:-ctrtest}

CLEANUPS=()
on_exit() { CLEANUPS+=("$*"); }
_finish() {
    local rc=$?
    for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${CLEANUPS[i]}" || true; done
    if [[ $(id -u) == 0 ]]; then
        rm -rf "$T"
    else
        # Layers belong to subordinate ids: remove them as root of a user namespace.
        unshare --map-auto --map-root-user rm -rf "$T" 2>/dev/null || rm -rf "$T" 2>/dev/null || true
    fi
    exit $rc
}
trap _finish EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
note() { echo "--- $*"; }

is_root() { [[ $(id -u) == 0 ]]; }
have_test_user() { is_root && id -u "$TEST_USER" >/dev/null 2>&1 && grep -q "^$TEST_USER:" /etc/subuid; }

# Runs a command as the test user with a data directory of its own ($T/udata); as non-root, directly.
run_as_user() {
    if is_root; then
        local home
        home=$(getent passwd "$TEST_USER" | cut -d: -f6)
        runuser -u "$TEST_USER" -- env "HOME=$home" "C=$C" "T=$T" "CONTAINER_DATA_DIR=$T/udata" \
            ${CONTAINER_DEBUG:+CONTAINER_DEBUG=$CONTAINER_DEBUG} "$@"
    else
        env "CONTAINER_DATA_DIR=$T/udata" "$@"
    fi
}

# expect_error REGEX CMD...: exit status 1 and exactly one stderr line "Error: …" matching REGEX.
expect_error() {
    local re=$1
    shift
    local rc=0
    "$@" >"$T/stdout" 2>"$T/stderr" || rc=$?
    [[ $rc == 1 ]] || fail "expected exit 1 from '$*', got $rc; stderr: $(cat "$T/stderr")"
    [[ $(wc -l <"$T/stderr") == 1 ]] || fail "expected one stderr line from '$*', got: $(cat "$T/stderr")"
    grep -Eq "^Error: " "$T/stderr" || fail "stderr of '$*' does not start with 'Error: ': $(cat "$T/stderr")"
    grep -Eq -- "$re" "$T/stderr" || fail "stderr of '$*' does not match /$re/: $(cat "$T/stderr")"
}

# expect_status N CMD...: exactly that exit status.
expect_status() {
    local want=$1
    shift
    local rc=0
    "$@" >"$T/stdout" 2>"$T/stderr" || rc=$?
    [[ $rc == "$want" ]] || fail "expected exit $want from '$*', got $rc; stderr: $(cat "$T/stderr")"
}

# Builds (once per test) the busybox rootfs and its OCI forms under $T/bb.
busybox_images() {
    if [[ ! -f $T/bb/image.oci.tar ]]; then
        mkdir -p "$T/bb"
        bash "$FIX/busybox-rootfs.sh" "$T/bb/rootfs.tar" >/dev/null
        bash "$FIX/oci-convert.sh" "$T/bb/rootfs.tar" "$T/bb" "${1:-busybox-fixture:1.0}" >/dev/null 2>&1 ||
            fail "oci-convert.sh failed"
        chmod -R a+rX "$T/bb"
    fi
}
