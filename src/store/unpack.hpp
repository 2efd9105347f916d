// SPDX-License-Identifier: MIT
// Safe unpacking of one OCI layer (a tar, optionally gzip/zstd) into an empty directory, following the
// OCI layer spec: whiteouts become overlayfs whiteouts, opaque markers become overlay xattrs.
#pragma once

#include <optional>
#include <string>

#include "base/result.hpp"
#include "oci/digest.hpp"

namespace ctr::store {

// Unpacks `blob_path` into `dest_dir`, which must exist and be empty. Nothing is ever created outside
// `dest_dir`: ".." names are refused, absolute names are taken relative to it, and parents are opened
// without following symbolic links, so links planted by earlier entries lead nowhere. Fails with an
// error naming the offending entry; the caller removes `dest_dir` on failure. When `diff_id` is given the
// uncompressed stream must hash to it. Device nodes the caller may not create are skipped.
Result<void> unpack_layer(const std::string& blob_path, const std::string& dest_dir,
                          const std::optional<oci::Digest>& diff_id);

// The digest of the uncompressed stream of a (possibly compressed) blob, and a check that it is a tar.
Result<oci::Digest> tar_diff_id(const std::string& blob_path);

} // namespace ctr::store
