#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Pull-and-unpack of the Debian systemd image from a registry on loopback: `container image pull` into
# an empty store, against `skopeo copy docker://… oci:DIR` followed by `umoci unpack`, the pair users
# would otherwise pick. Both end with the image's files on disk, verified. Then the push of the same
# image to an empty registry: `container image push` from the store against `skopeo copy oci:DIR
# docker://…`. Prints medians and the ratios (ours / theirs). See bench/README.md.
#
# Usage: sudo bash bench/pull.sh
# Env:   ROUNDS       rounds (default 5)
#        CONTAINER    the binary to measure (default: build/container of this checkout)
#        BENCH_CACHE  where the Debian rootfs tarball is kept (default /tmp/bench)
set -euo pipefail

ROUNDS=${ROUNDS:-5}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer" >&2; exit 64; }
repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cache=${BENCH_CACHE:-/tmp/bench}

die() { printf 'pull.sh: %s\n' "$*" >&2; exit 1; }
log() { printf '# %s\n' "$*" >&2; }
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM

[[ $(id -u) -eq 0 ]] || die "run as root: sudo bash bench/pull.sh"
for tool in docker-registry skopeo umoci; do
    command -v $tool >/dev/null || die "$tool is missing (apt-get install docker-registry skopeo umoci)"
done
bin=${CONTAINER:-$repo/build/container}
[[ -x $bin ]] || die "no container binary at $bin: build it or set CONTAINER="

work=$(mktemp -d /tmp/container-pull-bench.XXXXXX)
reg_pid=''
cleanup() {
    [[ -z $reg_pid ]] || kill "$reg_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The image: the Debian bookworm rootfs with systemd (from Debian's mirror), as an OCI image.
mkdir -p "$cache"
[[ -f $cache/debian-systemd.tar ]] || bash "$repo/tests/fixtures/debian-rootfs.sh" "$cache/debian-systemd.tar" systemd
OCI_LAYER_MODE=repack bash "$repo/tests/fixtures/oci-convert.sh" "$cache/debian-systemd.tar" "$work/img" debian:bench \
    >/dev/null 2>&1 || die "oci-convert.sh failed"

# A registry on a free loopback port.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
YML
start_registry() {
    docker-registry serve "$work/registry.yml" >>"$work/registry.log" 2>&1 &
    reg_pid=$!
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
}
start_registry
ref=127.0.0.1:$port/bench/debian:systemd
skopeo copy -q --dest-tls-verify=false "oci:$work/img/layout:bench" "docker://$ref" || die "push failed"
compressed=$(du -sb "$work/registry/docker/registry/v2/blobs" | cut -f1)
log "image $ref: $((compressed / 1000000)) MB in the registry"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# Each round unpacks into fresh directories, removed only at the end: ext4 skips inodes freed in the
# last minute when it allocates new ones, so deleting 10,000 files between rounds would slow whichever
# tool runs next. The order alternates for the same reason (and for the page cache).
run_ours() {
    CONTAINER_DATA_DIR=$work/r$1/data "$bin" image pull --progress none "$ref" >/dev/null
}
run_theirs() {
    skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$work/r$1/oci:bench"
    umoci unpack --image "$work/r$1/oci:bench" "$work/r$1/bundle" >/dev/null
}
timed() { # timed FUNCTION ROUND: prints milliseconds
    local t0
    sync
    t0=$(now_ms)
    "$1" "$2"
    echo $(($(now_ms) - t0))
}
ours=() theirs=()
for ((i = 1; i <= ROUNDS; i++)); do
    mkdir -p "$work/r$i"
    if ((i % 2)); then
        ours+=("$(timed run_ours "$i")")
        theirs+=("$(timed run_theirs "$i")")
    else
        theirs+=("$(timed run_theirs "$i")")
        ours+=("$(timed run_ours "$i")")
    fi
    log "round $i: container ${ours[-1]} ms, skopeo+umoci ${theirs[-1]} ms"
done
# Both really hold the image: the same file count in the unpacked trees.
n_ours=$(find "$work/r1/data/layers" -mindepth 3 | wc -l)
n_theirs=$(find "$work/r1/bundle/rootfs" -mindepth 1 | wc -l)
log "entries unpacked: container $n_ours, umoci $n_theirs"

m_ours=$(median "${ours[@]}") m_theirs=$(median "${theirs[@]}")
printf '%-46s %12s %12s %8s\n' "pull and unpack ($((compressed / 1000000)) MB compressed)" "container" "skopeo+umoci" "ratio"
printf '%-46s %9s ms %9s ms %8s\n' "median of $ROUNDS rounds" "$m_ours" "$m_theirs" \
    "$(awk -v a="$m_ours" -v b="$m_theirs" 'BEGIN { printf "%.2f", a / b }')"

# Push: the same image to an empty registry each time (restarted on wiped storage, outside the timing),
# from our store (round 1's pull) and from the OCI layout, to the same repository name.
empty_registry() {
    kill "$reg_pid" 2>/dev/null || true
    wait "$reg_pid" 2>/dev/null || true
    rm -rf "$work/registry"
    start_registry
}
dest=127.0.0.1:$port/bench/pushed:1
CONTAINER_DATA_DIR=$work/r1/data "$bin" image tag "$ref" "$dest"
push_ours() { CONTAINER_DATA_DIR=$work/r1/data "$bin" image push --progress none "$dest" >/dev/null 2>>"$work/push.log"; }
push_theirs() { skopeo copy -q --dest-tls-verify=false "oci:$work/img/layout:bench" "docker://$dest"; }
p_ours=() p_theirs=()
for ((i = 1; i <= ROUNDS; i++)); do
    for who in ours theirs; do
        empty_registry
        t=$(timed "push_$who" "$i")
        if [[ $who == ours ]]; then p_ours+=("$t"); else p_theirs+=("$t"); fi
    done
    log "push round $i: container ${p_ours[-1]} ms, skopeo ${p_theirs[-1]} ms"
done
# Both pushed the same manifest: the registry's digest is the store's.
want=$(CONTAINER_DATA_DIR=$work/r1/data "$bin" image inspect "$dest" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["descriptor"]["digest"])')
got=$(curl -fsI -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://127.0.0.1:$port/v2/bench/pushed/manifests/1" |
    tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
[[ $got == "$want" ]] || log "warning: the registry holds $got, the store says $want"
m_ours=$(median "${p_ours[@]}") m_theirs=$(median "${p_theirs[@]}")
printf '%-46s %12s %12s %8s\n' "push to an empty registry" "container" "skopeo" "ratio"
printf '%-46s %9s ms %9s ms %8s\n' "median of $ROUNDS rounds" "$m_ours" "$m_theirs" \
    "$(awk -v a="$m_ours" -v b="$m_theirs" 'BEGIN { printf "%.2f", a / b }')"
