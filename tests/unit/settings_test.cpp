// SPDX-License-Identifier: MIT
// Boot-config settings: parsing, validation, messages, and nothing changed on error.
#include <gtest/gtest.h>

#include "machine/settings.hpp"

namespace ctr::machine {

namespace {
Result<BootConfig> apply(std::vector<Setting> s, bool kvm = true) {
    BootConfig b;
    b.cpus = 2;
    b.memory = 2ull << 30;
    return apply_settings(b, s, HostFacts{kvm, "/home/u"});
}
std::string error_of(std::vector<Setting> s, bool kvm = true) {
    auto r = apply(std::move(s), kvm);
    return r ? "" : r.error().message;
}
} // namespace

TEST(Settings, ParsesKeyValue) {
    EXPECT_EQ(parse_setting("cpus=4")->second, "4");
    EXPECT_EQ(parse_setting("a=b=c")->second, "b=c");
    for (const char* bad : {"cpus", "=4", "cpus=", ""})
        EXPECT_EQ(parse_setting(bad).error().message,
                  std::string("invalid argument format '") + bad + "'. Expected 'key=value'");
    EXPECT_EQ(parse_setting("mounts=")->second, ""); // a list key's empty value removes them all
}

TEST(Settings, ParsesBothMountSyntaxes) {
    auto v = parse_mount("/srv//data/:/data:ro");
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, (ExtraMount{"/srv/data", "/data", true}));
    auto m = parse_mount("type=bind,source=/a:b,target=/opt/work,readonly");
    ASSERT_TRUE(m);
    EXPECT_EQ(*m, (ExtraMount{"/a:b", "/opt/work", true}));
    EXPECT_EQ(parse_mount("type=bind,src=/a,dst=/b")->read_only, false);
    EXPECT_EQ(parse_mount("/a:/b:rx").error().message, "invalid volume '/a:/b:rx': expected SRC:DST[:ro|rw]");
    EXPECT_EQ(parse_mount("/a").error().message, "invalid volume '/a': expected SRC:DST[:ro|rw]");
    EXPECT_EQ(parse_mount("type=volume,source=/a,target=/b").error().message,
              "invalid mount 'type=volume,source=/a,target=/b': only type=bind is supported");
    EXPECT_EQ(parse_mount("type=bind,source=/a").error().message,
              "invalid mount 'type=bind,source=/a': expected type=bind,source=SRC,target=DST[,readonly]");
    EXPECT_EQ(parse_mount("type=bind,source=/a,target=/b,z").error().message,
              "invalid mount 'type=bind,source=/a,target=/b,z': unknown field 'z'");
}

TEST(Settings, MountsAreAListThatReplacesAndClears) {
    BootConfig b;
    b.mounts = {{"/old", "/old", false}};
    auto r = apply_settings(b, {{"mounts", "/tmp:/data"}, {"mounts", "type=bind,source=/,target=/host,readonly"}},
                            HostFacts{false, "/home/u"});
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->mounts.size(), 2u);
    EXPECT_EQ(r->mounts[0], (ExtraMount{"/tmp", "/data", false}));
    EXPECT_EQ(r->mounts[1], (ExtraMount{"/", "/host", true}));
    EXPECT_TRUE(apply_settings(*r, {{"mounts", ""}}, HostFacts{})->mounts.empty());
    EXPECT_EQ(apply_settings(*r, {{"cpus", "3"}}, HostFacts{})->mounts, r->mounts); // other keys keep them
    // Stored and read back.
    auto back = boot_config_from_json(boot_config_to_json(*r));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->mounts, r->mounts);
    EXPECT_EQ(back->desktop, "auto");
    EXPECT_TRUE(back->gpu);
    EXPECT_TRUE(desktop_on(*back));
    EXPECT_FALSE(desktop_on(*apply_settings(*back, {{"home-mount", "ro"}}, HostFacts{})));
    EXPECT_TRUE(desktop_on(*apply_settings(*back, {{"home-mount", "ro"}, {"desktop", "TRUE"}}, HostFacts{})));
    EXPECT_FALSE(desktop_on(*apply_settings(*back, {{"desktop", "f"}}, HostFacts{})));
    EXPECT_EQ(apply_settings(*back, {{"desktop", "x"}}, HostFacts{}).error().message,
              "invalid value 'x' for desktop. Expected 'auto', 'true' or 'false'.");
}

