#!/bin/bash
# SPDX-License-Identifier: MIT
# You, inside (SPEC §7, §8): first-boot provisioning (built-in and the image's own script, once, and a
# failing one), account takeover, a user name with a dot, the shared home (rw both ways, ro and none
# enforced against root), cwd and $HOME, sudo, SSH agent forwarding, and a home left byte-for-byte as it was.
source "$(dirname "$0")/lib.sh"

busybox_images
chmod 777 "$T"
BB=$T/bb

# Variants of the busybox rootfs: an image-provided create-user.sh (recording its environment), a
# failing one, and an image that already has an account with the user's uid.
variant() { # variant NAME: copy of the busybox tree in $T/v-NAME
    rm -rf "$T/v-$1" && mkdir -p "$T/v-$1" && tar -C "$T/v-$1" -xf "$BB/rootfs.tar"
}
pack() { tar -C "$T/v-$1" --numeric-owner -cf "$T/v-$1.tar" . && chmod 644 "$T/v-$1.tar"; }
variant custom
mkdir -p "$T/v-custom/etc/machine"
cat >"$T/v-custom/etc/machine/create-user.sh" <<'SH'
#!/bin/sh
echo "custom $CONTAINER_USER $CONTAINER_UID $CONTAINER_GID $CONTAINER_HOME $CONTAINER_MACHINE_ID $(id -u)" >>/var/provisioned.log
echo "$CONTAINER_USER:x:$CONTAINER_UID:$CONTAINER_GID::$CONTAINER_HOME:/bin/sh" >>/etc/passwd
SH
chmod 755 "$T/v-custom/etc/machine/create-user.sh"
pack custom
variant failing
mkdir -p "$T/v-failing/etc/machine"
printf '#!/bin/sh\necho about to fail\nexit 7\n' >"$T/v-failing/etc/machine/create-user.sh"
chmod 755 "$T/v-failing/etc/machine/create-user.sh"
pack failing

field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
home_manifest() { # the home as files, owners, modes, sizes, times and contents
    (cd "$1" && find . -printf '%p %U %G %m %s %T@ %y\n' | sort && find . -type f -exec sha256sum {} + | sort)
}

