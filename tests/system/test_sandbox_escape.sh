#!/bin/bash
# SPDX-License-Identifier: MIT
# The sandbox holds (docs/SECURITY.md): one named case per escape attempt, run from inside a busybox
# machine as root and as the unprivileged user; every attempt must fail. A static helper built here
# (escape_helper.c) makes the system calls busybox cannot.
source "$(dirname "$0")/lib.sh"
chmod 777 "$T" # the test user makes its data directory here

command -v gcc >/dev/null || fail "gcc (build-essential) is needed to build the escape helper"
busybox_images
HELPER=$T/escape-helper
gcc -static -O1 -o "$HELPER" "$SRC/tests/system/escape_helper.c" || fail "build escape_helper.c"
chmod 755 "$HELPER"
mkdir -p "$T/esc-root"
tar -C "$T/esc-root" -xf "$T/bb/rootfs.tar"
install -D -m 755 "$HELPER" "$T/esc-root/usr/local/bin/escape-helper"
tar -C "$T/esc-root" --numeric-owner -cf "$T/escape.tar" .
chmod 644 "$T/escape.tar"
# Files an escape would change: world-writable so that nothing but the sandbox stops a write.
mkdir -p "$T/victim"
echo original >"$T/victim/file"
chmod 777 "$T/victim"
chmod 666 "$T/victim/file"
host_core_pattern=$(cat /proc/sys/kernel/core_pattern)

CASES=0

# in_machine CMD...: runs CMD as root inside the machine esc; prints its output, returns its status.
in_machine() { $RUN "$C" machine run -n esc --root -- "$@"; }

# One function per attempt; ESCAPE_CASES="name …" runs only those (to check a case against another build).
case_leaked_fd_read() {
    local out rc=0
    out=$($RUN bash -c 'exec 7</etc; exec "$1" machine run -n esc -- cat /proc/self/fd/7/hostname' _ "$C" 2>&1) || rc=$?
    [[ $rc != 0 ]] || fail "a directory fd of the caller was readable inside: $out"
    [[ $out != *"$(cat /etc/hostname)"* ]] || fail "read the host's hostname through a leaked fd"
}

case_leaked_fd_write() {
    : >"$T/victim/fdwrite"
    chmod 666 "$T/victim/fdwrite"
    $RUN bash -c 'exec 8>>"$2"; exec "$1" machine run -n esc -- escape-helper fdwrite 8' _ "$C" "$T/victim/fdwrite" \
        >"$T/fdwrite.out" 2>&1 || true
    [[ ! -s $T/victim/fdwrite ]] || fail "wrote through a leaked fd: $(cat "$T/fdwrite.out")"
}

case_init_holds_no_caller_fd() {
    $RUN "$C" machine stop esc >/dev/null
    $RUN bash -c 'exec 9>>"$2"; exec "$1" machine start esc' _ "$C" "$T/victim/file" >/dev/null
    out=$(in_machine ls -l /proc/1/fd/)
    [[ $out != *victim* ]] || fail "init holds a descriptor of the caller: $out"
    [[ $(in_machine sh -c 'ls /proc/1/fd | wc -l') -le 3 ]] || fail "init has more than stdio open: $out"
}

case_run_detach_fds() {
    $RUN "$C" machine run -n esc -d -- escape-helper fds /tmp/detached-fds >/dev/null
    for _ in $(seq 50); do in_machine test -s /tmp/detached-fds && break; sleep 0.1; done
    [[ $(in_machine cat /tmp/detached-fds) == "0 1 2 " ]] ||
        fail "run -d leaves extra fds: $(in_machine cat /tmp/detached-fds)"
}

case_tiocsti_into_caller_terminal() {
    local sess=esc tmux="tmux -S $T/tmux-$MODE"
    $tmux new-session -d -s "$sess" -x 120 -y 30 "bash --norc --noprofile"
    on_exit "$tmux kill-server 2>/dev/null"
    # stdout to a file, stdin the terminal: the case that used to keep the caller's terminal.
    $tmux send-keys -t "$sess" "$RUN $C machine run -n esc -- escape-helper tiocsti 'touch $T/victim/pwned-a
' > $T/tiocsti-a.out; $RUN $C machine run -n esc -- escape-helper tiocsti 'touch $T/victim/pwned-b
' < /dev/null > $T/tiocsti-b.out 2>&1; $RUN $C machine run -n esc -- escape-helper tiocsti 'touch $T/victim/pwned-c
'; echo tiocsti-done" Enter
    for _ in $(seq 100); do $tmux capture-pane -p -t "$sess" | grep -q '^tiocsti-done' && break; sleep 0.1; done
    $tmux capture-pane -p -t "$sess" | grep -q '^tiocsti-done' || fail "tiocsti commands did not finish: $($tmux capture-pane -p -t "$sess")"
    sleep 0.5 # anything typed into the shell would run now
    [[ ! -e $T/victim/pwned-a && ! -e $T/victim/pwned-b && ! -e $T/victim/pwned-c ]] ||
        fail "TIOCSTI typed into the caller's shell: $(cat "$T"/tiocsti-*.out)"
    grep -q ESCAPED "$T"/tiocsti-*.out && fail "TIOCSTI worked inside: $(cat "$T"/tiocsti-*.out)"
    $tmux kill-server
}

