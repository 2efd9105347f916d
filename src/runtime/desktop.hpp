// SPDX-License-Identifier: MIT
// Desktop forwarding for `machine run` (SPEC §13, docs/RUNTIME.md "Desktop"): which of the caller's
// sockets (Wayland, X11, PulseAudio, PipeWire, the D-Bus session bus) and which variables go into the
// machine, decided from an explicit list of variables only; and the two halves that put the sockets
// there at join time: taking each socket's mount on the host side, and attaching it in the machine's
// per-user runtime directory once the command's process has joined the machine.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace ctr::runtime {

// One host socket (or, for X11, the socket directory) and where it goes in the machine: `target` is
// relative to the per-user runtime directory (XDG_RUNTIME_DIR inside), or absolute (/tmp/.X11-unix).
struct DesktopSocket {
    std::string what; // "wayland", "x11", "pulseaudio", "pipewire", "dbus"
    std::string host_path;
    std::string target;
    bool dir = false;
};

struct DesktopPlan {
    std::vector<DesktopSocket> sockets;
    std::string xauthority; // the cookies for the forwarded display (Xauthority file format), or empty
    // Variables for the command; "@RUNTIME@" stands for the runtime directory inside (its uid is only
    // known once the user is looked up in the machine).
    std::vector<std::string> env;
    bool empty() const { return sockets.empty() && env.empty(); }
};

// Reads the caller's environment through `getenv` (DISPLAY, XAUTHORITY, HOME, WAYLAND_DISPLAY,
// XDG_RUNTIME_DIR, PULSE_SERVER, DBUS_SESSION_BUS_ADDRESS and nothing else) and keeps what exists on the
// host: a socket that is not there is not planned. The Xauthority file is the caller's own: opened
// without following a link, read only when it is a regular file.
DesktopPlan plan_desktop(const std::function<const char*(const char*)>& getenv);

// The entries of an Xauthority file for display number `display` (others are dropped, so the machine
// gets only the cookie it needs), each made FamilyWild: it names the host's hostname, and the machine has
// its own. Malformed input gives what was read before it.
std::string filter_xauthority(const std::string& data, const std::string& display);

// Host half: the mount trees of the plan's sockets, in order (an invalid fd for one that could not be
// taken). A helper process in a user and mount namespace of its own clones them (the caller needs no
// privilege) and passes them back.
Result<std::vector<UniqueFd>> take_desktop_sockets(const DesktopPlan& plan);

// Machine half, in the joined process while it is still root of the machine's user namespace: makes
// /run/user/<uid> (0700, the user's), attaches each tree at its target (replacing the one an earlier
// run attached), writes the Xauthority file there, and returns the plan's variables with the runtime
// directory filled in. Failures of a single socket are skipped (the command runs without it).
std::vector<std::string> attach_desktop(const DesktopPlan& plan, std::vector<UniqueFd>& trees, uid_t uid,
                                        gid_t gid);

} // namespace ctr::runtime
