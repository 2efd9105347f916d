// SPDX-License-Identifier: MIT
// Reference parsing and Docker-style normalisation.
#include <gtest/gtest.h>

#include "oci/reference.hpp"

namespace ctr::oci {

struct Case {
    const char* in;
    const char* out;
};

TEST(Reference, NormalisesAsDockerDoes) {
    const std::string d64 = "sha256:" + std::string(64, 'a');
    const Case cases[] = {
        {"alpine", "docker.io/library/alpine:latest"},
        {"alpine:3.20", "docker.io/library/alpine:3.20"},
        {"library/alpine", "docker.io/library/alpine:latest"},
        {"docker.io/alpine", "docker.io/library/alpine:latest"},
        {"user/repo:v1", "docker.io/user/repo:v1"},
        {"ghcr.io/owner/img", "ghcr.io/owner/img:latest"},
        {"localhost/name:tag", "localhost/name:tag"},
        {"localhost:5000/a/b/c:1.0-rc_1", "localhost:5000/a/b/c:1.0-rc_1"},
        {"127.0.0.1:5000/x", "127.0.0.1:5000/x:latest"},
        {"a-b__c_d/e-f.g", "docker.io/a-b__c_d/e-f.g:latest"},
    };
    for (const auto& c : cases) {
        auto r = parse_reference(c.in);
        ASSERT_TRUE(r) << c.in << ": " << r.error().message;
        EXPECT_EQ(r->str(), c.out) << c.in;
    }
    auto dig = parse_reference("quay.io/x/y@" + d64);
    ASSERT_TRUE(dig);
    EXPECT_EQ(dig->tag, "");
    EXPECT_EQ(dig->str(), "quay.io/x/y@" + d64);
    auto both = parse_reference("x:t@" + d64);
    ASSERT_TRUE(both);
    EXPECT_EQ(both->str(), "docker.io/library/x:t@" + d64);
}

TEST(Reference, RejectsMalformed) {
    for (const char* bad : {"", "Alpine", "a//b", ":tag", "a:", "-a", "a-", "a@sha256:zz", "a@md5:00", "a:-x",
                            "a b", "x/", "/x", "a..b", "localhost:port/x"}) {
        auto r = parse_reference(bad);
        EXPECT_FALSE(r) << "accepted \"" << bad << "\"";
        if (!r) {
            EXPECT_NE(r.error().message.find("invalid reference"), std::string::npos) << r.error().message;
        }
    }
    EXPECT_FALSE(parse_reference(std::string(256, 'a')));
}

TEST(Reference, RegistryHostAndBaseName) {
    EXPECT_EQ(parse_reference("alpine")->registry_host(), "registry-1.docker.io");
    EXPECT_EQ(parse_reference("localhost:5000/x")->registry_host(), "localhost:5000");
    EXPECT_EQ(parse_reference("ghcr.io/a/b/debian:12")->base_name(), "debian");
}

} // namespace ctr::oci
