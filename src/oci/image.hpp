// SPDX-License-Identifier: MIT
// OCI and Docker v2 image documents (manifest, index, config) as plain data, parsed from JSON.
// Nothing here touches the file system.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "oci/digest.hpp"

namespace ctr::oci {

namespace media {
inline constexpr const char* k_oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char* k_oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr const char* k_oci_config = "application/vnd.oci.image.config.v1+json";
inline constexpr const char* k_oci_layer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr const char* k_oci_layer_gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr const char* k_oci_layer_zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr const char* k_docker_manifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char* k_docker_list = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr const char* k_docker_config = "application/vnd.docker.container.image.v1+json";
inline constexpr const char* k_docker_layer = "application/vnd.docker.image.rootfs.diff.tar.gzip";
} // namespace media

bool is_manifest_type(const std::string& media_type);
bool is_index_type(const std::string& media_type);
bool is_layer_type(const std::string& media_type);
bool is_config_type(const std::string& media_type);

struct Platform {
    std::string os = "linux";
    std::string architecture;
    std::string variant;
    std::string str() const { return os + "/" + architecture + (variant.empty() ? "" : "/" + variant); }
};
// The platform of this host in OCI spelling (amd64, arm64, …).
Platform host_platform();
// "linux/arm64/v8" -> Platform.
Result<Platform> parse_platform(const std::string& text);
bool platform_matches(const Platform& want, const Platform& have);

struct Descriptor {
    std::string media_type;
    Digest digest;
    int64_t size = 0;
    std::map<std::string, std::string> annotations;
    std::optional<Platform> platform;
};

struct Manifest {
    std::string media_type;
    Descriptor config;
    std::vector<Descriptor> layers;
};

// The most read of one JSON document from an archive or a registry. The distribution spec lets a
// registry refuse manifests over 4 MiB; the configs of real images are far below 8 MiB.
inline constexpr size_t k_max_manifest_size = 4 << 20; // manifests and indexes
inline constexpr size_t k_max_config_size = 8 << 20;

struct Index {
    std::string media_type;
    std::vector<Descriptor> manifests;
};

struct ImageConfig {
    Platform platform;
    std::string created;
    std::vector<Digest> diff_ids;
    std::string stop_signal;
    nlohmann::json raw;
};

// Which document a blob is, from its own mediaType field (or its shape when the field is absent).
enum class DocumentKind { manifest, index };
Result<DocumentKind> document_kind(const std::string& json_text);

// Each parser fails with a message naming the missing or malformed field, or the unsupported media type.
Result<Manifest> parse_manifest(const std::string& json_text);
Result<Index> parse_index(const std::string& json_text);
Result<ImageConfig> parse_config(const std::string& json_text);

nlohmann::json descriptor_to_json(const Descriptor& d);
std::string manifest_to_json(const Manifest& m);

} // namespace ctr::oci
