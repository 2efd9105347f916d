#!/bin/bash
# SPDX-License-Identifier: MIT
# A full disk, as root and as the unprivileged user: the data directory is a small tmpfs, so `image pull`
# (from a real registry) and `image load` run out of space while writing the blob or while unpacking
# the layer, `machine create` on a full disk, and `build` whose RUN fills the disk or whose layer does
# not fit. Each gives one "Error:" line naming the lack of
# space, keeps nothing half-written (no image, no work files, no half layer, no partial download, no
# machine), `system check` finds the store consistent, and once the tmpfs is made larger the same
# command works.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry_lib.sh"

is_root || skip "needs root to mount a tmpfs"
busybox_images busybox-fixture:1.0
chmod 777 "$T"
busybox_registry
LOADED=busybox-fixture:1.0
blob_kib=$(($(stat -c %s "$T/bb/layout/blobs/sha256/$(python3 -c '
import json, sys
idx = json.load(open(sys.argv[1] + "/index.json"))
m = json.load(open(sys.argv[1] + "/blobs/sha256/" + idx["manifests"][0]["digest"].split(":")[1]))
print(m["layers"][0]["digest"].split(":")[1])' "$T/bb/layout")") / 1024))
note "layer blob: $blob_kib KiB"

# nothing_half_written DATA WHAT: no work files, half layers, partial downloads or unfinished writes.
nothing_half_written() {
    local data=$1 what=$2 left
    left=$(find "$data/tmp" "$data/partial" -mindepth 1 2>/dev/null; find "$data/layers/sha256" -mindepth 1 -maxdepth 1 -name 'tmp-*' 2>/dev/null
        find "$data" -name '*.tmp-*' 2>/dev/null)
    [[ -z $left ]] || fail "$what: left behind: $left"
    runc system check >"$T/check" 2>&1 || fail "$what: system check: $(cat "$T/check")"
    ! grep -q '^leftover' "$T/check" || fail "$what: system check lists leftovers: $(cat "$T/check")"
}
expect_enospc() { # expect_enospc WHAT CMD...
    local what=$1
    shift
    expect_error "(No space left on device|disk is full)" "$@"
    note "$what: $(cat "$T/stderr")"
}

for mode in $(machine_modes); do
    note "as $mode"
    small=$T/small-$mode
    mkdir -p "$small"
    owner=()
    [[ $mode == user ]] && owner=(",uid=$(id -u "$TEST_USER"),gid=$(id -g "$TEST_USER")")
    mount -t tmpfs -o "size=$((blob_kib / 2))k,mode=0700${owner[*]}" tmpfs "$small"
    on_exit "umount -l '$small'"
    data=$small/data
    if [[ $mode == root ]]; then
        runc() { CONTAINER_DATA_DIR=$data "$C" "$@"; }
    else
        runc() { _run_as "$TEST_USER" "$USER_CGS" "$data" "$C" "$@"; }
    fi

    # 1. The blob does not fit: pull and load fail while writing it.
    expect_enospc "pull, blob" runc image pull "$PULLED"
    [[ -z $(runc image ls -q) ]] || fail "pull left an image: $(runc image ls -q)"
    nothing_half_written "$data" "pull, blob"
    expect_enospc "load, blob" runc image load -i "$T/bb/image.oci.tar"
    [[ -z $(runc image ls -q) ]] || fail "load left an image"
    nothing_half_written "$data" "load, blob"

    # 2. The blob fits, its unpacked layer does not.
    mount -o remount,size=$((blob_kib + blob_kib / 2 + 64))k "$small"
    # (load first: the blob either leaves in the store, whole, is what the other then finds there.)
    expect_enospc "load, unpack" runc image load -i "$T/bb/image.oci.tar"
    grep -q "entry .*No space" "$T/stderr" || fail "load did not get to the unpack: $(cat "$T/stderr")"
    [[ -z $(runc image ls -q) ]] || fail "load left an image after a failed unpack"
    nothing_half_written "$data" "load, unpack"
    expect_enospc "pull, unpack" runc image pull "$PULLED"
    grep -q "entry .*No space" "$T/stderr" || fail "pull did not get to the unpack: $(cat "$T/stderr")"
    [[ -z $(runc image ls -q) ]] || fail "pull left an image after a failed unpack"
    nothing_half_written "$data" "pull, unpack"

    # 3. Room again: the same commands work.
    mount -o remount,size=64m "$small"
    runc image pull "$PULLED" >/dev/null || fail "pull after space was freed"
    runc image load -i "$T/bb/image.oci.tar" >/dev/null || fail "load after space was freed"

    # 4. A full disk under machine create.
    filler=$small/filler
    dd if=/dev/zero of="$filler" bs=64k 2>/dev/null || true
    expect_enospc "create" runc machine create "$LOADED" --name f --no-boot
    ! runc machine inspect f >/dev/null 2>&1 || fail "a failed create left machine f"
    [[ ! -e $data/machines/f ]] || fail "a failed create left $data/machines/f: $(ls -la "$data/machines/f")"
    nothing_half_written "$data" "create"
    rm -f "$filler"
    runc machine create "$LOADED" --name f --no-boot >/dev/null || fail "create after space was freed"
    runc machine rm -f f >/dev/null

    # 5. A full disk under build: a RUN step that fills it, and a step whose layer does not fit.
    ctx=$T/bctx-$mode
    mkdir -p "$ctx"
    printf 'FROM %s\nRUN dd if=/dev/zero of=/big bs=1048576 count=100\n' "$LOADED" >"$ctx/Containerfile"
    chmod -R a+rX "$ctx"
    expect_enospc "build, RUN" runc build --progress none -t built:1 "$ctx"
    ! runc image inspect built:1 >/dev/null 2>&1 || fail "a failed build named its image"
    nothing_half_written "$data" "build, RUN"
    # 40 MiB of the ~61 free fit as the step's files; their blob does not fit beside them.
    printf 'FROM %s\nRUN dd if=/dev/urandom of=/big bs=1048576 count=40\n' "$LOADED" >"$ctx/Containerfile"
    expect_enospc "build, layer" runc build --progress none -t built:1 "$ctx"
    ! runc image inspect built:1 >/dev/null 2>&1 || fail "a failed build named its image (layer)"
    nothing_half_written "$data" "build, layer"
    printf 'FROM %s\nRUN echo small >/small\n' "$LOADED" >"$ctx/Containerfile"
    runc build --progress none -t built:1 "$ctx" >/dev/null || fail "build after the failures"
done
echo PASS
