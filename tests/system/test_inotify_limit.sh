#!/bin/bash
# SPDX-License-Identifier: MIT
# A systemd machine that runs out of inotify instances (each takes about eight, and the kernel's
# default fs.inotify.max_user_instances=128 is one user's total: about sixteen machines) gets a message
# that names the sysctl: systemd only writes "Too many open files" to the console and boots without the
# services that failed (or stops). The test lowers the limit to 1 for one boot as the unprivileged
# user, then puts it back; it runs alone (tests/CMakeLists.txt), since the limit is the whole host's.
source "$(dirname "$0")/lib.sh"

is_root || skip "needs root to lower fs.inotify.max_user_instances"
have_test_user || skip "needs the unprivileged test user $TEST_USER"
chmod 777 "$T"
bash "$FIX/debian-rootfs.sh" "$T/systemd.tar" systemd >/dev/null
run=run_as_user
on_exit "remove_all_machines '$run'"
$run "$C" image import "$T/systemd.tar" localhost/debian:systemd >/dev/null
$run "$C" machine create --name sd --no-boot localhost/debian:systemd >/dev/null

limit=$(cat /proc/sys/fs/inotify/max_user_instances)
on_exit "echo $limit >/proc/sys/fs/inotify/max_user_instances"
echo 1 >/proc/sys/fs/inotify/max_user_instances
rc=0
$run "$C" machine start sd >"$T/out" 2>"$T/err" || rc=$?
echo "$limit" >/proc/sys/fs/inotify/max_user_instances
# Booted without those services (a warning), or stopped (the error): either way one line naming the knob.
[[ $(wc -l <"$T/err") == 1 ]] || fail "expected one line on stderr (rc $rc): $(cat "$T/err")"
if ((rc == 0)); then
    grep -q "^Warning: container machine sd is running, but its console says \"Too many open files\"" "$T/err" ||
        fail "no warning: $(cat "$T/err")"
else
    grep -q "^Error: .*stopped while booting: its console says" "$T/err" || fail "error: $(cat "$T/err")"
fi
grep -q "fs.inotify.max_user_instances=1)" "$T/err" || fail "the line does not name the sysctl: $(cat "$T/err")"

# With the limit back, a boot says nothing more (only this boot's part of the console counts).
$run "$C" machine stop sd >/dev/null
$run "$C" machine start sd >/dev/null 2>"$T/err" || fail "start with the limit restored: $(cat "$T/err")"
[[ ! -s $T/err ]] || fail "a boot with the limit restored still warns: $(cat "$T/err")"
[[ $($run "$C" machine run -n sd -- echo ok) == ok ]] || fail "run after the restored start"
echo PASS
