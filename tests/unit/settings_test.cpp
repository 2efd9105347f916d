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
    return apply_settings(b, s, kvm);
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
              "unknown fields 'bogus, other'. Valid: cpus, memory, home-mount, virtualization, kernel");
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
