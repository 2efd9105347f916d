#!/bin/bash
# SPDX-License-Identifier: MIT
# Nothing is lost when `container` is killed: SIGKILL at chosen points of `image pull` (from a real
# registry), `image load`, `machine create`, `start`, `stop`, `set`, `commit` (of a running machine,
# frozen meanwhile), `build` (a RUN and a COPY step, no cache), `rm` and `image rm` with its GC, as
# root and as the unprivileged user. The binary kills itself at the Nth step that changes the disk
# (CONTAINER_FAULT_AT, base/fault.hpp): a census run of each command counts its steps, then each trial
# picks N at random. After each kill:
#   - `container system check` finds the store consistent (every named image's blobs verified and its
#     layers unpacked, every machine's image complete);
#   - no mount of the data directory is left on the host, and no process of ours is left but the
#     supervisors of machines that are running;
#   - the same command, run again, succeeds (create and image rm may instead find their work done:
#     "already exists" with a machine that then starts, "not found" with the image gone; rm finishes a
#     machine directory an earlier rm left, and says "not found" only when there is none).
#
# FAULT_TRIALS trials in all (default 48, what CI runs); the full run is
#   sudo FAULT_TRIALS=200 CONTAINER_BIN=build/container bash tests/system/test_fault_injection.sh
# FAULT_SEED repeats a run's choices (it is printed first).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry_lib.sh"

TRIALS=${FAULT_TRIALS:-48}
SEED=${FAULT_SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$((SEED % 32768))
note "trials $TRIALS, seed $SEED"

busybox_images busybox-fixture:1.0
chmod 777 "$T"
busybox_registry
LOADED=busybox-fixture:1.0

machine_exists() { $run "$C" machine inspect f >/dev/null 2>&1; }
machine_status() { $run "$C" machine inspect f 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["status"])'; }
image_exists() { $run "$C" image inspect "$1" >/dev/null 2>&1; }
ensure_loaded() { image_exists "$LOADED" || $run "$C" image load -i "$T/bb/image.oci.tar" >/dev/null || fail "setup: load"; }
ensure_machine() { # ensure_machine running|stopped
    ensure_loaded
    machine_exists || $run "$C" machine create "$LOADED" --name f --no-boot >/dev/null || fail "setup: create f"
    if [[ $1 == running ]]; then
        $run "$C" machine start f >/dev/null || fail "setup: start f"
    else
        $run "$C" machine stop f >/dev/null || fail "setup: stop f"
    fi
}
no_machine() { ! machine_exists || $run "$C" machine rm -f f >/dev/null || fail "setup: rm f"; }
no_images() { # both names of the fixture, and so (no machine left) every blob and layer
    no_machine
    $run "$C" image rm -f "$PULLED" "$LOADED" committed:1 >/dev/null 2>&1 || fail "setup: image rm"
}

# Each scenario: setup, the command, what a rerun may answer besides success, and what must hold after.
scenarios=(pull load create start stop set commit build rm image-rm)
mkdir -p "$T/bctx"
printf 'FROM %s\nRUN echo built >/built\nCOPY f /f\n' "$LOADED" >"$T/bctx/Containerfile"
echo copied >"$T/bctx/f"
chmod -R a+rX "$T/bctx"
setup_for() {
    case $1 in
    pull | load) no_images ;;
    create) ensure_loaded; no_machine ;;
    start | set) ensure_machine stopped ;;
    stop | rm) ensure_machine running ;;
    commit) ensure_machine running
        $run "$C" machine run -n f --root -- sh -c "echo changed >/etc/fault-commit" || fail "setup: change f"
        $run "$C" image rm -f committed:1 >/dev/null || fail "setup: image rm committed:1" ;;
    build) ensure_loaded
        $run "$C" image rm -f built:1 >/dev/null 2>&1 || true ;;
    image-rm) ensure_loaded; no_machine ;;
    esac
}
command_for() {
    case $1 in
    pull) echo image pull "$PULLED" ;;
    load) echo image load -i "$T/bb/image.oci.tar" ;;
    create) echo machine create "$LOADED" --name f ;;
    start) echo machine start f ;;
    stop) echo machine stop f ;;
    set) echo machine set -n f cpus=1 memory=2G ;;
    commit) echo machine commit f committed:1 ;;
    build) echo build --no-cache --progress none -t built:1 "$T/bctx" ;;
    rm) echo machine rm -f f ;;
    image-rm) echo image rm "$LOADED" ;;
    esac
}
rerun_may_say() {
    case $1 in
    create) echo "already exists" ;;
    rm | image-rm) echo "not found" ;;
    *) echo "^$" ;;
    esac
}
verify_after() {
    case $1 in
    pull) image_exists "$PULLED" || fail "pull: image missing after the rerun" ;;
    load) image_exists "$LOADED" || fail "load: image missing after the rerun" ;;
    create | start) [[ $(machine_status) == running ]] || $run "$C" machine start f >/dev/null ||
        fail "$1: machine f does not start after the rerun"
        [[ $($run "$C" machine run -n f -- echo ok) == ok ]] || fail "$1: run in f after the rerun" ;;
    stop) [[ $(machine_status) == stopped ]] || fail "stop: f is $(machine_status) after the rerun"
        assert_machine_gone "$data" f ;;
    set) $run "$C" machine inspect f | grep -q '"cpus": 1' || fail "set: cpus not 1 after the rerun" ;;
    commit) image_exists committed:1 || fail "commit: no image after the rerun"
        # Not left frozen, and the image holds the change.
        [[ $($run "$C" machine run -n f -- echo ok) == ok ]] || fail "commit: run in f after the rerun"
        $run "$C" machine create committed:1 --name g --no-boot >/dev/null || fail "commit: create from the commit"
        [[ $($run "$C" machine run -n g -- cat /etc/fault-commit) == changed ]] || fail "commit: the change is not in the image"
        $run "$C" machine rm -f g >/dev/null || fail "commit: rm g" ;;
    build) image_exists built:1 || fail "build: no image after the rerun"
        $run "$C" machine create built:1 --name g --no-boot >/dev/null || fail "build: create from the build"
        [[ $($run "$C" machine run -n g -- cat /built /f | paste -sd ' ') == "built copied" ]] ||
            fail "build: the steps are not in the image"
        $run "$C" machine rm -f g >/dev/null || fail "build: rm g" ;;
    rm) ! machine_exists || fail "rm: f still exists after the rerun"
        # A kill after config.json went leaves the directory: the rerun finishes it.
        [[ ! -e $data/machines/f ]] || fail "rm: the rerun left $data/machines/f" ;;
    image-rm) ! image_exists "$LOADED" || fail "image rm: still there after the rerun" ;;
    esac
}

