#!/bin/bash
# SPDX-License-Identifier: MIT
# GPU passthrough (issue #18): the host's /dev/dri nodes (and NVIDIA's /dev/nvidia* when present) appear
# in the machine; gpu=false leaves them out. Skipped, naming the device, on a host without /dev/dri.
source "$(dirname "$0")/lib.sh"

[[ -d /dev/dri ]] || skip "no /dev/dri on this host: GPU passthrough needs a DRM device to show"
busybox_images
chmod 777 "$T"
for mode in $(machine_modes); do
    run=$(runner_for "$mode")
    note "GPU nodes, as $mode"
    on_exit "remove_all_machines '$run'"
    $run "$C" image load -i "$T/bb/image.oci.tar" >/dev/null
    $run "$C" machine create --name g busybox-fixture:1.0 >/dev/null || fail "create"
    for node in /dev/dri/* /dev/nvidia*; do
        [[ -e $node ]] || continue
        $run "$C" machine run -n g -- test -e "$node" || fail "$node not in the machine"
    done
    $run "$C" machine set -n g gpu=false >/dev/null 2>&1
    $run "$C" machine stop g >/dev/null
    $run "$C" machine run -n g -- test -e /dev/dri && fail "gpu=false still passes /dev/dri"
    $run "$C" machine rm -f g >/dev/null 2>&1
done
echo PASS
