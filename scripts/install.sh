#!/bin/bash
# SPDX-License-Identifier: MIT
# Builds and installs `container` into /usr/local, gets a Debian image with systemd, creates the machine
# `dev` from it and waits until systemd in it is up. Run as root on a fresh Debian 12 machine.
# The image is pulled when a registry is reachable ($DEV_IMAGE, default docker.io/jrei/systemd-debian:12);
# otherwise Debian bookworm with systemd is bootstrapped from Debian's mirror and imported.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
cmake --install build --prefix /usr/local >/dev/null
echo "installed $(/usr/local/bin/container --version)"
if ! container machine inspect dev >/dev/null 2>&1; then
    image=${DEV_IMAGE:-docker.io/jrei/systemd-debian:12}
    if err=$(container image pull "$image" 2>&1 >/dev/null); then
        echo "pulled $image"
    else
        echo "could not pull $image (${err#Error: }); bootstrapping Debian bookworm from the mirror"
        rootfs=$(mktemp /tmp/debian-bookworm.XXXXXX.tar)
        trap 'rm -f "$rootfs"' EXIT
        bash tests/fixtures/debian-rootfs.sh "$rootfs"
        image=localhost/debian:bookworm
        container image import "$rootfs" "$image"
    fi
    container image ls
    container machine create "$image" --name dev
fi
container machine run -n dev -- systemctl is-system-running --wait
