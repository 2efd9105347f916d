#!/bin/bash
# SPDX-License-Identifier: MIT
# The machine verbs the lifecycle test leaves out, as root and as the unprivileged user: the aliases
# (`m`, `list`, `delete`), `create --set-default`, `logs -f`; /sbin/init found through the image's own
# symbolic links across layers (a merged-/usr image whose init comes in a later layer) and not found
# (absent, or deleted by a whiteout); `reboot` inside (booted again; an init that reboots in a loop is
# stopped); and a machine whose init never becomes ready, against a short CONTAINER_READY_TIMEOUT.
source "$(dirname "$0")/lib.sh"

busybox_images busybox-fixture:1.0
chmod 777 "$T"
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# layered_image OUT.tar NAME:TAG LAYER.tar...: an oci-archive of those layers (bottom first), made by umoci.
layered_image() {
    local out=$1 ref=$2 tag=${2##*:} l
    shift 2
    local layout=$T/layout-$tag
    rm -rf "$layout"
    umoci init --layout "$layout"
    umoci new --image "$layout:$tag"
    for l in "$@"; do umoci raw add-layer --image "$layout:$tag" "$l"; done
    umoci config --image "$layout:$tag" --config.cmd=/sbin/init
    skopeo --insecure-policy copy -q "oci:$layout:$tag" "oci-archive:$out:$ref"
    chmod 644 "$out"
}
pack() { tar -C "$1" --numeric-owner -cf "$2" . && chmod 644 "$2"; } # pack DIR OUT.tar

# Merged /usr: layer 1 is busybox with /sbin an absolute link to /usr/sbin and no init at all, layer 2
# brings usr/sbin/init. Seen from the host, /sbin/init of layer 1 would be the host's own.
mkdir -p "$T/l1" "$T/l2/usr/sbin" "$T/l3/usr/sbin"
tar -C "$T/l1" -xf "$T/bb/rootfs.tar"
rm -f "$T/l1/sbin/init"
cp -a "$T/l1/sbin/." "$T/l1/usr/sbin/"
rm -rf "$T/l1/sbin"
ln -s /usr/sbin "$T/l1/sbin"
pack "$T/l1" "$T/l1.tar"
ln -s /bin/busybox "$T/l2/usr/sbin/init"
pack "$T/l2" "$T/l2.tar"
# Layer 3 deletes init again (an OCI whiteout).
: >"$T/l3/usr/sbin/.wh.init"
pack "$T/l3" "$T/l3.tar"
layered_image "$T/merged.tar" localhost/merged:1 "$T/l1.tar" "$T/l2.tar"
layered_image "$T/deleted.tar" localhost/deleted:1 "$T/l1.tar" "$T/l2.tar" "$T/l3.tar"
# No /sbin/init in any layer.
pack "$T/l1" "$T/noinit.tar"

# An init that says it is systemd but never opens its control socket: never ready.
mkdir -p "$T/fake/lib/systemd"
tar -C "$T/fake" -xf "$T/bb/rootfs.tar"
printf '#!/bin/sh\necho fake-systemd-waiting\nexec sleep 100000\n' >"$T/fake/lib/systemd/systemd"
chmod 755 "$T/fake/lib/systemd/systemd"
ln -sfn /lib/systemd/systemd "$T/fake/sbin/init"
pack "$T/fake" "$T/fake.tar"

# An init that reboots the moment it starts.
mkdir -p "$T/loop"
tar -C "$T/loop" -xf "$T/bb/rootfs.tar"
rm -f "$T/loop/sbin/init"
printf '#!/bin/sh\necho looping-init\nexec /bin/busybox reboot -f\n' >"$T/loop/sbin/init"
chmod 755 "$T/loop/sbin/init"
pack "$T/loop" "$T/loop.tar"

state_field() { python3 -c "import json; print(json.load(open('$1/machines/$2/state.json')).get('$3', ''))" 2>/dev/null || true; }

verbs() {
    local mode=$1 run data
    run=$(runner_for "$mode")
    data=$(data_for "$mode")
    note "machine verbs as $mode"
    on_exit "remove_all_machines '$run'"
    $run "$C" image load -i "$T/bb/image.oci.tar" >/dev/null

    # Aliases: `m` for machine, `list` for ls, `delete` for rm.
    [[ $($run "$C" m create --no-boot --name one busybox-fixture:1.0) == one ]] || fail "m create"
    [[ $($run "$C" machine list -q) == one ]] || fail "machine list"
    # --set-default moves the default to the new machine; without it the first machine keeps it.
    $run "$C" machine create --no-boot --name two busybox-fixture:1.0 >/dev/null
    [[ $($run "$C" machine inspect | field 'd[0]["id"]') == one ]] || fail "the first machine is not the default"
    $run "$C" machine create --no-boot --set-default --name three busybox-fixture:1.0 >/dev/null
    [[ $($run "$C" machine inspect | field 'd[0]["id"]') == three ]] || fail "--set-default ignored"
    grep -Eq '^three .*\*$' <($run "$C" m ls) || fail "ls shows no star on three: $($run "$C" m ls)"
    $run "$C" machine delete two three >/dev/null || fail "machine delete"
    [[ $($run "$C" machine ls -q) == one ]] || fail "delete left: $($run "$C" machine ls -q)"

    # logs -f prints what init's console says while the machine runs, and keeps going.
    $run "$C" machine start one >/dev/null
    $run "$C" machine logs -f one >"$T/follow.$mode" 2>&1 &
    local follow=$!
    for _ in $(seq 100); do grep -q busybox-init-started "$T/follow.$mode" && break; sleep 0.05; done
    grep -q busybox-init-started "$T/follow.$mode" || fail "logs -f did not print the log so far"
    $run "$C" machine run --root -n one -- sh -c 'echo followed-line-42 >/dev/console'
    for _ in $(seq 100); do grep -q followed-line-42 "$T/follow.$mode" && break; sleep 0.05; done
    grep -q followed-line-42 "$T/follow.$mode" || fail "logs -f missed a new console line: $(cat "$T/follow.$mode")"
    # As the user the job is a shell around runuser: end the CLI itself.
    pgrep -f "$C machine logs -f one" >/dev/null || fail "logs -f ended on its own"
    pkill -f "$C machine logs -f one"
    wait "$follow" 2>/dev/null || true

    # `reboot` inside boots the machine again: a new init, the console of both boots, still running.
    local init1 init2=""
    init1=$(state_field "$data" one initPid)
    # The shutdown that `reboot` starts may end `reboot` itself before it exits (status 143 under load):
    # what counts is the new init checked below.
    $run "$C" machine run --root -n one -- reboot || true
    for _ in $(seq 200); do
        init2=$(state_field "$data" one initPid)
        [[ -n $init2 && $init2 != 0 && $init2 != "$init1" && $(state_field "$data" one ready) == True ]] && break
        sleep 0.05
    done
    [[ -n $init2 && $init2 != 0 && $init2 != "$init1" ]] || fail "no new init after reboot (was $init1, now '$init2')"
    [[ $($run "$C" machine inspect one | field 'd[0]["status"]') == running ]] || fail "not running after reboot"
    [[ $($run "$C" machine run -n one hostname) == one ]] || fail "run after reboot"
    [[ $($run "$C" machine logs one | grep -c busybox-init-started) == 2 ]] || fail "console of two boots: $($run "$C" machine logs one)"
    $run "$C" machine logs --boot one | grep -q "init asked for a reboot" || fail "boot log does not say reboot"
    $run "$C" machine rm -f one >/dev/null
    # An init that reboots at once, again and again, is stopped after ten reboots within a minute.
    $run "$C" image import "$T/loop.tar" localhost/loop:1 >/dev/null
    # create itself may see the machine ready or already gone: what counts is how it ends.
    $run "$C" machine create --name loop localhost/loop:1 >"$T/loop.out" 2>&1 || true
    $run "$C" machine inspect loop >/dev/null 2>&1 || fail "create made no machine: $(cat "$T/loop.out")"
    local status=""
    for _ in $(seq 600); do
        status=$($run "$C" machine inspect loop 2>&1 | field 'd[0]["status"]' 2>&1) || true
        [[ $status == stopped ]] && break
        sleep 0.05
    done
    [[ $status == stopped ]] ||
        fail "a rebooting loop keeps running ($status; create said: $(cat "$T/loop.out")): $($run "$C" machine logs --boot loop | tail -4 | tr '\n' '|')"
    $run "$C" machine logs --boot loop | grep -q "11 reboots within a minute: stopped instead" ||
        fail "reboot limit: $($run "$C" machine logs --boot loop | tail -3)"
    # Counted in boot.log, which the supervisor writes itself (console lines of an init that lives for
    # a millisecond can be cut short with it).
    [[ $($run "$C" machine logs --boot loop | grep -c "init started as pid") == 11 ]] ||
        fail "expected 11 boots: $($run "$C" machine logs --boot loop | grep -c "init started as pid")"
    $run "$C" machine logs loop | grep -q looping-init || fail "the looping init's console is missing"
    assert_machine_gone "$data" loop
    $run "$C" machine rm loop >/dev/null

    # /sbin/init through the image's links and layers.
    $run "$C" image load -i "$T/merged.tar" >/dev/null
    $run "$C" machine create --name merged localhost/merged:1 >/dev/null || fail "create from the merged-/usr image"
    [[ $($run "$C" machine run -n merged -- readlink /sbin) == /usr/sbin ]] || fail "/sbin is not the image's link"
    [[ $($run "$C" machine run --root -n merged -- cat /proc/1/comm) == init ]] || fail "PID 1 is not busybox init"
    # Stopped the busybox way (SIGUSR2), not killed after the timeout: the kind was read through the links.
    $run "$C" machine stop merged >/dev/null
    ! $run "$C" machine logs --boot merged | grep -q "stop timeout" || fail "merged-/usr busybox needed SIGKILL"
    $run "$C" machine logs merged | grep -q busybox-init-stopping || fail "busybox did not run its shutdown"
    assert_machine_gone "$data" merged
    $run "$C" machine rm merged >/dev/null

    $run "$C" image load -i "$T/deleted.tar" >/dev/null
    expect_error 'image localhost/deleted:1 has no /sbin/init, so it cannot boot as a machine' \
        $run "$C" machine create --name deleted localhost/deleted:1
    $run "$C" image import "$T/noinit.tar" localhost/noinit:1 >/dev/null
    expect_error 'image localhost/noinit:1 has no /sbin/init, so it cannot boot as a machine' \
        $run "$C" machine create --no-boot --name noinit localhost/noinit:1
    [[ -z $($run "$C" machine ls -q) && ! -e $data/machines/noinit && ! -e $data/machines/deleted ]] ||
        fail "a refused create left a machine behind"

    # Never ready: create gives up after the timeout with one clear line; the machine keeps starting
    # (its console shows why) until it is stopped.
    $run "$C" image import "$T/fake.tar" localhost/fake:1 >/dev/null
    expect_error "container machine slow was not ready within 2s: its init is still starting \(see 'container machine logs slow'" \
        $run env CONTAINER_READY_TIMEOUT=2 "$C" machine create --name slow localhost/fake:1
    [[ $($run "$C" machine inspect slow | field 'd[0]["status"]') == starting ]] || fail "slow is not starting"
    $run "$C" machine logs slow | grep -q fake-systemd-waiting || fail "the fake init's console line is missing"
    expect_error "container machine slow was not ready within 1s" $run env CONTAINER_READY_TIMEOUT=1 "$C" machine start slow
    $run "$C" machine stop --time 1 slow >/dev/null || fail "stop a machine that never got ready"
    assert_machine_gone "$data" slow
    $run "$C" machine rm slow >/dev/null
}

for mode in $(machine_modes); do verbs "$mode"; done
echo "machine verbs ok"
