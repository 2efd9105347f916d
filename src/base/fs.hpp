// SPDX-License-Identifier: MIT
// File-system helpers. Every fd is O_CLOEXEC; removals never follow symbolic links.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace ctr::fs {

// Creates `path` and missing parents with `mode`; existing directories are fine.
Result<void> make_dirs(const std::string& path, mode_t mode);
Result<std::string> read_file(const std::string& path);
// The same for files from elsewhere (archives, downloads): reads at most `max_size` + 1 bytes, and
// fails with errno EFBIG ("\"<path>\" is larger than 4 MiB") when the file holds more than `max_size`.
Result<std::string> read_file(const std::string& path, size_t max_size);
// Writes to a temporary file beside `path`, fsyncs, then renames over it: readers see old or new, never half.
Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0644);
// Makes a fresh directory "<parent>/<prefix>XXXXXX" and returns its path.
Result<std::string> make_temp_dir(const std::string& parent, const std::string& prefix);
// Removes `path` and everything below it; a missing path is success. Never follows symlinks, and
// makes directories writable as needed to empty them.
Result<void> remove_tree(const std::string& path);
// Same, for the entry `name` inside the directory `dirfd`.
Result<void> remove_tree_at(int dirfd, const std::string& name);
bool exists(const std::string& path);
// The names in the directory `dirfd` (read through a fresh open of it), sorted, without "." and "..".
Result<std::vector<std::string>> list_dir(int dirfd);
// Writes all of `data` to `fd` (retrying short writes and EINTR); the error names `name`.
Result<void> write_all(int fd, std::string_view data, const std::string& name);
// Copies `in` from its offset to its end into `out`; errors name `in_name` or `out_name`.
Result<void> copy_fd(int in, int out, const std::string& in_name, const std::string& out_name);
Result<UniqueFd> open_dir(const std::string& path);
// openat2(2) wrapper; returns -1 with errno set.
int openat2_raw(int dirfd, const char* path, int flags, mode_t mode, unsigned long long resolve);

} // namespace ctr::fs
