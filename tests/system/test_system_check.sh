#!/bin/bash
# SPDX-License-Identifier: MIT
# `container system check [--repair]`, as root and as the unprivileged user, on leftovers made by hand
# or by a real kill and on damage done to the store:
#   - a clean store: "consistent", exit 0;
#   - leftovers (a machine directory without config.json from an rm killed at that point, a dead
#     command's work file, an interrupted download, a half-written config): listed as "leftover:" with
#     exit 0; --repair removes each ("[repaired]") and a second check lists nothing;
#   - problems: a layer tree gone is exit 1 until --repair unpacks it again from its blob (and a machine
#     of the image runs); a corrupt blob is exit 1, --repair removes it and says to pull again, and a
#     check after that names the blob as missing.
source "$(dirname "$0")/lib.sh"

busybox_images
chmod 777 "$T"
# store_path DATA WHAT: the store's path of the image's layer blob (blob) or unpacked layer (layer).
store_path() {
    python3 - "$1" "$2" <<'PY'
import json, sys
data, what = sys.argv[1:]
images = json.load(open(f"{data}/images.json"))["images"]
digest = next(v["digest"] for k, v in images.items() if "busybox-fixture" in k)
blob = lambda d: f"{data}/content/sha256/{d.split(':')[1]}"
manifest = json.load(open(blob(digest)))
if what == "blob":
    print(blob(manifest["layers"][0]["digest"]))
else:
    config = json.load(open(blob(manifest["config"]["digest"])))
    print(f"{data}/layers/sha256/{config['rootfs']['diff_ids'][0].split(':')[1]}")
PY
}
check() { # check WANT_STATUS [--repair]: runs the check into $T/check, asserts its exit status
    local want=$1 rc=0
    shift
    $run "$C" system check "$@" >"$T/check" 2>&1 || rc=$?
    [[ $rc == "$want" ]] || fail "system check $* exited $rc, expected $want: $(cat "$T/check")"
}
has() { grep -Eq "$1" "$T/check" || fail "system check $2 does not say /$1/: $(cat "$T/check")"; }

for mode in $(machine_modes); do
    run=$(runner_for "$mode")
    data=$(data_for "$mode")
    note "as $mode"
    on_exit "remove_all_machines '$run'"
    $run "$C" image load -i "$T/bb/image.oci.tar" >/dev/null
    $run "$C" machine create busybox-fixture:1.0 --name keep --no-boot >/dev/null
    check 0
    has '^consistent: 1 images, 1 machines' "of a clean store"
    ! grep -q '^\(leftover\|problem\):' "$T/check" || fail "a clean store has findings: $(cat "$T/check")"

    # Leftovers. The machine directory comes from a real kill of rm just after config.json went.
    $run "$C" machine create busybox-fixture:1.0 --name cut --no-boot >/dev/null
    $run "$C" machine start cut >/dev/null
    : >"$T/census"
    chmod 666 "$T/census"
    $run "$C" machine create busybox-fixture:1.0 --name probe --no-boot >/dev/null
    $run "$C" machine start probe >/dev/null
    $run env CONTAINER_FAULT_LOG="$T/census" "$C" machine rm -f probe >/dev/null
    n=$(grep -n "rm: config removed" "$T/census" | cut -d: -f1)
    expect_status 137 $run env CONTAINER_FAULT_AT="$n" "$C" machine rm -f cut
    [[ -d $data/machines/cut && ! -e $data/machines/cut/config.json ]] || fail "rm killed at point $n left no directory"
    dead=$(sh -c 'echo $$') # a pid that has exited
    $run sh -c "echo x > '$data/tmp/$dead-work' && echo y > '$data/partial/$(printf '%064d' 0)' &&
        echo z > '$data/machines/keep/config.json.tmp-AbC123'"
    check 0
    has '^leftover: machine directory cut without a config' "after rm was killed"
    has "^leftover: work files of a killed command: tmp/$dead-work" "with a dead command's file"
    has '^leftover: interrupted download partial/0{64}' "with a partial download"
    has '^leftover: machine keep: unfinished write config.json.tmp-AbC123' "with a half-written config"
    has '^consistent:' "with leftovers only"
    check 0 --repair
    [[ $(grep -c '^leftover:.*\[repaired\]$' "$T/check") -ge 3 ]] || fail "--repair did not repair the leftovers: $(cat "$T/check")"
    [[ ! -e $data/machines/cut && ! -e $data/tmp/$dead-work && ! -e $data/partial/$(printf '%064d' 0) &&
        ! -e $data/machines/keep/config.json.tmp-AbC123 ]] || fail "--repair left files: $(cat "$T/check")"
    check 0
    ! grep -q '^leftover:' "$T/check" || fail "leftovers after --repair: $(cat "$T/check")"

    # A layer tree gone: a problem until --repair unpacks it again from the blob.
    layer=$(store_path "$data" layer)
    [[ -d $layer ]] || fail "no layer tree at $layer"
    rm -rf "$layer"
    check 1
    has '^problem: .*layer sha256:[0-9a-f]{64} is not unpacked$' "with a layer tree gone"
    has '^inconsistent:' "with a layer tree gone"
    check 0 --repair
    has 'is not unpacked \(unpacked again\) \[repaired\]$' "--repair of a layer tree"
    [[ $($run "$C" machine run -n keep -- echo ran) == ran ]] || fail "machine keep does not run on the unpacked-again layer"
    $run "$C" machine stop keep >/dev/null

    # A corrupt blob: --repair removes it; then it is missing.
    blob=$(store_path "$data" blob)
    chmod u+w "$blob" 2>/dev/null || true
    echo corrupt >>"$blob"
    check 1
    has '^problem: .*blob sha256:[0-9a-f]{64} is corrupt$' "with a corrupt blob"
    check 1 --repair
    has 'is corrupt \(removed: pull the image again\)' "--repair of a corrupt blob"
    [[ ! -e $blob ]] || fail "--repair left the corrupt blob"
    check 1
    has '^problem: .*blob sha256:[0-9a-f]{64} is missing' "after the corrupt blob went"
    remove_all_machines "$run"
    $run "$C" image rm -f busybox-fixture:1.0 >/dev/null 2>&1 || true
done
echo PASS
