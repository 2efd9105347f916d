// SPDX-License-Identifier: MIT
// The cgroup limit plan for pure cgroup v2 (systemd hosts with delegation), hybrid v1, and neither;
// and its executor against a directory tree laid out like cgroupfs.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>

#include "base/fs.hpp"
#include "runtime/limits.hpp"

namespace ctr::runtime {

TEST(Limits, CpuListFormatting) {
    EXPECT_EQ(format_cpu_list({0, 1, 2, 5, 7, 8}), "0-2,5,7-8");
    EXPECT_EQ(format_cpu_list({3}), "3");
    EXPECT_EQ(format_cpu_list({}), "");
    EXPECT_EQ(parse_cpu_list("0-2,5,7-8"), (std::vector<int>{0, 1, 2, 5, 7, 8}));
    EXPECT_TRUE(parse_cpu_list("").empty());
}

TEST(Limits, PureV2UsesDelegatedControllers) {
    CgroupLayout l;
    l.v2_dir = "/sys/fs/cgroup/user.slice/u.service/machine-dev";
    l.v2_parent_controllers = "cpuset cpu io memory pids\n";
    LimitPlan p = plan_limits(l, "dev", 2, 1ull << 30, {0, 1, 2, 3});
    const std::string parent = "/sys/fs/cgroup/user.slice/u.service";
    std::vector<CgroupWrite> want = {
        {parent + "/cgroup.subtree_control", "+cpuset"}, {parent + "/cgroup.subtree_control", "+cpu"},
        {parent + "/cgroup.subtree_control", "+memory"}, {l.v2_dir + "/cpuset.cpus", "0-1"},
        {l.v2_dir + "/cpu.max", "200000 100000"},        {l.v2_dir + "/memory.max", "1073741824"},
    };
    EXPECT_EQ(p.writes, want);
    EXPECT_TRUE(p.mkdirs.empty());
    EXPECT_TRUE(p.cpu_time_limited);
    EXPECT_TRUE(p.memory_limited);
    EXPECT_TRUE(p.not_enforced.empty());
}

TEST(Limits, HybridFallsBackToV1) {
    CgroupLayout l;
    l.v2_dir = "/sys/fs/cgroup/unified/u/machine-dev";
    l.v2_parent_controllers = ""; // hybrid: the unified hierarchy has no controllers
    l.v1_parent = {{"cpu", "/sys/fs/cgroup/cpu/u"},
                   {"cpuset", "/sys/fs/cgroup/cpuset/u"},
                   {"memory", "/sys/fs/cgroup/memory/u"}};
    l.v1_cpuset_mems = "0";
    LimitPlan p = plan_limits(l, "dev", 1, 2ull << 30, {0, 1});
    std::vector<CgroupWrite> want = {
        {"/sys/fs/cgroup/cpuset/u/machine-dev/cpuset.cpus", "0"},
        {"/sys/fs/cgroup/cpuset/u/machine-dev/cpuset.mems", "0"},
        {"/sys/fs/cgroup/cpu/u/machine-dev/cpu.cfs_period_us", "100000"},
        {"/sys/fs/cgroup/cpu/u/machine-dev/cpu.cfs_quota_us", "100000"},
        {"/sys/fs/cgroup/memory/u/machine-dev/memory.limit_in_bytes", "2147483648"},
    };
    EXPECT_EQ(p.writes, want);
    EXPECT_EQ(p.attach.size(), 3u);
    EXPECT_EQ(p.cpu_list, "0");
}

TEST(Limits, NothingDelegatedIsReported) {
    LimitPlan p = plan_limits(CgroupLayout{}, "dev", 8, 1ull << 30, {0, 1});
    EXPECT_EQ(p.cpu_list, "0-1");
    EXPECT_FALSE(p.memory_limited);
    EXPECT_FALSE(p.cpu_time_limited);
    ASSERT_EQ(p.not_enforced.size(), 3u);
    EXPECT_EQ(p.not_enforced[0], "cpus: 8 requested, the host allows 2");
}

TEST(Limits, ExecutorWritesAFakeCgroupTree) {
    char tmpl[] = "/tmp/cgroupfs-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    std::string root = tmpl;
    // A delegated v2 parent with controllers, and the machine's directory made by create_machine_cgroup.
    ASSERT_TRUE(fs::make_dirs(root + "/user/machine-dev", 0755));
    for (const char* f : {"/user/cgroup.subtree_control", "/user/machine-dev/cpuset.cpus",
                          "/user/machine-dev/cpu.max", "/user/machine-dev/memory.max"})
        std::ofstream(root + f).flush();
    std::ofstream(root + "/user/cgroup.controllers") << "cpuset cpu memory\n";
    CgroupLayout l = discover_layout(root + "/user/machine-dev");
    EXPECT_EQ(l.v2_parent_controllers, "cpuset cpu memory\n");
    l.v1_parent.clear(); // whatever this process's own v1 cgroups are, they are not part of the fake tree
    LimitPlan p = plan_limits(l, "dev", 1, 1ull << 30, {0, 1});
    apply_plan(p);
    EXPECT_TRUE(p.not_enforced.empty()) << p.not_enforced[0];
    EXPECT_EQ(*fs::read_file(root + "/user/machine-dev/memory.max"), "1073741824");
    EXPECT_EQ(*fs::read_file(root + "/user/machine-dev/cpu.max"), "100000 100000");
    // A missing controller file (the kernel refused) moves the limit to not_enforced.
    ::unlink((root + "/user/machine-dev/memory.max").c_str());
    LimitPlan q = plan_limits(l, "dev", 1, 1ull << 30, {0, 1});
    apply_plan(q);
    EXPECT_FALSE(q.memory_limited);
    ASSERT_EQ(q.not_enforced.size(), 1u);
    EXPECT_NE(q.not_enforced[0].find("memory: write"), std::string::npos);
    (void)fs::remove_tree(root);
}

} // namespace ctr::runtime
