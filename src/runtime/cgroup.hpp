// SPDX-License-Identifier: MIT
// The machine's cgroup: a child of the caller's own cgroup in the unified (v2) hierarchy when that is
// writable, as on a systemd host with delegation or a harness that chowned one. Hybrid hosts keep
// cgroup2 at /sys/fs/cgroup/unified; pure v2 hosts at /sys/fs/cgroup.
#pragma once

#include <string>
#include <vector>

#include <sys/types.h>

#include "base/result.hpp"

namespace ctr::runtime {

// Where cgroup2 is mounted: "/sys/fs/cgroup" or "/sys/fs/cgroup/unified"; empty if nowhere.
std::string unified_mount();
// The unified-hierarchy path of `pid`'s cgroup from /proc/<pid>/cgroup text ("0::/a/b" -> "/a/b").
std::string unified_path_from(const std::string& proc_cgroup_text);

// How a machine gets its cgroup. `systemd`: the supervisor runs in a scope of its own that the host's
// service manager (the user's, for a regular user) creates with delegation, as rootless podman does; the
// machine then outlives the terminal or session that started it, and the scope can hand controllers
// down. `cgroupfs`: below the caller's own cgroup when that is writable. $CONTAINER_CGROUP_MANAGER
// chooses; by default `systemd` when systemd-run is installed and the manager listens on its private
// socket (/run/systemd/private, or $XDG_RUNTIME_DIR/systemd/private for a user), else `cgroupfs`.
enum class CgroupManager { systemd, cgroupfs };
struct CgroupManagerChoice {
    CgroupManager manager = CgroupManager::cgroupfs;
    bool chosen = false; // set by $CONTAINER_CGROUP_MANAGER rather than detected
};
CgroupManagerChoice cgroup_manager();
// The command that runs what follows it in a new delegated scope unit `unit` (systemd-run --scope).
std::vector<std::string> systemd_scope_argv(const std::string& unit, const std::string& description);
// Inside a delegated scope: moves every process of the caller's cgroup into its new child "supervisor"
// (a cgroup with processes cannot give controllers to children) and returns the scope's directory.
Result<std::string> leave_scope_root();

// What gives the caller a cgroup of its own on this host, in one clause for an error line: a login
// with a systemd user manager (or lingering) on a systemd host, a cgroup delegated by root elsewhere.
std::string cgroup_delegation_fix();

// The leaf below a machine's cgroup where `machine run` commands go (see supervisor.cpp).
inline constexpr const char* k_run_cgroup = "run";

// Asks the caller's service manager (the user's, for a regular user) to move `pid` into `subcgroup`
// below the scope `unit` (org.freedesktop.systemd1.Manager.AttachProcessesToUnit, through busctl). A user
// manager asks the system manager in turn when the process is outside its own tree, as a login
// session's are.
Result<void> attach_through_manager(const std::string& unit, const std::string& subcgroup, pid_t pid);

// The caller's own cgroup directory in the unified hierarchy.
Result<std::string> own_cgroup_dir();
// Makes <parent>/machine-<name> (removing a stale one), `parent` being the caller's own cgroup when
// empty, or fails saying why none is usable.
Result<std::string> create_machine_cgroup(const std::string& name, const std::string& parent = "");
Result<void> move_to_cgroup(const std::string& cgroup_dir, pid_t pid);
// Moves the calling thread, which must be its process's only thread, into `cgroup_dir`. In a v1
// hierarchy this writes "0" to `tasks`: a single-thread migration skips the global threadgroup lock
// whose RCU grace period makes a `cgroup.procs` write take 7 to 15 ms after a quiet spell (0.03 ms this
// way, measured on kernel 6.18). Elsewhere it writes the pid to cgroup.procs.
Result<void> move_self_to_cgroup(const std::string& cgroup_dir);
// Removes the directory and its empty children; processes still in it make this fail.
Result<void> remove_cgroup(const std::string& cgroup_dir);

} // namespace ctr::runtime
