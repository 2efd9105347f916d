#!/bin/bash
# SPDX-License-Identifier: MIT
# However a machine ends (supervisor SIGKILLed, init killed, init ignoring the stop request), it ends
# stopped, with no process left in its cgroup and nothing mounted; ten machines from one image run at once.
source "$(dirname "$0")/lib.sh"

busybox_images
chmod 777 "$T"
# An image whose init ignores every polite request: only SIGKILL ends it.
mkdir -p "$T/stubborn/sbin"
tar -C "$T/stubborn" -xf "$T/bb/rootfs.tar"
rm -f "$T/stubborn/sbin/init"
printf '#!/bin/sh\ntrap "" TERM INT HUP USR1 USR2 PWR\necho stubborn-init\nwhile :; do sleep 1; done\n' >"$T/stubborn/sbin/init"
chmod 755 "$T/stubborn/sbin/init"
tar -C "$T/stubborn" --numeric-owner -cf "$T/stubborn.tar" .
chmod 644 "$T/stubborn.tar"

field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
pid_alive() { [[ -e /proc/$1 ]] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
wait_stopped() { # wait_stopped RUN NAME
    for _ in $(seq 100); do
        [[ $($1 "$C" machine inspect "$2" | field 'd[0]["status"]') == stopped ]] && return 0
        sleep 0.05
    done
    fail "$2 did not read as stopped"
}
state_pid() { python3 -c "import json; print(json.load(open('$1/machines/$2/state.json'))['$3'])"; }

kills() {
    local mode=$1 run data
    run=$(runner_for "$mode")
    data=$(data_for "$mode")
    note "kill tests as $mode"
    on_exit "remove_all_machines '$run'"
    $run "$C" image load -i "$T/bb/image.oci.tar" >/dev/null
    $run "$C" image import "$T/stubborn.tar" localhost/stubborn >/dev/null

    # 1. The supervisor is SIGKILLed: init dies with it (parent-death signal).
    $run "$C" machine create --name k1 busybox-fixture:1.0 >/dev/null
    local sup init
    sup=$(state_pid "$data" k1 supervisorPid)
    init=$(state_pid "$data" k1 initPid)
    # Every process of the machine (init, and busybox's respawned sleep), from its cgroup.
    local cg procs p
    cg=$(state_pid "$data" k1 cgroup)
    [[ -n $cg && -f $cg/cgroup.procs ]] || fail "k1 has no cgroup: '$cg'"
    procs=$(cat "$cg/cgroup.procs")
    (($(wc -w <<<"$procs") >= 2)) || fail "expected init and its child in $cg, found: $procs"
    kill -KILL "$sup"
    for _ in $(seq 100); do pid_alive "$init" || break; sleep 0.05; done
    pid_alive "$init" && fail "init $init survived its supervisor"
    for p in $procs; do
        for _ in $(seq 100); do pid_alive "$p" || break; sleep 0.05; done
        pid_alive "$p" && fail "machine process $p survived the supervisor's death"
    done
    [[ ! -f $cg/cgroup.procs || -z $(cat "$cg/cgroup.procs") ]] || fail "processes left in $cg: $(cat "$cg/cgroup.procs")"
    wait_stopped "$run" k1
    [[ $($run "$C" machine ls --format json | field '[m["status"] for m in d if m["id"]=="k1"][0]') == stopped ]] ||
        fail "ls does not show k1 stopped"
    ! grep -q "$data/machines/k1" /proc/self/mountinfo || fail "mounts left"
    # It boots again, and the stale cgroup of the killed supervisor is cleaned up on the way.
    [[ $($run "$C" machine run -n k1 hostname) == k1 ]] || fail "k1 does not boot after a killed supervisor"

    # 2. init is killed: the supervisor notices, cleans up and the machine reads stopped.
    init=$(state_pid "$data" k1 initPid)
    sup=$(state_pid "$data" k1 supervisorPid)
    kill -KILL "$init"
    for _ in $(seq 100); do pid_alive "$sup" || break; sleep 0.05; done
    pid_alive "$sup" && fail "supervisor outlived init"
    wait_stopped "$run" k1
    assert_machine_gone "$data" k1

    # 3. init ignores the stop request: killed when --time runs out.
    $run "$C" machine create --name k2 localhost/stubborn >/dev/null
    $run "$C" machine logs k2 | grep -q stubborn-init || fail "stubborn init did not start"
    init=$(state_pid "$data" k2 initPid)
    $run "$C" machine stop --time 1 k2 >/dev/null || fail "stop stubborn"
    pid_alive "$init" && fail "stubborn init still alive"
    $run "$C" machine logs --boot k2 | grep -q "stop timeout: killing init" || fail "no kill after the timeout"
    assert_machine_gone "$data" k2

    # 4. After a host reboot the recorded pids belong to other processes (or none): start times tell.
    $run "$C" machine create --no-boot --name k3 busybox-fixture:1.0 >/dev/null
    printf '{"supervisorPid": %d, "supervisorStart": 1, "initPid": 1, "initStart": 1, "ready": true}\n' $$ |
        $run tee "$data/machines/k3/state.json" >/dev/null
    [[ $($run "$C" machine inspect k3 | field 'd[0]["status"]') == stopped ]] || fail "stale state reads as running"
    [[ $($run "$C" machine run -n k3 hostname) == k3 ]] || fail "k3 does not boot over stale state"
    $run "$C" machine rm -f k3 >/dev/null 2>&1

    # 5. Ten machines from one image at once, each adding under 1 MiB on disk before boot.
    local i names=()
    for i in $(seq 0 9); do
        $run "$C" machine create --no-boot --name "many-$i" busybox-fixture:1.0 >/dev/null
        (($(du -sk "$data/machines/many-$i" | cut -f1) < 1024)) || fail "many-$i uses 1 MiB or more"
        names+=("many-$i")
    done
    for i in $(seq 0 9); do $run "$C" machine start "many-$i" >/dev/null & done
    wait
    for i in $(seq 0 9); do
        [[ $($run "$C" machine run -n "many-$i" hostname) == "many-$i" ]] || fail "many-$i not running"
    done
    [[ $($run "$C" machine ls | grep -c ' running ') == 10 ]] || fail "not ten running: $($run "$C" machine ls)"
    for i in $(seq 0 9); do $run "$C" machine stop "many-$i" >/dev/null & done
    wait
    for i in $(seq 0 9); do assert_machine_gone "$data" "many-$i"; done
    remove_all_machines "$run"
}

for mode in $(machine_modes); do kills "$mode"; done
echo "kill tests ok"
