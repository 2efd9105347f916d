#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs the whole test suite as root on a fresh Debian 12 machine: installs packages, creates the
# unprivileged test user with subordinate ids, builds, and runs CTest (unit and system tests), then the
# fuzz targets (scripts/fuzz.sh), then the host matrix in virtual machines (scripts/test-hosts.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "scripts/test.sh: run as root (it installs packages and creates a test user)" >&2; exit 1; }
bash scripts/deps.sh
# The test users, each with a home and 65536 subordinate ids of its own: `ctrtest` runs every rootless
# test; `ctr.dot` has a dot in its name (sudoers file names); `ctrnodeleg` gets no cgroup delegated
# (tests/system/test_no_delegation.sh).
ensure_user() { # ensure_user NAME FIRST_SUBID
    local name=$1 first=$2
    id -u "$name" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$name"
    grep -q "^$name:" /etc/subuid || usermod --add-subuids "$first-$((first + 65535))" "$name"
    grep -q "^$name:" /etc/subgid || usermod --add-subgids "$first-$((first + 65535))" "$name"
}
ensure_user "${CONTAINER_TEST_USER:-ctrtest}" 300000
ensure_user "${CONTAINER_TEST_DOT_USER:-ctr.dot}" 400000
ensure_user "${CONTAINER_TEST_NODELEG_USER:-ctrnodeleg}" 500000
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j2
# The parsers of untrusted input under libFuzzer, ASan and UBSan: about 90 s of fuzzing after the build.
bash scripts/fuzz.sh
# Real systemd hosts in QEMU (TCG here): bookworm and trixie, every scenario, as alice, bob and root.
# About 12 minutes with the host images cached in /var/cache/container-tests/hosts, 20 without.
bash scripts/test-hosts.sh --keep-going
