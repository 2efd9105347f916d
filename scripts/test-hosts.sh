#!/bin/bash
# SPDX-License-Identifier: MIT
# Host matrix: runs `container` on real systemd hosts, each a QEMU virtual machine booted from a small
# Debian image (bookworm, trixie), and checks what the suite's systemd-less host cannot: the delegated
# scope in the user's (or root's) systemd manager, limits enforced through it, stop leaving nothing
# behind, a machine outliving its user's logout under linger, and users not seeing each other's machines.
#
#   sudo bash scripts/test-hosts.sh [--rows bookworm,trixie] [--keep-going]
#
# Each row is a host, each column a scenario run over ssh as `alice`, `bob` (regular users with
# subordinate ids; each ssh is a real login, with a logind session and the user's systemd manager) or
# root; the table at the end says PASS, FAIL or SKIP per cell (reasons below it) with the timings, and the
# exit status is 0 only when every cell passed. Without --keep-going the first failure stops the run.
# Logs (guest console, one file per cell, the guest journal of a failed cell) stay in the temp directory
# printed at the end.
#
# Host images are built from Debian's mirror with mmdebstrap into a directory and `mkfs.ext4 -d` (no loop
# mounts), cached in $CONTAINER_TEST_CACHE/hosts/ under a hash of their recipe, and booted with
# -snapshot so they stay pristine. The machine image used inside is the bookworm systemd rootfs of
# tests/fixtures/debian-rootfs.sh, baked into the host image. The binary under test is copied in at run
# time through a read-only 9p share.
#
# Needs root, qemu-system-x86, mmdebstrap, e2fsprogs, openssh-client and, to bundle libraries for a newer
# host, patchelf: scripts/deps.sh installs them.
# Env: CONTAINER_BIN (default <repo>/build/container, built with cmake when missing),
#      CONTAINER_TEST_CACHE (default /var/cache/container-tests), DEBIAN_MIRROR (default: the host's),
#      HOSTS_VM_MEMORY (MiB, default 1536), HOSTS_VM_CPUS (default 2), HOSTS_DISK_SIZE (default 6G),
#      HOSTS_ACCEL (kvm|tcg; default kvm when /dev/kvm opens and a kernel boots under it),
#      HOSTS_BOOT_TIMEOUT (s, default 900),
#      HOSTS_READY_TIMEOUT (CONTAINER_READY_TIMEOUT in the guests, s, default 900: TCG is slow).
# The guest scripts are single-quoted on purpose (they expand in the guest); cleanup runs from a trap.
# shellcheck disable=SC2016,SC2317
set -euo pipefail

prog=test-hosts.sh
# Bump when the image recipe changes in a way the recipe text below does not show.
RECIPE_VERSION=1
ALL_ROWS=(bookworm trixie)
COLUMNS_ALL=(host alice.create alice.run alice.scope alice.limits alice.stop alice.linger
    bob.isolated bob.create bob.run bob.scope root.create root.run root.scope root.limits root.stop)