you_inside() {
    local mode=$1 run data user uid gid home
    run=$(runner_for "$mode")
    data=$(data_for "$mode")
    user=$($run id -un)
    uid=$($run id -u)
    gid=$($run id -g)
    home=$(getent passwd "$user" | cut -d: -f6)
    note "you inside, as $mode ($user, home $home)"
    on_exit "remove_all_machines '$run'"
    $run "$C" image load -i "$BB/image.oci.tar" >/dev/null
    $run "$C" image import "$T/v-custom.tar" localhost/custom >/dev/null
    $run "$C" image import "$T/v-failing.tar" localhost/failing >/dev/null

    # The home is unchanged by create, boot, run and rm with home-mount=rw. (The test user's home: root's
    # on a developer machine holds toolchains whose hashing would dominate the suite, and others write there.)
    if [[ $uid != 0 ]]; then
        local before
        before=$(home_manifest "$home")
        $run "$C" machine create --name untouched busybox-fixture:1.0 >/dev/null
        $run "$C" machine run -n untouched -- true
        $run "$C" machine rm untouched >/dev/null 2>&1
        [[ $(home_manifest "$home") == "$before" ]] ||
            fail "the host home changed: $(diff <(echo "$before") <(home_manifest "$home"))"
    fi

    # Identity, home and cwd. 32: the answer is the same twice; 33: $HOME is the host home.
    local work=$home/ctr-test-$$
    $run mkdir -p "$work/sub"
    on_exit "rm -rf '$work'"
    $run "$C" machine create --name me busybox-fixture:1.0 >/dev/null
    [[ $($run "$C" machine run -n me whoami) == "$user" ]] || fail "whoami"
    [[ $($run "$C" machine run -n me id -u) == "$uid" && $($run "$C" machine run -n me id -u) == "$uid" ]] || fail "32"
    [[ $($run "$C" machine run -n me id -g) == "$gid" ]] || fail "id -g"
    [[ $($run "$C" machine run -n me -- sh -c 'echo $HOME') == "$home" ]] || fail "33 HOME"
    [[ $(cd "$work/sub" && $run "$C" machine run -n me pwd) == "$work/sub" ]] || fail "cwd in the home"
    [[ $(cd /tmp && $run "$C" machine run -n me pwd) == "$home" ]] || fail "cwd outside the home"
    # Files cross both ways with the user's ownership.
    $run "$C" machine run -n me -- sh -c "echo inside > '$work/from-inside'"
    [[ $(stat -c '%u:%g' "$work/from-inside") == "$uid:$gid" ]] || fail "file from inside owned $(stat -c '%u:%g' "$work/from-inside")"
    $run sh -c "echo outside > '$work/from-outside'"
    [[ $($run "$C" machine run -n me -- stat -c '%u:%g' "$work/from-outside") == "$uid:$gid" ]] || fail "host file owner inside"
    [[ $($run "$C" machine run -n me -- cat "$work/from-outside") == outside ]] || fail "host file content inside"
    # 31. sudoers entry for the user (busybox has no sudo; the file is what sudo would read).
    if [[ $uid != 0 ]]; then
        [[ $($run "$C" machine run -n me --root -- cat "/etc/sudoers.d/${user//./_}") == "$user ALL=(ALL) NOPASSWD:ALL" ]] || fail "31"
        [[ $($run "$C" machine run -n me --root -- stat -c %a "/etc/sudoers.d/${user//./_}") == 440 ]] || fail "sudoers mode"
        [[ $($run "$C" machine run -n me --root -- grep "^$user:" /etc/shadow | cut -d: -f2) == '!' ]] || fail "password not locked"
    fi
    # Provisioning ran once, recorded on the host, its output in boot.log.
    [[ -e $data/machines/me/provisioned ]] || fail "provisioning not recorded"
    $run "$C" machine logs --boot me | grep -q "provisioned $user" || fail "provisioning output not in boot.log"
    $run "$C" machine rm me >/dev/null 2>&1

    # ro: read-only even for root inside (write, remount, bind elsewhere then remount, unmount).
    $run "$C" machine create --name ro --home-mount ro busybox-fixture:1.0 >/dev/null
    [[ $($run "$C" machine inspect ro | field 'd[0]["homeMount"]') == ro ]] || fail "inspect homeMount"
    $run "$C" machine run -n ro -- touch "$work/ro-user" 2>/dev/null && fail "ro home writable by the user"
    $run "$C" machine run -n ro --root -w / -- sh -c "
        touch '$work/ro-root' 2>/dev/null && echo wrote-direct
        mount -o remount,rw '$home' 2>/dev/null && touch '$work/ro-remount' 2>/dev/null && echo wrote-remount
        mkdir -p /mnt/h && mount --bind '$home' /mnt/h 2>/dev/null && mount -o remount,rw,bind /mnt/h 2>/dev/null &&
            touch '/mnt/h/${work#$home/}/ro-bind' 2>/dev/null && echo wrote-bind
        # Unmounting shows the machine's own directory underneath: writes there stay in the machine.
        umount -l '$home' 2>/dev/null; mkdir -p '$work' 2>/dev/null; touch '$work/ro-umount' 2>/dev/null
        true" >"$T/ro.out"
    [[ ! -s $T/ro.out ]] || fail "ro home defeated: $(cat "$T/ro.out")"
    [[ -z $(ls "$work" | grep '^ro-') ]] || fail "files reached the ro home: $(ls "$work")"
    $run "$C" machine rm -f ro >/dev/null 2>&1

    # none: the host home is not there; the user gets a home of its own on the machine's disk.
    $run sh -c "echo marker > '$work/marker'"
    $run "$C" machine create --name nohome --home-mount none busybox-fixture:1.0 >/dev/null
    $run "$C" machine run -n nohome --root -- test -e "$work/marker" && fail "host home visible with none"
    [[ $($run "$C" machine run -n nohome -- sh -c 'echo $HOME') == "$home" ]] || fail "HOME with none"
    [[ $($run "$C" machine run -n nohome -- stat -c %u "$home") == "$uid" ]] || fail "own home not the user's"
    $run "$C" machine run -n nohome -- sh -c "echo mine > \$HOME/own-file" || fail "own home not writable"
    [[ ! -e $home/own-file ]] || fail "none home leaked to the host"
    $run "$C" machine rm -f nohome >/dev/null 2>&1

    # The image's own create-user.sh runs instead, as root, with the CONTAINER_* variables, once in three boots.
    $run "$C" machine create --name custom localhost/custom >/dev/null
    $run "$C" machine stop custom >/dev/null
    $run "$C" machine start custom >/dev/null
    $run "$C" machine stop custom >/dev/null
    $run "$C" machine run -n custom -- true
    [[ $($run "$C" machine run -n custom --root -- cat /var/provisioned.log) == "custom $user $uid $gid $home custom 0" ]] ||
        fail "custom script ran wrong: $($run "$C" machine run -n custom --root -- cat /var/provisioned.log)"
    [[ $($run "$C" machine run -n custom whoami) == "$user" ]] || fail "custom script's user"
    $run "$C" machine rm -f custom >/dev/null 2>&1

    # A failing script: clear error naming it and its status; the machine is stopped.
    expect_error '/etc/machine/create-user.sh failed with exit status 7' $run "$C" machine create --name failing localhost/failing
    [[ $($run "$C" machine inspect failing | field 'd[0]["status"]') == stopped ]] || fail "failed machine not stopped"
    $run "$C" machine logs --boot failing | grep -q "about to fail" || fail "script output not in boot.log"
    [[ ! -e $data/machines/failing/provisioned ]] || fail "failed provisioning recorded as done"
    $run "$C" machine rm -f failing >/dev/null 2>&1

    # An image account with the user's uid is taken over; the group with the gid is reused.
    if [[ $uid != 0 ]]; then
        variant "taken-$mode"
        echo "olduser:x:$uid:$gid:Old:/home/olduser:/bin/sh" >>"$T/v-taken-$mode/etc/passwd"
        echo "oldgroup:x:$gid:olduser" >>"$T/v-taken-$mode/etc/group"
        echo "wheel:x:10:olduser" >>"$T/v-taken-$mode/etc/group"
        pack "taken-$mode"
        $run "$C" image import "$T/v-taken-$mode.tar" localhost/taken >/dev/null
        $run "$C" machine create --name taken localhost/taken >/dev/null
        [[ $($run "$C" machine run -n taken whoami) == "$user" ]] || fail "uid account not taken over"
        [[ $($run "$C" machine run -n taken id -gn) == oldgroup ]] || fail "gid group not reused"
        [[ $($run "$C" machine run -n taken -- sh -c 'echo $HOME') == "$home" ]] || fail "taken-over HOME"
        $run "$C" machine run -n taken -- id -Gn | grep -qw wheel || fail "group memberships not carried over"
        ! $run "$C" machine run -n taken -- grep -q '^olduser:' /etc/passwd || fail "old account name left"
        $run "$C" machine rm -f taken >/dev/null 2>&1
    fi

    # 56. SSH agent forwarding: a socket given at boot is there, and run points SSH_AUTH_SOCK at it.
    local sock=$T/agent-$mode.sock
    $run python3 -c "import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); time.sleep(60)" "$sock" &
    local agent=$!
    for _ in $(seq 50); do [[ -S $sock ]] && break; sleep 0.1; done
    $run "$C" machine create --no-boot --name ssh busybox-fixture:1.0 >/dev/null
    [[ $(SSH_AUTH_SOCK=$sock $run "$C" machine run -n ssh -- sh -c 'echo $SSH_AUTH_SOCK') == /var/host-services/ssh-auth.sock ]] ||
        fail "56 SSH_AUTH_SOCK"
    [[ $($run "$C" machine run -n ssh -- sh -c '[ -S /var/host-services/ssh-auth.sock ] && echo exists || echo missing') == exists ]] ||
        fail "56 socket"
    # As the user the job is a shell around runuser: end the agent itself too, by its socket's path.
    kill "$agent" 2>/dev/null || true
    pkill -f -- "$sock" 2>/dev/null || true
    $run "$C" machine rm -f ssh >/dev/null 2>&1
}

