#!/bin/bash
# SPDX-License-Identifier: MIT
# Images that are hostile at boot: the paths that boot setup, provisioning and stop touch (/etc, its
# files, /run, /run/initctl, runit's control files, the home's parent, the ssh-agent socket path, /proc,
# /sys, /dev, /etc/machine/create-user.sh) are links out of the machine (absolute, and relative out
# through ..) or of the wrong type. For each image, as root and as the unprivileged user: the host's
# victim tree is unchanged, and the machine either boots and stops, or create fails with one line.
source "$(dirname "$0")/lib.sh"
chmod 777 "$T" # the test user makes its data directory here

busybox_images
mkdir -p "$T/base"
tar -C "$T/base" -xf "$T/bb/rootfs.tar"
V=$T/victim
up=../../../../../../../../../..  # far enough out of any directory in the image, to the real /

victim_tree() {
    rm -rf "$V"
    mkdir -p "$V/sub"
    echo original >"$V/file"
    echo second >"$V/file2"
    printf '#!/bin/sh\necho ran > %s/script-ran\n' "$V" >"$V/script.sh"
    chmod 777 "$V" "$V/sub"
    chmod 666 "$V/file" "$V/file2"
    chmod 777 "$V/script.sh"
}
victim_hash() { (cd "$V" && find . -printf '%p %y %m %s\n' | sort && find . -type f -exec sha256sum {} + | sort) | sha256sum; }

# An init that plants links after boot (the supervisor acts on them at stop), named so the supervisor
# takes it for the init kind whose stop it attacks.
init_script() { # init_script PATH COMMANDS
    mkdir -p "$(dirname "$1")"
    printf '#!/bin/sh\n%s\nwhile :; do sleep 1; done\n' "$2" >"$1"
    chmod 755 "$1"
}

# Each case: name, then the shell commands run in the image's root directory to make it hostile.
CASES=(
    "etc-absolute-link|rm -rf etc && ln -s $V etc"
    "etc-relative-link|rm -rf etc && ln -s $up$V etc"
    "hosts-absolute-link|rm -f etc/hosts && ln -s $V/file etc/hosts"
    "hostname-relative-link|rm -f etc/hostname && ln -s $up$V/file etc/hostname"
    "resolv-relative-link|rm -f etc/resolv.conf && ln -s $up$V/file etc/resolv.conf"
    "hosts-directory|rm -f etc/hosts && mkdir etc/hosts"
    "run-absolute-link|rm -rf run && ln -s $V run"
    "initctl-link|rm -f sbin/init && init_script sbin/init 'ln -sf $V/file /run/initctl'"
    "initctl-regular-file|rm -f sbin/init && init_script sbin/init 'echo keep > /run/initctl'"
    "runit-control-links|rm -f sbin/init && init_script sbin/runit-init 'mkdir -p /etc/runit; ln -sf $V/file /etc/runit/stopit; ln -sf $V/file2 /etc/runit/reboot' && ln -s runit-init sbin/init"
    "runit-directory-link|rm -f sbin/init && init_script sbin/runit-init 'rm -rf /etc/runit; ln -s $V /etc/runit' && ln -s runit-init sbin/init"
    "home-parent-link|HOMEPARENT"
    "ssh-agent-path-link|mkdir -p var && rm -rf var/host-services && ln -s $V var/host-services"
    "proc-link|rm -rf proc && ln -s $V proc"
    "sys-relative-link|rm -rf sys && ln -s $up$V sys"
    "dev-link|rm -rf dev && ln -s $V dev"
    "create-user-link|mkdir -p etc/machine && ln -s $V/script.sh etc/machine/create-user.sh"
    "create-user-directory|mkdir -p etc/machine/create-user.sh"
    "console-link|mkdir -p dev && ln -s $V/file dev/console"
)

# A real socket for the ssh-agent case (any listener will do; nothing talks to it).
python3 -c "import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); time.sleep(3600)" \
    "$T/agent.sock" &
on_exit "kill $! 2>/dev/null"
for _ in $(seq 50); do [[ -S $T/agent.sock ]] && break; sleep 0.1; done
chmod 777 "$T/agent.sock"

booted=0 refused=0
for MODE in $(machine_modes); do
    RUN=$(runner_for "$MODE")
    on_exit "remove_all_machines '$RUN'"
    home=$([[ $MODE == root ]] && echo /root || getent passwd "$TEST_USER" | cut -d: -f6)
    for entry in "${CASES[@]}"; do
        name=${entry%%|*} recipe=${entry#*|}
        [[ $recipe == HOMEPARENT ]] && recipe="p=\$(dirname .$home); [ \"\$p\" = . ] && p=.$home; rm -rf \"\$p\" && ln -s $V \"\$p\""
        note "$name ($MODE)"
        victim_tree
        before=$(victim_hash)
        rm -rf "$T/img"
        cp -a "$T/base" "$T/img"
        (cd "$T/img" && eval "$recipe") || fail "recipe of $name"
        tar -C "$T/img" --numeric-owner -cf "$T/img.tar" .
        chmod 644 "$T/img.tar"
        $RUN "$C" image import "$T/img.tar" "localhost/hostile:$name" >/dev/null
        rc=0
        $RUN env SSH_AUTH_SOCK="$T/agent.sock" CONTAINER_READY_TIMEOUT=20 "$C" machine create --name hb \
            "localhost/hostile:$name" >"$T/create.out" 2>"$T/create.err" || rc=$?
        if [[ $rc == 0 ]]; then
            booted=$((booted + 1))
            sleep 0.3 # the planting inits need a moment
            $RUN "$C" machine stop --time 2 hb >/dev/null 2>"$T/stop.err" ||
                fail "$name: stop failed: $(cat "$T/stop.err")"
        else
            refused=$((refused + 1))
            [[ $rc == 1 && $(wc -l <"$T/create.err") == 1 ]] ||
                fail "$name: create failed (status $rc) without exactly one line: $(cat "$T/create.err")"
            echo "    refused: $(cat "$T/create.err")"
        fi
        $RUN "$C" machine rm -f hb >/dev/null 2>&1 || true
        [[ $(victim_hash) == "$before" ]] || fail "$name: the host's victim tree changed: $(ls -la "$V")"
        [[ ! -e $V/script-ran ]] || fail "$name: a host script ran"
        $RUN "$C" image rm "localhost/hostile:$name" >/dev/null
    done
done
echo "${#CASES[@]} hostile images per mode: $booted booted and stopped, $refused refused with one line; host unchanged"