die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }
log() { printf '%s: [%(%H:%M:%S)T] %s\n' "$prog" -1 "$*" >&2; }
usage() { sed -n '3,/^# The guest scripts/{/^# The guest scripts/d;s/^# \{0,1\}//;p}' "$0"; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rows=("${ALL_ROWS[@]}")
keep_going=0
while (($#)); do
    case $1 in
    --rows) (($# >= 2)) || die "--rows needs a value (e.g. bookworm,trixie)"
        IFS=, read -r -a rows <<<"$2"; shift ;;
    --rows=*) IFS=, read -r -a rows <<<"${1#--rows=}" ;;
    --keep-going) keep_going=1 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done
((${#rows[@]})) || die "--rows names no row"
for r in "${rows[@]}"; do
    [[ " ${ALL_ROWS[*]} " == *" $r "* ]] || die "unknown row '$r' (rows: ${ALL_ROWS[*]})"
done
[[ $(id -u) == 0 ]] || die "run as root (mmdebstrap and the image cache need it)"
for tool in qemu-system-x86_64 mmdebstrap mkfs.ext4 ssh ssh-keygen ss flock sha256sum; do
    command -v "$tool" >/dev/null || die "$tool is missing (bash scripts/deps.sh installs it)"
done

cache=${CONTAINER_TEST_CACHE:-/var/cache/container-tests}/hosts
bin=${CONTAINER_BIN:-$repo/build/container}
vm_memory=${HOSTS_VM_MEMORY:-1536}
vm_cpus=${HOSTS_VM_CPUS:-2}
disk_size=${HOSTS_DISK_SIZE:-6G}
boot_timeout=${HOSTS_BOOT_TIMEOUT:-900}
ready_timeout=${HOSTS_READY_TIMEOUT:-900}
accel=${HOSTS_ACCEL:-}
accel_probed=${HOSTS_ACCEL:+yes} # a chosen accelerator is used as it is
if [[ -z $accel ]]; then
    accel=tcg
    # Only a character device that opens read-write (<> would create a missing file).
    if [[ -c /dev/kvm ]] && { exec 3<>/dev/kvm; } 2>/dev/null; then accel=kvm; exec 3>&-; fi
fi

work=$(mktemp -d /tmp/test-hosts.XXXXXX)
chmod 0755 "$work"
logs=$work/logs
mkdir -p "$logs"
qemu_pid=""
holders=()
cleanup() {
    local p
    for p in "${holders[@]}"; do kill "$p" 2>/dev/null || true; done
    if [[ -n $qemu_pid ]]; then kill "$qemu_pid" 2>/dev/null || true; wait "$qemu_pid" 2>/dev/null || true; fi
    rm -rf -- "$work/payload" "$work/debian.tar"
}
trap cleanup EXIT
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------------
# Inputs shared by the rows: the binary, the machine image for inside, the ssh key.

if [[ ! -x $bin ]]; then
    [[ -z ${CONTAINER_BIN:-} ]] || die "CONTAINER_BIN=$bin is not an executable"
    log "building $bin with cmake"
    cmake -S "$repo" -B "$repo/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    nice -n 10 cmake --build "$repo/build" -j"$(nproc)" --target container >/dev/null
fi
[[ -x $bin ]] || die "no binary at $bin"

mkdir -p "$cache"
chmod 0755 "$cache"
# One key for every run (the images authorize it), made once under the cache's lock.
key=$cache/id_ed25519
(
    flock 9
    [[ -f $key ]] || ssh-keygen -q -t ed25519 -N '' -C test-hosts -f "$key"
) 9>"$cache/.lock"

log "getting the Debian bookworm systemd rootfs (tests/fixtures/debian-rootfs.sh)"
nice -n 10 bash "$repo/tests/fixtures/debian-rootfs.sh" "$work/debian.tar" systemd
debian_tar_sha=$(sha256sum "$work/debian.tar" | cut -d' ' -f1)

# shellcheck source=tests/fixtures/debian-mirror.sh
source "$repo/tests/fixtures/debian-mirror.sh"

# ---------------------------------------------------------------------------------------------------
# Host images.

# Packages of a host. The binary links only glibc and dlopen()s libseccomp.so.2, libcrypto.so.3,
# libcurl.so.4 and libarchive.so.13 (src/base/lazy_lib.*, src/registry/http.cpp): the packages that
# ship those sonames go in (on trixie under their t64 names; the sonames are the same).
host_packages() {
    local p=(linux-image-amd64 systemd systemd-sysv libpam-systemd dbus dbus-user-session openssh-server
        uidmap libseccomp2 procps iproute2 util-linux kmod)
    case $1 in
    bookworm) p+=(libarchive13 libcurl4 libssl3) ;;
    trixie) p+=(libarchive13t64 libcurl4t64 libssl3t64) ;;
    esac
    local IFS=,
    printf '%s\n' "${p[*]}"
}

# Turns the bootstrapped tree $1 (suite $2) into a host: network, sshd, users, the machine image.
customize_tree() {
    local d=$1 suite=$2 u pub
    pub=$(cat "$key.pub")
    printf 'hosts-%s\n' "$suite" >"$d/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 hosts-%s\n' "$suite" >"$d/etc/hosts"
    printf '/dev/vda / ext4 rw 0 1\n' >"$d/etc/fstab"
    # QEMU user-mode networking: the guest is always 10.0.2.15.
    mkdir -p "$d/etc/systemd/network"
    printf '[Match]\nName=en* eth*\n\n[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\nDNS=10.0.2.3\n' \
        >"$d/etc/systemd/network/10-qemu.network"
    chroot "$d" systemctl enable systemd-networkd.service >/dev/null 2>&1
    # Nothing that wakes up on its own and competes with the tests for the emulated CPUs.
    chroot "$d" systemctl mask systemd-networkd-wait-online.service apt-daily.timer \
        apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer dpkg-db-backup.timer >/dev/null 2>&1
    mkdir -p "$d/etc/ssh/sshd_config.d"
    printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n' \
        >"$d/etc/ssh/sshd_config.d/test-hosts.conf"
    chroot "$d" useradd --create-home --shell /bin/bash --uid 1000 alice
    chroot "$d" useradd --create-home --shell /bin/bash --uid 1001 bob
    # No password, but not locked either ('*'), so sshd lets the key in.
    chroot "$d" usermod -p '*' alice
    chroot "$d" usermod -p '*' bob
    printf 'alice:100000:65536\nbob:165536:65536\n' >"$d/etc/subuid"
    printf 'alice:100000:65536\nbob:165536:65536\n' >"$d/etc/subgid"
    for u in root alice bob; do
        local h=/home/$u
        [[ $u == root ]] && h=/root
        install -d -m 0700 "$d$h/.ssh"
        printf '%s\n' "$pub" >"$d$h/.ssh/authorized_keys"
        chmod 0600 "$d$h/.ssh/authorized_keys"
        chroot "$d" chown -R "$u:$u" "$h/.ssh"
    done
    install -d -m 0755 "$d/opt/container-test"
    install -m 0644 "$work/debian.tar" "$d/opt/container-test/debian-bookworm.tar"
}

# Everything that decides what an image holds; its hash names the cached image.
image_recipe() {
    local suite=$1
    printf 'test-hosts.sh recipe v%s\nsuite %s\nmirror %s\npackages %s\ndisk %s\nkey %s\ndebian.tar %s\n' \
        "$RECIPE_VERSION" "$suite" "$(debian_mirror "$suite" bookworm)" "$(host_packages "$suite")" \
        "$disk_size" "$(cat "$key.pub")" "$debian_tar_sha"
    declare -f customize_tree
}

# Prints the highest version among existing files $@.
newest() { local f; for f in "$@"; do [[ -e $f ]] && printf '%s\n' "$f"; done | sort -V | tail -n 1 | grep .; }

# Sets image_dir to the cached image of suite $1 (disk.img, vmlinuz, initrd.img), building it if needed,
# and image_note to what that took.
ensure_image() {
    local suite=$1 hash tmp t0=$SECONDS mirror
    hash=$(image_recipe "$suite" | sha256sum | cut -c1-16)
    image_dir=$cache/$suite-$hash
    if [[ -f $image_dir/disk.img ]]; then image_note="cached"; return; fi
    exec 9>"$cache/.lock"
    flock 9
    if [[ ! -f $image_dir/disk.img ]]; then
        mirror=$(debian_mirror "$suite" bookworm)
        log "building the $suite host image from $mirror -> $image_dir"
        tmp=$(mktemp -d "$cache/.build-$suite.XXXXXX")
        # A killed build never leaves a half-made image behind.
        # shellcheck disable=SC2064
        trap "rm -rf -- '$tmp'; cleanup" EXIT
        nice -n 10 mmdebstrap --variant=minbase --include="$(host_packages "$suite")" \
            --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
            --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
            "$suite" "$tmp/tree" "$mirror" </dev/null >"$logs/mmdebstrap-$suite.log" 2>&1 ||
            die "mmdebstrap $suite failed; see $logs/mmdebstrap-$suite.log"
        customize_tree "$tmp/tree" "$suite"
        newest "$tmp"/tree/boot/vmlinuz-* >/dev/null || die "no kernel in the $suite image"
        newest "$tmp"/tree/boot/initrd.img-* >/dev/null || die "no initrd in the $suite image"
        cp -- "$(newest "$tmp"/tree/boot/vmlinuz-*)" "$tmp/vmlinuz"
        cp -- "$(newest "$tmp"/tree/boot/initrd.img-*)" "$tmp/initrd.img"
        nice -n 10 mkfs.ext4 -q -F -L root -d "$tmp/tree" "$tmp/disk.img" "$disk_size" >/dev/null ||
            die "mkfs.ext4 -d for $suite failed"
        rm -rf -- "$tmp/tree"
        image_recipe "$suite" >"$tmp/recipe.txt"
        # Older images of this suite (other recipes) go: each is a few hundred MB.
        rm -rf -- "$cache/$suite"-*
        mv -- "$tmp" "$image_dir"
        trap cleanup EXIT
        image_note="built $((SECONDS - t0))s"
    else
        image_note="cached"
    fi
    exec 9>&-
}

# ---------------------------------------------------------------------------------------------------
# The binary for a row, staged in $work/payload (shared read-only with the guest over 9p).

stage_payload() {
    local suite=$1 lib libs=()
    rm -rf -- "$work/payload"
    mkdir -p "$work/payload"
    cp -- "$bin" "$work/payload/container"
    if [[ $suite != bookworm ]]; then
        # The binary is built on bookworm. On a newer host it is bundled with the non-glibc libraries it
        # links, from this (bookworm) host, in /usr/local/lib/container, found through an rpath of
        # $ORIGIN/../lib/container set on the copy with patchelf: a library's soname can differ there (the
        # libraries are what `ldd` lists, so the whole closure, less glibc's own).
        # Today the binary links only glibc (newer glibcs run it) and dlopen()s its other libraries by
        # soname, which trixie ships under the same sonames (host_packages), so there is nothing to bundle.
        while read -r lib; do
            [[ -n $lib ]] || continue
            # glibc's own (dpkg knows them by the path ldd shows or, with merged /usr, the resolved one).
            { dpkg -S "$lib" || dpkg -S "$(readlink -f "$lib")"; } 2>/dev/null | grep -q '^libc6[:,]' && continue
            libs+=("$lib")
        done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }')
        if ((${#libs[@]})); then
            command -v patchelf >/dev/null || die "patchelf is missing (bash scripts/deps.sh installs it)"
            mkdir -p "$work/payload/lib"
            cp -L -- "${libs[@]}" "$work/payload/lib/"
            # DT_RPATH (not RUNPATH): it also applies to the bundled libraries' own dependencies.
            patchelf --force-rpath --set-rpath '$ORIGIN/../lib/container' "$work/payload/container"
            log "bundled for $suite: ${libs[*]##*/}"
        fi
    fi
    chmod -R a+rX "$work/payload"
}

# ---------------------------------------------------------------------------------------------------
# The VM.

ssh_port=""
gssh() {
    local user=$1
    shift
    ssh -i "$key" -p "$ssh_port" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o LogLevel=ERROR -o IdentitiesOnly=yes -o ConnectTimeout=30 -o ServerAliveInterval=20 \
        -o ServerAliveCountMax=15 "$user@127.0.0.1" "$@"
}

free_port() {
    local p
    for _ in {1..100}; do
        p=$((20000 + RANDOM % 40000))
        [[ -z $(ss -Htan "sport = :$p") ]] && { echo "$p"; return; }
    done
    die "no free local port for ssh"
}

# Boots $image_dir with a fresh overlay; sets qemu_pid, ssh_port, boot_seconds. Returns 1 (with a
# reason in boot_error) when the guest does not answer ssh in time.
# A /dev/kvm that opens is not one that runs guests: under some nested hypervisors the guest never
# prints a line. Once, with the first kernel: boot it without a root file system (it panics and QEMU
# exits, in about 2 s under KVM and 5 s under TCG); no "Linux version" on its console within 30 s means
# TCG for the whole run.
probe_accel() {
    [[ -n $accel_probed ]] && return 0
    accel_probed=yes
    [[ $accel == kvm ]] || return 0
    local out=$logs/kvm-probe.console.log
    timeout 30 qemu-system-x86_64 -accel kvm -cpu max -m 256 -nodefaults -no-user-config -display none \
        -no-reboot -serial "file:$out" -monitor none -kernel "$1" -append "console=ttyS0 panic=-1" \
        </dev/null >/dev/null 2>&1 || true
    if ! grep -q "Linux version" "$out" 2>/dev/null; then
        log "/dev/kvm opens, but a guest under KVM printed nothing in 30 s: using TCG"
        accel=tcg
    fi
}

start_vm() {
    local suite=$1 t0=$SECONDS
    probe_accel "$image_dir/vmlinuz"
    ssh_port=$(free_port)
    local cmdline="root=/dev/vda rootfstype=ext4 rw console=ttyS0 systemd.unified_cgroup_hierarchy=1"
    cmdline+=" systemd.firstboot=off net.ifnames=0 fsck.mode=skip panic=-1"
    local qemu=(qemu-system-x86_64 -name "test-hosts-$suite" -machine q35 -accel "$accel" -cpu max
        -smp "$vm_cpus" -m "$vm_memory" -nodefaults -no-user-config -display none -no-reboot
        -serial "file:$logs/$suite.console.log" -monitor none
        -kernel "$image_dir/vmlinuz" -initrd "$image_dir/initrd.img" -append "$cmdline"
        -drive "file=$image_dir/disk.img,format=raw,if=virtio,cache=unsafe" -snapshot
        -nic "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:$ssh_port-:22"
        -virtfs "local,path=$work/payload,mount_tag=payload,security_model=none,readonly=on"
        -device virtio-rng-pci)
    log "$suite: booting ($accel, ${vm_cpus} CPUs, ${vm_memory} MiB); console: $logs/$suite.console.log"
    printf '%q ' "${qemu[@]}" >"$logs/$suite.qemu.cmd"
    "${qemu[@]}" </dev/null >"$logs/$suite.qemu.log" 2>&1 &
    qemu_pid=$!
    while ((SECONDS - t0 < boot_timeout)); do
        if ! kill -0 "$qemu_pid" 2>/dev/null; then
            boot_error="QEMU exited: $(tail -n1 "$logs/$suite.qemu.log" 2>/dev/null)$(tail -n1 "$logs/$suite.console.log" 2>/dev/null)"
            qemu_pid=""
            return 1
        fi
        if gssh root true </dev/null >/dev/null 2>&1; then
            boot_seconds=$((SECONDS - t0))
            return 0
        fi
        sleep 5
    done
    boot_error="no ssh after ${boot_timeout}s (console: $logs/$suite.console.log)"
    return 1
}

stop_vm() {
    local p
    for p in "${holders[@]}"; do kill "$p" 2>/dev/null || true; done
    holders=()
    [[ -n $qemu_pid ]] || return 0
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=""
}

# A login of user $1 held open (a developer's terminal), so the user's manager and machines stay while the
# cells log in and out. Ended by closing its stdin: the remote `cat` sees EOF and the session closes.
declare -A hold_fd
hold_session() {
    local user=$1 fifo=$work/hold.$1 fd
    rm -f "$fifo"
    mkfifo "$fifo"
    gssh "$user" 'cat >/dev/null' <"$fifo" >/dev/null 2>&1 &
    holders+=($!)
    exec {fd}>"$fifo"
    hold_fd[$user]=$fd
}
release_session() {
    [[ -n ${hold_fd[$1]:-} ]] || return 0
    eval "exec ${hold_fd[$1]}>&-"
    unset "hold_fd[$1]"
}

# ---------------------------------------------------------------------------------------------------
# Cells.

declare -A result reason timing info
stopped=""   # set after the first failure unless --keep-going

set_cell() { result[$row/$1]=$2; reason[$row/$1]=${3:-}; }

# What every guest script starts with.
guest_lib=$(cat <<EOF
set -u
export PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin CONTAINER_READY_TIMEOUT=$ready_timeout
EOF
)
guest_lib+=$(cat <<'EOF'

fail() { printf 'FAIL: %s\n' "$*"; exit 1; }
# x CMD...: runs CMD with no stdin, logs it; its output (stdout and stderr) in $out, its status in $rc.
x() { printf '+ %s\n' "$*"; out=$("$@" </dev/null 2>&1); rc=$?; [ -z "$out" ] || printf '%s\n' "$out"
      [ "$rc" = 0 ] || printf '(exit %s)\n' "$rc"; }
last() { printf '%s\n' "$1" | grep -v '^$' | tail -n 1; }
ms() { date +%s%3N; }
if [ "$(id -u)" = 0 ]; then
    data=/var/lib/container; sc() { systemctl "$@"; }
else
    data=${XDG_DATA_HOME:-$HOME/.local/share}/container; sc() { systemctl --user "$@"; }
fi
status_of() { container machine inspect "$1" 2>/dev/null | sed -n 's/^ *"status": *"\([a-z]*\)".*/\1/p' | head -n 1; }
state_field() { sed -n "s/^ *\"$2\": *\"\{0,1\}\([^\",]*\).*/\1/p" "$data/machines/$1/state.json" 2>/dev/null; }
expect_status() { local s; s=$(status_of "$1"); [ "$s" = "$2" ] || fail "${3:-}machine $1 is '${s:-?}', expected $2"; }
EOF
)

# guest USER SCRIPT: runs SCRIPT (after guest_lib) in the guest as USER over ssh, a login of its own.
guest() {
    gssh "$1" "bash -c $(printf '%q' "$guest_lib"$'\n'"$2")" </dev/null
}

# cell COLUMN "NEEDED COLUMNS" CMD...: runs CMD on the host (usually `guest USER SCRIPT`), its output in the
# cell's log. PASS when it exits 0, else FAIL with the last "FAIL:" line. Lines "TIME name ms" are timings.
cell() {
    local col=$1 needs=$2 n out rc=0 why
    out=$logs/$row.$col.log
    shift 2
    if [[ -n $stopped ]]; then set_cell "$col" SKIP "not run: $stopped failed (--keep-going runs on)"; return 0; fi
    for n in $needs; do
        if [[ ${result[$row/$n]:-} != PASS ]]; then set_cell "$col" SKIP "needs $n"; return 0; fi
    done
    log "$row: $col"
    "$@" >"$out" 2>&1 || rc=$?
    while read -r _ n ms; do timing[$row/$n]=$ms; done < <(grep '^TIME ' "$out" || true)
    while read -r _ n v; do info[$row/$n]=$v; done < <(grep '^INFO ' "$out" || true)
    if ((rc == 0)); then set_cell "$col" PASS; return 0; fi
    why=$(grep '^FAIL: ' "$out" | tail -n 1 | cut -c7-)
    [[ -n $why ]] || why="exit $rc: $(grep -v '^$' "$out" | tail -n 1)"
    set_cell "$col" FAIL "$why (log: $out)"
    log "$row: $col FAIL: $why"
    # What the guest saw around the failure.
    gssh root 'journalctl -b --no-pager -n 400; for f in /var/lib/container/machines/*/boot.log /home/*/.local/share/container/machines/*/boot.log; do [ -f "$f" ] && { echo "== $f"; tail -n 60 "$f"; }; done' \
        </dev/null >"$logs/$row.$col.journal" 2>&1 || true
    ((keep_going)) || stopped="$row $col"
    return 0
}

# ---------------------------------------------------------------------------------------------------
# Scenarios. $1 of each guest script's functions is the machine name; the user is whoever runs it.

# 1: create a Debian systemd machine; inspect and ls show it running.
sc_create='
cd ~
if ! container image inspect localhost/debian:bookworm >/dev/null 2>&1; then
    t0=$(ms); x container image import /opt/container-test/debian-bookworm.tar localhost/debian:bookworm
    [ $rc = 0 ] || fail "image import: $(last "$out")"; echo "TIME import $(( $(ms) - t0 ))"
fi
t0=$(ms); x container machine create localhost/debian:bookworm --name dev
[ $rc = 0 ] || fail "machine create: $(last "$out")"; echo "TIME create $(( $(ms) - t0 ))"
expect_status dev running "after create: "
x container machine ls
printf "%s\n" "$out" | grep -Eq "^dev .* running( |$)" || fail "machine ls does not show dev running: $(printf "%s" "$out" | grep "^dev" || echo no dev row)"
'
# 2: who, where and which home a command inside has.
sc_run='
mkdir -p ~/work/sub && cd ~/work/sub
x container machine run -n dev -- whoami
[ $rc = 0 ] && [ "$out" = "$(id -un)" ] || fail "whoami inside: $(last "$out") (exit $rc), expected $(id -un)"
x container machine run -n dev -- pwd
[ $rc = 0 ] && [ "$out" = "$HOME/work/sub" ] || fail "pwd inside: $(last "$out") (exit $rc), expected $HOME/work/sub"
x container machine run -n dev -- sh -c "echo \$HOME"
[ $rc = 0 ] && [ "$out" = "$HOME" ] || fail "HOME inside: $(last "$out") (exit $rc), expected $HOME"
'
# 3: the machine runs in the delegated scope container-machine-dev.scope of the caller'"'"'s manager.
sc_scope='
x sc status --no-pager container-machine-dev.scope
[ $rc = 0 ] || fail "systemctl status container-machine-dev.scope: exit $rc: $(printf "%s\n" "$out" | head -n 1)"
x sc show -p Delegate --value container-machine-dev.scope
[ "$out" = yes ] || fail "scope Delegate=$out, expected yes"
init=$(state_field dev initPid)
[ -n "$init" ] || fail "no initPid in state.json"
x cat /proc/$init/cgroup
printf "%s\n" "$out" | grep -q "^0::.*/container-machine-dev\.scope/machine-dev\(/\|$\)" ||
    fail "init (pid $init) is not in the scope: $(last "$out")"
'
# 4: cpus=1 memory=1G (the smallest `set` takes) after a restart: nproc is 1, 1200M is OOM-killed, the
# machine stays up.
sc_limits='
x container machine set -n dev cpus=1 memory=1G
[ $rc = 0 ] || fail "machine set: $(last "$out")"
x container machine stop dev
[ $rc = 0 ] || fail "machine stop: $(last "$out")"
x container machine start dev
[ $rc = 0 ] || fail "machine start: $(last "$out")"
expect_status dev running "after start: "
x container machine inspect dev
printf "%s\n" "$out" | tr -d " \n" | grep -q "\"notEnforced\":\[\]" || fail "limits not enforced: $(printf "%s\n" "$out" | tr -d " \n" | grep -o "\"notEnforced\":\[[^]]*\]")"
x container machine run -n dev -- nproc
[ "$out" = 1 ] || fail "nproc inside: $(last "$out") (exit $rc), expected 1"
cg=$(state_field dev cgroup)
x cat "$cg/memory.max" "$cg/cpu.max"
[ "$(head -n 1 "$cg/memory.max")" = 1073741824 ] || fail "memory.max of $cg: $(head -n 1 "$cg/memory.max" 2>&1)"
before=$(sed -n "s/^oom_kill //p" "$cg/memory.events")
x container machine run -n dev -- sh -c "head -c 1200M /dev/zero | tail >/dev/null"
[ $rc = 137 ] || fail "1200M with memory=1G: exit $rc, expected 137 (killed): $(last "$out")"
after=$(sed -n "s/^oom_kill //p" "$cg/memory.events")
[ "${after:-0}" -gt "${before:-0}" ] || fail "memory.events oom_kill $before -> $after: not an OOM kill"
expect_status dev running "after the OOM kill: "
x container machine run -n dev -- true
[ $rc = 0 ] || fail "run true after the OOM kill: $(last "$out")"
'
# 5: stop leaves no scope, no cgroup, no mount, no process.
sc_stop='
cg=$(state_field dev cgroup)
sup=$(state_field dev supervisorPid)
x container machine stop dev
[ $rc = 0 ] || fail "machine stop: $(last "$out")"
expect_status dev stopped "after stop: "
x sc list-units --all --no-legend --no-pager "container-machine-*"
[ -z "$out" ] || fail "units left: $(last "$out")"
# systemd trims the scope cgroup on its own time: give it 10 s.
for i in 1 2 3 4 5 6 7 8 9 10; do [ -z "$cg" ] || [ ! -e "$cg" ] && break; sleep 1; done
[ -z "$cg" ] || [ ! -e "$cg" ] || fail "cgroup left 10 s after stop: $cg ($(find "$cg" -mindepth 1 -type d | wc -l) below it)"
[ -z "$sup" ] || ! kill -0 "$sup" 2>/dev/null || fail "supervisor $sup still runs"
if grep -F "$data" /proc/mounts; then fail "mounts of $data left in /proc/mounts"; fi
left=$(grep -lF "$data" /proc/[0-9]*/mountinfo 2>/dev/null)
[ -z "$left" ] || fail "mounts of $data left in $(echo $left)"
'

# bob sees nothing of alice's: not her machine, not her store; a run of "dev" is not her machine.
sc_isolated='
x container machine ls -q
[ $rc = 0 ] || fail "machine ls: $(last "$out")"
[ -z "$out" ] || fail "bob lists machines: $(echo $out)"
x container machine inspect dev
[ $rc != 0 ] || fail "bob can inspect a machine dev: $(last "$out")"
x container machine run -n dev -- whoami
[ $rc != 0 ] || fail "bob ran a command in a machine dev, as: $(last "$out")"
case $out in *"not found"*|*"no such"*|*"No such"*) ;; *) fail "run -n dev as bob: not a no-such-machine error: $(last "$out")" ;; esac
case $out in *alice*) fail "run -n dev as bob mentions alice: $(last "$out")" ;; esac
x ls /home/alice/.local/share/container
[ $rc != 0 ] || fail "bob can list alice'"'"'s data directory"
'

# Waits until logind lists no login session of user $1 (one is gone only once all its processes are). The
# user manager's own session (class "manager", systemd >= 256, kept by linger) is not a login.
wait_no_session='
logins() {
    local id
    for id in $(loginctl list-sessions --no-legend | awk -v u="$1" "\$3 == u { print \$1 }"); do
        case $(loginctl show-session "$id" -p Class --value 2>/dev/null) in manager*) ;; *) echo "$id" ;; esac
    done
}
wait_no_session() {
    local i
    for i in $(seq 180); do
        [ -n "$(logins "$1")" ] || return 0
        sleep 1
    done
    fail "$1 still has a login session after 180 s: $(loginctl list-sessions --no-legend | awk -v u="$1" "\$3 == u" | head -n 1)"
}
'
# 6: linger. Root enables it; alice starts the machine in a login of its own and logs out; once logind has
# no session of hers and her manager would have been stopped without linger (UserStopDelaySec=10 s), the
# machine's init must still run, in its scope.
linger_scenario() {
    guest root "$wait_no_session"'
wait_no_session alice
x loginctl enable-linger alice
[ $rc = 0 ] || fail "enable-linger: $(last "$out")"
' || return
    guest alice '
x container machine start dev
[ $rc = 0 ] || fail "machine start: $(last "$out")"
expect_status dev running "after start: "
' || return
    guest root "$wait_no_session"'
wait_no_session alice
sleep 15
as_alice() { runuser -u alice -- env XDG_RUNTIME_DIR=/run/user/$(id -u alice) CONTAINER_READY_TIMEOUT=$CONTAINER_READY_TIMEOUT "$@"; }
x as_alice container machine ls
printf "%s\n" "$out" | grep -Eq "^dev .* running( |$)" || fail "after logout: $(printf "%s\n" "$out" | grep "^dev" || echo "no dev row")"
x as_alice systemctl --user is-active container-machine-dev.scope
[ "$out" = active ] || fail "scope after logout: $out"
init=$(sed -n "s/^ *\"initPid\": *\([0-9]*\).*/\1/p" /home/alice/.local/share/container/machines/dev/state.json)
[ -n "$init" ] && kill -0 "$init" || fail "init ($init) of the machine is gone after logout"
x as_alice container machine run -n dev -- true
[ $rc = 0 ] || fail "run after logout: $(last "$out")"
'
}

