#!/bin/bash
# SPDX-License-Identifier: MIT
# The reference's machine tests (apple-container-machine.md §5.1 1-4, §5.2 1-30, 45, 55) on the busybox
# image, as root and as the unprivileged user. Adapted per SPEC §10: commands run as given (so shell
# expansions use `sh -c`), the network is the host's (no ipAddress; inspect says "network": "host").
source "$(dirname "$0")/lib.sh"

busybox_images
chmod 777 "$T"
insp() { $run "$C" machine inspect "$@" | python3 -c "import json,sys; d=json.load(sys.stdin)[0]; print($FIELD)"; }

reference_tests() {
    local mode=$1 run data host_uid
    run=$(runner_for "$mode")
    data=$(data_for "$mode")
    host_uid=$($run id -u)
    note "reference tests as $mode"
    on_exit "remove_all_machines '$run'"
    $run "$C" image load -i "$T/bb/image.oci.tar" >/dev/null
    local img=busybox-fixture:1.0

    # 5.1.1 create --no-boot then rm. 5.1.2 dots rejected. 5.1.3 55 characters boot. 5.1.4 58 rejected.
    $run "$C" machine create --no-boot --name t1 $img >/dev/null || fail "5.1.1 create"
    $run "$C" machine rm t1 >/dev/null 2>&1 || fail "5.1.1 rm"
    expect_error 'must start and end' $run "$C" machine create --no-boot --name my.bad.name $img
    local n55 n58
    n55=$(printf 'a%.0s' {1..55})
    n58=$(printf 'a%.0s' {1..58})
    $run "$C" machine create --no-boot --name "$n55" $img >/dev/null || fail "5.1.3 create"
    [[ $($run "$C" machine run --root -n "$n55" hostname) == "$n55" ]] || fail "5.1.3 boot"
    $run "$C" machine rm "$n55" >/dev/null 2>&1
    expect_error 'must start and end' $run "$C" machine create --no-boot --name "$n58" $img

    $run "$C" machine create --no-boot --name m1 $img >/dev/null
    $run "$C" machine create --no-boot --name m2 $img >/dev/null
    # 2. stop of a never-booted machine: prints the name, stays stopped.
    [[ $($run "$C" machine stop m1) == m1 ]] || fail "2 stop output"
    [[ $(FIELD='d["status"]' insp m1) == stopped ]] || fail "2 status"
    # 4. inspect a stopped machine.
    [[ $(FIELD='d["status"], "startedDate" in d, d["id"], "busybox-fixture" in d["image"]["reference"], "createdDate" in d, d["cpus"] > 0, d["memory"] > 0, d["network"]' insp m1) == \
        "stopped False m1 True True True True host" ]] || fail "4 inspect stopped: $(FIELD='d' insp m1)"
    # 8. run boots a stopped machine.
    [[ $($run "$C" machine run --root -n m1 echo autoboot) == autoboot ]] || fail "8 autoboot"
    # 5. inspect a running machine.
    [[ $(FIELD='d["status"], "startedDate" in d, d["platform"]["os"]' insp m1) == "running True linux" ]] || fail "5 inspect running"
    # 1. stop a running machine: exactly the name, then stopped without startedDate.
    [[ $($run "$C" machine stop m1) == m1 ]] || fail "1 stop output"
    [[ $(FIELD='d["status"], "startedDate" in d' insp m1) == "stopped False" ]] || fail "1 after stop"
    # 3, 6, 13. not found.
    expect_error 'not found' $run "$C" machine stop nonexistent-x1
    expect_error 'not found' $run "$C" machine inspect nonexistent-x1
    expect_error 'not found' $run "$C" machine run -n nonexistent-x1 echo test
    # 7, 9, 10.
    [[ $($run "$C" machine run --root -n m1 echo hello) == hello ]] || fail "7"
    [[ $($run "$C" machine run --root -n m1 id -u) == 0 ]] || fail "9"
    [[ $($run "$C" machine run -n m1 id -u) == "$host_uid" ]] || fail "10"
    # 11, 17. environment (expansion by the machine's shell).
    [[ $($run "$C" machine run --root -n m1 -e MY_VAR=hello_world -- sh -c 'echo $MY_VAR') == hello_world ]] || fail "11"
    [[ $($run "$C" machine run --root -n m1 -e VAR1=one -e VAR2=two -e VAR3=three -- sh -c 'echo $VAR1-$VAR2-$VAR3') == one-two-three ]] ||
        fail "17"
    # 12. cwd.
    [[ $($run "$C" machine run --root -n m1 --cwd /tmp pwd) == /tmp ]] || fail "12"
    # 14. /etc/hosts: localhost, then the machine's own name.
    [[ $($run "$C" machine run -n m1 head -2 /etc/hosts) == $'127.0.0.1 localhost\n127.0.1.1 m1' ]] || fail "14"
    # 16. exit status.
    local rc=0
    $run "$C" machine run --root -n m1 -- sh -c 'exit 42' || rc=$?
    [[ $rc == 42 ]] || fail "16: $rc"
    # 18-20. ids.
    [[ $($run "$C" machine run -n m1 --uid 1000 id -u) == 1000 ]] || fail "18"
    [[ $($run "$C" machine run --root -n m1 --gid 1000 id -G | tr ' ' '\n' | sort -n | tr '\n' ' ') == "0 1000 " ]] || fail "19"
    [[ $($run "$C" machine run -n m1 --user 1000:1000 -- sh -c 'echo $(id -u):$(id -g)') == 1000:1000 ]] || fail "20"
    # 21. env file.
    echo TEST_VAR=from_file >"$T/env21" && chmod 644 "$T/env21"
    [[ $($run "$C" machine run --root -n m1 --env-file "$T/env21" -- sh -c 'echo $TEST_VAR') == from_file ]] || fail "21"
    # 22, 23. ls lists running and stopped machines.
    $run "$C" machine ls >"$T/ls"
    grep -Eq '^m1 .* running' "$T/ls" || fail "22"
    grep -Eq '^m2 .* stopped' "$T/ls" || fail "23"
    # 25. JSON listing.
    $run "$C" machine ls --format json | python3 -c '
import json, sys
d = {m["id"]: m for m in json.load(sys.stdin)}
m = d["m1"]
assert m["status"] == "running" and m["cpus"] > 0 and m["memory"] > 0 and "createdDate" in m, m
assert d["m2"]["status"] == "stopped"' || fail "25"
    # 26-29. default machine.
    [[ $($run "$C" machine set-default m1) == m1 ]] || fail "26 output"
    grep -Eq '^m1 .*\*$' <($run "$C" machine ls) || fail "26 star"
    expect_error 'not found' $run "$C" machine set-default nonexistent-x1
    [[ $($run "$C" machine set-default m2) == m2 ]] || fail "28 output"
    [[ $(FIELD='d["id"]' insp) == m2 ]] || fail "28/29 inspect default"
    # 30. run uses the default.
    [[ $($run "$C" machine run --root echo default-test) == default-test ]] || fail "30"
    # 24. ls -q is exactly the names.
    $run "$C" machine rm m1 m2 >/dev/null 2>&1
    $run "$C" machine create --no-boot --name only $img >/dev/null
    [[ $($run "$C" machine ls -q) == only ]] || fail "24"
    # 45. create boots by default.
    $run "$C" machine create --name booted $img >/dev/null
    [[ $(FIELD='d["status"], "startedDate" in d' insp booted) == "running True" ]] || fail "45"
    # 55. full lifecycle.
    [[ $(FIELD='d["status"]' insp only) == stopped ]] || fail "55 created"
    $run "$C" machine run --root -n only true
    [[ $(FIELD='d["status"]' insp only) == running ]] || fail "55 booted"
    [[ -n $($run "$C" machine run -n only hostname) ]] || fail "55 hostname"
    $run "$C" machine stop only >/dev/null
    [[ $(FIELD='d["status"]' insp only) == stopped ]] || fail "55 stopped"
    $run "$C" machine run --root -n only true
    [[ $(FIELD='d["status"]' insp only) == running ]] || fail "55 booted again"
    remove_all_machines "$run"
}

for mode in $(machine_modes); do
    run=""
    reference_tests "$mode"
done
echo "reference machine tests ok"
