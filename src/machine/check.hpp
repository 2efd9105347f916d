// SPDX-License-Identifier: MIT
// `container system check [--repair]`: is the data directory consistent? Every named image's manifest,
// config and layer blobs are present and hash to their names, its layers are unpacked, and every
// machine's image is complete. Separately it lists what killed commands left behind (work files,
// interrupted downloads, half-removed machines, stale run state), which the next command that takes
// the lock clears anyway; --repair clears it now, unpacks missing layers again from their blobs, and
// moves corrupt blobs out of the way so the next pull fetches them again.
#pragma once

#include <string>
#include <vector>

#include "base/result.hpp"
#include "machine/machine.hpp"

namespace ctr::machine {

struct Finding {
    enum class Kind { problem, leftover };
    Kind kind;
    std::string what;
    bool repaired = false;
};

struct CheckReport {
    std::vector<Finding> findings;
    size_t images = 0, machines = 0, blobs_verified = 0;
    bool consistent() const; // no unrepaired problem
};

Result<CheckReport> check(Machines& machines, bool repair);

} // namespace ctr::machine
