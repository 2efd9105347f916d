#!/bin/bash
# SPDX-License-Identifier: MIT
# A Debian bookworm machine image built with `container build` from a Containerfile modelled on the
# reference's example (systemd, openssh-server, iproute2, curl, sudo from the Debian mirror through RUN
# apt-get, the mask lines, a custom /etc/machine/create-user.sh), then `machine create` from it: systemd
# reaches running (or degraded), the custom hook ran, the packages are there, the masked units are
# masked. As root and as the unprivileged user.
source "$(dirname "$0")/lib.sh"

is_root || skip "needs root: builds the Debian base image with mmdebstrap"
bash "$FIX/debian-rootfs.sh" "$T/systemd.tar" systemd >/dev/null
chmod 644 "$T/systemd.tar"
chmod 777 "$T"

ctx=$T/ctx
cp -r "$FIX/machine-image" "$ctx" # the Containerfile and its create-user.sh
chmod -R a+rX "$ctx"

for mode in ${BUILD_TEST_MODES:-$(machine_modes)}; do
    run=$(runner_for "$mode")
    on_exit "remove_all_machines '$run'"
    note "build the machine image ($mode)"
    $run "$C" image import "$T/systemd.tar" localhost/debian:base >/dev/null || fail "import ($mode)"
    start=$(date +%s)
    $run "$C" build --progress plain -t localhost/debian-machine:$mode "$ctx" >"$T/out" 2>"$T/err" ||
        fail "build ($mode): $(tail -30 "$T/err")"
    note "cold build: $(($(date +%s) - start)) s"
    start=$(date +%s)
    $run "$C" build --progress plain -t localhost/debian-machine:$mode "$ctx" >"$T/out2" 2>"$T/err" ||
        fail "rebuild ($mode): $(tail -30 "$T/err")"
    note "cached rebuild: $(($(date +%s) - start)) s"
    [[ $(cat "$T/out") == $(cat "$T/out2") ]] || fail "the unchanged rebuild gave another image"
    note "a machine from it boots to running, and the hook ran ($mode)"
    $run "$C" machine create --name deb localhost/debian-machine:$mode >/dev/null 2>"$T/err" ||
        fail "create ($mode): $(cat "$T/err"); boot log: $($run "$C" machine logs --boot deb 2>&1 | tail -20)"
    state=$($run "$C" machine run -n deb --root -- systemctl is-system-running --wait) || true
    [[ $state == running || $state == degraded ]] || fail "systemd: '$state'"
    [[ $($run "$C" machine run -n deb --root -- cat /etc/machine/hook-ran) == "custom hook for $($run whoami)" ]] ||
        fail "the custom create-user.sh did not run ($mode)"
    [[ $($run "$C" machine run -n deb -- whoami) == "$($run whoami)" ]] || fail "the hook's user ($mode)"
    $run "$C" machine run -n deb --root -- sh -ec 'test -x /usr/sbin/sshd; ip -V; curl --version; sudo -V' \
        >/dev/null || fail "packages missing ($mode)"
    [[ $($run "$C" machine run -n deb --root -- systemctl is-enabled console-getty.service) == masked ]] ||
        fail "console-getty not masked ($mode)"
    $run "$C" machine rm -f deb >/dev/null 2>&1
done
echo "PASS"
