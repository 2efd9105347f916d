#!/bin/bash
# SPDX-License-Identifier: MIT
# The quick start makes the machine for the person who ran it: scripts/install.sh through sudo
# (SUDO_USER set) installs as root and creates `dev` rootless in that user's own store, so the user's
# own `container machine run -n dev whoami` prints their name. A user without subordinate ids, or
# without a cgroup to delegate, gets the fix before anything is built or installed.
source "$(dirname "$0")/lib.sh"

is_root || skip "needs root: scripts/install.sh installs as root"
have_test_user || skip "needs the test user $TEST_USER with subordinate ids (scripts/test.sh creates it)"
ND_USER=${CONTAINER_TEST_NODELEG_USER:-ctrnodeleg}
on_exit "remove_all_machines run_as_user"
prefix=$T/prefix
chmod 777 "$T" # the test user makes its store, $T/udata, here

# install.sh runs from the cgroups delegated to the test user, as a login session of that user would
# provide (this host has no systemd): bash moves itself there, then becomes install.sh.
install_as() { # install_as SUDO_USER CGROUPS
    bash -c 'IFS=: read -ra cgs <<<"$1"; for d in "${cgs[@]}"; do [[ -z $d ]] || echo $$ >"$d/cgroup.procs"; done
             shift; exec "$@"' _ "$2" \
        env "SUDO_USER=$1" "CONTAINER_PREFIX=$prefix" "CONTAINER_DATA_DIR=$T/udata" bash "$SRC/scripts/install.sh"
}

note "a user without subordinate ids gets the fix, and nothing is installed"
rc=0
install_as nobody "" >"$T/out" 2>&1 || rc=$?
((rc == 1)) || fail "install.sh for nobody: exit $rc: $(cat "$T/out")"
grep -q "^install.sh: nobody has no subordinate ids .*usermod --add-subuids [0-9-]* --add-subgids [0-9-]* nobody" "$T/out" ||
    fail "no subordinate-id fix: $(cat "$T/out")"
[[ ! -e $prefix ]] || fail "installed before the check"

if id -u "$ND_USER" >/dev/null 2>&1 && [[ -n $TEST_CG ]]; then
    note "a user with no cgroup to delegate gets this host's fix"
    rc=0
    install_as "$ND_USER" "" >"$T/out" 2>&1 || rc=$?
    ((rc == 1)) || fail "install.sh for $ND_USER: exit $rc: $(cat "$T/out")"
    grep -q "^install.sh: this host runs no systemd to delegate a cgroup to $ND_USER; as root: mkdir" "$T/out" ||
        fail "no delegation fix: $(cat "$T/out")"
    [[ ! -e $prefix ]] || fail "installed before the check"
fi

note "through sudo: dev is $TEST_USER's"
install_as "$TEST_USER" "$USER_CGS" >"$T/out" 2>&1 || fail "install.sh through sudo: $(tail -20 "$T/out")"
grep -q "the machine 'dev' is $TEST_USER's" "$T/out" || fail "no closing line: $(tail -5 "$T/out")"
[[ -x $prefix/bin/container ]] || fail "not installed in $prefix"
[[ $(run_as_user "$prefix/bin/container" machine run -n dev whoami) == "$TEST_USER" ]] ||
    fail "dev does not run as $TEST_USER"
# The user's own store holds the machine: made by the user, not by root for the user.
for f in "$T/udata" "$T/udata/machines/dev/config.json"; do
    [[ $(stat -c %U "$f") == "$TEST_USER" ]] || fail "$f belongs to $(stat -c %U "$f")"
done

note "run again: dev exists, nothing is made twice"
install_as "$TEST_USER" "$USER_CGS" >"$T/out" 2>&1 || fail "second install.sh: $(tail -20 "$T/out")"
! grep -q "bootstrapping\|pulled" "$T/out" || fail "second run fetched an image again"
[[ $(run_as_user "$prefix/bin/container" machine ls -q) == dev ]] || fail "machines after the second run"
echo "PASS"
