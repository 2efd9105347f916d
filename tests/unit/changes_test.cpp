// SPDX-License-Identifier: MIT
// Dockerfile-style --change instructions applied to an image config.
#include <gtest/gtest.h>

#include "oci/changes.hpp"

namespace ctr::oci {

using nlohmann::json;

TEST(Changes, CommandsInExecAndShellForm) {
    json c;
    ASSERT_TRUE(apply_change(c, R"(CMD ["/bin/bash", "-l"])"));
    EXPECT_EQ(c["Cmd"], json::array({"/bin/bash", "-l"}));
    ASSERT_TRUE(apply_change(c, "entrypoint exec \"$@\""));
    EXPECT_EQ(c["Entrypoint"], json::array({"/bin/sh", "-c", "exec \"$@\""}));
    EXPECT_FALSE(apply_change(c, "CMD [1, 2]"));
    EXPECT_FALSE(apply_change(c, "CMD"));
}

TEST(Changes, EnvReplacesAndAppends) {
    json c = {{"Env", {"PATH=/bin", "A=1"}}};
    ASSERT_TRUE(apply_change(c, "ENV A=2 B=\"two words\""));
    EXPECT_EQ(c["Env"], json::array({"PATH=/bin", "A=2", "B=two words"}));
    ASSERT_TRUE(apply_change(c, "ENV C old form"));
    EXPECT_EQ(c["Env"].back(), "C=old form");
    EXPECT_FALSE(apply_change(c, "ENV =x"));
    EXPECT_FALSE(apply_change(c, "ENV A=\"open"));
}

TEST(Changes, OtherInstructions) {
    json c;
    ASSERT_TRUE(apply_change(c, "LABEL team=dev org.opencontainers.image.title=x"));
    EXPECT_EQ(c["Labels"]["team"], "dev");
    ASSERT_TRUE(apply_change(c, "EXPOSE 8080 53/udp"));
    EXPECT_TRUE(c["ExposedPorts"].contains("8080/tcp"));
    EXPECT_TRUE(c["ExposedPorts"].contains("53/udp"));
    EXPECT_FALSE(apply_change(c, "EXPOSE 70000"));
    EXPECT_FALSE(apply_change(c, "EXPOSE 80/icmp"));
    ASSERT_TRUE(apply_change(c, "WORKDIR /srv"));
    EXPECT_EQ(c["WorkingDir"], "/srv");
    EXPECT_FALSE(apply_change(c, "WORKDIR relative"));
    ASSERT_TRUE(apply_change(c, "USER 1000:1000"));
    EXPECT_EQ(c["User"], "1000:1000");
    ASSERT_TRUE(apply_change(c, "STOPSIGNAL SIGRTMIN+3"));
    ASSERT_TRUE(apply_change(c, "VOLUME /data"));
    EXPECT_TRUE(c["Volumes"].contains("/data"));
    auto bad = apply_change(c, "RUN apt-get update");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("RUN apt-get update"), std::string::npos);
}

} // namespace ctr::oci
