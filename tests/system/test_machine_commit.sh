#!/bin/bash
# SPDX-License-Identifier: MIT
# `machine commit`: a busybox machine is changed (files added, changed, deleted, a directory replaced,
# ownership changed, a hard link) and committed while it runs. A machine made from the commit sees
# exactly those changes and every other file byte-identical; the layer holds whiteouts, an opaque
# directory and image ids; machine-local state stays out; history and --change reach the config; links
# the machine planted are written as links, never followed; the image saves to an archive that skopeo
# and umoci read; bad input is one line and names nothing.
# As root and as the unprivileged test user.
source "$(dirname "$0")/lib.sh"

busybox_images busybox-fixture:1.0
chmod 777 "$T"
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# Every file and link of a machine's own root (-xdev: /proc, /sys, /dev, /run, /tmp and the home are
# other mounts): checksum, owner and mode, or the link's target. The files the runtime writes at each
# boot name the machine, so they differ between machines by design.
sums() { # sums RUN NAME
    $1 "$C" machine run --root -n "$2" -- sh -c 'cd / && find . -xdev \( -type f -o -type l \) | sort |
        while read -r f; do
            if [ -L "$f" ]; then echo "$f L $(readlink "$f")"
            else echo "$f $(md5sum <"$f" | cut -c1-32) $(stat -c %u:%g:%a "$f")"; fi
        done' | grep -v -e '^./etc/hosts ' -e '^./etc/hostname ' -e '^./etc/resolv.conf '
}
# The paths whose line differs between two sums files.
changed_paths() { { diff "$1" "$2" || true; } | sed -n 's/^[<>] \([^ ]*\) .*/\1/p' | sort -u | tr '\n' ' '; }

