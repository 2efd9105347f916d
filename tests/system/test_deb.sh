#!/bin/bash
# SPDX-License-Identifier: MIT
# The Debian package on a clean Debian system: `cpack -G DEB` makes container_VERSION_amd64.deb, which
# apt installs into a fresh Debian bookworm machine (its dependencies come from Debian's mirror), where
# `container --version` names the same commit as the binary under test and the man pages and completion
# scripts are in place; `apt-get purge` removes every file again.
source "$(dirname "$0")/lib.sh"

build=${BUILD_DIR:?set BUILD_DIR to the build directory}
is_root || skip "needs root: builds the Debian image with mmdebstrap"
have_test_user || skip "needs the test user $TEST_USER with subordinate ids (scripts/test.sh creates it)"
(cd "$T" && cpack -G DEB -B "$T/pkg" --config "$build/CPackConfig.cmake" >/dev/null) || fail "cpack -G DEB"
deb=$(ls "$T"/pkg/container_*_amd64.deb) || fail "no container_VERSION_amd64.deb in $T/pkg"
dpkg-deb -f "$deb" Depends | grep -q "uidmap" || fail "the package does not depend on uidmap"
bash "$FIX/debian-rootfs.sh" "$T/systemd.tar" systemd >/dev/null
chmod 644 "$T"/*.tar "$deb"
chmod 777 "$T"
run=run_as_user
on_exit "remove_all_machines run_as_user"
$run "$C" image import "$T/systemd.tar" localhost/debian:clean >/dev/null
$run "$C" machine create localhost/debian:clean --name clean >/dev/null || fail "create the clean machine"
inside() { $run "$C" machine run -n clean --root -- "$@"; }
inside sh -c 'cat >/tmp/container.deb' <"$deb" || fail "copy the package in"
inside sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /tmp/container.deb' >"$T/apt.log" 2>&1 ||
    fail "apt-get install of the package: $(tail -5 "$T/apt.log")"
[[ $(inside container --version) == "$("$C" --version)" ]] || fail "installed --version: $(inside container --version)"
for f in /usr/bin/container /usr/share/man/man1/container-machine-run.1.gz /usr/share/bash-completion/completions/container \
    /usr/share/zsh/vendor-completions/_container /usr/share/fish/vendor_completions.d/container.fish; do
    inside test -f "$f" || fail "$f not installed by the package"
done
inside sh -c 'command -v newuidmap' >/dev/null || fail "uidmap did not come with the package"
inside sh -c 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq container' >"$T/apt.log" 2>&1 ||
    fail "apt-get purge: $(tail -5 "$T/apt.log")"
! inside dpkg -s container >/dev/null 2>&1 || fail "container still installed after purge"
left=$(inside sh -c 'ls -d /usr/bin/container /usr/share/man/man1/container* /usr/share/bash-completion/completions/container 2>/dev/null' || true)
[[ -z $left ]] || fail "files left after purge: $left"
echo "PASS"
