// SPDX-License-Identifier: MIT
// The init systems a machine may boot, as one table (init_kind.cpp): how each is recognised from
// /sbin/init, how it is asked to power off, and when it is ready. Every path is resolved inside the
// machine's root (RESOLVE_IN_ROOT): an image's links never lead the supervisor to the host.
#pragma once

#include <sys/types.h>

namespace ctr::supervisor {

// The init systems a machine may boot, one row each: how /sbin/init's final target is named, how the
// kind asks to power off (a signal, or a control file written as the machine's root), and when it is
// ready for commands. The last row is everything else (SIGTERM, ready once exec'd).
enum class Ready { at_exec, systemd_sockets };
struct InitKind {
    const char* name;
    const char* binaries[2];
    bool (*stop)(int root, pid_t init); // nullptr: SIGTERM
    Ready ready;
    bool needs_cgroup; // exits at once without a cgroup it can write (systemd makes init.scope)
};

// Names the init system by following /sbin/init's links inside the machine's root `root` (an fd); the
// last row ("other": SIGTERM, ready once exec'd) when none matches.
const InitKind& init_kind(int root);

// Whether `path` exists in the machine, resolved inside its root.
bool exists_in_machine(int root, const char* path);

} // namespace ctr::supervisor
