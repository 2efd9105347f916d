#!/bin/bash
# SPDX-License-Identifier: MIT
# Verbs over several names, as root and as the unprivileged user: `machine start`, `stop`, `rm` and
# `image rm` process every name given, in order. Each failure prints one "Error:" line, the other
# names still happen, and the exit status is 1 if any failed. With no name, start and stop use the
# default machine.
source "$(dirname "$0")/lib.sh"

busybox_images busybox-fixture:1.0
chmod 777 "$T"
status_of() { $run "$C" machine inspect "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["status"])'; }
# expect_partial WANT_STDOUT ERROR_REGEX CMD...: exit 1, exactly that stdout, one error line.
# (Deleting the default machine adds the reference's note on stderr: it is not an error line.)
expect_partial() {
    local want=$1 re=$2
    shift 2
    expect_status 1 "$@"
    grep -v "^Deleted default container machine" "$T/stderr" >"$T/errors" || true
    [[ $(wc -l <"$T/errors") == 1 ]] || fail "expected one error line from '$*', got: $(cat "$T/stderr")"
    grep -Eq "^Error: .*$re" "$T/errors" || fail "stderr of '$*' does not match /$re/: $(cat "$T/stderr")"
    [[ $(cat "$T/stdout") == "$want" ]] || fail "stdout of '$*': '$(cat "$T/stdout")', expected '$want'"
}

for mode in $(machine_modes); do
    run=$(runner_for "$mode")
    note "as $mode"
    on_exit "remove_all_machines '$run'"
    $run "$C" image load -i "$T/bb/image.oci.tar" >/dev/null
    for n in a b; do $run "$C" machine create busybox-fixture:1.0 --name $n --no-boot >/dev/null; done

    out=$($run "$C" machine start a b) || fail "start a b"
    [[ $out == $'a\nb' ]] || fail "start a b printed '$out'"
    for n in a b; do [[ $(status_of $n) == running ]] || fail "$n not running after start a b"; done

    expect_partial $'a\nb' 'container machine with ID missing not found' $run "$C" machine stop a missing b
    for n in a b; do [[ $(status_of $n) == stopped ]] || fail "$n not stopped after stop a missing b"; done

    expect_partial $'a\nb' 'container machine with ID missing not found' $run "$C" machine start missing a b
    for n in a b; do [[ $(status_of $n) == running ]] || fail "$n not running after start missing a b"; done

    # No name: the default machine.
    $run "$C" machine set-default b >/dev/null
    [[ $($run "$C" machine stop) == b ]] || fail "stop without a name"
    [[ $(status_of b) == stopped && $(status_of a) == running ]] || fail "stop without a name stopped the wrong one"

    # Today's bug: `rm -f missing existing` removed nothing.
    expect_partial $'a\nb' 'container machine with ID missing not found' $run "$C" machine rm -f missing a b
    [[ -z $($run "$C" machine ls -q) ]] || fail "machines left after rm -f missing a b: $($run "$C" machine ls -q)"
    assert_machine_gone "$(data_for "$mode")" a

    # image rm: a missing name and a name in use each get their line; the others go, and GC runs once.
    $run "$C" image tag busybox-fixture:1.0 localhost/x:1
    $run "$C" image tag busybox-fixture:1.0 localhost/y:1
    expect_partial $'localhost/x:1\nlocalhost/y:1' 'image localhost/missing:1 not found' \
        $run "$C" image rm localhost/x:1 localhost/missing:1 localhost/y:1
    [[ $($run "$C" image ls -q | wc -l) == 1 ]] || fail "names left: $($run "$C" image ls)"
    $run "$C" machine create busybox-fixture:1.0 --name used --no-boot >/dev/null
    $run "$C" image tag busybox-fixture:1.0 localhost/z:1
    # z goes (another name stays); then busybox-fixture is the last name of an image a machine uses.
    expect_partial 'localhost/z:1' 'image docker.io/library/busybox-fixture:1.0 is used by container machine used' \
        $run "$C" image rm localhost/z:1 busybox-fixture:1.0
    [[ $($run "$C" image ls -q | wc -l) == 1 ]] || fail "the used image went"
    # -f: a name already gone is not an error.
    expect_status 0 $run "$C" image rm -f localhost/missing:1
    $run "$C" machine rm used >/dev/null
done
echo "PASS"
