// SPDX-License-Identifier: MIT
// `image push`: a stored image to a repository of an OCI distribution registry. Blobs the registry has
// are skipped (HEAD), blobs of another repository of the same registry are mounted, the rest uploaded
// (several at once; a small blob in one PUT, a larger one streamed in a PATCH that is resumed from the
// registry's offset after a cut, or started over in a new session), and the manifest, byte for byte as
// stored, is put last: an interrupted push names nothing.
#pragma once

#include <string>

#include "oci/reference.hpp"
#include "registry/client.hpp"
#include "registry/pull.hpp"
#include "store/store.hpp"

namespace ctr::registry {

struct PushOptions {
    ClientOptions client;
    int max_concurrent_uploads = 3;
    PullObserver* observer = nullptr; // the same display as pulls: `downloading` means sending
};

struct PushResult {
    oci::Digest manifest;
    size_t uploaded = 0, present = 0, mounted = 0; // blobs (config included)
};

// Pushes `img` as `dest` (its tag, or its digest, which must then be the image's). Needs no store lock:
// blobs are read from the content store, which keeps them while the image is named.
Result<PushResult> push(const store::Store& store, const store::Image& img, const oci::Reference& dest,
                        const PushOptions& o);

} // namespace ctr::registry
