// SPDX-License-Identifier: MIT
#include "build/cache.hpp"

#include "base/fs.hpp"

namespace ctr::build {

using nlohmann::json;

std::optional<CachedStep> BuildCache::find(const std::string& key) const {
    auto text = fs::read_file(path(key), 16 << 20);
    if (!text) return std::nullopt;
    json j = json::parse(*text, nullptr, false);
    if (!j.is_object() || !j["config"].is_object() || !j["descriptors"].is_array()) return std::nullopt;
    CachedStep out;
    for (const auto& d : j["descriptors"]) {
        if (!d.is_object() || !d["digest"].is_string() || !d["size"].is_number_integer() || !d["mediaType"].is_string())
            return std::nullopt;
        auto digest = oci::parse_digest(d["digest"].get<std::string>());
        if (!digest || !m_store.has_blob(*digest)) return std::nullopt;
        oci::Descriptor desc;
        desc.media_type = d["mediaType"].get<std::string>();
        desc.digest = *digest;
        desc.size = d["size"].get<int64_t>();
        out.layers.push_back(desc);
    }
    const json& diff_ids = j["config"]["rootfs"]["diff_ids"];
    if (!diff_ids.is_array() || diff_ids.size() != out.layers.size()) return std::nullopt;
    for (const auto& d : diff_ids) {
        if (!d.is_string()) return std::nullopt;
        auto dd = oci::parse_digest(d.get<std::string>());
        if (!dd || !m_store.has_layer(*dd)) return std::nullopt;
    }
    out.config = j["config"];
    return out;
}

void BuildCache::put(const std::string& key, const CachedStep& step) const {
    json descs = json::array(), blobs = json::array();
    for (const auto& l : step.layers) {
        descs.push_back(oci::descriptor_to_json(l));
        blobs.push_back(l.digest.str()); // what GC reads (store.cpp)
    }
    json j = {{"config", step.config}, {"descriptors", descs}, {"layers", blobs}};
    if (!fs::make_dirs(m_store.root() + "/build-cache", 0700)) return;
    (void)fs::write_file_atomic(path(key), j.dump(), 0600); // a lost entry is a later miss
}

} // namespace ctr::build
