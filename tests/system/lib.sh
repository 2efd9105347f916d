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
DOT_USER=${CONTAINER_TEST_DOT_USER:-ctr.dot}

# A cgroup of this test's own in the unified hierarchy, as systemd would delegate to a user session:
# machines put their cgroups below it, and the test user gets one it owns.
CG_ROOT=""
for m in /sys/fs/cgroup /sys/fs/cgroup/unified; do
    if [[ $(stat -f -c %T "$m" 2>/dev/null) == cgroup2fs ]]; then CG_ROOT=$m; break; fi
done
TEST_CG=""
USER_CG=""
DOT_CG=""
if [[ $(id -u) == 0 && -n $CG_ROOT ]]; then
    TEST_CG=$CG_ROOT/ctr-test-$$
    mkdir -p "$TEST_CG/self" "$TEST_CG/user"
    echo $$ >"$TEST_CG/self/cgroup.procs"
    if id -u "$TEST_USER" >/dev/null 2>&1; then
        USER_CG=$TEST_CG/user
        chown -R "$TEST_USER" "$USER_CG"
    fi
    if id -u "$DOT_USER" >/dev/null 2>&1; then
        DOT_CG=$TEST_CG/dot
        mkdir -p "$DOT_CG"
        chown -R "$DOT_USER" "$DOT_CG"
    fi
fi

# The same for the v1 cpu, cpuset and memory hierarchies of hybrid hosts (the limit tests need them):
# "<dir>:<dir>…" lists for the test user and the dotted user, our own moved in here.
USER_CGS=$USER_CG
DOT_CGS=$DOT_CG
V1_TEST=()
if [[ $(id -u) == 0 ]]; then
    for c in cpu cpuset memory; do
        [[ $(stat -f -c %T "/sys/fs/cgroup/$c" 2>/dev/null) == cgroupfs ]] || continue
        own=$(awk -F: -v c="$c" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' /proc/self/cgroup)
        base=/sys/fs/cgroup/$c${own%/}/ctr-test-$$
        mkdir -p "$base/self" "$base/user" "$base/dot" || continue
        if [[ $c == cpuset ]]; then
            for d in "$base" "$base/self" "$base/user" "$base/dot"; do
                cat "$(dirname "$d")/cpuset.cpus" >"$d/cpuset.cpus"
                cat "$(dirname "$d")/cpuset.mems" >"$d/cpuset.mems"
            done
        fi
        echo $$ >"$base/self/cgroup.procs"
        V1_TEST+=("$base")
        if id -u "$TEST_USER" >/dev/null 2>&1; then chown -R "$TEST_USER" "$base/user"; USER_CGS+=":$base/user"; fi
        if id -u "$DOT_USER" >/dev/null 2>&1; then chown -R "$DOT_USER" "$base/dot"; DOT_CGS+=":$base/dot"; fi
    done
fi

CLEANUPS=()
on_exit() { CLEANUPS+=("$*"); }
_finish() {
    local rc=$?
    for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${CLEANUPS[i]}" || true; done
    # The last processes of a user-mode command (runuser's session, a supervisor finishing) may take a
    # moment to leave their cgroups: try for a few seconds.
    local cg_dirs=()
    if [[ -n $TEST_CG ]]; then
        echo $$ >"$CG_ROOT/cgroup.procs" 2>/dev/null || true
        cg_dirs+=("$TEST_CG")
    fi
    for d in "${V1_TEST[@]}"; do
        echo $$ >"$(dirname "$d")/cgroup.procs" 2>/dev/null || true
        cg_dirs+=("$d")
    done
    for d in "${cg_dirs[@]}"; do
        for _ in $(seq 50); do
            find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
            [[ -d $d ]] || break
            sleep 0.1
        done
    done
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

# Runs a command as USER in cgroup CG with data directory DATA (as root); as non-root, directly.
_run_as() {
    local user=$1 cg=$2 data=$3
    shift 3
    if is_root; then
        local home
        home=$(getent passwd "$user" | cut -d: -f6)
        # Move into the user's cgroup first (only root may move a process there), then drop to the user.
        bash -c 'IFS=: read -ra cgs <<<"$1"; for d in "${cgs[@]}"; do [[ -z $d ]] || echo $$ >"$d/cgroup.procs"; done
                 shift; exec "$@"' _ "$cg" \
            runuser -u "$user" -- env "HOME=$home" "C=$C" "T=$T" "CONTAINER_DATA_DIR=$data" \
            ${CONTAINER_DEBUG:+CONTAINER_DEBUG=$CONTAINER_DEBUG} ${SSH_AUTH_SOCK:+SSH_AUTH_SOCK=$SSH_AUTH_SOCK} "$@"
    else
        env "CONTAINER_DATA_DIR=$data" "$@"
    fi
}
# The unprivileged test user, with a data directory of its own ($T/udata).
run_as_user() { _run_as "$TEST_USER" "$USER_CGS" "$T/udata" "$@"; }
# The second test user, whose name has a dot ($T/ddata).
run_as_dot_user() { _run_as "$DOT_USER" "$DOT_CGS" "$T/ddata" "$@"; }
have_dot_user() { is_root && id -u "$DOT_USER" >/dev/null 2>&1 && grep -q "^$DOT_USER:" /etc/subuid; }

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

# Stops and removes every machine of a data directory (run at exit by tests that boot machines).
remove_all_machines() { # remove_all_machines RUNNER DATA
    local run=$1 m
    for m in $($run "$C" machine ls -q 2>/dev/null); do $run "$C" machine rm -f "$m" >/dev/null 2>&1 || true; done
}

# Both modes a machine test runs in: "" (root) and run_as_user (the unprivileged test user).
machine_modes() {
    if is_root; then echo root; fi
    if have_test_user || ! is_root; then echo user; fi
}
runner_for() { [[ $1 == root ]] && echo "" || echo run_as_user; }
data_for() { [[ $1 == root ]] && echo "$T/data" || echo "$T/udata"; }

# No process of the machine is left: its cgroup is gone or empty, and no mount of the data dir remains.
assert_machine_gone() { # assert_machine_gone DATA NAME
    local data=$1 name=$2 cg
    for cg in $(find "${CG_ROOT:-/nonexistent}" -type d -name "machine-$name" 2>/dev/null); do
        [[ -z $(cat "$cg/cgroup.procs" 2>/dev/null) ]] || fail "processes left in $cg: $(cat "$cg/cgroup.procs")"
    done
    ! grep -q "$data/machines/$name" /proc/self/mountinfo || fail "mounts of $name left on the host"
    [[ ! -e $data/machines/$name/state.json ]] || fail "state.json left for stopped $name"
}
