#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Benchmarks a container machine against the tools one would otherwise use: nsenter for running a
# command in a running machine, systemd-nspawn --boot for booting the same Debian root filesystem,
# and a plain `tar -x` of that root filesystem for making a new machine. Prints medians and ratios
# (ours / theirs) in a plain table. See bench/README.md.
#
# Usage: sudo bash bench/machine.sh
# Env:   ROUNDS        rounds per timed row (default 15)
#        CONTAINER     the binary to measure (default: build/container of this checkout, else
#                      `container` on PATH); it is copied first, so a rebuild does not disturb a run
#        IDLE          seconds of quiet before each timed `run true` (default 0.5)
#        BENCH_CACHE   where the Debian rootfs tarball is kept (default /tmp/bench)
#        SCALE         machines booted at once for the scale rows (default 50)
set -euo pipefail

ROUNDS=${ROUNDS:-15}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer" >&2; exit 64; }
repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cache=${BENCH_CACHE:-/tmp/bench}
name=bench                    # machine names are lowercase letters, digits and hyphens only
image=localhost/debian:bench

die() { printf 'machine.sh: %s\n' "$*" >&2; exit 1; }
log() { printf '# %s\n' "$*" >&2; }
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM

[[ $(id -u) -eq 0 ]] || die "run as root: sudo bash bench/machine.sh"
command -v nsenter >/dev/null || die "nsenter (util-linux) is missing"
command -v python3 >/dev/null || die "python3 is missing (used to read state.json)"

src_bin=${CONTAINER:-}
if [[ -z $src_bin ]]; then
    if [[ -x $repo/build/container ]]; then src_bin=$repo/build/container
    else src_bin=$(command -v container) || die "no container binary: build it or set CONTAINER="; fi
fi

# ---------------------------------------------------------------------------------------------
# Work area and cleanup

work=$(mktemp -d /tmp/container-bench.XXXXXX)
bin=$work/container
cp -- "$src_bin" "$bin"
export CONTAINER_DATA_DIR=$work/data
mkdir -m 0700 "$CONTAINER_DATA_DIR"
ns_root=$work/nspawn-root
ns_log=$work/nspawn.log
ns_pid='' ns_init=''

# systemd-nspawn --keep-unit, outside a systemd-managed host, makes `payload` and `supervisor`
# cgroups next to its own and leaves them behind; remove those it made.
cg_leftovers=()
note_nspawn_cgroups() {
    local line rel h d
    while IFS= read -r line; do
        case $line in
            0::*) rel=${line#0::}
                  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then h=/sys/fs/cgroup
                  elif [[ -f /sys/fs/cgroup/unified/cgroup.procs ]]; then h=/sys/fs/cgroup/unified
                  else continue; fi ;;
            *:name=systemd:*) rel=${line#*:name=systemd:}; h=/sys/fs/cgroup/systemd ;;
            *) continue ;;
        esac
        [[ -d $h ]] || continue
        for d in payload supervisor; do
            [[ -e ${h%/}${rel%/}/$d ]] || cg_leftovers+=("${h%/}${rel%/}/$d")
        done
    done </proc/self/cgroup
}

