// SPDX-License-Identifier: MIT
// Safe unpacking of one OCI layer (a tar, optionally gzip/zstd) into an empty directory, following the
// OCI layer spec: whiteouts become overlayfs whiteouts, opaque markers become overlay xattrs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/result.hpp"
#include "oci/digest.hpp"

namespace ctr::store {

// The most one layer may expand to, uncompressed: $CONTAINER_MAX_LAYER_SIZE (a size such as "100G",
// see base/size.hpp) when set, else 64 GiB. Fails on a value that is not a size.
Result<uint64_t> max_layer_size();

// A layer of more entries than this is refused, whatever its size: each directory costs memory until
// the end of the unpack, and no real layer comes near it.
inline constexpr uint64_t k_max_layer_entries = 4 << 20;

// Unpacks the blob `blob_fd` (read from its start, left open) into `dest_dir`, which must exist and be empty. Nothing is ever created outside
// `dest_dir`: ".." names are refused, absolute names are taken relative to it, and parents are opened
// without following symbolic links, so links planted by earlier entries lead nowhere. Fails with an
// error naming the offending entry; the caller removes `dest_dir` on failure. When `diff_id` is given the
// uncompressed stream must hash to it. Device nodes the caller may not create are skipped. The blob is
// a tar, plain or compressed with gzip or zstd, decompressed in this process (never by a program).
// Fails with errno EFBIG as soon as the uncompressed stream passes `max_size` bytes or the tar has more
// than k_max_layer_entries entries.
Result<void> unpack_layer(int blob_fd, const std::string& dest_dir, const std::optional<oci::Digest>& diff_id,
                          uint64_t max_size);
// The same with the blob opened from `blob_path`.
Result<void> unpack_layer(const std::string& blob_path, const std::string& dest_dir,
                          const std::optional<oci::Digest>& diff_id, uint64_t max_size);

// The digest of the uncompressed stream of a (possibly compressed) blob, and a check that it is a tar;
// the same limits as unpack_layer.
Result<oci::Digest> tar_diff_id(const std::string& blob_path, uint64_t max_size);

} // namespace ctr::store
