// SPDX-License-Identifier: MIT
// Size parsing and formatting.
#include <gtest/gtest.h>

#include "base/size.hpp"

namespace ctr {

TEST(Size, Parses) {
    EXPECT_EQ(*parse_size("1024"), 1024u);
    EXPECT_EQ(*parse_size("512M"), 512ull << 20);
    EXPECT_EQ(*parse_size("2g"), 2ull << 30);
    EXPECT_EQ(*parse_size("1GiB"), 1ull << 30);
    EXPECT_EQ(*parse_size("3KB"), 3072u);
    EXPECT_EQ(*parse_size("1.5GiB"), 3ull << 29);
    EXPECT_EQ(*parse_size(" 2p"), 2ull << 50);
    EXPECT_EQ(*parse_size("10b"), 10u);
    EXPECT_FALSE(parse_size("12Q"));
    EXPECT_FALSE(parse_size("1.2.3G"));
    EXPECT_FALSE(parse_size("5bb"));
    EXPECT_FALSE(parse_size(""));
    EXPECT_FALSE(parse_size("G"));
    EXPECT_FALSE(parse_size("1X"));
    EXPECT_FALSE(parse_size("-1"));
    EXPECT_FALSE(parse_size("99999999999999999999"));
    EXPECT_FALSE(parse_size("99999999999T"));
}

TEST(Size, Formats) {
    EXPECT_EQ(format_size(0), "0 B");
    EXPECT_EQ(format_size(999), "999 B");
    EXPECT_EQ(format_size(2136604), "2.14 MB");
    EXPECT_EQ(format_size(123456789), "123 MB");
}

TEST(Size, FormatsLimitsExactly) {
    EXPECT_EQ(format_limit(64ull << 30), "64 GiB");
    EXPECT_EQ(format_limit(16ull << 20), "16 MiB");
    EXPECT_EQ(format_limit(1536ull << 10), "1536 KiB");
    EXPECT_EQ(format_limit(1000), "1000 bytes");
    EXPECT_EQ(format_limit(0), "0 bytes");
}

} // namespace ctr
