// SPDX-License-Identifier: MIT
// `image pull`: resolve a reference on its registry (index -> this platform's manifest), fetch the config
// and the layers (several at once, each unpacked as soon as it is complete), then name the image. Only a
// complete image is ever named; finished blobs and layers stay for the next attempt, and an interrupted
// blob download stays in partial/ to be resumed. Other commands on the store go on meanwhile, and
// concurrent pulls of the same blob download it once.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "oci/image.hpp"
#include "oci/reference.hpp"
#include "registry/client.hpp"
#include "store/store.hpp"

namespace ctr::registry {

// What a pull reports while it works; called from several threads, so implementations lock.
class PullObserver {
public:
    virtual ~PullObserver() = default;
    enum class State { waiting, downloading, unpacking, done, present };
    // The layers about to be fetched (after deduplication).
    virtual void layers(const std::vector<oci::Descriptor>& layers) = 0;
    virtual void bytes(size_t layer, uint64_t done) = 0;
    virtual void state(size_t layer, State s) = 0;
};

struct PullOptions {
    std::optional<oci::Platform> platform; // explicit --platform; else the host's
    ClientOptions client;
    int max_concurrent_downloads = 3;
    PullObserver* observer = nullptr;
};

struct PullResult {
    std::string name; // what the image is now called in the store
    oci::Digest manifest;
    oci::Platform platform;
};

// Takes the store lock itself, only to name the image at the end: the caller must not hold it.
Result<PullResult> pull(store::Store& store, const oci::Reference& ref, const PullOptions& o);

} // namespace ctr::registry
