#!/bin/bash
# SPDX-License-Identifier: MIT
# Desktop forwarding in `machine run` (issue #18, SPEC §13), as the unprivileged user: X11 under an Xvfb
# the test starts (xeyes from the machine makes a window the host finds, and a screenshot shows it),
# Wayland under a headless weston (wayland-info inside lists its globals), PulseAudio (pactl info inside
# reaches the host's server), PipeWire (pw-cli inside reaches its core), the D-Bus session bus,
# XDG_RUNTIME_DIR inside (the user's, 0700), the Xauthority cookie from a non-default XAUTHORITY,
# --no-desktop / desktop=false turning it all off, and export-app (its Exec starts the app; a hostile
# entry gets nothing through).
source "$(dirname "$0")/lib.sh"

is_root || skip "needs root: builds the Debian desktop image with mmdebstrap"
have_test_user || skip "needs the test user $TEST_USER"
for tool in Xvfb xauth xwininfo xdotool import weston pulseaudio pipewire dbus-daemon; do
    command -v "$tool" >/dev/null || skip "needs $tool on the host (scripts/deps.sh)"
done
bash "$FIX/debian-rootfs.sh" "$T/desktop.tar" desktop >/dev/null
chmod 644 "$T/desktop.tar"
chmod 777 "$T"

run=run_as_user
uid=$(id -u "$TEST_USER")
home=$(getent passwd "$TEST_USER" | cut -d: -f6)
rt=$T/xdg-runtime
$run mkdir -p "$rt"
chmod 700 "$rt"
# The user's session: its runtime directory and what a desktop session would have in it.
session() { $run env XDG_RUNTIME_DIR="$rt" "$@"; }
# A server of the user's in the background, stopped at exit by the pid it wrote itself (runuser stays
# between us and it, so $! is not its pid).
server() { # server NAME CMD...
    local name=$1
    shift
    session sh -c 'echo $$ >"$0"; exec "$@"' "$T/$name.pid" "$@" >"$T/$name.log" 2>&1 &
    on_exit "kill \$(cat '$T/$name.pid' 2>/dev/null) 2>/dev/null"
}
on_exit "remove_all_machines '$run'"
$run "$C" image import "$T/desktop.tar" localhost/desktop:1 >/dev/null
$run "$C" machine create --name d localhost/desktop:1 >/dev/null || fail "create the desktop machine"

# --- X11: Xvfb on :57 with a cookie in a non-default XAUTHORITY file. ---
note "X11"
mkdir -p /tmp/.X11-unix && chmod 1777 /tmp/.X11-unix
xauth_file=$T/xauth-elsewhere
cookie=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
$run xauth -f "$xauth_file" add :57 MIT-MAGIC-COOKIE-1 "$cookie" 2>/dev/null
$run xauth -f "$xauth_file" add :58 MIT-MAGIC-COOKIE-1 "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
[[ -e /tmp/.X57-lock ]] && skip "display :57 is taken on this host"
server xvfb Xvfb :57 -screen 0 640x480x24 -auth "$xauth_file" -nolisten tcp
for _ in $(seq 50); do [[ -S /tmp/.X11-unix/X57 ]] && break; sleep 0.1; done
[[ -S /tmp/.X11-unix/X57 ]] || fail "Xvfb did not start: $(cat "$T/xvfb.log")"
x() { session env DISPLAY=:57 XAUTHORITY="$xauth_file" "$@"; }
# Without the cookie the server refuses: the cookie inside is what lets the machine's clients in.
session env DISPLAY=:57 XAUTHORITY=/nonexistent xwininfo -root >/dev/null 2>&1 && fail "Xvfb accepts clients without the cookie"
x import -window root "$T/before.png"
x "$C" machine run -n d -d -- xeyes -geometry 200x200+100+100 >/dev/null || fail "start xeyes"
win=
for _ in $(seq 100); do
    win=$(x xdotool search --name '^xeyes$' 2>/dev/null | head -1) && [[ -n $win ]] && break
    sleep 0.1
