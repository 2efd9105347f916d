// SPDX-License-Identifier: MIT
// A copy of a file tree with its owners moved from one block of ids to another: how a root-run machine
// gets its image's layers when idmapped mounts are not available (docs/RUNTIME.md, "Root-run machines").
#pragma once

#include <cstdint>
#include <string>

#include "base/result.hpp"

namespace ctr::runtime {

// Ids from..from+count-1 become to..to+count-1; any other id is refused (the tree is not what it seems).
struct IdShift {
    uint32_t uid_from = 0, uid_to = 0, gid_from = 0, gid_to = 0, count = 0;
};

// Copies the tree `src` to `dst` (which must not exist) as the host's root, never following a link:
// directories, regular files (reflinked where the file system can), links, FIFOs, sockets and overlay
// whiteouts (0:0 character devices; no other device is copied), with modes, times, hard links within the
// tree, `user.*` and `trusted.overlay.*` extended attributes, and file capabilities re-scoped to the new
// root id. Owners are shifted by `shift`. On failure `dst` is removed.
Result<void> shifted_copy(const std::string& src, const std::string& dst, const IdShift& shift);

} // namespace ctr::runtime
