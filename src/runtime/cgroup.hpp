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

// Makes <caller's cgroup>/machine-<name> (removing a stale one), or fails saying why none is usable.
Result<std::string> create_machine_cgroup(const std::string& name);
Result<void> move_to_cgroup(const std::string& cgroup_dir, pid_t pid);
// Moves the calling thread, which must be its process's only thread, into `cgroup_dir`. In a v1
// hierarchy this writes "0" to `tasks`: a single-thread migration skips the global threadgroup lock
// whose RCU grace period makes a `cgroup.procs` write take 7 to 15 ms after a quiet spell (0.03 ms this
// way, measured on kernel 6.18). Elsewhere it writes the pid to cgroup.procs.
Result<void> move_self_to_cgroup(const std::string& cgroup_dir);
// Removes the directory and its empty children; processes still in it make this fail.
Result<void> remove_cgroup(const std::string& cgroup_dir);

} // namespace ctr::runtime