# The store is consistent, and nothing runs or is mounted that should not be.
assert_clean() { # assert_clean WHEN
    local when=$1 i pid ok sups
    $run "$C" system check >"$T/check" 2>&1 || fail "$when: system check: $(cat "$T/check")"
    ! grep -q " $data[/ ]" /proc/self/mountinfo || fail "$when: mounts of $data left: $(grep " $data[/ ]" /proc/self/mountinfo)"
    for ((i = 0; i < 100; i++)); do
        sups=" $(cat "$data"/machines/*/state.json 2>/dev/null | grep -o '"supervisorPid": [0-9]*' | grep -o '[0-9]*$' | paste -sd ' ' || true) "
        ok=1
        for pid in $(pgrep -x container); do
            [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$C" ]] || continue
            [[ $sups == *" $pid "* || $sups == *" $(ps -o ppid= -p "$pid" | tr -d ' ') "* ]] && continue
            ok=0
        done
        ((ok)) && return 0
        read -r -t 0.05 _ <> <(:) || true
    done
    fail "$when: processes of ours left: $(for pid in $(pgrep -x container); do ps -o pid=,args= -p "$pid"; done)"
}

kills=0 trials=0 done_whole=0
declare -A census
for mode in $(machine_modes); do
    run=$(runner_for "$mode")
    data=$(data_for "$mode")
    on_exit "remove_all_machines '$run'"
    for s in "${scenarios[@]}"; do
        setup_for "$s"
        : >"$T/census"
        chmod 666 "$T/census"
        # shellcheck disable=SC2046
        $run env CONTAINER_FAULT_LOG="$T/census" "$C" $(command_for "$s") >/dev/null || fail "census run of $s ($mode)"
        census[$mode-$s]=$(wc -l <"$T/census")
        ((census[$mode-$s] > 0)) || fail "$s ($mode) passed no fault point"
    done
    note "as $mode: fault points per command: $(for s in "${scenarios[@]}"; do printf '%s=%s ' "$s" "${census[$mode-$s]}"; done)"
done

modes=($(machine_modes))
per_combo=$(((TRIALS + ${#modes[@]} * ${#scenarios[@]} - 1) / (${#modes[@]} * ${#scenarios[@]})))
for mode in "${modes[@]}"; do
    run=$(runner_for "$mode")
    data=$(data_for "$mode")
    for s in "${scenarios[@]}"; do
        for ((k = 0; k < per_combo && trials < TRIALS; k++)); do
            trials=$((trials + 1))
            n=$((RANDOM % census[$mode-$s] + 1))
            setup_for "$s"
            rc=0
            # shellcheck disable=SC2046
            $run env CONTAINER_FAULT_AT="$n" "$C" $(command_for "$s") >"$T/out" 2>&1 || rc=$?
            if ((rc == 137)); then kills=$((kills + 1)); else done_whole=$((done_whole + 1)); fi
            when="$s ($mode), killed at point $n of ${census[$mode-$s]} (rc $rc)"
            assert_clean "$when"
            rc=0
            # shellcheck disable=SC2046
            $run "$C" $(command_for "$s") >"$T/out" 2>&1 || rc=$?
            if ((rc != 0)); then
                grep -Eq "$(rerun_may_say "$s")" "$T/out" || fail "$when: the rerun failed: $(cat "$T/out")"
            fi
            verify_after "$s"
            assert_clean "$when, after the rerun"
        done
    done
done
# One kill chosen, not drawn: rm killed just after config.json went leaves a directory that is no
# machine; rm of the name again finishes it instead of saying "not found".
for mode in "${modes[@]}"; do
    run=$(runner_for "$mode")
    data=$(data_for "$mode")
    setup_for rm
    : >"$T/census"
    $run env CONTAINER_FAULT_LOG="$T/census" "$C" machine rm -f f >/dev/null || fail "census run of rm ($mode)"
    n=$(grep -n "rm: config removed" "$T/census" | cut -d: -f1)
    [[ -n $n ]] || fail "rm ($mode) passed no point 'rm: config removed': $(cat "$T/census")"
    setup_for rm
    expect_status 137 $run env CONTAINER_FAULT_AT="$n" "$C" machine rm -f f
    [[ -d $data/machines/f ]] && ! machine_exists || fail "rm killed after config.json ($mode): no leftover to finish"
    [[ $($run "$C" machine rm f 2>&1) == f ]] || fail "rm of the leftover f ($mode) did not finish it"
    [[ ! -e $data/machines/f ]] || fail "rm of the leftover ($mode) left $data/machines/f"
    assert_clean "rm killed after config.json ($mode), after the rerun"
done
note "$trials trials: $kills killed, $done_whole finished before their point (seed $SEED)"
((kills * 10 >= trials * 8)) || fail "only $kills of $trials trials killed the command"
echo PASS
