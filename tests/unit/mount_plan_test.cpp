// SPDX-License-Identifier: MIT
#include "runtime/mount_plan.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "runtime/boot.hpp"

namespace ctr::runtime {
namespace {

BootSpec spec() {
    BootSpec s;
    s.hostname = "dev";
    s.home = "/home/ann";
    s.console = "/dev/pts/7";
    s.hosts = "127.0.0.1 localhost\n";
    s.data_dir = "/home/ann/.local/share/container";
    return s;
}

const MountStep* find(const std::vector<MountStep>& plan, StepKind kind, const std::string& target) {
    auto it = std::find_if(plan.begin(), plan.end(),
                           [&](const MountStep& m) { return m.kind == kind && m.target == target; });
    return it == plan.end() ? nullptr : &*it;
}

size_t index_of(const std::vector<MountStep>& plan, const MountStep* m) {
    return static_cast<size_t>(m - plan.data());
}

TEST(MountPlan, FilesAreWrittenBeforeAnyHostPathIsBound) {
    auto plan = plan_boot_mounts(spec());
    size_t first_bind = plan.size();
    for (size_t i = 0; i < plan.size(); ++i)
        if (plan[i].kind == StepKind::bind) first_bind = std::min(first_bind, i);
    for (const char* f : {"etc/hosts", "etc/hostname"}) {
        const MountStep* m = find(plan, StepKind::file, f);
        ASSERT_NE(m, nullptr) << f;
        EXPECT_LT(index_of(plan, m), first_bind) << f;
    }
    EXPECT_EQ(find(plan, StepKind::file, "etc/hostname")->source, "dev\n");
    EXPECT_EQ(find(plan, StepKind::file, "etc/resolv.conf"), nullptr); // empty: the image's own is kept
}

TEST(MountPlan, KernelInterfacesAreMaskedOrReadOnly) {
    auto plan = plan_boot_mounts(spec());
    for (const char* m : {"proc/kcore", "proc/keys", "proc/timer_list", "proc/sched_debug", "proc/acpi", "proc/scsi",
                          "sys/firmware", "sys/devices/virtual/powercap"})
        EXPECT_NE(find(plan, StepKind::mask, m), nullptr) << m;
    for (const char* r : {"proc/sys", "proc/sysrq-trigger", "proc/bus", "proc/fs", "proc/irq"})
        EXPECT_NE(find(plan, StepKind::read_only, r), nullptr) << r;
    const MountStep* sys = find(plan, StepKind::bind, "sys");
    ASSERT_NE(sys, nullptr);
    EXPECT_TRUE(sys->attrs & attr::rdonly);
    // The masks and locks come after the file systems they cover, the cgroup mount after /sys.
    EXPECT_LT(index_of(plan, find(plan, StepKind::fs, "proc")), index_of(plan, find(plan, StepKind::mask, "proc/kcore")));
    EXPECT_LT(index_of(plan, sys), index_of(plan, find(plan, StepKind::mask, "sys/firmware")));
    EXPECT_LT(index_of(plan, sys), index_of(plan, find(plan, StepKind::fs, "sys/fs/cgroup")));
}

TEST(MountPlan, HomeAndTheDataDirectoryBelowIt) {
    auto plan = plan_boot_mounts(spec());
    const MountStep* home = find(plan, StepKind::bind, "home/ann");
    ASSERT_NE(home, nullptr);
    EXPECT_EQ(home->source, "/home/ann");
    EXPECT_FALSE(home->attrs & attr::rdonly);
    const MountStep* mask = find(plan, StepKind::mask, "home/ann/.local/share/container");
    ASSERT_NE(mask, nullptr);
    EXPECT_GT(index_of(plan, mask), index_of(plan, home));

    BootSpec ro = spec();
    ro.home_mount = HomeMount::ro;
    EXPECT_TRUE(find(plan_boot_mounts(ro), StepKind::bind, "home/ann")->attrs & attr::rdonly);

    BootSpec none = spec();
    none.home_mount = HomeMount::none;
    auto p = plan_boot_mounts(none);
    EXPECT_EQ(find(p, StepKind::bind, "home/ann"), nullptr);
    EXPECT_EQ(find(p, StepKind::mask, "home/ann/.local/share/container"), nullptr);

    BootSpec elsewhere = spec();
    elsewhere.data_dir = "/var/lib/container";
    EXPECT_EQ(find(plan_boot_mounts(elsewhere), StepKind::mask, "var/lib/container"), nullptr);
    BootSpec prefix = spec();
    prefix.data_dir = "/home/anna/store"; // a sibling that shares the prefix is not below the home
    EXPECT_EQ(find(plan_boot_mounts(prefix), StepKind::mask, "home/anna/store"), nullptr);
}

TEST(MountPlan, OptionalDevices) {
    BootSpec s = spec();
    auto plan = plan_boot_mounts(s);
    EXPECT_EQ(find(plan, StepKind::bind, "dev/kvm"), nullptr);
    EXPECT_EQ(find(plan, StepKind::bind, "var/host-services/ssh-auth.sock"), nullptr);
    s.kvm = true;
    s.ssh_auth_sock = "/run/user/1000/agent.sock";
    plan = plan_boot_mounts(s);
    ASSERT_NE(find(plan, StepKind::bind, "dev/kvm"), nullptr);
    EXPECT_EQ(find(plan, StepKind::bind, "dev/kvm")->need, Need::optional);
    const MountStep* agent = find(plan, StepKind::bind, "var/host-services/ssh-auth.sock");
    ASSERT_NE(agent, nullptr);
    EXPECT_EQ(agent->source, "/run/user/1000/agent.sock");
    EXPECT_EQ(agent->type, TargetType::file);
    EXPECT_EQ(find(plan, StepKind::bind, "dev/console")->source, "/dev/pts/7");
}

TEST(MountPlan, TargetsAreRelative) {
    for (const auto& m : plan_boot_mounts(spec())) {
        EXPECT_FALSE(m.target.empty());
        EXPECT_NE(m.target[0], '/') << m.target;
        EXPECT_EQ(m.target.find(".."), std::string::npos) << m.target;
    }
}

} // namespace
} // namespace ctr::runtime

