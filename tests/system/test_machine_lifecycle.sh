#!/bin/bash
# SPDX-License-Identifier: MIT
# Every machine verb and flag on the busybox image, as root and as the unprivileged user: create
# (names, defaults, --no-boot), start, ls/inspect, run (arguments, exit status, signals, env, cwd, users,
# stdin, detach), logs, stop (idempotent, --time), set-default, rm, and the errors of each.
source "$(dirname "$0")/lib.sh"

busybox_images busybox-fixture:1.0
chmod 777 "$T"
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

lifecycle() {
    local mode=$1 run data
    run=$(runner_for "$mode")
    data=$(data_for "$mode")
    note "lifecycle as $mode"
    on_exit "remove_all_machines '$run'"
    $run "$C" image load -i "$T/bb/image.oci.tar" >/dev/null

    # No machine yet: the default-machine rule speaks.
    expect_error 'no container machine specified and no default set' $run "$C" machine inspect
    expect_error 'no container machine specified and no default set' $run "$C" machine run true
    expect_error 'container machine with ID ghost not found' $run "$C" machine stop ghost
    expect_error 'container machine with ID ghost not found' $run "$C" machine rm ghost
    expect_error 'container machine with ID ghost not found' $run "$C" machine set-default ghost

    # Names: derived from the image, validated, unique.
    $run "$C" machine create --no-boot busybox-fixture:1.0 >"$T/out" || fail "create derived"
    [[ $(cat "$T/out") == busybox-fixture-1-0 ]] || fail "derived name: $(cat "$T/out")"
    expect_error 'already exists' $run "$C" machine create --no-boot busybox-fixture:1.0
    expect_error 'must start and end with a lowercase letter or digit' $run "$C" machine create --no-boot --name -bad busybox-fixture:1.0
    expect_error 'contain only lowercase letters, digits and hyphens' $run "$C" machine create --no-boot --name Bad busybox-fixture:1.0
    expect_error 'be 1 to 57 characters long' $run "$C" machine create --no-boot --name "$(printf 'a%.0s' {1..58})" busybox-fixture:1.0
    # An image the store lacks is pulled; here nothing listens at the registry's port.
    expect_error 'failed to create container machine: cannot reach registry 127.0.0.1:9' $run "$C" machine create 127.0.0.1:9/nope:1.0
    expect_status 64 $run "$C" machine create --cpus notanumber busybox-fixture:1.0
    expect_error "invalid home mount option 'sideways'" $run "$C" machine create --home-mount sideways busybox-fixture:1.0

    # --no-boot costs almost nothing; the first machine is the default.
    $run "$C" machine create --no-boot --name box busybox-fixture:1.0 >/dev/null
    # A taken name is refused before any download (nothing listens at that registry's port).
    expect_error 'failed to create container machine: container machine with ID box already exists' \
        $run "$C" machine create --name box 127.0.0.1:9/nope:1.0
    expect_error 'failed to create container machine: invalid reference "Not:A:Ref"' $run "$C" machine create Not:A:Ref
    local kib
    kib=$(du -sk "$data/machines/box" | cut -f1)
    ((kib < 1024)) || fail "create --no-boot used ${kib} KiB"
    $run "$C" machine ls >"$T/ls"
    head -1 "$T/ls" | grep -Eq '^NAME +CREATED +NETWORK +CPUS +MEMORY +DISK +STATE +DEFAULT$' || fail "ls header"
    grep -Eq '^busybox-fixture-1-0 .* stopped +\*$' "$T/ls" || fail "first machine is not the default: $(cat "$T/ls")"
    grep -Eq '^box .* stopped *$' "$T/ls" || fail "box row: $(cat "$T/ls")"
    [[ $($run "$C" machine ls -q | tr '\n' ' ') == "box busybox-fixture-1-0 " ]] || fail "ls -q"
    $run "$C" machine ls --format json | field '[(m["id"], m["status"], m["default"]) for m in d]' >"$T/j"
    grep -q "('box', 'stopped', False)" "$T/j" || fail "ls json: $(cat "$T/j")"
    $run "$C" machine set-default box >/dev/null
    $run "$C" machine inspect | field 'd[0]["id"], d[0]["status"], d[0]["homeMount"], d[0]["image"]["reference"], d[0]["userSetup"]["uid"]' >"$T/i"
    [[ $(cat "$T/i") == "box stopped rw docker.io/library/busybox-fixture:1.0 $($run id -u)" ]] ||
        fail "inspect: $(cat "$T/i")"

    # run boots a stopped machine, then passes arguments through untouched.
    $run "$C" machine run -n box -- printf '[%s]\n' 'a b' "c'd" '$HOME' '' >"$T/args" || fail "run printf"
    [[ $(cat "$T/args") == $'[a b]\n[c\'d]\n[$HOME]\n[]' ]] || fail "arguments changed: $(cat "$T/args")"
    [[ $($run "$C" machine inspect box | field 'd[0]["status"]') == running ]] || fail "run did not boot box"
    [[ $($run "$C" machine run -n box hostname) == box ]] || fail "hostname"
    $run "$C" machine run -n box -- sh -c 'exit 7' && fail "exit status lost" || [[ $? == 7 ]] || fail "exit 7 expected"
    local rc=0
    $run "$C" machine run -n box -- sh -c 'kill -TERM $$' || rc=$?
    [[ $rc == 143 ]] || fail "signal status: $rc"
    rc=0
    $run "$C" machine run -n box -- /no/such/thing 2>"$T/err" || rc=$?
    [[ $rc == 127 ]] || fail "missing command status $rc"
    # Flags after the command belong to the command.
    [[ $($run "$C" machine run -n box ls -d /etc) == /etc ]] || fail "command flags parsed as ours"
    # stdin streams through.
    [[ $(printf 'one\ntwo\n' | $run "$C" machine run -n box -- wc -l) == 2 ]] || fail "stdin"
    # Identity: the host user's ids by default, --root, --uid/--gid, -u.
    [[ $($run "$C" machine run -n box -- id -u) == $($run id -u) ]] || fail "default uid"
    [[ $($run "$C" machine run -n box --root -- id -u) == 0 ]] || fail "--root"
    [[ $($run "$C" machine run -n box --uid 1234 --gid 4321 -- sh -c 'echo $(id -u) $(id -g)') == "1234 4321" ]] ||
        fail "--uid/--gid"
    [[ $($run "$C" machine run -n box -u nobody -- id -u) == 65534 ]] || fail "-u nobody"
    [[ $($run "$C" machine run -n box -u 0 -- id -u) == 0 ]] || fail "-u 0"
    expect_error 'user ghost not found in the machine' $run "$C" machine run -n box -u ghost -- true
    # Environment: -e, --env-file (later wins), and the basics.
    printf '# comment\nFROM_FILE=1\nBOTH=file\n\n' >"$T/envfile"
    chmod 644 "$T/envfile"
    $run "$C" machine run -n box --env-file "$T/envfile" -e BOTH=flag -e 'SPACED=a b' -- sh -c 'echo "$FROM_FILE|$BOTH|$SPACED|$HOME|$container"' >"$T/env"
    [[ $(cat "$T/env") == "1|flag|a b|$(getent passwd "$($run id -u)" | cut -d: -f6)|container-machine" ]] ||
        fail "env: $(cat "$T/env")"
    expect_error 'failed to read envfile at /no/file' $run "$C" machine run -n box --env-file /no/file -- true
    printf '=novalue\n' >"$T/badenv" && chmod 644 "$T/badenv"
    expect_error "no variable name on line '=novalue'" $run "$C" machine run -n box --env-file "$T/badenv" -- true
    # Working directory.
    [[ $($run "$C" machine run -n box -w /etc -- pwd) == /etc ]] || fail "-w"
    [[ $($run "$C" machine run -n box --root -w /tmp -- pwd) == /tmp ]] || fail "-w /tmp"
    # Detach: returns at once with the name; the command keeps running.
    [[ $($run "$C" machine run -n box -d --root -- sh -c 'sleep 1; touch /tmp/detached') == box ]] || fail "-d output"
    for _ in $(seq 50); do $run "$C" machine run -n box -- test -e /tmp/detached && break; sleep 0.1; done
    $run "$C" machine run -n box -- test -e /tmp/detached || fail "detached command did not run"

    # Ctrl-C (SIGINT to the foreground process group) reaches the command, not the CLI or the machine.
    # The root pass left its files: a stale int.rc would end the wait below before this run wrote one.
    rm -f "$T/int.rc" "$T/int.out"
    setsid bash -c "$(declare -f _run_as run_as_user is_root); TEST_USER=$TEST_USER USER_CGS=$USER_CGS C=$C T=$T; \
        $run \"\$C\" machine run -n box -- sh -c 'trap \"echo got-int; exit 5\" INT; sleep 1017 & wait' \
        >$T/int.out 2>&1; echo \$? >$T/int.rc" &
    # The background sleep exists only once the trap is in place.
    for _ in $(seq 200); do pgrep -f '^sleep 1017$' >/dev/null && break; sleep 0.05; done
    pgrep -f '^sleep 1017$' >/dev/null || fail "the command under test never started"
    kill -INT -- -"$(pgrep -f "trap \"echo got-int" | head -1 | xargs ps -o pgid= -p | tr -d ' ')" 2>/dev/null ||
        fail "could not find the run's process group"
    local t0=$SECONDS
    # Generous: once (of many runs) the status came later than 5 s; the failure says how long it took.
    for _ in $(seq 400); do [[ -s $T/int.rc ]] && break; sleep 0.05; done
    # Status 5 comes only from the command's INT trap.
    [[ $(cat "$T/int.rc" 2>/dev/null) == 5 ]] ||
        fail "SIGINT did not reach the command within $((SECONDS - t0)) s: rc=$(cat "$T/int.rc" 2>/dev/null) out=$(cat "$T/int.out")"
    [[ $($run "$C" machine inspect box | field 'd[0]["status"]') == running ]] || fail "SIGINT stopped the machine"

    # The machine's view: PID 1 is init, the environment marker, the private /dev, /etc/hosts.
    [[ $($run "$C" machine run -n box --root -- cat /proc/1/environ | tr '\0' '\n' | grep ^container=) == container=container-machine ]] ||
        fail "init environment"
    [[ $($run "$C" machine run -n box -- head -2 /etc/hosts) == $'127.0.0.1 localhost\n127.0.1.1 box' ]] || fail "/etc/hosts"
    $run "$C" machine run -n box -- test -c /dev/null -a -c /dev/ptmx -a -d /dev/pts -a -d /dev/shm || fail "/dev"
    $run "$C" machine run -n box -- sh -c 'echo x > /dev/null' || fail "/dev/null not writable"
    # Root inside is not root outside: no raw I/O capability, and the host's files are out of reach.
    $run "$C" machine run -n box --root -- sh -c 'grep CapBnd /proc/self/status' >"$T/cap"
    [[ $(cat "$T/cap") != *ffffffffff* ]] || fail "full capability bounding set: $(cat "$T/cap")"

    # Persistence: files written in the machine survive a restart.
    $run "$C" machine run -n box --root -- sh -c 'echo kept > /etc/persisted'
    local init_pid
    init_pid=$($run "$C" machine inspect box | field 'd[0]["initPid"]')
    $run "$C" machine stop box >/dev/null || fail "stop"
    [[ ! -e /proc/$init_pid ]] || fail "init $init_pid still running after stop"
    assert_machine_gone "$data" box
    [[ $($run "$C" machine stop box) == box ]] || fail "stop of a stopped machine must succeed"
    $run "$C" machine start box >/dev/null || fail "start"
    [[ $($run "$C" machine run -n box cat /etc/persisted) == kept ]] || fail "upper layer lost"

    # Logs: the console of both boots, the supervisor's record, -n.
    $run "$C" machine logs box >"$T/log"
    [[ $(grep -c busybox-init-started "$T/log") == 2 ]] || fail "stdio.log over two boots: $(cat "$T/log")"
    grep -q busybox-init-stopping "$T/log" || fail "shutdown not in the console log"
    $run "$C" machine logs --boot box | grep -q "supervisor.*ready" || fail "boot log"
    [[ $($run "$C" machine logs -n 1 --boot box | wc -l) == 1 ]] || fail "logs -n 1"
    expect_error 'failed to open container machine logs' $run "$C" machine logs busybox-fixture-1-0

    # An image a machine was made from stays until forced; forced, the machine keeps its layers.
    expect_error 'image docker.io/library/busybox-fixture:1.0 is used by container machine' $run "$C" image rm busybox-fixture:1.0
    # One of two names of that image goes without -f (the image keeps the other).
    $run "$C" image tag busybox-fixture:1.0 localhost/alias:1 >/dev/null
    $run "$C" image rm localhost/alias:1 >/dev/null || fail "rm of a second name of a used image"
    ! $run "$C" image ls -q | grep -q localhost/alias || fail "the second name is still listed"
    $run "$C" image tag busybox-fixture:1.0 localhost/forced:1 >/dev/null
    $run "$C" machine create --no-boot --name forced localhost/forced:1 >/dev/null
    $run "$C" image rm -f localhost/forced:1 >/dev/null || fail "image rm -f"
    $run "$C" image rm busybox-fixture:1.0 >/dev/null 2>&1 && fail "rm of a used image succeeded"
    [[ $($run "$C" machine run -n forced hostname) == forced ]] || fail "machine lost its image's layers"
    $run "$C" machine rm -f forced >/dev/null 2>&1

    # stop --time 0 kills at once; rm stops first; deleting the default clears it.
    $run "$C" machine stop --time 0 box >/dev/null
    assert_machine_gone "$data" box
    $run "$C" machine start box >/dev/null
    $run "$C" machine rm box >/dev/null 2>"$T/rm.err" || fail "rm running machine"
    grep -q "Deleted default container machine 'box'" "$T/rm.err" || fail "rm default note: $(cat "$T/rm.err")"
    [[ ! -e $data/machines/box ]] || fail "machine dir left"
    assert_machine_gone "$data" box
    expect_error 'no container machine specified and no default set' $run "$C" machine inspect
    $run "$C" machine rm busybox-fixture-1-0 >/dev/null 2>&1
    [[ -z $($run "$C" machine ls -q) ]] || fail "machines left"
    # The image is untouched by all of this.
    $run "$C" image inspect busybox-fixture:1.0 >/dev/null || fail "image gone"
}

for mode in $(machine_modes); do lifecycle "$mode"; done
echo "machine lifecycle ok"
