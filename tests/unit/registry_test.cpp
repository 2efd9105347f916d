// SPDX-License-Identifier: MIT
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "registry/client.hpp"
#include "registry/config.hpp"

using namespace ctr::registry;

TEST(Challenge, BearerWithQuotedParams) {
    auto c = parse_challenge(
        R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull")");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->scheme, "bearer");
    EXPECT_EQ(c->params["realm"], "https://auth.docker.io/token");
    EXPECT_EQ(c->params["service"], "registry.docker.io");
    EXPECT_EQ(c->params["scope"], "repository:library/alpine:pull");
}

TEST(Challenge, BasicAndOddSpacing) {
    auto c = parse_challenge(R"(Basic realm="Registry Realm", charset=UTF-8)");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->scheme, "basic");
    EXPECT_EQ(c->params["realm"], "Registry Realm");
    EXPECT_EQ(c->params["charset"], "UTF-8");
    EXPECT_FALSE(parse_challenge(""));
    auto esc = parse_challenge(R"(Bearer realm="a\"b")");
    ASSERT_TRUE(esc);
    EXPECT_EQ(esc->params["realm"], "a\"b");
}

TEST(Base64, RoundTripsEveryPaddingLength) {
    for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "user:pa ss:w0rd", std::string("\0\xff", 2)}) {
        std::string enc = base64_encode(s);
        if (s.empty()) {
            EXPECT_EQ(enc, "");
            continue;
        }
        auto dec = base64_decode(enc);
        ASSERT_TRUE(dec) << enc;
        EXPECT_EQ(*dec, s);
    }
    EXPECT_EQ(base64_encode("tester:secret"), "dGVzdGVyOnNlY3JldA==");
    EXPECT_FALSE(base64_decode("abc"));
    EXPECT_FALSE(base64_decode("!!!!"));
}

TEST(CredentialKey, DockerHubAliasesAndUrls) {
    EXPECT_EQ(credential_key("https://index.docker.io/v1/"), "docker.io");
    EXPECT_EQ(credential_key("registry-1.docker.io"), "docker.io");
    EXPECT_EQ(credential_key("http://127.0.0.1:5000"), "127.0.0.1:5000");
    EXPECT_EQ(credential_key("Quay.io"), "quay.io");
}

TEST(RegistryErrors, TextFromErrorBody) {
    EXPECT_EQ(registry_error_text(R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})"),
              "MANIFEST_UNKNOWN: manifest unknown");
    EXPECT_EQ(registry_error_text("<html>"), "");
}

class CredentialFiles : public ::testing::Test {
protected:
    void SetUp() override {
        dir = std::filesystem::temp_directory_path() / ("ctr-cred-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir / "home/.docker");
        std::filesystem::create_directories(dir / "run/containers");
        for (const char* v : {"HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "DOCKER_CONFIG"})
            saved.emplace_back(v, std::getenv(v) ? std::optional<std::string>(std::getenv(v)) : std::nullopt);
        ::setenv("HOME", (dir / "home").c_str(), 1);
        ::setenv("XDG_RUNTIME_DIR", (dir / "run").c_str(), 1);
        ::unsetenv("XDG_CONFIG_HOME");
        ::unsetenv("DOCKER_CONFIG");
    }
    void TearDown() override {
        for (auto& [k, v] : saved)
            v ? ::setenv(k.c_str(), v->c_str(), 1) : ::unsetenv(k.c_str());
        std::filesystem::remove_all(dir);
    }
    void write(const std::filesystem::path& p, const std::string& text) { std::ofstream(p) << text; }
    std::filesystem::path dir;
    std::vector<std::pair<std::string, std::optional<std::string>>> saved;
};

TEST_F(CredentialFiles, DockerConfigThenPodmanAuthFileWins) {
    write(dir / "home/.docker/config.json",
          R"({"auths":{"https://index.docker.io/v1/":{"auth":")" + base64_encode("hub:one") +
              R"("},"reg.example:5000":{"auth":")" + base64_encode("docker:two") + R"("}}})");
    auto hub = find_credentials("registry-1.docker.io");
    ASSERT_TRUE(hub && *hub);
    EXPECT_EQ((*hub)->username, "hub");
    EXPECT_EQ((*hub)->password, "one");
    ASSERT_TRUE(store_credentials("reg.example:5000", {"podman", "th:ree"}));
    EXPECT_TRUE(std::filesystem::exists(dir / "run/containers/auth.json"));
    auto reg = find_credentials("reg.example:5000");
    ASSERT_TRUE(reg && *reg);
    EXPECT_EQ((*reg)->username, "podman");
    EXPECT_EQ((*reg)->password, "th:ree");
    auto none = find_credentials("other.example");
    ASSERT_TRUE(none);
    EXPECT_FALSE(*none);
    EXPECT_TRUE(*erase_credentials("reg.example:5000"));
    EXPECT_FALSE(*erase_credentials("reg.example:5000"));
    EXPECT_EQ((*find_credentials("reg.example:5000"))->username, "docker");
}

TEST_F(CredentialFiles, MalformedFilesAreErrors) {
    write(dir / "home/.docker/config.json", "{not json");
    auto r = find_credentials("x.example");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("is not a JSON object"), std::string::npos);
    write(dir / "home/.docker/config.json", R"({"auths":{"x.example":{"auth":"bm9jb2xvbg=="}}})"); // "nocolon"
    auto bad = find_credentials("x.example");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("user:password"), std::string::npos);
}

TEST_F(CredentialFiles, RegistrySettingsFromConfigHome) {
    std::filesystem::create_directories(dir / "home/.config/container");
    write(dir / "ca.pem", "x");
    write(dir / "home/.config/container/registries.json",
          R"({"registries":{"a.example":{"ca":")" + (dir / "ca.pem").string() +
              R"("},"b.example:5000":{"insecure":true},"c.example":{"insecure":"yes"}}})");
    auto a = registry_settings("a.example");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->ca_file, (dir / "ca.pem").string());
    EXPECT_FALSE(a->insecure);
    EXPECT_TRUE(registry_settings("b.example:5000")->insecure);
    EXPECT_FALSE(registry_settings("c.example"));
    EXPECT_FALSE(registry_settings("d.example")->insecure);
}
