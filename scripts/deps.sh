#!/bin/bash
# SPDX-License-Identifier: MIT
# Installs, from Debian's packages, everything the build, the tool and the test suite need.
set -euo pipefail
build=(build-essential cmake pkg-config libcli11-dev nlohmann-json3-dev libcurl4-openssl-dev libssl-dev
    libarchive-dev libfmt-dev libgtest-dev libzstd-dev libseccomp-dev)
# scripts/fuzz.sh: clang, its sanitizer and libFuzzer runtimes, and llvm-symbolizer for readable reports.
fuzz=(clang-14 libclang-rt-14-dev llvm-14)
runtime=(uidmap libseccomp2)
# buildah and runc: tests/system/test_build_interop.sh and bench/build.sh (runc because crun refuses this
# host's hybrid cgroups). scripts/test-hosts.sh (the QEMU host matrix) also needs QEMU, ssh, mkfs.ext4 -d and, when the binary links
# libraries beyond glibc, patchelf to bundle them for a newer host.
tests=(skopeo umoci podman buildah runc mmdebstrap busybox-static docker-registry zstd python3 tmux apache2-utils util-linux
    ca-certificates python3-cryptography openssl curl procps iproute2 bash-completion zsh fish man-db
    qemu-system-x86 openssh-client e2fsprogs patchelf)
# tests/system/test_machine_desktop.sh: a display, a compositor and a sound server started by the test, and
# the clients that look at them from the host.
desktop=(xvfb xauth weston pulseaudio pipewire pipewire-bin x11-apps x11-utils xdotool imagemagick wayland-utils pulseaudio-utils dbus)
missing=()
for p in "${build[@]}" "${fuzz[@]}" "${runtime[@]}" "${tests[@]}" "${desktop[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
