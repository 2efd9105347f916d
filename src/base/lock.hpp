// SPDX-License-Identifier: MIT
// FileLock: an exclusive flock(2) on a lock file, released when the object dies (or the process does).
#pragma once

#include <string>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace ctr {

class FileLock {
public:
    // Blocks until the lock on `path` (created if missing) is held.
    static Result<FileLock> acquire(const std::string& path);

private:
    explicit FileLock(UniqueFd fd) : m_fd(std::move(fd)) {}
    UniqueFd m_fd;
};

} // namespace ctr