for mode in $(machine_modes); do
    run=$(runner_for "$mode")
    data=$(data_for "$mode")
    on_exit "remove_all_machines '$run' '$data'"
    $run "$C" image load -i "$T/bb/image.oci.tar" >/dev/null || fail "load ($mode)"

    note "a changed machine, committed while it runs ($mode)"
    $run "$C" machine create --name base-$mode busybox-fixture:1.0 >/dev/null || fail "create base ($mode)"
    $run "$C" machine create --name src-$mode busybox-fixture:1.0 >/dev/null || fail "create src ($mode)"
    $run "$C" machine run --root -n src-$mode -- sh -ec '
        echo added >/added.txt
        chown 1234:2345 /added.txt
        ln /added.txt /added-hardlink.txt
        echo changed >>/etc/os-release
        chown 42:43 /etc/os-release
        rm /home/nobody-file
        rm -r /var/spool/owned && mkdir /var/spool/owned && echo fresh >/var/spool/owned/new
        echo 0123456789abcdef0123456789abcdef >/etc/machine-id
        mkdir -p /etc/ssh /var/log/journal/abc && echo key >/etc/ssh/ssh_host_ed25519_key
        echo "Port 22" >/etc/ssh/sshd_config && echo entry >/var/log/journal/abc/system.journal' ||
        fail "change src ($mode)"
    sums "$run" src-$mode >"$T/src-$mode" || fail "sums src"
    $run "$C" machine commit -m "team setup" src-$mode localhost/committed:$mode >"$T/out" 2>"$T/err" ||
        fail "commit ($mode): $(cat "$T/err")"
    digest=$(cat "$T/out")
    $run "$C" image inspect localhost/committed:$mode >"$T/i" || fail "inspect ($mode)"
    [[ $(field 'd[0]["descriptor"]["digest"]' <"$T/i") == "$digest" ]] || fail "commit printed $digest, inspect differs"
    [[ $($run "$C" machine inspect src-$mode | field 'd[0]["status"]') == running ]] || fail "src not running after commit"
    $run "$C" machine run -n src-$mode -- true || fail "src frozen after commit ($mode)"

    note "the layer: whiteouts, an opaque directory, image ids, nothing machine-local ($mode)"
    layer=$(field 'd[0]["layers"][-1]["digest"]' <"$T/i")
    [[ $(field 'len(d[0]["layers"])' <"$T/i") == 2 ]] || fail "expected the base layer plus one"
    tar --numeric-owner -tvzf "$data/content/sha256/${layer#sha256:}" >"$T/layer-$mode" || fail "layer is no tar.gz"
    # Entries in name order: added-hardlink.txt carries the data, added.txt links to it.
    for want in '^-.* 1234/2345 .* added-hardlink.txt$' '^h.* added.txt link to added-hardlink.txt$' ' home/.wh.nobody-file$' \
        ' var/spool/owned/.wh..wh..opq$' ' 42/43 .* etc/os-release$' ' etc/ssh/sshd_config$'; do
        grep -Eq -- "$want" "$T/layer-$mode" || fail "layer lacks /$want/: $(cat "$T/layer-$mode")"
    done
    for unwanted in etc/machine-id etc/ssh/ssh_host_ed25519_key var/log/journal/abc/system.journal etc/hostname \
        etc/hosts sudoers.d; do
        ! grep -q -- " $unwanted" "$T/layer-$mode" || fail "layer holds machine-local $unwanted"
    done
    if grep -q ' etc/passwd$' "$T/layer-$mode"; then
        user=$([[ $mode == root ]] && echo root || echo "$TEST_USER")
        tar -xzOf "$data/content/sha256/${layer#sha256:}" etc/passwd >"$T/passwd"
        [[ $mode == root ]] || ! grep -q "^$user:" "$T/passwd" || fail "the provisioned user is in the image's passwd"
    fi
    [[ $(field 'd[0]["config"]["history"][-1]["comment"]' <"$T/i") == "team setup" ]] || fail "history comment"
    [[ $(field 'd[0]["config"]["history"][-1]["created_by"]' <"$T/i") == "container machine commit src-$mode" ]] ||
        fail "history created_by: $(field 'd[0]["config"]["history"][-1]' <"$T/i")"
    [[ $(field 'len(d[0]["config"]["rootfs"]["diff_ids"])' <"$T/i") == 2 ]] || fail "diff_ids"

    note "a machine from the commit sees exactly the changes ($mode)"
    $run "$C" machine create --name dst-$mode localhost/committed:$mode >/dev/null || fail "create dst ($mode)"
    sums "$run" base-$mode >"$T/base-$mode" || fail "sums base"
    sums "$run" dst-$mode >"$T/dst-$mode" || fail "sums dst"
    got=$(changed_paths "$T/base-$mode" "$T/dst-$mode")
    want="./added-hardlink.txt ./added.txt ./etc/os-release ./etc/ssh/sshd_config ./home/nobody-file ./var/spool/owned/new "
    [[ $got == "$want" ]] || fail "base -> commit changed [$got], expected [$want]; $(diff "$T/base-$mode" "$T/dst-$mode")"
    got=$(changed_paths "$T/src-$mode" "$T/dst-$mode")
    want="./etc/machine-id ./etc/ssh/ssh_host_ed25519_key ./var/log/journal/abc/system.journal "
    [[ $got == "$want" ]] || fail "source -> commit differs in [$got], expected only the machine-local [$want]"
    $run "$C" machine run --root -n dst-$mode -- sh -ec '
        [ "$(stat -c %i /added.txt)" = "$(stat -c %i /added-hardlink.txt)" ]
        [ "$(stat -c %u:%g:%a /var/spool/owned)" = 0:0:755 ]
        [ "$(cat /var/spool/owned/new)" = fresh ]
        [ ! -e /home/nobody-file ]' || fail "hard link, replaced directory or deletion lost ($mode)"

    note "--change, --pause=false, --keep ($mode)"
    $run "$C" machine commit --pause=false --keep machine-id --change 'ENV TEAM=dev' --change 'CMD ["/bin/sh"]' \
        --change 'LABEL org.example.team=dev' src-$mode localhost/committed:$mode-2 >/dev/null 2>"$T/err" ||
        fail "commit with changes: $(cat "$T/err")"
    $run "$C" image inspect localhost/committed:$mode-2 >"$T/i2"
    field 'd[0]["config"]["config"]["Env"]' <"$T/i2" | grep -q "TEAM=dev" || fail "ENV change missing"
    [[ $(field 'd[0]["config"]["config"]["Cmd"]' <"$T/i2") == "['/bin/sh']" ]] || fail "CMD change missing"
    [[ $(field 'd[0]["config"]["config"]["Labels"]["org.example.team"]' <"$T/i2") == dev ]] || fail "LABEL missing"
    l2=$(field 'd[0]["layers"][-1]["digest"]' <"$T/i2")
    tar -tzf "$data/content/sha256/${l2#sha256:}" | grep -x etc/machine-id >/dev/null || fail "--keep machine-id kept nothing"

    if [[ $mode == user ]]; then
        note "a machine that cannot be frozen: refused in one line, --pause=false goes ahead"
        cg=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cgroup"])' "$data/machines/src-$mode/state.json")
        chmod 444 "$cg/cgroup.freeze" # the user may no longer freeze it (root still may, so this is the user's case)
        expect_error "cannot pause machine src-$mode .*--pause=false" $run "$C" machine commit src-$mode localhost/nofreeze:1
        $run "$C" machine commit --pause=false src-$mode localhost/nofreeze:1 >/dev/null 2>&1 || fail "--pause=false"
        chmod 644 "$cg/cgroup.freeze"
        [[ $(cat "$cg/cgroup.freeze") == 0 ]] || fail "the machine was left frozen"
    fi

    note "a commit killed while the machine is frozen: the next run thaws it ($mode)"
    $run env CONTAINER_FAULT_LOG=$T/faults-$mode "$C" machine commit src-$mode localhost/census:1 >/dev/null 2>&1 ||
        fail "census commit"
    at=$(grep -n '^commit: machine frozen$' "$T/faults-$mode" | cut -d: -f1)
    [[ -n $at ]] || fail "no fault point 'commit: machine frozen': $(cat "$T/faults-$mode")"
    expect_status 137 $run env CONTAINER_FAULT_AT="$at" "$C" machine commit src-$mode localhost/killed:1
    cg=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cgroup"])' "$data/machines/src-$mode/state.json")
    [[ $(cat "$cg/cgroup.freeze") == 1 ]] || fail "the killed commit did not leave the machine frozen (test premise)"
    [[ $($run timeout 20 "$C" machine run -n src-$mode -- echo alive) == alive ]] || fail "run did not thaw the machine"
    [[ $(cat "$cg/cgroup.freeze") == 0 ]] || fail "still frozen after run"
    ! $run "$C" image ls -q | grep killed || fail "the killed commit named an image"

    note "a commit killed at each step that changes the disk: the store stays consistent ($mode)"
    $run "$C" machine run --root -n src-$mode -- sh -c 'echo again >/again.txt'
    $run env CONTAINER_FAULT_LOG=$T/faults2-$mode "$C" machine commit src-$mode localhost/census:2 >/dev/null 2>&1 ||
        fail "census commit"
    steps=$(grep -c . "$T/faults2-$mode" || true)
    ((steps >= 5)) || fail "only $steps fault points in a commit: $(cat "$T/faults2-$mode")"
    $run "$C" image rm localhost/census:2 >/dev/null
    for ((k = 1; k <= steps; k++)); do
        rc=0
        $run env CONTAINER_FAULT_AT=$k "$C" machine commit src-$mode localhost/killed:$k >/dev/null 2>&1 || rc=$?
        [[ $rc == 137 || $rc == 0 ]] || fail "commit killed at step $k exited $rc"
        $run "$C" system check >"$T/check" 2>&1 || fail "after a commit killed at step $k ($(sed -n "${k}p" "$T/faults2-$mode")): $(cat "$T/check")"
        [[ $($run timeout 20 "$C" machine run -n src-$mode -- echo alive) == alive ]] || fail "machine unusable after step $k"
    done
    $run "$C" machine commit src-$mode localhost/after-kills:1 >/dev/null 2>&1 || fail "commit after the kills"

    note "a stopped machine, and one never booted ($mode)"
    $run "$C" machine stop src-$mode >/dev/null
    d1=$($run "$C" machine commit src-$mode localhost/committed:$mode-stopped 2>/dev/null) || fail "commit stopped"
    $run "$C" machine create --no-boot --name fresh-$mode busybox-fixture:1.0 >/dev/null
    $run "$C" machine commit fresh-$mode localhost/committed:$mode-fresh >/dev/null 2>&1 || fail "commit never-booted"

    note "a hostile machine: links, a FIFO and a link where a rewritten file was ($mode)"
    $run "$C" machine create --name hostile-$mode busybox-fixture:1.0 >/dev/null || fail "create hostile"
    $run "$C" machine run --root -n hostile-$mode -- sh -ec '
        ln -s /etc/shadow /to-shadow; ln -s / /to-root; mkfifo /fifo
        rm /etc/passwd; ln -s /etc/shadow /etc/passwd
        mkdir /d; ln -s /root /d/escape' || fail "hostile changes"
    $run "$C" machine commit hostile-$mode localhost/hostile:$mode >/dev/null 2>"$T/err" ||
        fail "commit of a hostile machine: $(cat "$T/err")"
    hl=$($run "$C" image inspect localhost/hostile:$mode | field 'd[0]["layers"][-1]["digest"]')
    tar -tvzf "$data/content/sha256/${hl#sha256:}" >"$T/hostile"
    for want in '^l.* to-shadow -> /etc/shadow$' '^l.* to-root -> /$' '^p.* fifo$' '^l.* etc/passwd -> /etc/shadow$' \
        '^l.* d/escape -> /root$'; do
        grep -Eq -- "$want" "$T/hostile" || fail "hostile layer lacks /$want/: $(cat "$T/hostile")"
    done
    [[ $(grep -c . "$T/hostile") -lt 20 ]] || fail "a link was followed: $(cat "$T/hostile")"

    note "bad input: one line, no image named ($mode)"
    expect_error 'container machine with ID nope not found' $run "$C" machine commit nope localhost/x:1
    expect_error 'invalid change "RUN apt-get update"' $run "$C" machine commit --change 'RUN apt-get update' \
        src-$mode localhost/bad:1
    expect_error 'invalid --keep "hostkeys"' $run "$C" machine commit --keep hostkeys src-$mode localhost/bad:1
    expect_error 'a digest cannot name a new image' $run "$C" machine commit src-$mode "localhost/bad@$d1"
    ! $run "$C" image ls -q | grep bad || fail "a failed commit named an image"
    [[ -z $(ls "$data/tmp" 2>/dev/null | grep -v -e '-pin-') ]] || fail "work files left: $(ls "$data/tmp")"
