#!/bin/bash
# SPDX-License-Identifier: MIT
# Extra mounts (issue #18, SPEC §13): -v and --mount on create and set, shown by inspect, removed by
# mounts=; the user's files stay the user's inside; read-only holds against root inside; each validation
# problem is one line; a link the machine plants at a target is refused, not followed.
source "$(dirname "$0")/lib.sh"

busybox_images
chmod 777 "$T"
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

mounts_case() {
    local mode=$1 run user uid home src ro file
    run=$(runner_for "$mode")
    user=$($run id -un)
    uid=$($run id -u)
    home=$(getent passwd "$user" | cut -d: -f6)
    note "extra mounts, as $mode ($user)"
    on_exit "remove_all_machines '$run'"
    $run "$C" image load -i "$T/bb/image.oci.tar" >/dev/null
    src=$T/share-$mode ro=$T/ro-$mode file=$T/conf-$mode
    $run mkdir -p "$src" "$ro"
    $run sh -c "echo shared >'$src/hello'; echo locked >'$ro/kept'; echo conf >'$file'"

    # Validation: one line per problem, nothing created.
    expect_error "mount source '$T/nope' does not exist" $run "$C" machine create --no-boot --name bad -v "$T/nope:/data" busybox-fixture:1.0
    expect_error "mount source 'rel' is not an absolute path" $run "$C" machine create --no-boot --name bad -v "rel:/data" busybox-fixture:1.0
    expect_error "mount target 'data' is not an absolute path" $run "$C" machine create --no-boot --name bad -v "$src:data" busybox-fixture:1.0
    for api in /proc /sys /dev; do
        expect_error "mount target '$api/x' is over $api, which the machine's runtime provides" \
            $run "$C" machine create --no-boot --name bad -v "$src:$api/x" busybox-fixture:1.0
    done
    expect_error "mount target '/' is the machine's root" $run "$C" machine create --no-boot --name bad -v "$src:/" busybox-fixture:1.0
    expect_error "mount target '$home/x' is over the home mount $home" \
        $run "$C" machine create --no-boot --name bad -v "$src:$home/x" busybox-fixture:1.0
    expect_error "invalid volume '$src': expected SRC:DST\[:ro\|rw\]" $run "$C" machine create --no-boot --name bad -v "$src" busybox-fixture:1.0
    expect_error "invalid mount 'type=bind,source=$src': expected" \
        $run "$C" machine create --no-boot --name bad --mount "type=bind,source=$src" busybox-fixture:1.0
    # Two problems: two lines, each an error of its own.
    local rc=0
    $run "$C" machine create --no-boot --name bad -v "rel:/a" -v "$src:/proc" busybox-fixture:1.0 >/dev/null 2>"$T/two.err" || rc=$?
    [[ $rc == 1 && $(wc -l <"$T/two.err") == 2 ]] || fail "two problems: rc $rc, $(cat "$T/two.err")"
    grep -q "^Error: mount source 'rel' is not an absolute path$" "$T/two.err" || fail "first problem: $(cat "$T/two.err")"
    grep -q "^Error: mount target '/proc' is over /proc" "$T/two.err" || fail "second problem: $(cat "$T/two.err")"
    $run "$C" machine inspect bad >/dev/null 2>&1 && fail "a machine was created despite bad mounts"

    # Both syntaxes; a directory, a read-only directory, a read-only file; listed by inspect.
    $run "$C" machine create --name m -v "$src:/data" -v "$ro:/srv/ro:ro" \
        --mount "type=bind,source=$file,target=/etc/extra.conf,readonly" busybox-fixture:1.0 >/dev/null ||
        fail "create with mounts"
    [[ $($run "$C" machine inspect m | field '[(x["source"], x["target"], x["readOnly"]) for x in d[0]["mounts"]]') == \
        "[('$src', '/data', False), ('$ro', '/srv/ro', True), ('$file', '/etc/extra.conf', True)]" ]] ||
        fail "inspect mounts: $($run "$C" machine inspect m)"
    [[ $($run "$C" machine run -n m cat /data/hello /srv/ro/kept /etc/extra.conf) == $'shared\nlocked\nconf' ]] ||
        fail "mounted contents"
    # Ownership as for the home: the user's files are the user's inside, and what it writes is its own.
    [[ $($run "$C" machine run -n m stat -c %u /data/hello) == "$uid" ]] || fail "owner inside: not $uid"
    $run "$C" machine run -n m sh -c 'echo back >/data/from-machine' || fail "write to rw mount"
    [[ $(stat -c %u "$src/from-machine") == "$uid" && $(cat "$src/from-machine") == back ]] || fail "owner on host"
    # Read-only even for root inside: write, remount, bind elsewhere and remount, unmount.
    $run "$C" machine run -n m -- touch /srv/ro/user 2>/dev/null && fail "ro mount writable by the user"
    $run "$C" machine run -n m --root -w / -- sh -c '
        touch /srv/ro/direct 2>/dev/null && echo wrote-direct
        { echo x >/etc/extra.conf; } 2>/dev/null && echo wrote-file
        mount -o remount,rw /srv/ro 2>/dev/null && touch /srv/ro/remount 2>/dev/null && echo wrote-remount
        mkdir -p /mnt/r && mount --bind /srv/ro /mnt/r 2>/dev/null && mount -o remount,rw,bind /mnt/r 2>/dev/null &&
            touch /mnt/r/bind 2>/dev/null && echo wrote-bind
        umount -l /srv/ro 2>/dev/null; touch /srv/ro/after-umount 2>/dev/null
        true' >"$T/ro.out"
    [[ ! -s $T/ro.out ]] || fail "ro mount defeated: $(cat "$T/ro.out")"
    [[ $(ls "$ro") == kept && $(cat "$file") == conf ]] || fail "files reached the ro source: $(ls "$ro")"

    # set: replaces the list at the next boot, with the note; mounts= removes them.
    $run "$C" machine set -n m -v "$ro:/other" >/dev/null 2>"$T/set.err" || fail "set -v"
    grep -q "Note: Changes will take effect after stopping and restarting 'm'." "$T/set.err" || fail "set note"
    $run "$C" machine run -n m test -e /data/hello || fail "set applied before restart"
    $run "$C" machine stop m >/dev/null
    [[ $($run "$C" machine run -n m sh -c 'cat /other/kept; test -e /data/hello || echo gone') == $'locked\ngone' ]] ||
        fail "set -v after restart"
    # A link planted by the machine where a target goes is refused at boot, never followed.
    $run "$C" machine run -n m --root -- ln -s /proc /planted
    $run "$C" machine set -n m -v "$src:/planted" >/dev/null 2>&1
    $run "$C" machine stop m >/dev/null
    expect_error "/planted" $run "$C" machine start m
    # A link the machine puts on a source's path (here through another, writable mount) is refused at
    # the next boot, not followed: it would bind whatever the machine chose (for root, the host's /).
    $run mkdir -p "$src/inner"
    $run "$C" machine set -n m -v "$src:/data" -v "$src/inner:/inner:ro" >/dev/null 2>&1 || fail "set two mounts"
    $run "$C" machine start m >/dev/null || fail "start with two mounts"
    $run "$C" machine run -n m -- sh -c 'rmdir /data/inner && ln -s / /data/inner' || fail "plant a link in the source"
    [[ -L $src/inner ]] || fail "the link did not reach the host"
    $run "$C" machine stop m >/dev/null
    expect_error "mount source '$src/inner' has a link on its path" $run "$C" machine start m
    rm -f "$src/inner"
    $run "$C" machine set -n m mounts= >/dev/null 2>&1 || fail "set mounts="
    [[ $($run "$C" machine inspect m | field 'd[0]["mounts"]') == "[]" ]] || fail "mounts= left mounts"
    $run "$C" machine start m >/dev/null || fail "start after mounts="
    $run "$C" machine run -n m test -e /other/kept && fail "mount still there after mounts="
    $run "$C" machine rm -f m >/dev/null 2>&1
    true
}

for mode in $(machine_modes); do
    mounts_case "$mode"
done
echo PASS