nspawn_alive() {
    local st
    [[ -n $ns_pid ]] || return 1
    { read -r st </proc/"$ns_pid"/stat; } 2>/dev/null || return 1
    st=${st##*) }
    [[ ${st%% *} != Z ]]
}

# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
    local rc=$? m d i
    trap - EXIT
    set +e
    if nspawn_alive; then
        [[ -n $ns_init ]] && kill -s SIGRTMIN+4 "$ns_init" 2>/dev/null
        for ((i = 0; i < 300; i++)); do nspawn_alive || break; sleep 0.1; done
        nspawn_alive && kill -KILL "$ns_pid" 2>/dev/null
    fi
    [[ -n $ns_pid ]] && wait "$ns_pid" 2>/dev/null
    if [[ -x $bin && -d $CONTAINER_DATA_DIR ]]; then
        for m in $("$bin" machine ls -q 2>/dev/null); do "$bin" machine rm -f "$m" >/dev/null 2>&1; done
    fi
    for d in "${cg_leftovers[@]}"; do
        [[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    rm -rf -- "$work"
    exit "$rc"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
# Timing and statistics

# Microseconds since the epoch without forking (bash >= 5 has EPOCHREALTIME; a `date +%s%N`
# costs a fork and exec, about a millisecond here, as much as the thing being measured).
if [[ -n ${EPOCHREALTIME:-} ]]; then
    now_us() { now=${EPOCHREALTIME//[!0-9]/}; }
else
    now_us() { now=$(( $(date +%s%N) / 1000 )); }
fi
now=0
elapsed=0                     # microseconds of the last `timed`
timed() {
    local t0
    now_us; t0=$now
    "$@" || die "failed: $*"
    now_us; elapsed=$((now - t0))
}

# A file descriptor that never becomes readable: `read -t` on it is a sleep without a fork.
exec {sleep_fd}<> <(:)
nap() { read -r -t "$1" -u "$sleep_fd" _ || true; }

median() { (($#)) || { echo n/a; return; }; printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {
    if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'; }
us_to_ms() { awk -v v="$1" 'BEGIN { if (v == "n/a") print v; else printf "%.1f\n", v / 1000 }'; }
kib_to_mib() { awk -v v="$1" 'BEGIN { if (v == "n/a") print v; else printf "%.1f\n", v / 1024 }'; }

rows=()
row() { rows+=("$(printf '%-44s %10s %10s  %-32s %6s' "$1" "$2" "$3" "$4" "$(ratio "$2" "$3")")"); }

state_field() {
    python3 - "$CONTAINER_DATA_DIR/machines/$name/state.json" "$1" <<'EOF'
import json, sys
print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))
EOF
}

# Sum of one field (Pss or Rss, in kB) of /proc/PID/smaps_rollup over the given pids.
mem_kib() {
    local field=$1 pid sum=0 k v _
    shift
    for pid in "$@"; do
        while read -r k v _; do
            [[ $k == "$field:" ]] && sum=$((sum + v))
        done < <(cat /proc/"$pid"/smaps_rollup 2>/dev/null)
    done
    echo "$sum"
}

descendants() { # PID and all its descendants
    ps -e -o pid=,ppid= | awk -v root="$1" '{ kids[$2] = kids[$2] " " $1 }
        END { q[1] = root; n = 1; for (i = 1; i <= n; i++) { print q[i]; m = split(kids[q[i]], k, " ");
              for (j = 1; j <= m; j++) q[++n] = k[j] } }'
}

# ---------------------------------------------------------------------------------------------
# Our machine

ours_wait_running() {
    timeout 120 "$bin" machine run -n "$name" --root -- systemctl is-system-running --wait >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------------------------------------
# systemd-nspawn: this host does not run systemd as PID 1, so there is no bus to register with
# or to ask for a scope: --register=no --keep-unit make nspawn run where it is.

nspawn_flags=(--quiet -D "$ns_root" -M "$name-nspawn" --boot --register=no --keep-unit)
nspawn_error=

# Start nspawn and wait until the container is ready the way `machine start` means it: systemd's
# /run/systemd/private exists and, when the image ships dbus.socket, so does the system bus socket
# /run/dbus/system_bus_socket. Sets ns_pid and ns_init. Returns 1 (with nspawn_error set) if nspawn
# exits or is not ready within 120 s.
nspawn_boot() {
    local kids c comm deadline
    ns_init=
    systemd-nspawn "${nspawn_flags[@]}" </dev/null >>"$ns_log" 2>&1 &
    ns_pid=$!
    deadline=$((SECONDS + 120))
    while :; do
        if [[ -z $ns_init ]]; then
            kids=()
            { read -r -a kids </proc/"$ns_pid"/task/"$ns_pid"/children; } 2>/dev/null || true
            for c in "${kids[@]}"; do
                { read -r comm </proc/"$c"/comm; } 2>/dev/null || continue
                [[ $comm == systemd ]] && ns_init=$c
            done
        fi
        if [[ -n $ns_init && -S /proc/$ns_init/root/run/systemd/private ]]; then
            ((ns_need_bus == 0)) || [[ -S /proc/$ns_init/root/run/dbus/system_bus_socket ]] && return 0
        fi
        if ! nspawn_alive; then
            wait "$ns_pid" 2>/dev/null || true
            nspawn_error="systemd-nspawn exited before the container was ready: $(grep -v '^$' "$ns_log" | tail -n 3 | paste -sd '|')"
            ns_pid='' ns_init=''
            return 1
        fi
        if ((SECONDS > deadline)); then
            nspawn_error="systemd-nspawn: /run/systemd/private did not appear within 120 s"
            return 1
        fi
        nap 0.002
    done
}

# Ask the container's systemd to power off and wait for nspawn to exit (killing it after 60 s).
nspawn_stop() {
    local deadline=$((SECONDS + 60))
    kill -s SIGRTMIN+4 "$ns_init" 2>/dev/null || true
    while nspawn_alive; do
        if ((SECONDS > deadline)); then kill -KILL "$ns_pid" 2>/dev/null || true; fi
        nap 0.002
    done
    wait "$ns_pid" 2>/dev/null || true
    ns_pid='' ns_init=''
}

nspawn_wait_running() {
    timeout 120 nsenter -t "$ns_init" -m -u -i -p -- systemctl is-system-running --wait >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------------------------------------
# Setup

log "image: tests/fixtures/debian-rootfs.sh $cache/debian.tar"
mkdir -p -- "$cache"
bash "$repo/tests/fixtures/debian-rootfs.sh" "$cache/debian.tar" >&2
"$bin" image import "$cache/debian.tar" "$image" >/dev/null
log "image imported into $CONTAINER_DATA_DIR"

if ! command -v systemd-nspawn >/dev/null; then
    log "installing systemd-container (systemd-nspawn)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends systemd-container \
            >"$work/apt.log" 2>&1; then
        nspawn_error="apt-get install systemd-container failed: $(tail -n 1 "$work/apt.log")"
    fi
fi
if [[ -z $nspawn_error ]] && ! command -v systemd-nspawn >/dev/null; then
    nspawn_error="systemd-nspawn not found after installing systemd-container"
fi
mkdir "$ns_root"
tar --numeric-owner -xpf "$cache/debian.tar" -C "$ns_root"
note_nspawn_cgroups
ns_need_bus=0
[[ -e $ns_root/usr/lib/systemd/system/dbus.socket || -e $ns_root/lib/systemd/system/dbus.socket ]] && ns_need_bus=1

# Disk of a new machine, and first boots (not timed: first boot initialises the machine id etc.).
"$bin" machine create --no-boot --name "$name" "$image" >/dev/null
disk_ours_new=$(du -sk "$CONTAINER_DATA_DIR/machines/$name" | cut -f1)
disk_ns_new=$(du -sk "$ns_root" | cut -f1)
layers_kib=$(du -sk "$CONTAINER_DATA_DIR/layers" | cut -f1)
log "first boot of $name"
"$bin" machine start "$name" >/dev/null
ours_wait_running
"$bin" machine stop "$name" >/dev/null
disk_ours_boot=$(du -sk "$CONTAINER_DATA_DIR/machines/$name" | cut -f1)
disk_ns_boot=n/a
if [[ -z $nspawn_error ]]; then
    log "first boot of the same rootfs with systemd-nspawn ${nspawn_flags[*]}"
    if nspawn_boot; then
        nspawn_wait_running
        nspawn_stop
        disk_ns_boot=$(du -sk "$ns_root" | cut -f1)
    fi
fi
[[ -n $nspawn_error ]] && log "nspawn not measured: $nspawn_error"

# ---------------------------------------------------------------------------------------------
# 2. Boot to ready (and stop), alternating ours and nspawn so drift hits both

boot_ours=() boot_ns=() stop_ours=() stop_ns=()
for ((r = 1; r <= ROUNDS; r++)); do
    log "boot round $r/$ROUNDS"
    timed "$bin" machine start "$name" >/dev/null
    boot_ours+=("$elapsed")
    ours_wait_running
    timed "$bin" machine stop "$name" >/dev/null
    stop_ours+=("$elapsed")
    if [[ -z $nspawn_error ]]; then
        now_us; t0=$now
        nspawn_boot || break
        now_us; boot_ns+=($((now - t0)))
        nspawn_wait_running
        now_us; t0=$now
        nspawn_stop
        now_us; stop_ns+=($((now - t0)))
    fi
done
[[ -n $nspawn_error ]] && boot_ns=() stop_ns=()

# ---------------------------------------------------------------------------------------------
# 1. `run true` vs nsenter into the same running machine

"$bin" machine start "$name" >/dev/null
ours_wait_running
init_pid=$(state_field initPid)
[[ -n $init_pid && -d /proc/$init_pid ]] || die "no init pid in state.json"
# The namespaces the machine owns; it shares the host's network (and time) namespace.
nsenter_cmd=(nsenter -t "$init_pid" -U -m -u -i -p -C --preserve-credentials true)
"$bin" machine run -n "$name" true || die "container machine run true failed"
"${nsenter_cmd[@]}" || die "nsenter into the machine failed: ${nsenter_cmd[*]}"
# As a person uses it: each command after a pause (IDLE seconds, default 0.5).
run_ours=() run_ns=() version_ours=() true_host=()
for ((r = 1; r <= ROUNDS; r++)); do
    nap "${IDLE:-0.5}"
    timed "$bin" machine run -n "$name" true >/dev/null
    run_ours+=("$elapsed")
    nap "${IDLE:-0.5}"
    timed "${nsenter_cmd[@]}" >/dev/null
    run_ns+=("$elapsed")
done
for ((r = 1; r <= ROUNDS; r++)); do
    timed "$bin" --version >/dev/null
    version_ours+=("$elapsed")
    timed /bin/true >/dev/null
    true_host+=("$elapsed")
done
# The same, each tool's rounds back to back: moving a process into a cgroup (what `run` does,
# nsenter does not) is cheap only right after another such move (see README).
run_ours_b2b=() run_ns_b2b=()
for ((r = 1; r <= ROUNDS; r++)); do
    timed "$bin" machine run -n "$name" true >/dev/null
    run_ours_b2b+=("$elapsed")
done
for ((r = 1; r <= ROUNDS; r++)); do
    timed "${nsenter_cmd[@]}" >/dev/null
    run_ns_b2b+=("$elapsed")
done

# ---------------------------------------------------------------------------------------------
# 5. Host memory of the idle running machine

log "letting $name idle"
sleep 3
cgroup=$(state_field cgroup)
sup_pid=$(state_field supervisorPid)
if [[ -n $cgroup && -d $cgroup ]]; then
    mapfile -t mem_pids < <(find "$cgroup" -name cgroup.procs -exec cat {} + ; echo "$sup_pid")
else
    mapfile -t mem_pids < <(descendants "$sup_pid")
fi
pss_ours=$(mem_kib Pss "${mem_pids[@]}")
rss_ours=$(mem_kib Rss "${mem_pids[@]}")
sup_pss_lone=$(mem_kib Pss "$sup_pid")
nprocs_ours=${#mem_pids[@]}
"$bin" machine stop "$name" >/dev/null
pss_ns=n/a rss_ns=n/a nprocs_ns=n/a
if [[ -z $nspawn_error ]] && nspawn_boot; then
    nspawn_wait_running
    sleep 3
    mapfile -t ns_pids < <(descendants "$ns_pid")
    pss_ns=$(mem_kib Pss "${ns_pids[@]}")
    rss_ns=$(mem_kib Rss "${ns_pids[@]}")
    nprocs_ns=${#ns_pids[@]}
    nspawn_stop
fi

# ---------------------------------------------------------------------------------------------
# 3. create --no-boot from a stored image vs extracting the rootfs for a new nspawn directory

create_ours=() create_tar=()
for ((r = 1; r <= ROUNDS; r++)); do
    timed "$bin" machine create --no-boot --name "$name-create" "$image" >/dev/null
    create_ours+=("$elapsed")
    "$bin" machine rm -f "$name-create" >/dev/null
    mkdir "$work/extract"
    timed tar --numeric-owner -xpf "$cache/debian.tar" -C "$work/extract"
    create_tar+=("$elapsed")
    rm -rf -- "$work/extract"
done

# ---------------------------------------------------------------------------------------------
# 6. Scale: SCALE Debian systemd machines (default 50) running at once, or as many as boot

scale=${SCALE:-50}
log "booting $scale machines"
scale_made=0
now_us; t0=$now
for ((i = 1; i <= scale; i++)); do
    "$bin" machine create --name "$name-s$i" "$image" >/dev/null 2>>"$work/scale.err" || break
    scale_made=$i
done
now_us; scale_boot_us=$((now - t0))
sleep 3
sup_pids=() all_pids=()
for ((i = 1; i <= scale_made; i++)); do
    sp=$(name=$name-s$i state_field supervisorPid)
    cg=$(name=$name-s$i state_field cgroup)
    sup_pids+=("$sp")
    all_pids+=("$sp")
    [[ -n $cg && -d $cg ]] && mapfile -t -O "${#all_pids[@]}" all_pids < <(find "$cg" -name cgroup.procs -exec cat {} +)
done
sup_pss_each=n/a machine_pss_each=n/a
if ((scale_made > 0)); then
    sup_pss_each=$(( $(mem_kib Pss "${sup_pids[@]}") / scale_made ))
    machine_pss_each=$(( $(mem_kib Pss "${all_pids[@]}") / scale_made ))
fi
ls_many=() run_many=()
for ((r = 1; r <= ROUNDS; r++)); do
    timed "$bin" machine ls >/dev/null
    ls_many+=("$elapsed")
    timed "$bin" machine run -n "$name-s$scale_made" true >/dev/null
    run_many+=("$elapsed")
done
for ((i = 1; i <= scale_made; i++)); do "$bin" machine rm -f "$name-s$i" >/dev/null; done
# The same two with only one machine, for the ratio.
"$bin" machine start "$name" >/dev/null
ls_one=()
for ((r = 1; r <= ROUNDS; r++)); do
    timed "$bin" machine ls >/dev/null
    ls_one+=("$elapsed")
done
"$bin" machine stop "$name" >/dev/null

# ---------------------------------------------------------------------------------------------
# Report

ns_label="systemd-nspawn --boot"
[[ -n $nspawn_error ]] && ns_label="nspawn failed, see below"
printf 'machine: %s cores (%s), kernel %s, %s\n' "$(nproc)" \
    "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(uname -r)" "$(date -u +%Y-%m-%dT%H:%MZ)"
printf 'versions: %s; %s; %s; ROUNDS=%s\n' "$("$bin" --version)" \
    "$(command -v systemd-nspawn >/dev/null && systemd-nspawn --version 2>/dev/null | head -n 1 | sed 's/ (.*//' || echo 'no systemd-nspawn')" \
    "$(nsenter --version)" "$ROUNDS"
echo
row "run true, after ${IDLE:-0.5} s idle (ms)" "$(us_to_ms "$(median "${run_ours[@]}")")" \
    "$(us_to_ms "$(median "${run_ns[@]}")")" "nsenter -U -m -u -i -p -C"
row "run true, back-to-back rounds (ms)" "$(us_to_ms "$(median "${run_ours_b2b[@]}")")" \
    "$(us_to_ms "$(median "${run_ns_b2b[@]}")")" "nsenter -U -m -u -i -p -C"
row "exec floor: container --version (ms)" "$(us_to_ms "$(median "${version_ours[@]}")")" \
    "$(us_to_ms "$(median "${true_host[@]}")")" "/bin/true on the host"
row "boot to ready (ms)" "$(us_to_ms "$(median "${boot_ours[@]}")")" \
    "$(us_to_ms "$(median "${boot_ns[@]}")")" "$ns_label"
row "stop a booted machine (ms)" "$(us_to_ms "$(median "${stop_ours[@]}")")" \
    "$(us_to_ms "$(median "${stop_ns[@]}")")" "SIGRTMIN+4, wait for nspawn"
row "create --no-boot (ms)" "$(us_to_ms "$(median "${create_ours[@]}")")" \
    "$(us_to_ms "$(median "${create_tar[@]}")")" "tar -x of the rootfs"
row "disk of a new machine (KiB)" "$disk_ours_new" "$disk_ns_new" "du of the extracted rootfs"
row "disk after first boot (KiB)" "$disk_ours_boot" "$disk_ns_boot" "du of the extracted rootfs"
row "idle memory, PSS (MiB)" "$(kib_to_mib "$pss_ours")" "$(kib_to_mib "$pss_ns")" "$ns_label"
row "idle memory, RSS (MiB)" "$(kib_to_mib "$rss_ours")" "$(kib_to_mib "$rss_ns")" "$ns_label"
row "supervisor PSS, lone machine (KiB)" "$sup_pss_lone" 1024 "the goal (conmon: ~1 MiB)"
row "supervisor PSS each, $scale_made machines (KiB)" "$sup_pss_each" 512 "the goal"
row "machine PSS each, $scale_made machines (MiB)" "$(kib_to_mib "$machine_pss_each")" "$(kib_to_mib "$pss_ours")" "the same, lone machine"
row "machines booted at once (of $scale)" "$scale_made" "$scale" "asked for"
row "create+boot $scale_made machines, one by one (s)" "$(awk -v v="$scale_boot_us" 'BEGIN { printf "%.1f", v / 1e6 }')" n/a ""
row "ls with $scale_made machines (ms)" "$(us_to_ms "$(median "${ls_many[@]}")")" \
    "$(us_to_ms "$(median "${ls_one[@]}")")" "ls with 1 machine"
row "run true with $scale_made machines (ms)" "$(us_to_ms "$(median "${run_many[@]}")")" \
    "$(us_to_ms "$(median "${run_ours_b2b[@]}")")" "back-to-back, 1 machine"
printf '%-44s %10s %10s  %-32s %6s\n' "measure" "container" "other" "other is" "ratio"
printf '%s\n' "${rows[@]}"
echo
echo "ratio = container / other; times are medians of $ROUNDS rounds."
echo "Image layers shared by all machines from the image: $layers_kib KiB (not in the disk rows)."
echo "Processes counted for memory: container $nprocs_ours (machine cgroup + supervisor), nspawn $nprocs_ns (nspawn + descendants)."
echo "nspawn command: systemd-nspawn ${nspawn_flags[*]/$ns_root/ROOTFS}"
[[ -n $nspawn_error ]] && echo "nspawn not measured: $nspawn_error"
[[ -s $work/scale.err ]] && echo "scale: machine $((scale_made + 1)) failed: $(tail -n 1 "$work/scale.err")"
exit 0
