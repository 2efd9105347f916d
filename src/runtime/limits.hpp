// SPDX-License-Identifier: MIT
// CPU and memory limits as a plan of cgroup file writes (plain data, testable against a fake cgroupfs
// tree), and the small executor that applies it. Unified (v2) controllers are used where the parent
// offers them; v1 hierarchies (hybrid hosts) cover the rest; what neither can do is reported.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace ctr::runtime {

struct CgroupLayout {
    std::string v2_dir;                           // the machine's unified cgroup ("" when none)
    std::string v2_parent_controllers;            // its parent's cgroup.controllers
    std::map<std::string, std::string> v1_parent; // controller -> the caller's writable v1 cgroup
    std::string v1_cpuset_mems;                   // cpuset.mems of the v1 cpuset parent
};

struct CgroupWrite {
    std::string file;
    std::string value;
    bool operator==(const CgroupWrite&) const = default;
};

struct LimitPlan {
    std::vector<std::string> mkdirs; // v1 machine cgroups to create
    std::vector<CgroupWrite> writes; // in order
    std::vector<std::string> attach; // directories whose cgroup.procs takes the machine's processes
    std::string cpu_list;            // "0-1": the CPUs the machine may run on (affinity and cpuset)
    bool cpu_time_limited = false;
    bool memory_limited = false;
    std::vector<std::string> not_enforced; // "memory: …why…"
};

// "0,1,2,5" from a list of CPU numbers (ranges collapsed: "0-2,5").
std::string format_cpu_list(const std::vector<int>& cpus);
// "0-2,5" -> {0, 1, 2, 5}; the inverse of format_cpu_list.
std::vector<int> parse_cpu_list(const std::string& list);
// The CPUs this process may use, from its affinity mask.
std::vector<int> allowed_cpus();

LimitPlan plan_limits(const CgroupLayout& layout, const std::string& machine, int cpus, uint64_t memory,
                      const std::vector<int>& host_cpus);

// The layout for a new machine: v2 dir as created, v1 parents from /proc/self/cgroup where writable.
CgroupLayout discover_layout(const std::string& v2_dir);

// Creates directories and writes files; failures move the limit to `not_enforced` rather than failing.
void apply_plan(LimitPlan& plan);

} // namespace ctr::runtime
