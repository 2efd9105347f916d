#!/bin/bash
# SPDX-License-Identifier: MIT
# The interactive login shell, driven through a real terminal (tmux): prompt, `tty`, window size and
# its changes, Ctrl-C to the command only, Ctrl-D and exit status, terminal restored; and -t in pipes.
source "$(dirname "$0")/lib.sh"

command -v tmux >/dev/null || skip "tmux is not installed (package tmux)"
busybox_images
chmod 777 "$T"

shell_session() {
    local mode=$1 run sock
    run=$(runner_for "$mode")
    note "interactive shell as $mode"
    on_exit "remove_all_machines '$run'"
    $run "$C" image load -i "$T/bb/image.oci.tar" >/dev/null
    $run "$C" machine create --name sh busybox-fixture:1.0 >/dev/null
    # start_window SOCKET WIDTH HEIGHT COMMAND: a detached tmux server on its own socket running COMMAND.
    # Each window gets a fresh socket: `kill-server` returns before the old server has gone, and a
    # client that reaches the dying server on a reused socket fails with "server exited unexpectedly".
    start_window() {
        local s=$1 tries
        sock=$s
        on_exit "$run tmux -S '$s' kill-server 2>/dev/null"
        for tries in 1 2 3; do
            $run env SHELL=/bin/sh TERM=xterm tmux -S "$s" new-session -d -x "$2" -y "$3" "$4" &&
                $run tmux -S "$s" has-session 2>/dev/null && return 0
            echo "tmux did not start (try $tries)"
            sleep 0.5
        done
        fail "tmux did not start on $s"
    }
    # The window runs the CLI; after it exits, the shell of the window reports status and stty state.
    start_window "$T/tmux-$mode-1" 100 30 \
        "stty -g > '$T/stty-before-$mode'; '$C' machine run -n sh; echo EXIT=\$?; stty -g > '$T/stty-after-$mode'; sleep 60"
    screen() { $run tmux -S "$sock" capture-pane -p; }
    keys() { $run tmux -S "$sock" send-keys "$@"; }
    wait_for() { # wait_for REGEX
        for _ in $(seq 100); do screen | grep -Eq "$1" && return 0; sleep 0.05; done
        fail "screen never showed /$1/: $(screen)"
    }
    wait_for '[$#] ?$'
    keys 'echo "tty=$(tty) size=$(stty size) me=$(whoami)"' Enter
    wait_for 'tty=/dev/pts/[0-9]+ size=30 100 me='
    screen | grep -q "me=$($run id -un)" || fail "shell not as the user: $(screen)"
    $run tmux -S "$sock" resize-window -x 120 -y 40
    keys 'stty size' Enter
    wait_for '^40 120$'
    # Ctrl-C interrupts the foreground command inside, not the session.
    keys 'sleep 100; echo after-$((1+1))' Enter
    sleep 0.3
    keys C-c
    wait_for '\^C'
    keys 'echo still-here' Enter
    wait_for '^still-here$'
    ! screen | grep -qx after-2 || fail "Ctrl-C did not interrupt the command"
    # Ctrl-D on an empty line ends the shell; the CLI exits 0 and the terminal is as it was.
    keys C-d
    wait_for '^EXIT=0$'
    for _ in $(seq 50); do [[ -s $T/stty-after-$mode ]] && break; sleep 0.05; done
    [[ $(cat "$T/stty-before-$mode") == $(cat "$T/stty-after-$mode") ]] || fail "terminal not restored"
    $run tmux -S "$sock" kill-server

    # A second session ends with `exit 4`: the status comes through.
    start_window "$T/tmux-$mode-2" 80 24 "'$C' machine run -n sh; echo EXIT=\$?; sleep 60"
    wait_for '[$#] ?$'
    keys 'exit 4' Enter
    wait_for '^EXIT=4$'
    $run tmux -S "$sock" kill-server

    # -t with pipes: output and status are right without a terminal on our side.
    local out rc=0
    out=$(echo ignored | $run "$C" machine run -t -n sh -- sh -c 'test -t 0 && echo on-a-tty; exit 3') || rc=$?
    [[ $rc == 3 ]] || fail "-t exit status $rc"
    [[ $out == *on-a-tty* ]] || fail "-t did not give a terminal: $out"
    # Without -t and without terminals: no pty, plain pipes.
    [[ $(echo data | $run "$C" machine run -n sh -- sh -c 'test -t 0 || cat') == data ]] || fail "pipe mode"
    $run "$C" machine rm -f sh >/dev/null 2>&1
}

for mode in $(machine_modes); do shell_session "$mode"; done
echo "interactive shell ok"
