// SPDX-License-Identifier: MIT
// Running a command in a running machine by joining its namespaces (like nsenter), without asking
// the supervisor: user first (so the rest are permitted), then mount, uts, ipc, cgroup, pid.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "runtime/desktop.hpp"

namespace ctr::runtime {

struct ExecSpec {
    std::vector<std::string> argv; // empty: the user's login shell
    std::optional<std::string> user_name;
    std::optional<std::string> group_name; // -u USER:GROUP with a group name, looked up in the machine
    std::optional<uint32_t> uid;
    std::optional<uint32_t> gid;
    std::string cwd;                    // tried first; falls back to the user's home, then "/"
    std::vector<std::string> base_env;  // host-derived (TERM, LANG, LC_*), before the user's variables
    std::vector<std::string> extra_env; // --env-file then -e, applied last
    std::vector<std::string> cgroups;   // the machine's cgroups (v2 and v1), joined first
    // A caller outside its service manager's delegated tree (a login session, beside the user manager)
    // may not move a process into the machine's unified cgroup: the manager is asked to, through its
    // AttachProcessesToUnit (scope unit, path below it). Empty: no such manager.
    std::string manager_unit, manager_subcgroup;
    std::vector<int> cpus;              // the machine's CPUs (affinity); empty: unchanged
    std::string filter_file;            // the machine's seccomp program as its supervisor saved it
    bool detach = false;
    // Which of the command's stdin, stdout and stderr (bits 0, 1, 2) are a pseudo-terminal of the
    // machine's own devpts, proxied to ours; the others are ours, passed as they are. The CLI puts every
    // one of ours that is a terminal there, so no descriptor of the caller's terminal reaches the machine.
    unsigned pty_fds = 0;
    bool raw = false; // our terminal in raw mode while proxying (an interactive session), else cooked
    // The caller's desktop sockets and variables to forward (runtime/desktop.hpp); null: none.
    const DesktopPlan* desktop = nullptr;
};

// Joins the namespaces of `init_pid`, becomes the requested user and execs the command in a session of
// its own, under the machine's seccomp filter, with none of our other descriptors, keyring or
// environment. SIGINT, SIGQUIT, SIGTERM and SIGHUP that reach us are passed on to the command. Returns
// the command's exit status (128+N when killed by signal N); 127 when the command does not exist.
Result<int> exec_in_machine(pid_t init_pid, const ExecSpec& spec);

// A user or group id given as a decimal number; nothing when not a number or out of range.
std::optional<uint32_t> parse_id(const std::string& s);

} // namespace ctr::runtime
