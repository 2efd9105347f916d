// SPDX-License-Identifier: MIT
// Moving images in and out of the store as files: `image load` (OCI image layout archives and
// `docker save` archives), `image import` (a root filesystem tarball) and `image save` (OCI archive).
#pragma once

#include <string>
#include <vector>

#include "base/result.hpp"
#include "store/store.hpp"

namespace ctr::store {

// Loads every image in the archive; returns the names given to them. The caller holds the store lock.
// Fails, leaving the image table as it was, on any missing, mismatched or malformed part.
Result<std::vector<std::string>> load_archive(Store& store, const std::string& file);

// Makes a one-layer image named `name` from a root filesystem tar (plain, gzip or zstd).
Result<oci::Digest> import_rootfs(Store& store, const std::string& file, const std::string& name);

// Writes the images to `file` as one OCI image layout archive (atomically: a failed save leaves no file).
Result<void> save_archive(const Store& store, const std::vector<ImageRecord>& images,
                          const std::string& file);

} // namespace ctr::store