for mode in $(machine_modes); do you_inside "$mode"; done

# A user name with a dot: sudoers file name with an underscore, content with the dot.
if have_dot_user; then
    note "dotted user name"
    on_exit "remove_all_machines run_as_dot_user"
    run_as_dot_user "$C" image load -i "$BB/image.oci.tar" >/dev/null
    run_as_dot_user "$C" machine create --name dot busybox-fixture:1.0 >/dev/null
    [[ $(run_as_dot_user "$C" machine run -n dot whoami) == "$DOT_USER" ]] || fail "dotted whoami"
    [[ $(run_as_dot_user "$C" machine run -n dot --root -- cat "/etc/sudoers.d/${DOT_USER//./_}") == "$DOT_USER ALL=(ALL) NOPASSWD:ALL" ]] ||
        fail "dotted sudoers"
    run_as_dot_user "$C" machine rm -f dot >/dev/null 2>&1
else
    note "no test user with a dot in its name: that case is skipped"
fi

# Debian with systemd: sudo works without a password, the login shell is the host's.
if is_root; then
    bash "$FIX/debian-rootfs.sh" "$T/debian.tar" >/dev/null
    chmod 644 "$T/debian.tar"
    for mode in $(machine_modes); do
        run=$(runner_for "$mode")
        note "Debian user setup as $mode"
        $run "$C" image import "$T/debian.tar" localhost/debian:user >/dev/null
        $run "$C" machine create --name deb localhost/debian:user >/dev/null
        user=$($run id -un)
        [[ $($run "$C" machine run -n deb whoami) == "$user" ]] || fail "Debian whoami"
        $run "$C" machine run -n deb -- sudo -n true || fail "sudo -n true"
        [[ $($run "$C" machine run -n deb -- sudo -n id -u) == 0 ]] || fail "sudo to root"
        [[ $($run "$C" machine run -n deb -- sh -c 'echo $SHELL') == "$(getent passwd "$user" | cut -d: -f7)" ]] ||
            fail "login shell"
        $run "$C" machine rm -f deb >/dev/null 2>&1
    done
fi
echo "you inside ok"
