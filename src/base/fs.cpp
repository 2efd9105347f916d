// SPDX-License-Identifier: MIT
// File-system helpers.
#include "base/fs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "base/fault.hpp"
#include "base/size.hpp"

namespace ctr::fs {

Result<void> make_dirs(const std::string& path, mode_t mode) {
    if (path.empty()) return make_error("make directory: empty path");
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return {}; // the usual case: one call
    for (size_t pos = 1;; ++pos) {
        pos = path.find('/', pos);
        std::string part = path.substr(0, pos);
        if (::mkdir(part.c_str(), mode) != 0 && errno != EEXIST)
            return sys_error(errno, fmt::format("mkdir \"{}\"", part));
        if (pos == std::string::npos) break;
    }
    if (::stat(path.c_str(), &st) != 0) return sys_error(errno, fmt::format("stat \"{}\"", path));
    if (!S_ISDIR(st.st_mode)) return sys_error(ENOTDIR, fmt::format("mkdir \"{}\"", path));
    return {};
}

Result<std::string> read_file(const std::string& path) {
    return read_file(path, SIZE_MAX - 1);
}

Result<std::string> read_file(const std::string& path, size_t max_size) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return sys_error(errno, fmt::format("open \"{}\"", path));
    std::string out;
    char buf[65536];
    for (;;) {
        size_t want = std::min(sizeof buf, max_size + 1 - out.size());
        ssize_t n = ::read(fd.get(), buf, want);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return sys_error(errno, fmt::format("read \"{}\"", path));
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > max_size)
            return Error{fmt::format("\"{}\" is larger than {}", path, format_limit(max_size)), EFBIG};
    }
    return out;
}

Result<std::vector<std::string>> list_dir(int dirfd) {
    int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return sys_error(errno, "open a directory");
    DIR* d = ::fdopendir(fd);
    if (!d) {
        ::close(fd);
        return sys_error(errno, "fdopendir");
    }
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
}

Result<void> write_all(int fd, std::string_view data, const std::string& name) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return sys_error(errno, fmt::format("write \"{}\"", name));
        data.remove_prefix(static_cast<size_t>(n));
    }
    return {};
}

Result<void> copy_fd(int in, int out, const std::string& in_name, const std::string& out_name) {
    char buf[1 << 16];
    for (;;) {
        ssize_t n = ::read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return sys_error(errno, fmt::format("read \"{}\"", in_name));
        if (n == 0) return {};
        TRY(write_all(out, std::string_view(buf, static_cast<size_t>(n)), out_name));
    }
}

Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
    std::string tmp = path + ".tmp-XXXXXX";
    UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!fd.valid()) return sys_error(errno, fmt::format("create \"{}\"", tmp));
    ScopeExit cleanup([&] { (void)::unlink(tmp.c_str()); }); // best effort: the temp name is ours alone
    TRY(write_all(fd.get(), data, tmp));
    if (::fchmod(fd.get(), mode) != 0) return sys_error(errno, fmt::format("chmod \"{}\"", tmp));
    if (::fsync(fd.get()) != 0) return sys_error(errno, fmt::format("fsync \"{}\"", tmp));
    fault_point("write_file_atomic: written");
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        return sys_error(errno, fmt::format("rename \"{}\" to \"{}\"", tmp, path));
    cleanup.release();
    fault_point("write_file_atomic: renamed");
    return {};
}

Result<std::string> make_temp_dir(const std::string& parent, const std::string& prefix) {
    std::string tmpl = parent + "/" + prefix + "XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) return sys_error(errno, fmt::format("mkdtemp \"{}\"", tmpl));
    return tmpl;
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

Result<UniqueFd> open_dir(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return sys_error(errno, fmt::format("open directory \"{}\"", path));
    return fd;
}

int openat2_raw(int dirfd, const char* path, int flags, mode_t mode, unsigned long long resolve) {
    struct open_how how {};
    how.flags = static_cast<unsigned long long>(flags);
    how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
    how.resolve = resolve;
    return static_cast<int>(::syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}

namespace {

Result<void> empty_dir(int dirfd, const std::string& shown) {
    UniqueFd dup(::dup(dirfd));
    if (!dup.valid()) return sys_error(errno, "dup");
    DIR* d = ::fdopendir(dup.get());
    if (d == nullptr) return sys_error(errno, fmt::format("opendir \"{}\"", shown));
    dup.release();
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    for (const auto& n : names)
        TRY(remove_tree_at(dirfd, n));
    return {};
}

} // namespace

Result<void> remove_tree_at(int dirfd, const std::string& name) {
    if (::unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return {};
    if (errno != EISDIR && errno != EPERM) return sys_error(errno, fmt::format("unlink \"{}\"", name));
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return sys_error(errno, fmt::format("stat \"{}\"", name));
    if (!S_ISDIR(st.st_mode)) return sys_error(EPERM, fmt::format("unlink \"{}\"", name));
    // A read-only directory (image trees have 0555 ones) cannot be emptied until made writable.
    if ((st.st_mode & 0700) != 0700)
        (void)::fchmodat(dirfd, name.c_str(), st.st_mode | 0700, 0); // unlink reports
    UniqueFd sub(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub.valid()) return sys_error(errno, fmt::format("open \"{}\"", name));
    TRY(empty_dir(sub.get(), name));
    fault_point("remove_tree: emptied a directory");
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
        return sys_error(errno, fmt::format("rmdir \"{}\"", name));
    return {};
}

Result<void> remove_tree(const std::string& path) {
    auto slash = path.find_last_of('/');
    std::string parent = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    UniqueFd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir.valid()) {
        if (errno == ENOENT) return {};
        return sys_error(errno, fmt::format("open \"{}\"", parent));
    }
    auto r = remove_tree_at(dir.get(), name);
    if (!r) return wrap(std::move(r).error(), fmt::format("remove \"{}\"", path));
    return {};
}

} // namespace ctr::fs
