#!/bin/bash
# SPDX-License-Identifier: MIT
# The console on a host whose /dev/pts gives new terminals the group tty (gid=5,mode=620, as every
# systemd host mounts it; this host's devpts does not): a rootless machine's root, whose namespace does
# not map the tty group, still opens its console, boots and runs commands.
source "$(dirname "$0")/lib.sh"

is_root || skip "needs root: mounts a devpts instance of its own"
have_test_user || skip "needs the test user $TEST_USER with subordinate ids (scripts/test.sh creates it)"
busybox_images busybox-fixture:1.0
chmod 777 "$T"
on_exit "remove_all_machines run_as_user"
run_as_user "$C" image load -i "$T/bb/image.oci.tar" >/dev/null
# Every command of the test runs in a mount namespace with a devpts like a systemd host's.
cat >"$T/tty-host.sh" <<'SH'
set -e
mount -t devpts -o newinstance,gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount --bind /dev/pts/ptmx /dev/ptmx
exec "$@"
SH
on_host() { unshare -m --propagation private bash "$T/tty-host.sh" "$@"; }
# The check that the test means something: a terminal made there belongs to the group tty.
grp=$(on_host python3 -c 'import os; m, s = os.openpty(); print(os.stat(os.ttyname(s)).st_gid)')
[[ $grp == 5 ]] || fail "a pty in the test's devpts has gid $grp, not tty (5)"
out=$(on_host bash -c "$(declare -f _run_as run_as_user is_root); TEST_USER=$TEST_USER USER_CGS='$USER_CGS' T=$T C=$C run_as_user \"\$@\"" _ \
    "$C" machine create busybox-fixture:1.0 --name tty 2>&1) || fail "create with a tty-group console: $out"
[[ $(run_as_user "$C" machine run -n tty -- id -un) == "$TEST_USER" ]] || fail "run in the machine"
run_as_user "$C" machine logs tty | grep -q . || fail "nothing on the console"
echo "PASS"
