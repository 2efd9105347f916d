// SPDX-License-Identifier: MIT
// Running a piece of work as root inside a fresh user namespace with a given id map, so files get the
// mapped ownership on the host. Unprivileged users get their map through newuidmap/newgidmap.
#pragma once

#include <sys/types.h>

#include <functional>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "runtime/idmap.hpp"

namespace ctr::runtime {

// Forks a child that unshares a user namespace, waits for the parent to write `map`, becomes uid/gid 0
// inside and runs `work`. The child's error (message and errno) comes back to the caller. `work` runs in
// a forked copy of this process: call it only while the process is single-threaded.
Result<void> run_in_userns(const IdMap& map, const std::function<Result<void>()>& work);

// Writes uid_map and gid_map of `pid` (which has just made a user namespace): directly as root, else
// through newuidmap/newgidmap, which check the ranges against /etc/subuid and /etc/subgid.
Result<void> write_id_maps(pid_t pid, const IdMap& map);

// Moves this process into a new user and mount namespace with `map` applied (through a forked helper
// that runs newuidmap/newgidmap), as uid/gid 0 there. Call only while single-threaded.
Result<void> enter_userns(const IdMap& map);

// The same ids again, one level down: each inside range of `map` mapped to itself.
IdMap nested_identity(const IdMap& map);

// A user namespace with `map` that no process lives in, as an fd: the id mapping of an idmapped mount.
// Root only (it writes the map directly).
Result<UniqueFd> make_userns_fd(const IdMap& map);

// A detached clone of the mount tree at `path` through which the ids on disk are seen mapped by
// `userns` (mount_setattr MOUNT_ATTR_IDMAP): on-disk id X appears as the host id that `userns` maps
// its id X to. Needs the host's root; fails on file systems without idmapped mount support.
Result<UniqueFd> idmapped_tree(const std::string& path, int userns);

// Runs `work` directly when `map` is the identity (root without subordinate ids), else in a namespace.
Result<void> run_as_mapped_root(const IdMap& map, const std::function<Result<void>()>& work);

} // namespace ctr::runtime