case_read_joining_process() {
    in_machine rm -f /tmp/poll.out
    $RUN "$C" machine run -n esc --root -d -- escape-helper poll CTR_ESCAPE_MARKER=secret /tmp/poll.out 8 >/dev/null
    for i in $(seq 50); do
        $RUN env CTR_ESCAPE_MARKER=secret-$i "$C" machine run -n esc -- true
    done
    for _ in $(seq 100); do in_machine grep -q looks /tmp/poll.out 2>/dev/null && break; sleep 0.2; done
    out=$(in_machine cat /tmp/poll.out)
    [[ $out == *"hits 0"* ]] || fail "the joining process was readable from inside: $out"
    [[ $out =~ looks\ [1-9] ]] || fail "the poller looked at nothing: $out"
}

case_core_pattern() {
    ! in_machine sh -c 'echo "|/tmp/payload" > /proc/sys/kernel/core_pattern' 2>/dev/null || fail "wrote core_pattern"
    [[ $(cat /proc/sys/kernel/core_pattern) == "$host_core_pattern" ]] || fail "core_pattern changed on the host"
}

case_sysrq_trigger() {
    if [[ -e /proc/sysrq-trigger ]]; then
        ! in_machine sh -c 'echo h > /proc/sysrq-trigger' 2>/dev/null || fail "wrote /proc/sysrq-trigger"
    else
        ! in_machine test -e /proc/sysrq-trigger || fail "/proc/sysrq-trigger inside, but not on the host"
        echo "    (this kernel has no /proc/sysrq-trigger: checked that the machine has none either)"
    fi
}

# Bind remounts change only the mount's flags (a plain remount would reconfigure the file system,
# which the kernel refuses in a user namespace anyway): the attack that matters on a bind mount.
case_remount_sys_rw() {
    ! in_machine mount -o remount,bind,rw /sys 2>/dev/null || fail "bind-remounted /sys read-write"
    ! in_machine mount -o remount,rw /sys 2>/dev/null || fail "remounted /sys read-write"
    local m
    for m in $(in_machine sh -c "awk '\$5 ~ \"^/sys/\" {print \$5}' /proc/self/mountinfo"); do
        [[ $m == /sys/fs/cgroup ]] && continue # the machine's own cgroup2, writable when delegated
        ! in_machine mount -o remount,bind,rw "$m" 2>/dev/null || fail "bind-remounted $m read-write"
    done
}

case_remount_proc_sys_rw() {
    ! in_machine mount -o remount,bind,rw /proc/sys 2>/dev/null || fail "bind-remounted /proc/sys read-write"
    ! in_machine mount -o remount,rw /proc/sys 2>/dev/null || fail "remounted /proc/sys read-write"
    ! in_machine umount /proc/sys 2>/dev/null || fail "unmounted the read-only /proc/sys"
    ! in_machine umount -l /proc/sys 2>/dev/null || fail "lazily unmounted the read-only /proc/sys"
}

case_unmount_mask() {
    ! in_machine umount /sys/firmware 2>/dev/null || fail "unmounted the /sys/firmware mask"
    ! in_machine umount -l /sys/firmware 2>/dev/null || fail "lazily unmounted the /sys/firmware mask"
    [[ -z $(in_machine ls -A /sys/firmware) ]] || fail "/sys/firmware is visible"
}

case_unmount_cgroup() {
    ! in_machine umount /sys/fs/cgroup 2>/dev/null || fail "unmounted the machine's cgroup mount"
    ! in_machine umount -l /sys/fs/cgroup 2>/dev/null || fail "lazily unmounted the machine's cgroup mount"
    for h in memory cpu cpuset unified systemd; do
        ! in_machine test -e "/sys/fs/cgroup/$h/cgroup.procs" -o -e "/sys/fs/cgroup/$h/tasks" ||
            fail "the host's $h hierarchy is visible in the machine"
    done
}