namespace ctr::runtime {

TEST(MountPlan, ExtraMountsAfterTheHomeWithoutFollowingLinks) {
    BootSpec s = spec();
    s.extra_mounts = {{"/m/0", "/srv/data", "/data", false, true},
                      {"/m/1", "/etc/app.conf", "/etc/app.conf", true, false},
                      {"/m/2", "/home/ann/.local", "/store", true, true}};
    auto plan = plan_boot_mounts(s);
    const MountStep* data = find(plan, StepKind::bind, "data");
    ASSERT_NE(data, nullptr);
    EXPECT_EQ(data->source, "/m/0");
    EXPECT_EQ(data->type, TargetType::dir);
    EXPECT_EQ(data->resolve, Resolve::no_links);
    EXPECT_EQ(data->need, Need::required);
    EXPECT_FALSE(data->attrs & attr::rdonly);
    EXPECT_GT(index_of(plan, data), index_of(plan, find(plan, StepKind::bind, "home/ann")));
    const MountStep* conf = find(plan, StepKind::bind, "etc/app.conf");
    ASSERT_NE(conf, nullptr);
    EXPECT_EQ(conf->type, TargetType::file);
    EXPECT_TRUE(conf->attrs & attr::rdonly);
    // The store below a shared source stays hidden there too.
    const MountStep* mask = find(plan, StepKind::mask, "store/share/container");
    ASSERT_NE(mask, nullptr);
    EXPECT_GT(index_of(plan, mask), index_of(plan, find(plan, StepKind::bind, "store")));
}

} // namespace ctr::runtime
