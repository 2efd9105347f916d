// SPDX-License-Identifier: MIT
// `machine commit`: a machine's persistent upper layer becomes one new layer on top of its image
// (docs/COMMIT.md). A running machine is frozen (cgroup freezer) while its layer is read. Machine-local
// state is left out unless asked to keep it.
#pragma once

#include <string>
#include <vector>

#include "machine/machine.hpp"

namespace ctr::machine {

// What a commit leaves out by default; each can be kept by name (`--keep NAME`). docs/COMMIT.md lists
// the paths. The files the runtime writes at every boot (/etc/hosts, /etc/hostname, /etc/resolv.conf)
// and the mount points it makes are always left out.
inline constexpr const char* k_local_state[] = {"user", "machine-id", "journal",
                                                "tmp",  "run",        "ssh-host-keys"};

struct CommitOptions {
    std::string machine;
    std::string image; // the new image's name (normalised reference)
    std::string message;
    std::vector<std::string> changes;
    bool pause = true;
    std::vector<std::string> keep; // names from k_local_state, or "all"
};

struct CommitResult {
    oci::Digest manifest;
    uint64_t layer_size = 0; // compressed
    uint64_t entries = 0;
};

// Freezes the machine if it runs (or, with pause false, reads it as it runs), writes its layer, thaws it,
// then names the image under the store lock. Fails before touching anything on a bad change or keep name.
Result<CommitResult> commit(Machines& machines, const CommitOptions& o);

// A commit freezes the machine while it holds the machine's lock; one killed meanwhile leaves the
// machine frozen. Commands about to use a running machine call this: when its cgroup is frozen it takes
// the machine lock unless `lock_held` (waiting out a commit in progress, which thaws the machine itself)
// and thaws what is still frozen. One read of cgroup.freeze when nothing is frozen.
enum class LockHeld { no, yes };
Result<void> thaw_if_left_frozen(Machines& machines, const std::string& name, const RunState& st,
                                 LockHeld held);

} // namespace ctr::machine
