#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs the whole test suite as root on a fresh Debian 12 machine: installs packages, creates the
# unprivileged test user with subordinate ids, builds, and runs CTest (unit and system tests), then the
# fuzz targets (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "scripts/test.sh: run as root (it installs packages and creates a test user)" >&2; exit 1; }
bash scripts/deps.sh
user=${CONTAINER_TEST_USER:-ctrtest}
if ! id -u "$user" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$user"
fi
if ! grep -q "^$user:" /etc/subuid; then usermod --add-subuids 300000-365535 "$user"; fi
if ! grep -q "^$user:" /etc/subgid; then usermod --add-subgids 300000-365535 "$user"; fi
# A second user whose name has a dot, for provisioning (sudoers file names) tests.
dot_user=${CONTAINER_TEST_DOT_USER:-ctr.dot}
if ! id -u "$dot_user" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$dot_user"
fi
if ! grep -q "^$dot_user:" /etc/subuid; then usermod --add-subuids 400000-465535 "$dot_user"; fi
if ! grep -q "^$dot_user:" /etc/subgid; then usermod --add-subgids 400000-465535 "$dot_user"; fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j2
# The parsers of untrusted input under libFuzzer, ASan and UBSan: about 90 s of fuzzing after the build.
bash scripts/fuzz.sh
