#!/bin/bash
# SPDX-License-Identifier: MIT
# Real init systems boot and stop, as root and as the unprivileged user: Debian with systemd (services
# start and stop, is-system-running reaches running or degraded, `systemctl reboot` comes back) and
# Debian with sysvinit-core.
source "$(dirname "$0")/lib.sh"

is_root || skip "needs root: builds the Debian images with mmdebstrap"
bash "$FIX/debian-rootfs.sh" "$T/systemd.tar" systemd >/dev/null
bash "$FIX/debian-rootfs.sh" "$T/sysvinit.tar" sysvinit >/dev/null
chmod 644 "$T"/*.tar
chmod 777 "$T"

boot_systemd() {
    local mode=$1 run
    run=$(runner_for "$mode")
    note "systemd as $mode"
    on_exit "remove_all_machines '$run'"
    $run "$C" image import "$T/systemd.tar" localhost/debian:systemd >/dev/null
    $run "$C" machine create --name sd localhost/debian:systemd >/dev/null || fail "create systemd machine"
    local state
    state=$($run "$C" machine run -n sd --root -- systemctl is-system-running --wait) || true
    echo "is-system-running: $state"
    $run "$C" machine run -n sd --root -- systemctl --failed --no-legend --plain | sed 's/^/failed unit: /'
    [[ $state == running || $state == degraded ]] || fail "systemd state '$state'"
    [[ $($run "$C" machine run -n sd --root -- systemctl show -p Virtualization --value) == container-other ]] ||
        fail "systemd does not see a container"
    [[ $($run "$C" machine run -n sd -- hostname) == sd ]] || fail "hostname under systemd"

    # A real service: a unit file written in the machine, started and stopped through systemd.
    $run "$C" machine run -n sd --root -- sh -c 'cat > /etc/systemd/system/hello.service <<UNIT
[Unit]
Description=hello
[Service]
ExecStart=/bin/sh -c "echo started > /run/hello; exec sleep infinity"
UNIT
systemctl daemon-reload'
    $run "$C" machine run -n sd --root -- systemctl start hello.service || fail "systemctl start"
    [[ $($run "$C" machine run -n sd --root -- systemctl is-active hello.service) == active ]] || fail "hello not active"
    [[ $($run "$C" machine run -n sd --root -- cat /run/hello) == started ]] || fail "hello did not run"
    $run "$C" machine run -n sd --root -- systemctl stop hello.service || fail "systemctl stop"
    [[ $($run "$C" machine run -n sd --root -- systemctl is-active hello.service) == inactive ]] || fail "hello still active"
    # dbus, a service from the image, restarts.
    $run "$C" machine run -n sd --root -- systemctl restart dbus.service || fail "restart dbus"
    [[ $($run "$C" machine run -n sd --root -- systemctl is-active dbus.service) == active ]] || fail "dbus not active"

    # A clean poweroff well within the timeout, then boots again.
    $run "$C" machine stop sd >/dev/null
    ! $run "$C" machine logs --boot sd | grep -q "stop timeout" || fail "systemd needed SIGKILL to stop"
    $run "$C" machine logs sd | grep -q "Reached target.*Power-Off\|System Power Off" || fail "no poweroff in console log"
    assert_machine_gone "$(data_for "$mode")" sd
    $run "$C" machine run -n sd --root -- systemctl is-system-running --wait >/dev/null || true
    [[ $($run "$C" machine inspect sd | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["status"])') == running ]] ||
        fail "second boot"
    # `systemctl reboot` comes back as a new systemd that reaches running again.
    local init1 init2=""
    init1=$(python3 -c "import json; print(json.load(open('$(data_for "$mode")/machines/sd/state.json'))['initPid'])")
    $run "$C" machine run -n sd --root -- systemctl reboot || fail "systemctl reboot"
    for _ in $(seq 300); do
        init2=$(python3 -c "import json; d=json.load(open('$(data_for "$mode")/machines/sd/state.json')); print(d['initPid'] if d['ready'] else '')" 2>/dev/null) || true
        [[ -n $init2 && $init2 != 0 && $init2 != "$init1" ]] && break
        sleep 0.1
    done
    [[ -n $init2 && $init2 != 0 && $init2 != "$init1" ]] || fail "no new systemd after reboot (was $init1, now '$init2')"
    state=$($run "$C" machine run -n sd --root -- systemctl is-system-running --wait) || true
    [[ $state == running || $state == degraded ]] || fail "systemd state '$state' after reboot"
    $run "$C" machine logs --boot sd | grep -q "init asked for a reboot" || fail "boot log does not say reboot"
    $run "$C" machine rm sd >/dev/null
}

boot_sysvinit() {
    local mode=$1 run
    run=$(runner_for "$mode")
    note "sysvinit as $mode"
    $run "$C" image import "$T/sysvinit.tar" localhost/debian:sysvinit >/dev/null
    $run "$C" machine create --name sv localhost/debian:sysvinit >/dev/null || fail "create sysvinit machine"
    [[ $($run "$C" machine run -n sv --root -- cat /proc/1/comm) == init ]] || fail "PID 1 is not sysvinit"
    for _ in $(seq 100); do
        [[ $($run "$C" machine run -n sv --root -- runlevel 2>/dev/null) == *2* ]] && break
        sleep 0.1
    done
    [[ $($run "$C" machine run -n sv --root -- runlevel) == *2 ]] || fail "sysvinit did not reach runlevel 2"
    $run "$C" machine stop sv >/dev/null
    ! $run "$C" machine logs --boot sv | grep -q "stop timeout" || fail "sysvinit needed SIGKILL to stop"
    assert_machine_gone "$(data_for "$mode")" sv
    $run "$C" machine rm sv >/dev/null
}

for mode in $(machine_modes); do
    boot_systemd "$mode"
    boot_sysvinit "$mode"
done
echo "init systems ok"