TEST(Settings, MountProblemsOneLineEach) {
    EXPECT_EQ(error_of({{"mounts", "rel:/x"}, {"mounts", "/tmp:rel"}, {"mounts", "/nonexistent-x:/y"}}),
              "mount source 'rel' is not an absolute path\n"
              "mount target 'rel' is not an absolute path\n"
              "mount source '/nonexistent-x' does not exist");
    EXPECT_EQ(error_of({{"mounts", "/tmp:/"}}), "mount target '/' is the machine's root");
    for (const char* api : {"/proc", "/sys", "/dev"})
        EXPECT_EQ(error_of({{"mounts", std::string("/tmp:") + api + "/x"}}),
                  fmt::format("mount target '{}/x' is over {}, which the machine's runtime provides", api, api));
    EXPECT_EQ(error_of({{"mounts", "/tmp:/a/../proc"}}), "mount target '/a/../proc' has '.' or '..' in it");
    EXPECT_EQ(error_of({{"mounts", "/tmp:/a"}, {"mounts", "/:/a/"}}), "mount target '/a' is given twice");
    EXPECT_EQ(error_of({{"mounts", "/tmp:/home/u/x"}, {"mounts", "/tmp:/home"}}),
              "mount target '/home/u/x' is over the home mount /home/u (home-mount=none frees it)\n"
              "mount target '/home' is over the home mount /home/u (home-mount=none frees it)");
    EXPECT_TRUE(apply({{"mounts", "/tmp:/home/u/x"}, {"home-mount", "none"}}));
    EXPECT_TRUE(apply({{"mounts", "/tmp:/homer"}}));
}

TEST(Settings, AppliesValues) {
    auto b = apply({{"cpus", "1"}, {"memory", "1.5GiB"}, {"home-mount", "ro"}, {"virtualization", "T"}});
    ASSERT_TRUE(b) << b.error().message;
    EXPECT_EQ(b->cpus, 1);
    EXPECT_EQ(b->memory, 3ull << 29);
    EXPECT_EQ(b->home_mount, "ro");
    EXPECT_TRUE(b->virtualization);
    EXPECT_EQ(apply({{"cpus", "1"}, {"cpus", "3"}})->cpus, 3); // last wins
    EXPECT_EQ(apply({{"memory", "8G"}})->memory, 8ull << 30);
    EXPECT_EQ(apply({{"memory", "1G"}})->memory, 1ull << 30);
}

TEST(Settings, RejectsBadValuesWithTheReferenceMessages) {
    EXPECT_EQ(error_of({{"cpus", "0"}}), "invalid CPU count '0'. Must be a positive integer (e.g., 4).");
    EXPECT_EQ(error_of({{"cpus", "x"}}), "failed to parse x for cpus");
    EXPECT_EQ(error_of({{"memory", "1"}}), "invalid memory value '1'. Must be at least 1G.");
    EXPECT_EQ(error_of({{"memory", "12Q"}}), "invalid size \"12Q\": invalid symbol: q");
    EXPECT_EQ(error_of({{"home-mount", "rwx"}}),
              "invalid home mount option 'rwx'. Valid options: ro, rw, none");
    EXPECT_EQ(error_of({{"bogus", "1"}, {"other", "2"}}),
              "unknown fields 'bogus, other'. Valid: cpus, memory, home-mount, virtualization, mounts, desktop, gpu, "
              "kernel");
    EXPECT_EQ(error_of({{"virtualization", "maybe"}}),
              "invalid value 'maybe' for virtualization. Expected 'true' or 'false'.");
    EXPECT_EQ(error_of({{"virtualization", "true"}}, false),
              "virtualization=true needs /dev/kvm, and this host has none");
    EXPECT_EQ(error_of({{"kernel", "/x"}}),
              "kernel cannot be set: container machines run on the host's kernel");
    // A bad value anywhere means nothing applies.
    EXPECT_FALSE(apply({{"cpus", "3"}, {"memory", "1"}}));
}

} // namespace ctr::machine
