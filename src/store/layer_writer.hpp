// SPDX-License-Identifier: MIT
// Writing one OCI layer (tar + gzip) from a directory of changes: the inverse of unpack.cpp. An overlay
// upper directory (a machine's, or a build step's) becomes a layer whose whiteouts (`.wh.NAME`) and opaque
// markers (`.wh..wh..opq`) say what overlayfs recorded as char 0/0 devices and "overlay.opaque" xattrs.
// The tree is hostile: it is walked with openat(O_NOFOLLOW) from directory fds, no link is followed, and
// a file is copied for exactly the size its header announced, whatever it does meanwhile.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "oci/digest.hpp"
#include "runtime/idmap.hpp"

namespace ctr::store {

struct LayerWriteOptions {
    // Paths relative to the tree's root ("etc/machine-id", "var/log/journal/*", "etc/ssh/ssh_host_*"),
    // fnmatch(3) patterns with FNM_PATHNAME: a match is left out with everything below it, whiteouts
    // included, so the layer below shows through.
    std::vector<std::string> exclude;
    // Regular files whose content is rewritten on the way into the layer (path -> filter). A file of more
    // than 4 MiB is an error. The filter gets and returns the whole content.
    std::map<std::string, std::function<std::string(const std::string&)>> rewrite;
    // gzip's level, 1 (fastest) to 9; 0 is gzip's default (6). Build steps use 1: their layers are
    // written while the user waits, and gzip -6 was most of a cold build's own time.
    int compression_level = 0;
    // The most the uncompressed tar may grow to (EFBIG past it).
    uint64_t max_size = 64ull << 30;
    // write_layer_as only: once the layer is written, trim the tree to what unpacking it gives
    // (trim_to_layer), so that the caller can store the tree as the unpacked layer (Store::adopt_layer)
    // instead of unpacking the blob again. The tree is changed: only for a tree nothing else uses.
    bool trim_tree = false;
};

struct WrittenLayer {
    oci::Digest digest;  // of the gzip blob
    uint64_t size = 0;   // of the gzip blob
    oci::Digest diff_id; // of the uncompressed tar
    uint64_t entries = 0;
};

// Writes the tree below `root_fd` (a directory, left open) as a gzip-compressed tar to `out_fd` (from its
// current offset). Ownership is written as stat() shows it to the caller: run it in a user namespace
// whose map turns the host ids on disk back into the image's (write_layer_as). Entries come in name order
// and the gzip header carries no time, so the same tree gives the same digest.
Result<WrittenLayer> write_layer(int root_fd, int out_fd, const LayerWriteOptions& opts);

// Removes from the tree below `root_fd` what write_layer() with `opts` leaves out of the tar: the excluded
// paths, sockets, and overlay's own extended attributes but the opaque mark ("user.overlay.opaque" = "y",
// which unpacking sets again); the root gets mode 0755, as the layer's root entry. What is left is the
// tree unpacking the layer gives, but for sub-second times the tar may not keep. Walked as write_layer
// walks it (no link followed). Fails when `opts` rewrites files: such a tree is not its layer's.
Result<void> trim_to_layer(int root_fd, const LayerWriteOptions& opts);

// write_layer() on the directory `root` into the new file `blob_path` (created here, mode 0600), run as
// root of a user namespace with `map` so files appear with the ids they have inside the machine. Call
// while single-threaded (it forks). On failure `blob_path` is removed.
Result<WrittenLayer> write_layer_as(const runtime::IdMap& map, const std::string& root,
                                    const std::string& blob_path, const LayerWriteOptions& opts);

} // namespace ctr::store