run_row() {
    local suite=$1 t_row=$SECONDS
    row=$suite
    if [[ -n $stopped ]]; then
        for c in "${COLUMNS_ALL[@]}"; do set_cell "$c" SKIP "not run: $stopped failed (--keep-going runs on)"; done
        return
    fi
    if ! ensure_image "$suite"; then set_cell host FAIL "image build failed"; return; fi
    timing[$row/image]=$image_note
    stage_payload "$suite"
    # The guest kernel under TCG has panicked while booting, once in about ten boots here (an oops in an
    # interrupt, before any of our code runs): such a boot is tried once more, its console kept aside.
    local booted=1
    start_vm "$suite" || booted=0
    if ((!booted)) && grep -q "Kernel panic" "$logs/$suite.console.log" 2>/dev/null; then
        log "$suite: the guest kernel panicked while booting ($boot_error); booting again"
        mv "$logs/$suite.console.log" "$logs/$suite.console.panic.log"
        start_vm "$suite" && booted=1
    fi
    if ((!booted)); then
        set_cell host FAIL "$boot_error"
        ((keep_going)) || stopped="$row host"
        for c in "${COLUMNS_ALL[@]:1}"; do set_cell "$c" SKIP "needs host"; done
        stop_vm
        timing[$row/total]=$((SECONDS - t_row))
        return
    fi
    timing[$row/boot]=$boot_seconds
    log "$suite: ssh answers after ${boot_seconds}s"

    # The host itself: pure cgroup v2, systemd up, the binary installed and its libraries found.
    cell host "" guest root '
x systemctl is-system-running --wait
[ "$out" = running ] || fail "system is $out: $(systemctl --failed --no-legend --plain | awk "{print \$1}" | tr "\n" " ")"
x stat -f -c %T /sys/fs/cgroup
[ "$out" = cgroup2fs ] || fail "/sys/fs/cgroup is $out, not pure cgroup v2"
echo "INFO kernel $(uname -r)"
echo "INFO systemd $(systemctl --version | awk "NR == 1 { print \$2 }")"
x free -m
mkdir -p /mnt/payload
x mount -t 9p -o trans=virtio,version=9p2000.L,ro payload /mnt/payload
[ $rc = 0 ] || fail "mount the payload share: $(last "$out")"
t0=$(ms)
install -m 0755 /mnt/payload/container /usr/local/bin/container || fail "install the binary"
if [ -d /mnt/payload/lib ]; then mkdir -p /usr/local/lib/container && cp -a /mnt/payload/lib/. /usr/local/lib/container/ || fail "install the libraries"; fi
echo "TIME copy $(( $(ms) - t0 ))"
umount /mnt/payload
x container --version
[ $rc = 0 ] || fail "container --version: $(last "$out")"
for so in $(grep -aoE "lib[a-zA-Z0-9_+-]+\.so(\.[0-9]+)+" /usr/local/bin/container | sort -u); do
    ldconfig -p | grep -q "^[[:space:]]*$so " || [ -e /usr/local/lib/container/$so ] || fail "$so (loaded by the binary) is not installed"
done
x ldd /usr/local/bin/container
case $out in *"not found"*) fail "ldd: $(printf "%s\n" "$out" | grep "not found" | head -n 1)" ;; esac
for u in alice bob; do grep -q "^$u:" /etc/subuid && grep -q "^$u:" /etc/subgid || fail "$u has no subordinate ids"; done
'
    if [[ ${result[$row/host]} != PASS ]]; then
        for c in "${COLUMNS_ALL[@]:1}"; do set_cell "$c" SKIP "needs host"; done
        stop_vm
        timing[$row/total]=$((SECONDS - t_row))
        return
    fi

    # user_cells USER SCENARIO...: create first (it needs the host), then the others (they need create),
    # each the guest script $sc_SCENARIO run as USER.
    user_cells() {
        local user=$1 sc script
        shift
        for sc in "$@"; do
            script=sc_$sc
            cell "$user.$sc" "$([[ $sc == create ]] && echo host || echo "$user.create")" guest "$user" "${!script}"
        done
    }
    # alice: the core scenario, from a login that stays open meanwhile.
    hold_session alice
    user_cells alice create run scope limits stop
    release_session alice
    cell alice.linger "alice.create" linger_scenario

    if [[ $suite == bookworm ]]; then
        hold_session bob
        cell bob.isolated "alice.create" guest bob "$sc_isolated"
        user_cells bob create run scope
        release_session bob
        user_cells root create run scope limits stop
    else
        for c in bob.isolated bob.create bob.run bob.scope root.create root.run root.scope root.limits root.stop; do
            set_cell "$c" SKIP "bookworm row only"
        done
    fi
    timing[$row/total]=$((SECONDS - t_row))
    stop_vm
}

