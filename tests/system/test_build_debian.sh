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
mkdir -p "$ctx"
cat >"$ctx/Containerfile" <<'CONTAINERFILE'
FROM localhost/debian:base
ENV container=container
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssh-server iproute2 curl sudo \
 && rm -rf /var/lib/apt/lists/*
RUN systemctl mask dev-hugepages.mount sys-fs-fuse-connections.mount systemd-update-utmp.service \
        systemd-tmpfiles-setup.service console-getty.service \
 && systemctl set-default multi-user.target \
 && : >/etc/machine-id
COPY --chmod=0755 create-user.sh /etc/machine/create-user.sh
STOPSIGNAL SIGRTMIN+3
CONTAINERFILE
cat >"$ctx/create-user.sh" <<'HOOK'
#!/bin/sh
# The image's own first-boot hook: records that it ran, then makes the user as the built-in one would.
set -eu
echo "custom hook for $CONTAINER_USER" >/etc/machine/hook-ran
if ! id -u "$CONTAINER_USER" >/dev/null 2>&1; then
    getent group "$CONTAINER_GID" >/dev/null || groupadd -g "$CONTAINER_GID" "$CONTAINER_USER"
    useradd -M -d "$CONTAINER_HOME" -u "$CONTAINER_UID" -g "$CONTAINER_GID" -s /bin/sh "$CONTAINER_USER"
fi
echo "$CONTAINER_USER ALL=(ALL) NOPASSWD:ALL" >"/etc/sudoers.d/machine-user"
HOOK
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
