// SPDX-License-Identifier: MIT
// flock-based lock files.
#include "base/lock.hpp"

#include <fcntl.h>
#include <sys/file.h>

namespace ctr {

Result<FileLock> FileLock::acquire(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd.valid()) return sys_error(errno, fmt::format("open lock \"{}\"", path));
    while (::flock(fd.get(), LOCK_EX) != 0) {
        if (errno != EINTR) return sys_error(errno, fmt::format("lock \"{}\"", path));
    }
    return FileLock(std::move(fd));
}

} // namespace ctr
