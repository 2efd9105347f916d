// SPDX-License-Identifier: MIT
// Digest parsing and SHA-256.
#include <gtest/gtest.h>

#include "oci/digest.hpp"

namespace ctr::oci {

TEST(Digest, HashesKnownVectors) {
    EXPECT_EQ(sha256_of("").str(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    Sha256 h;
    h.update("a");
    h.update("bc");
    EXPECT_EQ(h.finish().hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Digest, ParsesOnlyWellFormedSha256) {
    std::string hex(64, 'f');
    auto d = parse_digest("sha256:" + hex);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->short_hex(), "ffffffffffff");
    EXPECT_FALSE(parse_digest(hex));
    EXPECT_FALSE(parse_digest("sha512:" + hex));
    EXPECT_FALSE(parse_digest("sha256:" + hex.substr(1)));
    EXPECT_FALSE(parse_digest("sha256:" + std::string(64, 'F')));
    EXPECT_FALSE(parse_digest("sha256:" + std::string(63, 'a') + "/"));
}

} // namespace ctr::oci