# ---------------------------------------------------------------------------------------------------
# The run and the table.

t_all=$SECONDS
for r in "${rows[@]}"; do run_row "$r"; done

short() { # a column's header: alice.create -> a.create
    case $1 in alice.*) echo "a.${1#*.}" ;; bob.*) echo "b.${1#*.}" ;; root.*) echo "r.${1#*.}" ;; *) echo "$1" ;; esac
}
width() { local h; h=$(short "$1"); ((${#h} > 4)) && echo "${#h}" || echo 4; }
secs() { local v=${timing[$1]:-}; if [[ -n $v ]]; then printf '%ss' "$v"; else printf -- '-'; fi; }
msecs() { local v=${timing[$1]:-}; if [[ -n $v ]]; then printf '%d.%ds' $((v / 1000)) $((v % 1000 / 100)); else printf -- '-'; fi; }
failed=0
for r in "${rows[@]}"; do
    for c in "${COLUMNS_ALL[@]}"; do [[ ${result[$r/$c]:-} != FAIL ]] || failed=$((failed + 1)); done
done
echo
echo "Host matrix (a. = alice, b. = bob, r. = root; $accel, ${vm_cpus} CPUs, ${vm_memory} MiB per VM)"
printf '%-9s' host
for c in "${COLUMNS_ALL[@]}"; do printf ' %-*s' "$(width "$c")" "$(short "$c")"; done
echo
for r in "${rows[@]}"; do
    printf '%-9s' "$r"
    for c in "${COLUMNS_ALL[@]}"; do printf ' %-*s' "$(width "$c")" "${result[$r/$c]:-SKIP}"; done
    echo
done
echo
printf '%-9s %-22s %-8s %-14s %-12s %-9s %-12s %s\n' host kernel systemd image boot-to-ssh import create+boot total
for r in "${rows[@]}"; do
    printf '%-9s %-22s %-8s %-14s %-12s %-9s %-12s %s\n' "$r" "${info[$r/kernel]:--}" "${info[$r/systemd]:--}" \
        "${timing[$r/image]:--}" "$(secs "$r/boot")" "$(msecs "$r/import")" "$(msecs "$r/create")" "$(secs "$r/total")"
done
echo
# Cells that did not pass; neighbours skipped for the same reason share a line.
for r in "${rows[@]}"; do
    prev="" first="" lastc=""
    for c in "${COLUMNS_ALL[@]}" ""; do
        cur=""
        if [[ -n $c && ${result[$r/$c]:-SKIP} != PASS ]]; then cur="${result[$r/$c]:-SKIP}: ${reason[$r/$c]:-not run}"; fi
        if [[ $cur != "$prev" || $cur == FAIL* ]]; then
            if [[ -n $prev ]]; then
                if [[ $first == "$lastc" ]]; then echo "$r $first $prev"; else echo "$r $first..$lastc $prev"; fi
            fi
            first=$c
        fi
        prev=$cur lastc=$c
    done
done
echo "$failed failed; total $((SECONDS - t_all))s; logs: $logs"
exit $((failed > 0))
