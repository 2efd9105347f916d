// SPDX-License-Identifier: MIT
// Manifest, index and config parsing.
#include <gtest/gtest.h>

#include "oci/image.hpp"

namespace ctr::oci {

namespace {
const std::string k_d1 = "sha256:" + std::string(64, '1');
const std::string k_d2 = "sha256:" + std::string(64, '2');

std::string manifest(const std::string& layer_type) {
    return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
      "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
           k_d1 + R"(","size":10},
      "layers":[{"mediaType":")" +
           layer_type + R"(","digest":")" + k_d2 + R"(","size":20}]})";
}
} // namespace

TEST(Image, ParsesManifest) {
    auto m = parse_manifest(manifest(media::k_oci_layer_zstd));
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_EQ(m->config.digest.str(), k_d1);
    ASSERT_EQ(m->layers.size(), 1u);
    EXPECT_EQ(m->layers[0].size, 20);
    EXPECT_EQ(*document_kind(manifest(media::k_docker_layer)), DocumentKind::manifest);
}

TEST(Image, RejectsWhatIsNotAManifest) {
    auto bad_type = parse_manifest(manifest("application/x-foo"));
    ASSERT_FALSE(bad_type);
    EXPECT_EQ(bad_type.error().message, "unsupported layer media type \"application/x-foo\"");
    EXPECT_FALSE(parse_manifest("[1,2]"));
    EXPECT_FALSE(parse_manifest("{nope"));
    EXPECT_FALSE(parse_manifest(R"({"schemaVersion":2,"layers":[]})"));
    EXPECT_FALSE(parse_manifest(R"({"schemaVersion":"2","config":{},"layers":[]})"));
    auto kind = document_kind(R"({"architecture":"amd64","rootfs":{"diff_ids":[]}})");
    ASSERT_FALSE(kind);
    EXPECT_EQ(kind.error().message, "JSON document is neither an image manifest nor an index");
    EXPECT_FALSE(document_kind(R"({"mediaType":"text/plain"})"));
    // A size that is a string or negative is malformed, not a crash.
    EXPECT_FALSE(parse_manifest(
        R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
        k_d1 + R"(","size":"10"},"layers":[]})"));
}

TEST(Image, ParsesIndexAndConfig) {
    auto idx = parse_index(
        R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",
      "digest":")" +
        k_d1 + R"(","size":5,"platform":{"os":"linux","architecture":"arm64","variant":"v8"},
      "annotations":{"org.opencontainers.image.ref.name":"1.0"}}]})");
    ASSERT_TRUE(idx) << idx.error().message;
    ASSERT_TRUE(idx->manifests[0].platform);
    EXPECT_EQ(idx->manifests[0].platform->str(), "linux/arm64/v8");
    EXPECT_EQ(idx->manifests[0].annotations.at("org.opencontainers.image.ref.name"), "1.0");

    auto cfg = parse_config(R"({"os":"linux","architecture":"amd64","config":{"StopSignal":"SIGRTMIN+3"},
      "rootfs":{"type":"layers","diff_ids":[")" +
                            k_d2 + R"("]}})");
    ASSERT_TRUE(cfg) << cfg.error().message;
    EXPECT_EQ(cfg->stop_signal, "SIGRTMIN+3");
    ASSERT_EQ(cfg->diff_ids.size(), 1u);
    EXPECT_FALSE(parse_config(R"({"os":"linux"})"));
    EXPECT_FALSE(parse_config(R"({"rootfs":{"diff_ids":["md5:1"]}})"));
}

TEST(Image, Platforms) {
    auto p = parse_platform("linux/arm/v7");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->variant, "v7");
    EXPECT_FALSE(parse_platform("linux"));
    EXPECT_FALSE(parse_platform("/amd64"));
    EXPECT_TRUE(platform_matches(*parse_platform("linux/arm64"), *parse_platform("linux/arm64/v8")));
    EXPECT_FALSE(platform_matches(*parse_platform("linux/arm/v6"), *parse_platform("linux/arm/v7")));
    EXPECT_FALSE(platform_matches(*parse_platform("linux/amd64"), *parse_platform("windows/amd64")));
}

} // namespace ctr::oci
