// SPDX-License-Identifier: MIT
// Running a command in a running machine by joining its namespaces (like nsenter), without asking
// the supervisor: user first (so the rest are permitted), then mount, uts, ipc, cgroup, pid.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace ctr::runtime {

struct ExecSpec {
    std::vector<std::string> argv; // empty: the user's login shell
    std::optional<std::string> user_name;
    std::optional<uint32_t> uid;
    std::optional<uint32_t> gid;
    std::string cwd;                    // tried first; falls back to the user's home, then "/"
    std::vector<std::string> base_env;  // host-derived (TERM, LANG, LC_*), before the user's variables
    std::vector<std::string> extra_env; // --env-file then -e, applied last
    std::vector<std::string> cgroups;   // the machine's cgroups (v2 and v1), joined first
    std::vector<int> cpus;              // the machine's CPUs (affinity); empty: unchanged
    bool detach = false;
    bool tty = false; // run on a pseudo-terminal of the machine's devpts, proxied to our stdin/stdout
};

// Joins the namespaces of `init_pid`, becomes the requested user and execs the command. Returns the
// command's exit status (128+N when killed by signal N); 127 when the command does not exist.
Result<int> exec_in_machine(pid_t init_pid, const ExecSpec& spec);

} // namespace ctr::runtime
