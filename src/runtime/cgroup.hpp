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
// Removes the directory and its empty children; processes still in it make this fail.
Result<void> remove_cgroup(const std::string& cgroup_dir);

} // namespace ctr::runtime