done

note "a committed image saves to an OCI archive that skopeo and umoci read"
mode=user
is_root && mode=root
run=$(runner_for "$mode")
$run "$C" image save -o "$T/committed.tar" localhost/committed:$mode || fail "save"
digest_of_root() { $run "$C" image inspect localhost/committed:$mode | field 'd[0]["descriptor"]["digest"]'; }
skopeo inspect "oci-archive:$T/committed.tar" >"$T/sk" || fail "skopeo inspect of the saved archive"
[[ $(field 'len(d["Layers"])' <"$T/sk") == 2 ]] || fail "skopeo sees $(field 'len(d["Layers"])' <"$T/sk") layers"
skopeo copy -q "oci-archive:$T/committed.tar" "oci:$T/layout:c" || fail "skopeo copy"
umoci unpack --rootless --image "$T/layout:c" "$T/bundle" >/dev/null || fail "umoci unpack"
[[ $(cat "$T/bundle/rootfs/added.txt") == added && ! -e $T/bundle/rootfs/home/nobody-file ]] ||
    fail "umoci's unpack lacks the committed changes"

note "podman loads the saved archive: same digest, the changes and whiteouts in its view of the image"
if is_root && command -v podman >/dev/null; then
    # Its own storage and configuration (docs/TESTING: no rlimit raises, cgroupfs, no journald).
    printf '%s\n' '[containers]' 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' '[engine]' \
        'cgroup_manager = "cgroupfs"' 'events_logger = "file"' >"$T/containers.conf"
    pod() { CONTAINERS_CONF=$T/containers.conf podman --root "$T/podman" --runroot "$T/podman-run" --storage-driver vfs "$@"; }
    on_exit "CONTAINERS_CONF=$T/containers.conf podman --root $T/podman --runroot $T/podman-run --storage-driver vfs image rm -af >/dev/null 2>&1 || true"
    pod load -i "$T/committed.tar" >/dev/null 2>"$T/err" || fail "podman load: $(cat "$T/err")"
    [[ $(pod image inspect localhost/committed:root --format '{{.Digest}}') == "$(digest_of_root)" ]] ||
        fail "podman sees another digest"
    mnt=$(pod image mount localhost/committed:root) || fail "podman image mount"
    [[ $(cat "$mnt/added.txt") == added && ! -e $mnt/home/nobody-file && -e $mnt/var/spool/owned/new ]] ||
        fail "podman's view lacks the committed changes"
    [[ $(stat -c %u:%g "$mnt/added.txt") == 1234:2345 ]] || fail "podman's view has other owners"
    pod image unmount localhost/committed:root >/dev/null
else
    echo "podman not installed: skipped"
fi
echo "PASS"
