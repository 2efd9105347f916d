#!/bin/bash
# SPDX-License-Identifier: MIT
# Resources and settings (SPEC §9): `set` validation and messages, the note for a running machine,
# cpus and memory limits that hold after a restart, virtualization; as root and as the test user with
# delegated v1 cgroups (this hybrid host's unified hierarchy has no controllers: the pure-v2 plan is
# covered by tests/unit/limits_test.cpp).
source "$(dirname "$0")/lib.sh"

busybox_images
chmod 777 "$T"
field() { python3 -c "import json,sys; d=json.load(sys.stdin)[0]; print($1)"; }

resources() {
    local mode=$1 run
    run=$(runner_for "$mode")
    note "resources as $mode"
    on_exit "remove_all_machines '$run'"
    $run "$C" image load -i "$T/bb/image.oci.tar" >/dev/null
    $run "$C" machine create --name r busybox-fixture:1.0 >/dev/null
    local host_cpus
    host_cpus=$(nproc)
    # Defaults: every CPU, half the memory in whole GiB (at least 1 GiB).
    [[ $($run "$C" machine inspect r | field 'd["cpus"]') == "$host_cpus" ]] || fail "default cpus"
    local half=$((($(awk '/MemTotal/ {print $2}' /proc/meminfo) * 1024 / 2) >> 30))
    ((half < 1)) && half=1
    [[ $($run "$C" machine inspect r | field 'd["memory"]') == $((half << 30)) ]] || fail "default memory"
    [[ $($run "$C" machine run -n r nproc) == "$host_cpus" ]] || fail "nproc before set"

    # Invalid values: the right message, exit 1, nothing changed.
    local before
    before=$(cat "$(data_for "$mode")/machines/r/boot-config.json")
    expect_error "invalid CPU count '0'" $run "$C" machine set -n r cpus=0
    expect_error "failed to parse x for cpus" $run "$C" machine set -n r cpus=x
    expect_error "invalid memory value '1'. Must be at least 1G." $run "$C" machine set -n r memory=1
    expect_error 'invalid size "12Q": invalid symbol: q' $run "$C" machine set -n r memory=12Q
    expect_error "invalid home mount option 'rwx'" $run "$C" machine set -n r home-mount=rwx
    expect_error "unknown fields 'bogus'" $run "$C" machine set -n r bogus=1
    expect_error "kernel cannot be set" $run "$C" machine set -n r kernel=/x
    expect_error "invalid argument format 'cpus'" $run "$C" machine set -n r cpus
    expect_error "expected at least one configuration value" $run "$C" machine set -n r
    expect_error "not found" $run "$C" machine set -n ghost cpus=1
    [[ $(cat "$(data_for "$mode")/machines/r/boot-config.json") == "$before" ]] || fail "a failed set changed the config"

    # set on a running machine: the note, and nothing changes until the restart.
    $run "$C" machine set -n r cpus=1 memory=1G >"$T/set.out" 2>"$T/set.err" || fail "set"
    [[ $(cat "$T/set.out") == r ]] || fail "set output"
    grep -qx "Note: Changes will take effect after stopping and restarting 'r'." "$T/set.err" || fail "no note"
    [[ $($run "$C" machine run -n r nproc) == "$host_cpus" ]] || fail "set applied before restart"
    [[ $($run "$C" machine inspect r | field 'd["cpus"], d["memory"]') == "1 1073741824" ]] || fail "configured values"
    [[ $($run "$C" machine inspect r | field 'd["limits"]["cpus"]') == "$host_cpus" ]] || fail "running limits"
    $run "$C" machine stop r >/dev/null
    $run "$C" machine set -n r memory=1.5GiB >/dev/null 2>"$T/set2.err"
    [[ ! -s $T/set2.err ]] || fail "note for a stopped machine"
    $run "$C" machine set -n r memory=1G >/dev/null
    $run "$C" machine start r >/dev/null

    # cpus=1: the machine sees one CPU, also in commands that join it.
    [[ $($run "$C" machine run -n r nproc) == 1 ]] || fail "nproc after restart"
    [[ $($run "$C" machine run -n r --root -- sh -c 'grep Cpus_allowed_list /proc/1/status') == *":"*[0-9] ]] || fail "init affinity"
    $run "$C" machine inspect r | field 'd["limits"]' >"$T/limits"
    echo "limits as $mode: $(cat "$T/limits")"
    [[ $($run "$C" machine inspect r | field 'd["limits"]["cpuTimeLimited"]') == True ]] || fail "CPU time not limited"
    # memory=1G: a process that wants 2 GiB is killed; the machine and its init live on.
    [[ $($run "$C" machine inspect r | field 'd["limits"].get("memory")') == 1073741824 ]] ||
        fail "memory limit not enforced: $(cat "$T/limits")"
    local rc=0
    $run "$C" machine run -n r -- sh -c 'head -c 2000m /dev/zero | tail >/dev/null' 2>/dev/null || rc=$?
    [[ $rc != 0 ]] || fail "a 2 GiB process survived a 1 GiB limit"
    $run "$C" machine run -n r true || fail "machine down after the OOM kill"
    [[ $($run "$C" machine inspect r | field 'd["status"]') == running ]] || fail "machine not running after the OOM kill"
    [[ $($run "$C" machine run -n r --root -- cat /proc/1/comm) == init ]] || fail "init died"

    # virtualization: /dev/kvm passes through when the host has it; a clear error when not.
    if [[ -e /dev/kvm ]]; then
        $run "$C" machine set -n r virtualization=true >/dev/null 2>&1 || fail "virtualization=true"
        $run "$C" machine stop r >/dev/null
        $run "$C" machine start r >/dev/null
        $run "$C" machine run -n r --root -- test -c /dev/kvm || fail "/dev/kvm missing inside"
        [[ $($run "$C" machine inspect r | field 'd["virtualization"]') == True ]] || fail "inspect virtualization"
    else
        expect_error "needs /dev/kvm" $run "$C" machine set -n r virtualization=true
    fi
    expect_error "invalid value 'maybe' for virtualization" $run "$C" machine set -n r virtualization=maybe

    # create flags share the rules.
    $run "$C" machine create --no-boot --name r2 --cpus 1 --memory 2G --home-mount none busybox-fixture:1.0 >/dev/null
    [[ $($run "$C" machine inspect r2 | field 'd["cpus"], d["memory"], d["homeMount"]') == "1 2147483648 none" ]] ||
        fail "create flags"
    expect_error "invalid memory value '512M'" $run "$C" machine create --no-boot --name r3 --memory 512M busybox-fixture:1.0
    remove_all_machines "$run"
}

for mode in $(machine_modes); do resources "$mode"; done
echo "resources ok"
