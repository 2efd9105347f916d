// SPDX-License-Identifier: MIT
// Making a new image in the store from a stored one plus one layer written by layer_writer: the config
// (diff_ids, history, Dockerfile-style changes) and the manifest are written here, and the name last.
// `machine commit` uses it for a machine's upper layer; `build` is meant to use it for each step.
#pragma once

#include <string>
#include <vector>

#include "base/result.hpp"
#include "oci/digest.hpp"
#include "store/layer_writer.hpp"
#include "store/store.hpp"

namespace ctr::store {

struct NewLayer {
    std::string blob_path; // the gzip blob write_layer made (moved into the store)
    WrittenLayer layer;
    std::vector<std::string> changes; // oci::apply_change() syntax, applied in order
    std::string created_by;           // the history entry's "created_by"
    std::string comment;              // its "comment" (commit --message); may be empty
};

// Moves a blob write_layer made into the content store (its digest was computed as it was written) and
// unpacks it as a layer; the descriptor for a manifest. The caller holds the store lock. `build` adds
// each step's layer so; add_layer_image() below too.
// With `tree` (write_layer_as with trim_tree made it the layer's unpack), the tree is taken as the
// unpacked layer instead (Store::adopt_layer).
Result<oci::Descriptor> store_layer(Store& store, const std::string& blob_path, const WrittenLayer& layer,
                                    const std::string& tree = {});

// Checks the changes first; then stores the blob (verified against its digest), unpacks it as a layer,
// writes the config and an OCI manifest of `base`'s layers plus the new one, and names it `name`. The
// caller holds the store lock. On failure no name changes; stored blobs are left for GC.
Result<oci::Digest> add_layer_image(Store& store, const Image& base, const NewLayer& layer,
                                    const std::string& name);

// The last step of every image the store makes (import, commit, later build): stores `config_text` and
// an OCI manifest of `layers` as blobs, then names the image `name`. Returns the manifest's digest.
Result<oci::Digest> name_image(Store& store, const std::string& name, const std::string& config_text,
                               std::vector<oci::Descriptor> layers);

} // namespace ctr::store
