#!/bin/bash
# SPDX-License-Identifier: MIT
# A fresh user with subordinate ids but no cgroup delegated to it (no systemd user manager, no cgroup
# chowned by hand), as a plain user on a host without systemd: a systemd machine fails at once with one
# line naming the cause and the fix, every time, without booting init (the machine stays, stopped); machines
# whose init needs no cgroup (busybox, sysvinit) still boot there and say which limits are not enforced.
source "$(dirname "$0")/lib.sh"

ND_USER=${CONTAINER_TEST_NODELEG_USER:-ctrnodeleg}
is_root || skip "needs root: runs commands as the fresh user $ND_USER"
id -u "$ND_USER" >/dev/null 2>&1 && grep -q "^$ND_USER:" /etc/subuid ||
    skip "needs the user $ND_USER with subordinate ids (scripts/test.sh creates it)"
# This test's own cgroup ($TEST_CG/self) is root's: the user runs from it, with nothing delegated.
[[ -n $TEST_CG ]] || skip "needs a cgroup2 hierarchy"
run_nd() { _run_as "$ND_USER" "" "$T/ndata" "$@"; }
on_exit "remove_all_machines run_nd"
run_nd test ! -w "$TEST_CG/self/cgroup.procs" || fail "the test's cgroup is writable by $ND_USER"

bash "$FIX/debian-rootfs.sh" "$T/systemd.tar" systemd >/dev/null
bash "$FIX/debian-rootfs.sh" "$T/sysvinit.tar" sysvinit >/dev/null
busybox_images
chmod 644 "$T"/*.tar
chmod 777 "$T"
run_nd "$C" image import "$T/systemd.tar" localhost/debian:systemd >/dev/null
run_nd "$C" image import "$T/sysvinit.tar" localhost/debian:sysvinit >/dev/null
run_nd "$C" image load -i "$T/bb/image.oci.tar" >/dev/null

# The line: the cause (systemd, no delegated cgroup, which one) and this host's fix (no systemd here).
want='^Error: failed to boot container machine sd: systemd needs a cgroup it can write and this user has none delegated \(cgroup ".*" is not writable by this user\): this host runs no systemd to delegate one: as root, make a cgroup below /sys/fs/cgroup.* chown it .* to '"$ND_USER"
note "create fails at once; run fails the same way, every time, and init never runs"
start=$(date +%s%N)
CONTAINER_READY_TIMEOUT=100 expect_error "$want" run_nd "$C" machine create localhost/debian:systemd --name sd
ms=$((($(date +%s%N) - start) / 1000000))
echo "create failed after $ms ms"
((ms < 50000)) || fail "create waited $ms ms for a boot that cannot work"
[[ $(run_nd "$C" machine ls -q) == sd ]] || fail "machines after the failed create: $(run_nd "$C" machine ls -q)"
CONTAINER_READY_TIMEOUT=100 expect_error "$want" run_nd "$C" machine run -n sd -- true
CONTAINER_READY_TIMEOUT=100 expect_error "$want" run_nd "$C" machine start sd
run_nd "$C" machine logs --boot sd >"$T/bootlog"
[[ $(grep -c "boot failed: systemd needs a cgroup" "$T/bootlog") == 3 ]] || fail "expected three refused boots: $(cat "$T/bootlog")"
! grep -q "init started" "$T/bootlog" || fail "init ran: $(cat "$T/bootlog")"
! grep -q "first-boot provisioning done" "$T/bootlog" || fail "provisioning ran before the refusal"
[[ $(run_nd "$C" machine inspect sd | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["status"])') == stopped ]] ||
    fail "the machine is not stopped after a refused boot"
assert_machine_gone "$T/ndata" sd

note "inits that need no cgroup still boot, and say what is not enforced"
for img in busybox-fixture:1.0 localhost/debian:sysvinit; do
    run_nd "$C" machine create "$img" --name other --memory 1G >/dev/null || fail "create from $img"
    [[ $(run_nd "$C" machine run -n other -- id -un) == "$ND_USER" ]] || fail "run in $img"
    run_nd "$C" machine inspect other >"$T/inspect"
    python3 - "$T/inspect" <<'PY' || fail "inspect of $img: $(cat "$T/inspect")"
import json, sys
m = json.load(open(sys.argv[1]))[0]
assert m["status"] == "running", m["status"]
ne = m["limits"]["notEnforced"]
assert ne and any("memory" in n for n in ne), ne
PY
    run_nd "$C" machine rm -f other >/dev/null
done
echo "PASS"
