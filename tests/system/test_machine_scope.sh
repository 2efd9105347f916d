#!/bin/bash
# SPDX-License-Identifier: MIT
# The machine's cgroup on a systemd host: the supervisor runs under `systemd-run --scope
# --property=Delegate=yes`, leaves the scope's root for a "supervisor" leaf and puts the machine beside it.
# This host has no systemd (TESTING.md), so a stand-in systemd-run does what systemd does for such a
# scope: it makes the scope's cgroup, owned by the caller, moves itself in and executes the command. What
# is tested is ours: when the scope is asked for (detected from the manager's socket for the user, chosen
# with CONTAINER_CGROUP_MANAGER=systemd for root), how it is used, and the fallback when systemd-run fails.
source "$(dirname "$0")/lib.sh"

[[ -n $TEST_CG ]] || skip "needs root and a cgroup2 hierarchy to delegate cgroups to the test user"
busybox_images
chmod 777 "$T"
mkdir -p "$T/fakebin"
cat >"$T/fakebin/systemd-run" <<'EOF'
#!/bin/bash
# Stand-in for systemd-run --scope: see the test's header.
echo "$*" >>"$FAKE_LOG"
unit=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --user | --scope | --quiet | --collect | --property=Delegate=yes | --description=*) ;;
    --unit=*) unit=${1#--unit=} ;;
    --) shift; break ;;
    *) echo "systemd-run (stand-in): unexpected argument $1" >&2; exit 1 ;;
    esac
    shift
done
if [[ -n ${FAKE_FAIL:-} ]]; then echo "Failed to connect to bus: No such file or directory" >&2; exit 1; fi
dir=$FAKE_SCOPES/$unit.scope
mkdir "$dir" || exit 1
echo $$ >"$dir/cgroup.procs" || exit 1
exec "$@"
EOF
chmod 755 "$T/fakebin/systemd-run"
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
state() { python3 -c "import json; print(json.load(open('$1/machines/$2/state.json'))['$3'])"; }

scope_tests() {
    local mode=$1 run data scopes env_prefix
    run=$(runner_for "$mode")
    data=$(data_for "$mode")
    note "systemd scope as $mode"
    on_exit "remove_all_machines '$run'"
    if [[ $mode == root ]]; then
        scopes=$TEST_CG/self/scopes
        # No /run/systemd/private here: root chooses systemd explicitly.
        env_prefix="CONTAINER_CGROUP_MANAGER=systemd"
    else
        scopes=$USER_CG/scopes
        # A user's manager is detected from $XDG_RUNTIME_DIR/systemd/private.
        mkdir -p "$T/xdg/systemd"
        python3 -c "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$T/xdg/systemd/private"
        chown -R "$TEST_USER" "$T/xdg"
        chmod 700 "$T/xdg"
        env_prefix="XDG_RUNTIME_DIR=$T/xdg"
    fi
    mkdir -p "$scopes"
    [[ $mode == root ]] || chown "$TEST_USER" "$scopes"
    local log=$T/systemd-run.$mode.log
    : >"$log" && chmod 666 "$log"
    local e="env PATH=$T/fakebin:/usr/sbin:/usr/bin:/sbin:/bin FAKE_LOG=$log FAKE_SCOPES=$scopes $env_prefix"
    $run $e "$C" image load -i "$T/bb/image.oci.tar" >/dev/null

    $run $e "$C" machine create --name sc busybox-fixture:1.0 >/dev/null || fail "create in a scope"
    local args
    args=$(cat "$log")
    [[ $args == *"--scope"* && $args == *"--property=Delegate=yes"* && $args == *"--unit=container-machine-sc "* ]] ||
        fail "systemd-run arguments: $args"
    if [[ $mode == root ]]; then [[ $args != *--user* ]] || fail "root asked the user manager: $args"; else
        [[ $args == *--user* ]] || fail "the user did not ask its own manager: $args"; fi
    local scope=$scopes/container-machine-sc.scope sup
    [[ $(state "$data" sc cgroup) == "$scope/machine-sc" ]] || fail "machine cgroup: $(state "$data" sc cgroup)"
    sup=$(state "$data" sc supervisorPid)
    grep -qx "0::${scope#"$CG_ROOT"}/supervisor" "/proc/$sup/cgroup" ||
        fail "supervisor not in the scope's leaf: $(grep '^0::' "/proc/$sup/cgroup")"
    [[ -z $(cat "$scope/cgroup.procs") ]] || fail "processes left in the scope's root: $(cat "$scope/cgroup.procs")"
    grep -qx "$(state "$data" sc initPid)" "$scope/machine-sc/cgroup.procs" || fail "init is not in the machine cgroup"
    [[ $($run $e "$C" machine run -n sc hostname) == sc ]] || fail "run in a scoped machine"
    # A command run in the machine lands in the machine's cgroup, not in the caller's.
    $run $e "$C" machine run -n sc -- sh -c 'cat /proc/self/cgroup' | grep -qx '0::/run' || fail "run outside the machine's run cgroup"
    $run $e "$C" machine stop sc >/dev/null
    [[ ! -d $scope/machine-sc ]] || fail "machine cgroup left after stop"
    [[ -z $(cat "$scope/supervisor/cgroup.procs" 2>/dev/null) ]] || fail "supervisor still in its scope"
    rmdir "$scope/supervisor" "$scope" # what systemd does when a --collect scope empties

    # Detected but failing (no bus): the machine boots in the caller's cgroup and boot.log says why.
    if [[ $mode == user ]]; then
        $run $e FAKE_FAIL=1 "$C" machine start sc >/dev/null || fail "no fallback when systemd-run fails"
        [[ $(state "$data" sc cgroup) == "$USER_CG/machine-sc" ]] || fail "fallback cgroup: $(state "$data" sc cgroup)"
        $run "$C" machine logs --boot sc | grep -q "Failed to connect to bus" || fail "systemd-run's error not in boot.log"
        $run "$C" machine logs --boot sc | grep -q "no systemd scope (see above); booting in this command's cgroup" ||
            fail "fallback not noted in boot.log"
        $run $e "$C" machine stop sc >/dev/null
    fi
    # Chosen explicitly and failing: one clear line, nothing left running.
    expect_error "failed to boot container machine sc: its supervisor exited at once \(see 'container machine logs --boot sc'\)" \
        $run $e CONTAINER_CGROUP_MANAGER=systemd FAKE_FAIL=1 "$C" machine start sc
    [[ $($run "$C" machine inspect sc | field 'd[0]["status"]') == stopped ]] || fail "a failed start left sc running"
    # And cgroupfs chosen: systemd-run is not asked at all.
    : >"$log"
    $run $e CONTAINER_CGROUP_MANAGER=cgroupfs "$C" machine start sc >/dev/null || fail "start with cgroupfs"
    [[ ! -s $log ]] || fail "systemd-run asked despite cgroupfs: $(cat "$log")"
    $run "$C" machine rm -f sc >/dev/null
    assert_machine_gone "$data" sc
}

for mode in $(machine_modes); do scope_tests "$mode"; done
echo "systemd scope ok"
