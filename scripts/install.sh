#!/bin/bash
# SPDX-License-Identifier: MIT
# Builds and installs `container` into /usr/local, makes a Debian bookworm image with systemd from
# Debian's mirror (no registry needed), creates the machine `dev` from it and waits until systemd in it
# is up. Run as root on a fresh Debian 12 machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
cmake --install build --prefix /usr/local >/dev/null
echo "installed $(/usr/local/bin/container --version)"
rootfs=$(mktemp /tmp/debian-bookworm.XXXXXX.tar)
trap 'rm -f "$rootfs"' EXIT
bash tests/fixtures/debian-rootfs.sh "$rootfs"
container image import "$rootfs" localhost/debian:bookworm
container image ls
container machine inspect dev >/dev/null 2>&1 || container machine create localhost/debian:bookworm --name dev
container machine run -n dev -- systemctl is-system-running --wait
