#!/bin/bash
# SPDX-License-Identifier: MIT
# Builds `container` and installs it as a Debian package (container_VERSION_amd64.deb), gets a Debian image with systemd, creates the machine
# `dev` from it and waits until systemd in it is up. Run as root on a fresh Debian 12 machine.
#
# The machine is made for the person who ran the script:
#   sudo bash scripts/install.sh      `dev` belongs to $SUDO_USER: rootless, in that user's own store
#   bash scripts/install.sh           as root (`su -` on a system without sudo): `dev` belongs to root
#   CONTAINER_USER=NAME bash scripts/install.sh    as root, for the user NAME
# A regular user needs subordinate ids and a cgroup to delegate (a login with a systemd user manager);
# the script checks both first and prints the fix for what is missing.
#
# The image is pulled when a registry is reachable ($DEV_IMAGE, default docker.io/jrei/systemd-debian:12);
# otherwise Debian bookworm with systemd is bootstrapped from Debian's mirror and imported.
# $CONTAINER_PREFIX installs into that prefix with `cmake --install` instead of the package.
set -euo pipefail
cd "$(dirname "$0")/.."
prog=install.sh
die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "run as root: 'sudo bash scripts/install.sh', or 'su -c \"bash scripts/install.sh\"' where there is no sudo"

user=${CONTAINER_USER:-}
if [[ -z $user && -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then user=$SUDO_USER; fi
user=${user:-root}
id -u "$user" >/dev/null 2>&1 || die "no user '$user' on this system"
uid=$(id -u "$user")
home=$(getent passwd "$user" | cut -d: -f6)

# A regular user's machine is rootless: check what it needs before building anything.
if [[ $uid != 0 ]]; then
    # The fix names the first 65536 ids above every range already given out.
    free=$(cat /etc/subuid /etc/subgid 2>/dev/null | awk -F: '$2 + $3 > m { m = $2 + $3 } END { print (m < 100000 ? 100000 : m) }')
    missing=()
    grep -q "^\($user\|$uid\):" /etc/subuid 2>/dev/null || missing+=(--add-subuids "$free-$((free + 65535))")
    grep -q "^\($user\|$uid\):" /etc/subgid 2>/dev/null || missing+=(--add-subgids "$free-$((free + 65535))")
    ((${#missing[@]} == 0)) ||
        die "$user has no subordinate ids for its machines' users; as root: usermod ${missing[*]} $user"
    # A systemd machine needs a cgroup the user may write: from the user's systemd manager (a scope per
    # machine), or one delegated by hand that this script's own cgroup is in.
    own=$(sed -n 's/^0:://p' /proc/self/cgroup)
    cg=/sys/fs/cgroup
    [[ $(stat -f -c %T "$cg" 2>/dev/null) == cgroup2fs ]] || cg=/sys/fs/cgroup/unified
    if [[ -S /run/user/$uid/systemd/private ]]; then
        :
    elif [[ ${CONTAINER_CGROUP_MANAGER:-} != systemd && -n $own ]] &&
        runuser -u "$user" -- test -w "$cg${own%/}/cgroup.procs"; then
        :
    elif [[ -d /run/systemd/system ]]; then
        die "$user has no systemd user manager running to delegate a cgroup to its machines; as root: loginctl enable-linger $user (or log in as $user once), then run this again"
    else
        die "this host runs no systemd to delegate a cgroup to $user; as root: mkdir $cg/$user && chown $user $cg/$user $cg/$user/cgroup.{procs,threads,subtree_control}, move this shell into it (echo \$\$ > $cg/$user/cgroup.procs), then run this again"
    fi
fi

bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
if [[ -n ${CONTAINER_PREFIX:-} ]]; then
    prefix=$CONTAINER_PREFIX
    cmake --install build --prefix "$prefix" >/dev/null
else
    # As the Debian package (`apt-get purge container` removes it again), under /usr.
    prefix=/usr
    rm -f build/container_*.deb
    (cd build && cpack -G DEB >/dev/null)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall "$(ls "$PWD"/build/container_*_*.deb)" >/dev/null
fi
ctr=$prefix/bin/container
echo "installed $("$ctr" --version)"

# Every `container` command below runs as $user, with that user's own environment.
as_user() {
    if [[ $uid == 0 ]]; then
        "$@"
    else
        runuser -u "$user" -- env -i "HOME=$home" "USER=$user" "LOGNAME=$user" "PATH=$prefix/bin:/usr/bin:/bin" \
            "XDG_RUNTIME_DIR=/run/user/$uid" ${CONTAINER_DATA_DIR:+"CONTAINER_DATA_DIR=$CONTAINER_DATA_DIR"} \
            ${CONTAINER_CGROUP_MANAGER:+"CONTAINER_CGROUP_MANAGER=$CONTAINER_CGROUP_MANAGER"} "$@"
    fi
}
if ! as_user "$ctr" machine inspect dev >/dev/null 2>&1; then
    image=${DEV_IMAGE:-docker.io/jrei/systemd-debian:12}
    if err=$(as_user "$ctr" image pull "$image" 2>&1 >/dev/null); then
        echo "pulled $image"
    else
        echo "could not pull $image (${err#Error: }); bootstrapping Debian bookworm from the mirror"
        tmp=$(mktemp -d /tmp/debian-bookworm.XXXXXX)
        trap 'rm -rf "$tmp"' EXIT
        chmod 755 "$tmp"
        bash tests/fixtures/debian-rootfs.sh "$tmp/rootfs.tar"
        image=localhost/debian:bookworm
        as_user "$ctr" image import "$tmp/rootfs.tar" "$image"
    fi
    as_user "$ctr" image ls
    (cd "$home" && as_user "$ctr" machine create "$image" --name dev)
fi
(cd "$home" && as_user "$ctr" machine run -n dev -- systemctl is-system-running --wait)
[[ $uid == 0 ]] || echo "the machine 'dev' is $user's: as $user, 'container machine run -n dev' gives a shell in it"