case_kernel_calls_and_block_devices() {
    in_machine grep -q 'Seccomp:[[:space:]]*2' /proc/self/status || fail "no seccomp filter on a run command"
    in_machine sh -c 'grep -q "Seccomp:[[:space:]]*2" /proc/1/status' || fail "no seccomp filter on init"
    in_machine escape-helper kernel >"$T/kernel.out" 2>&1 || fail "a kernel call or device worked: $(cat "$T/kernel.out")"
}

case_caller_keyring() {
    $RUN "$HELPER" addkey ctr-key-secret "$C" machine run -n esc -- escape-helper keys ctr-key-secret >"$T/keys.out" 2>&1 ||
        fail "the caller's keys were reachable: $(cat "$T/keys.out")"
    grep -q 'blocked: read the caller.s session key: Function not implemented' "$T/keys.out" ||
        fail "keyctl is not refused by the filter: $(cat "$T/keys.out")"
}

case_bad_user_group() {
    expect_error 'invalid user' $RUN "$C" machine run -n esc -u :5 -- true
    expect_error 'group xyz not found in the machine' $RUN "$C" machine run -n esc -u nobody:xyz -- id
    [[ $($RUN "$C" machine run -n esc -u 65534:65534 -- id -g) == 65534 ]] || fail "-u 65534:65534"
}

escape_suite() {
    local name
    for name in leaked-fd-read leaked-fd-write init-holds-no-caller-fd run-detach-fds tiocsti-into-caller-terminal read-joining-process core-pattern sysrq-trigger remount-sys-rw remount-proc-sys-rw unmount-mask unmount-cgroup kernel-calls-and-block-devices caller-keyring bad-user-group; do
        [[ -z ${ESCAPE_CASES:-} || " $ESCAPE_CASES " == *" $name "* ]] || continue
        CASES=$((CASES + 1))
        note "case $name ($MODE)"
        "case_${name//-/_}"
    done
}

# The data directory below the shared home is masked inside (a separate store for this case).
data_dir_case() {
    [[ -z ${ESCAPE_CASES:-} || " $ESCAPE_CASES " == *" data-directory-invisible "* ]] || return 0
    CASES=$((CASES + 1))
    note "case data-directory-invisible ($MODE)"
    local home data
    home=$([[ $MODE == root ]] && echo /root || getent passwd "$TEST_USER" | cut -d: -f6)
    data=$home/.ctr-escape-test-$$
    on_exit "CONTAINER_DATA_DIR='$data' $RUN '$C' machine rm -f escd >/dev/null 2>&1; rm -rf '$data'"
    $RUN env CONTAINER_DATA_DIR="$data" "$C" image import "$T/escape.tar" localhost/escape:1 >/dev/null
    $RUN env CONTAINER_DATA_DIR="$data" "$C" machine create --name escd localhost/escape:1 >/dev/null
    [[ -z $($RUN env CONTAINER_DATA_DIR="$data" "$C" machine run -n escd --root -- ls -A "$data") ]] ||
        fail "the data directory is visible inside"
    ! $RUN env CONTAINER_DATA_DIR="$data" "$C" machine run -n escd --root -- touch "$data/x" 2>/dev/null ||
        fail "wrote into the data directory from inside"
    [[ -d $data/machines/escd/upper ]] || fail "the store itself is gone"
    # Nor is the machine's own root in its mount table (the home bound before the root was mounted).
    local mounts
    mounts=$($RUN env CONTAINER_DATA_DIR="$data" "$C" machine run -n escd --root -- cat /proc/self/mountinfo)
    ! grep -q "machines/escd/rootfs" <<<"$mounts" ||
        fail "the machine's root appears again below the home: $(grep -c "machines/escd/rootfs" <<<"$mounts") mounts"
    $RUN env CONTAINER_DATA_DIR="$data" "$C" machine rm -f escd >/dev/null 2>&1
}

for MODE in $(machine_modes); do
    RUN=$(runner_for "$MODE")
    on_exit "remove_all_machines '$RUN'"
    $RUN "$C" image import "$T/escape.tar" localhost/escape:1 >/dev/null
    $RUN "$C" machine create --name esc localhost/escape:1 >/dev/null || fail "create ($MODE)"
    escape_suite
    data_dir_case
    $RUN "$C" machine rm -f esc >/dev/null 2>&1
    [[ $(cat "$T/victim/file") == original ]] || fail "the victim file changed"
done
echo "all $CASES escape cases blocked"
