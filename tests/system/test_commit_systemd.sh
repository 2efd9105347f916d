#!/bin/bash
# SPDX-License-Identifier: MIT
# The commit of a running Debian machine booted by systemd boots again: a unit enabled in the source
# machine starts in the machine made from the commit, systemd reaches running or degraded there, and the
# new machine gets a machine id of its own (the source's stays out of the image). As root and as the
# unprivileged user.
source "$(dirname "$0")/lib.sh"

is_root || skip "needs root: builds the Debian image with mmdebstrap"
bash "$FIX/debian-rootfs.sh" "$T/systemd.tar" systemd >/dev/null
chmod 644 "$T/systemd.tar"
chmod 777 "$T"

for mode in $(machine_modes); do
    run=$(runner_for "$mode")
    note "systemd machine committed while running ($mode)"
    on_exit "remove_all_machines '$run'"
    $run "$C" image import "$T/systemd.tar" localhost/debian:systemd >/dev/null || fail "import ($mode)"
    $run "$C" machine create --name sd localhost/debian:systemd >/dev/null || fail "create ($mode)"
    $run "$C" machine run -n sd --root -- systemctl is-system-running --wait >/dev/null || true
    $run "$C" machine run -n sd --root -- sh -ec 'cat > /etc/systemd/system/hello.service <<UNIT
[Unit]
Description=hello
[Service]
ExecStart=/bin/sh -c "echo started > /run/hello; exec sleep infinity"
[Install]
WantedBy=multi-user.target
UNIT
systemctl enable hello.service 2>/dev/null' || fail "enable a unit ($mode)"
    src_id=$($run "$C" machine run -n sd -- cat /etc/machine-id)
    $run "$C" machine commit -m "hello enabled" sd localhost/debian:hello >/dev/null 2>"$T/err" ||
        fail "commit a running systemd machine ($mode): $(cat "$T/err")"
    [[ $($run "$C" machine inspect sd | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["status"])') == running ]] ||
        fail "the source machine stopped"
    $run "$C" machine create --name sd2 localhost/debian:hello >/dev/null || fail "the commit does not boot ($mode)"
    state=$($run "$C" machine run -n sd2 --root -- systemctl is-system-running --wait) || true
    [[ $state == running || $state == degraded ]] || fail "systemd in the commit: '$state'"
    [[ $($run "$C" machine run -n sd2 --root -- systemctl is-active hello.service) == active ]] ||
        fail "the unit enabled before the commit is not active ($mode)"
    [[ $($run "$C" machine run -n sd2 -- whoami) == "$($run whoami)" ]] || fail "provisioning in the commit"
    [[ $($run "$C" machine run -n sd2 -- cat /etc/machine-id) != "$src_id" ]] || fail "the machine id was committed"
    $run "$C" machine rm -f sd sd2 >/dev/null 2>&1
done
echo "PASS"
