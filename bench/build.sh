#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `container build` against `buildah bud` (Debian's buildah, chroot isolation) on the same Containerfiles: the Debian machine image of
# tests/system/test_build_debian.sh (apt-get from the mirror) and a small one (three COPY/RUN steps on
# the same base). Rows: the cold build (--no-cache; the median of COLD_RUNS, as apt's downloads vary),
# the unchanged rebuild, and the rebuild after a one-file change (one run each); prints seconds and the
# ratio ours / buildah's. See bench/README.md.
#
# Usage: sudo bash bench/build.sh
# Env:   CONTAINER    the binary to measure (default: build/container of this checkout)
#        BENCH_CACHE  where the Debian rootfs tarball is kept (default /tmp/bench)
#        BUILDAH=0    leave buildah out (our rows only)
#        COLD_RUNS    cold builds per tool, taking turns; the row is the median (default 3)
set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cache=${BENCH_CACHE:-/tmp/bench}
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "run as root: sudo bash bench/build.sh"
bin=${CONTAINER:-$repo/build/container}
[[ -x $bin ]] || die "no container binary at $bin: build it or set CONTAINER="
use_buildah=${BUILDAH:-1}
cold_runs=${COLD_RUNS:-3}
command -v buildah >/dev/null || use_buildah=0

work=$(mktemp -d /tmp/container-build-bench.XXXXXX)
trap 'buildah --root "$work/buildah" --runroot "$work/brun" rmi -af >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
cp "$bin" "$work/container"
C=$work/container
export CONTAINER_DATA_DIR=$work/data
# buildah on this host (docs/TESTING.md): no rlimit raises, cgroupfs, a file event log; private storage.
cat >"$work/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF=$work/containers.conf
B=(buildah --root "$work/buildah" --runroot "$work/brun" --storage-driver overlay)
# crun refuses this host's hybrid cgroups (docs/TESTING.md); buildah's chroot isolation needs no runtime.
PB=(bud --isolation chroot --layers)

mkdir -p "$cache"
[[ -f $cache/debian-systemd.tar ]] || bash "$repo/tests/fixtures/debian-rootfs.sh" "$cache/debian-systemd.tar" systemd
"$C" image import "$cache/debian-systemd.tar" localhost/debian:base >/dev/null
if ((use_buildah)); then # the same image: saved by us, pulled by buildah
    "$C" image save -o "$work/base.tar" localhost/debian:base
    id=$("${B[@]}" pull -q "oci-archive:$work/base.tar")
    "${B[@]}" tag "$id" localhost/debian:base
    rm -f "$work/base.tar"
fi

mkdir -p "$work/machine" "$work/small"
cp "$repo"/tests/fixtures/machine-image/* "$work/machine/" # test_build_debian.sh's image
cat >"$work/small/Containerfile" <<'CF'
FROM localhost/debian:base
COPY app /opt/app
RUN ls -lR /opt/app >/opt/listing
COPY config.txt /etc/app.conf
CF
mkdir -p "$work/small/app"
for i in $(seq 200); do head -c 4096 /dev/urandom >"$work/small/app/f$i"; done
echo v1 >"$work/small/config.txt"

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || die "failed: $*"; e=$(date +%s.%N); echo "$e - $s" | bc; }
row() { # row NAME OURS THEIRS
    if [[ -n $3 ]]; then printf '%-34s %8.2f s %8.2f s %6.2f\n' "$1" "$2" "$3" "$(echo "$2 / $3" | bc -l)"
    else printf '%-34s %8.2f s %10s %6s\n' "$1" "$2" - -; fi
}
printf '# %s, %s cores, %s\n' "$(uname -r)" "$(nproc)" "$("${B[@]}" --version 2>/dev/null || echo 'no buildah')"
printf '%-34s %10s %10s %6s\n' step container buildah ratio
for ctx in machine small; do
    changed=$work/$ctx/$([[ $ctx == machine ]] && echo create-user.sh || echo config.txt)
    # The cold build's apt downloads vary from run to run by more than the difference measured: the
    # two tools take turns, COLD_RUNS times, and the row gives each one's median.
    o=() t=()
    for _ in $(seq "$cold_runs"); do
        o+=("$(secs "$C" build --no-cache --progress none -t localhost/$ctx "$work/$ctx")")
        ((use_buildah)) && t+=("$(secs "${B[@]}" "${PB[@]}" --no-cache -q -t localhost/$ctx "$work/$ctx")")
    done
    ours=$(median "${o[@]}")
    theirs=""; ((use_buildah)) && theirs=$(median "${t[@]}")
    row "$ctx: cold build (median of $cold_runs)" "$ours" "$theirs"
    ours=$(secs "$C" build --progress none -t localhost/$ctx "$work/$ctx")
    theirs=""; ((use_buildah)) && theirs=$(secs "${B[@]}" "${PB[@]}" -q -t localhost/$ctx "$work/$ctx")
    row "$ctx: unchanged rebuild" "$ours" "$theirs"
    echo "# changed" >>"$changed"
    ours=$(secs "$C" build --progress none -t localhost/$ctx "$work/$ctx")
    theirs=""; ((use_buildah)) && theirs=$(secs "${B[@]}" "${PB[@]}" -q -t localhost/$ctx "$work/$ctx")
    row "$ctx: rebuild, one file changed" "$ours" "$theirs"
done
"$C" image inspect localhost/machine | python3 -c '
import json, sys
d = json.load(sys.stdin)[0]
print("# machine image layers (compressed):", ", ".join("%.1f MiB" % (l["size"] / 1048576) for l in d["layers"]))'