done
[[ -n $win ]] || fail "no xeyes window on the host's display"
x xwininfo -id "$win" | grep -q 'Map State: IsViewable' || fail "xeyes window not viewable"
sleep 1
x import -window root "$T/after.png"
# Non-background pixels where the window is: the root of an empty Xvfb is one colour.
colours=$(x convert "$T/after.png" -crop 200x200+100+100 +repage -format '%k' info:)
[[ $colours -gt 1 ]] || fail "the screenshot shows no window (colours in its area: $colours)"
[[ $(x convert "$T/before.png" -format '%k' info:) == 1 ]] || fail "the display was not empty before"
# Only the forwarded display's cookie went in, into the user's private runtime directory.
x "$C" machine run -n d -- sh -c 'echo "$XDG_RUNTIME_DIR $XAUTHORITY"; stat -c "%u %a" "$XDG_RUNTIME_DIR"' >"$T/rt.out"
[[ $(head -1 "$T/rt.out") == "/run/user/$uid /run/user/$uid/Xauthority" ]] || fail "runtime dir and XAUTHORITY: $(cat "$T/rt.out")"
[[ $(tail -1 "$T/rt.out") == "$uid 700" ]] || fail "runtime dir owner and mode: $(cat "$T/rt.out")"
x "$C" machine run -n d -- sh -c 'cat "$XAUTHORITY"' >"$T/inside.xauth"
[[ $(xauth -f "$T/inside.xauth" list | wc -l) == 1 ]] && xauth -f "$T/inside.xauth" list | grep -q ":57 *MIT-MAGIC-COOKIE-1 *$cookie" ||
    fail "the machine did not get exactly the :57 cookie: $(xauth -f "$T/inside.xauth" list)"
# --no-desktop and desktop=false: nothing of it inside.
[[ -z $(x "$C" machine run -n d --no-desktop -- sh -c 'echo $DISPLAY$XDG_RUNTIME_DIR$XAUTHORITY') ]] ||
    fail "--no-desktop still forwards"
$run "$C" machine set -n d desktop=false >/dev/null 2>"$T/set.err" || fail "set desktop=false"
[[ ! -s $T/set.err ]] || fail "desktop= is read by each run, yet set says: $(cat "$T/set.err")"
[[ -z $(x "$C" machine run -n d -- sh -c 'echo $DISPLAY$XDG_RUNTIME_DIR') ]] || fail "desktop=false still forwards"
$run "$C" machine set -n d desktop=auto >/dev/null 2>&1

# --- Wayland: a headless weston in the runtime directory. ---
note "Wayland"
server weston weston --backend=headless-backend.so --socket=wayland-57 --idle-time=0
for _ in $(seq 100); do [[ -S $rt/wayland-57 ]] && break; sleep 0.1; done
[[ -S $rt/wayland-57 ]] || fail "weston did not start: $(cat "$T/weston.log")"
session env WAYLAND_DISPLAY=wayland-57 "$C" machine run -n d -- wayland-info >"$T/winfo.out" 2>&1 ||
    fail "wayland-info in the machine: $(cat "$T/winfo.out")"
grep -q "interface: 'wl_compositor'" "$T/winfo.out" || fail "no wl_compositor global: $(cat "$T/winfo.out")"
grep -q "interface: 'wl_shm'" "$T/winfo.out" || fail "no wl_shm global"

# --- PulseAudio: a server of the user's, its socket in the runtime directory. ---
note "PulseAudio"
server pulse pulseaudio --daemonize=no --exit-idle-time=-1 --disallow-exit -n \
    --load=module-native-protocol-unix --load=module-null-sink
for _ in $(seq 100); do [[ -S $rt/pulse/native ]] && break; sleep 0.1; done
[[ -S $rt/pulse/native ]] || fail "pulseaudio did not start: $(cat "$T/pulse.log")"
session "$C" machine run -n d -- pactl info >"$T/pactl.out" 2>&1 || fail "pactl info in the machine: $(cat "$T/pactl.out")"
grep -q "^Server Name: pulseaudio" "$T/pactl.out" || fail "pactl did not reach the server: $(cat "$T/pactl.out")"

# --- PipeWire: a server of the user's; pw-cli inside reaches its core. ---
note "PipeWire"
server pipewire pipewire
for _ in $(seq 100); do [[ -S $rt/pipewire-0 ]] && break; sleep 0.1; done
[[ -S $rt/pipewire-0 ]] || fail "pipewire did not start: $(cat "$T/pipewire.log")"
session "$C" machine run -n d -- pw-cli info 0 >"$T/pw.out" 2>&1 || fail "pw-cli in the machine: $(cat "$T/pw.out")"
grep -q "type: PipeWire:Interface:Core" "$T/pw.out" || fail "pw-cli did not reach the core: $(cat "$T/pw.out")"

