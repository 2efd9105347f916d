// SPDX-License-Identifier: MIT
// The build cache: $DATA/build-cache/<key>, one file per step, holding the stage's image config and
// layer descriptors after that step. The key (builder.cpp) hashes the parent's key, the instruction
// after expansion and the content of what it copies. An entry is only a hit while every blob and
// unpacked layer it names is still in the store; GC (store.cpp) deletes entries whose layers it took.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "oci/image.hpp"
#include "store/store.hpp"

namespace ctr::build {

struct CachedStep {
    nlohmann::json config;               // the whole image config after the step
    std::vector<oci::Descriptor> layers; // the image's layers after the step
};

class BuildCache {
public:
    explicit BuildCache(store::Store& s) : m_store(s) {}
    // The entry of `key`, if it is there, well-formed, and all its blobs and layers are stored.
    std::optional<CachedStep> find(const std::string& key) const;
    // Records an entry; a failure to write it is only a later miss.
    void put(const std::string& key, const CachedStep& step) const;

private:
    std::string path(const std::string& key) const { return m_store.root() + "/build-cache/" + key; }
    store::Store& m_store;
};

} // namespace ctr::build