# --- D-Bus session bus: the host's bus answers a call from the machine. ---
note "D-Bus"
server bus dbus-daemon --session --address="unix:path=$rt/bus" --nofork --print-address
for _ in $(seq 100); do [[ -S $rt/bus ]] && break; sleep 0.1; done
[[ -S $rt/bus ]] || fail "dbus-daemon did not start: $(cat "$T/bus.log")"
session env DBUS_SESSION_BUS_ADDRESS="unix:path=$rt/bus" "$C" machine run -n d -- \
    dbus-send --session --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.GetId >"$T/dbus.out" 2>&1 ||
    fail "dbus-send in the machine: $(cat "$T/dbus.out")"
grep -q 'string "' "$T/dbus.out" || fail "no bus id: $(cat "$T/dbus.out")"

# --- export-app: the host entry's Exec starts the app in the machine, on the host's display. ---
note "export-app"
apps=$home/.local/share/applications
on_exit "rm -f '$apps/container-d-xeyes.desktop' '$apps/container-d-evil.desktop'"
# The first xeyes goes: its window is closed from the host.
close_xeyes() {
    local w
    for w in $(x xdotool search --name '^xeyes$' 2>/dev/null); do x xdotool windowkill "$w" 2>/dev/null || true; done
    for _ in $(seq 50); do [[ -z $(x xdotool search --name '^xeyes$' 2>/dev/null) ]] && return; sleep 0.1; done
    fail "xeyes windows stay"
}
close_xeyes
$run "$C" machine export-app -n d xeyes >"$T/export.out" || fail "export-app xeyes"
[[ $(cat "$T/export.out") == "$apps/container-d-xeyes.desktop" ]] || fail "export-app output: $(cat "$T/export.out")"
exec_line=$(grep '^Exec=' "$apps/container-d-xeyes.desktop" | cut -d= -f2-)
[[ $exec_line == "$C machine run -n d -- "* ]] || fail "Exec line: $exec_line"
x bash -c "$exec_line" >/dev/null 2>&1 &
win=
for _ in $(seq 100); do
    win=$(x xdotool search --name '^xeyes$' 2>/dev/null | head -1) && [[ -n $win ]] && break
    sleep 0.1
done
[[ -n $win ]] || fail "the exported entry's Exec did not start xeyes on the host's display"
close_xeyes
# A hostile entry: only the allowed keys come over, Exec stays behind `container machine run`, and an
# icon that is a link in the machine is read inside the machine (never the host's file it names).
$run "$C" machine run -n d --root -- sh -c 'mkdir -p /usr/share/pixmaps /usr/share/applications && ln -sf /etc/hostname /usr/share/pixmaps/evil.png
printf "%s\n" "[Desktop Entry]" "Type=Application" "Name=Evil" "Exec=sh -c \"echo pwned\"" "TryExec=/bin/false" \
    "DBusActivatable=true" "Icon=evil" "X-Hook=run" "[Desktop Action x]" "Exec=/bin/evil" >/usr/share/applications/evil.desktop'
$run "$C" machine export-app -n d evil >/dev/null || fail "export-app evil"
entry=$apps/container-d-evil.desktop
grep -q '^Exec=.* machine run -n d -- sh -c "echo pwned"$' "$entry" || fail "hostile Exec: $(cat "$entry")"
grep -Eq '^(TryExec|DBusActivatable|X-Hook)=' "$entry" && fail "hostile keys carried over: $(cat "$entry")"
[[ $(grep -c '^Exec=' "$entry") == 1 ]] || fail "more than one Exec: $(cat "$entry")"
icon=$(grep '^Icon=' "$entry" | cut -d= -f2-)
[[ $(cat "$icon") == d ]] || fail "the icon is not the machine's /etc/hostname: $(cat "$icon")"
$run "$C" machine export-app -n d evil --remove >/dev/null || fail "export-app --remove"
[[ ! -e $entry && ! -e $icon ]] || fail "--remove left files"
expect_error "evil of container machine d is not exported" $run "$C" machine export-app -n d evil --remove
expect_error "nosuchapp has no desktop entry and is no command" $run "$C" machine export-app -n d nosuchapp
expect_error "invalid app name" $run "$C" machine export-app -n d ../x
echo PASS
