// SPDX-License-Identifier: MIT
// The id-shifting tree copy, fd-relative throughout.
#include "runtime/shifted_copy.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "base/fs.hpp"
#include "base/unique_fd.hpp"

namespace ctr::runtime {

namespace {

constexpr uint32_t k_vfs_cap_revision_mask = 0xff000000;
constexpr uint32_t k_vfs_cap_revision_3 = 0x03000000;

class Copier {
public:
    explicit Copier(const IdShift& s) : m_shift(s) {}

    Result<void> copy_dir(int src, int dst, const std::string& path) {
        UniqueFd list(::dup(src));
        if (!list.valid()) return sys_error(errno, "dup");
        DIR* d = ::fdopendir(list.release());
        if (!d) return sys_error(errno, fmt::format("list \"{}\"", path));
        ScopeExit close_dir([&] { ::closedir(d); });
        while (struct dirent* e = ::readdir(d)) {
            std::string name = e->d_name;
            if (name == "." || name == "..") continue;
            TRY(copy_entry(src, dst, name, path + "/" + name));
        }
        return {};
    }

    Result<void> finish(int src, int dst, const std::string& path) {
        struct stat st {};
        if (::fstat(src, &st) != 0) return sys_error(errno, fmt::format("stat \"{}\"", path));
        return set_meta(src, dst, "", st, path);
    }

private:
    Result<uint32_t> shift(uint32_t id, uint32_t from, uint32_t to, const std::string& path) const {
        if (id < from || id - from >= m_shift.count)
            return make_error("\"{}\" is owned by id {}, outside the store's block", path, id);
        return to + (id - from);
    }

    // Owner, mode (after chown, which clears setuid bits), extended attributes and times of `name` in
    // `dst` (empty: `dst` itself), from `src_fd`'s entry.
    Result<void> set_meta(int src_fd, int dst_dir, const std::string& name, const struct stat& st,
                          const std::string& path) {
        uint32_t uid = TRY(shift(st.st_uid, m_shift.uid_from, m_shift.uid_to, path));
        uint32_t gid = TRY(shift(st.st_gid, m_shift.gid_from, m_shift.gid_to, path));
        const char* n = name.empty() ? "" : name.c_str();
        int flags = AT_SYMLINK_NOFOLLOW | (name.empty() ? AT_EMPTY_PATH : 0);
        if (::fchownat(dst_dir, n, uid, gid, flags) != 0) return sys_error(errno, fmt::format("chown \"{}\"", path));
        if (S_ISLNK(st.st_mode)) return {};
        UniqueFd target(name.empty() ? ::dup(dst_dir) : ::openat(dst_dir, n, O_PATH | O_NOFOLLOW | O_CLOEXEC));
        if (!target.valid()) return sys_error(errno, fmt::format("open \"{}\"", path));
        std::string proc = fmt::format("/proc/self/fd/{}", target.get());
        if (::chmod(proc.c_str(), st.st_mode & 07777) != 0) return sys_error(errno, fmt::format("chmod \"{}\"", path));
        TRY(copy_xattrs(src_fd, proc, path));
        struct timespec times[2] = {st.st_atim, st.st_mtim};
        if (::utimensat(dst_dir, n, times, flags) != 0) return sys_error(errno, fmt::format("times of \"{}\"", path));
        return {};
    }

    Result<void> copy_xattrs(int src_fd, const std::string& dst_proc, const std::string& path) {
        std::string src_proc = fmt::format("/proc/self/fd/{}", src_fd);
        char names[65536];
        ssize_t len = ::listxattr(src_proc.c_str(), names, sizeof names);
        if (len < 0) return errno == ENOTSUP ? Result<void>() : sys_error(errno, fmt::format("xattrs of \"{}\"", path));
        for (ssize_t i = 0; i < len; i += static_cast<ssize_t>(std::strlen(names + i)) + 1) {
            std::string key = names + i;
            bool wanted = key.rfind("user.", 0) == 0 || key.rfind("trusted.overlay.", 0) == 0 ||
                          key == "security.capability";
            if (!wanted) continue;
            char value[65536];
            ssize_t vlen = ::getxattr(src_proc.c_str(), key.c_str(), value, sizeof value);
            if (vlen < 0) return sys_error(errno, fmt::format("read xattr {} of \"{}\"", key, path));
            std::string v(value, static_cast<size_t>(vlen));
            if (key == "security.capability") {
                // Only a capability scoped to the store's root moves along, re-scoped to the new root.
                uint32_t magic = 0, rootid = 0;
                if (v.size() != 24) continue;
                std::memcpy(&magic, v.data(), 4);
                std::memcpy(&rootid, v.data() + 20, 4);
                if ((magic & k_vfs_cap_revision_mask) != k_vfs_cap_revision_3 || rootid != m_shift.uid_from) continue;
                rootid = m_shift.uid_to;
                std::memcpy(v.data() + 20, &rootid, 4);
            }
            if (::setxattr(dst_proc.c_str(), key.c_str(), v.data(), v.size(), 0) != 0)
                return sys_error(errno, fmt::format("set xattr {} of \"{}\"", key, path));
        }
        return {};
    }

    Result<void> copy_file(int src_dir, int dst_dir, const std::string& name, const struct stat& st,
                           const std::string& path) {
        auto link = m_links.find({st.st_dev, st.st_ino});
        if (st.st_nlink > 1 && link != m_links.end()) {
            if (::linkat(link->second.first, link->second.second.c_str(), dst_dir, name.c_str(), 0) != 0)
                return sys_error(errno, fmt::format("link \"{}\"", path));
            return {};
        }
        UniqueFd in(::openat(src_dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!in.valid()) return sys_error(errno, fmt::format("open \"{}\"", path));
        UniqueFd out(::openat(dst_dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!out.valid()) return sys_error(errno, fmt::format("create \"{}\"", path));
        if (::ioctl(out.get(), FICLONE, in.get()) != 0) {
            off_t left = st.st_size;
            while (left > 0) {
                ssize_t n = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, static_cast<size_t>(left), 0);
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) return sys_error(n < 0 ? errno : EIO, fmt::format("copy \"{}\"", path));
                left -= n;
            }
        }
        TRY(set_meta(in.get(), dst_dir, name, st, path));
        if (st.st_nlink > 1) {
            UniqueFd dir(::dup(dst_dir));
            m_links[{st.st_dev, st.st_ino}] = {dir.get(), name};
            m_link_dirs.push_back(std::move(dir));
        }
        return {};
    }

    Result<void> copy_entry(int src_dir, int dst_dir, const std::string& name, const std::string& path) {
        struct stat st {};
        if (::fstatat(src_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            return sys_error(errno, fmt::format("stat \"{}\"", path));
        if (S_ISREG(st.st_mode)) return copy_file(src_dir, dst_dir, name, st, path);
        if (S_ISDIR(st.st_mode)) {
            if (::mkdirat(dst_dir, name.c_str(), 0700) != 0) return sys_error(errno, fmt::format("mkdir \"{}\"", path));
            UniqueFd s(::openat(src_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            UniqueFd d(::openat(dst_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!s.valid() || !d.valid()) return sys_error(errno, fmt::format("open \"{}\"", path));
            TRY(copy_dir(s.get(), d.get(), path));
            return set_meta(s.get(), d.get(), "", st, path);
        }
        UniqueFd meta_src(::openat(src_dir, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
        if (!meta_src.valid()) return sys_error(errno, fmt::format("open \"{}\"", path));
        if (S_ISLNK(st.st_mode)) {
            std::vector<char> target(static_cast<size_t>(st.st_size) + 1);
            ssize_t n = ::readlinkat(src_dir, name.c_str(), target.data(), target.size());
            if (n < 0 || static_cast<size_t>(n) >= target.size())
                return sys_error(n < 0 ? errno : ENAMETOOLONG, fmt::format("read link \"{}\"", path));
            target[static_cast<size_t>(n)] = 0;
            if (::symlinkat(target.data(), dst_dir, name.c_str()) != 0)
                return sys_error(errno, fmt::format("link \"{}\"", path));
            return set_meta(meta_src.get(), dst_dir, name, st, path);
        }
        bool whiteout = S_ISCHR(st.st_mode) && st.st_rdev == ::makedev(0, 0);
        if (!whiteout && !S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode)) return {}; // no device leaves the store
        if (::mknodat(dst_dir, name.c_str(), st.st_mode & S_IFMT, st.st_rdev) != 0)
            return sys_error(errno, fmt::format("make \"{}\"", path));
        return set_meta(meta_src.get(), dst_dir, name, st, path);
    }

    IdShift m_shift;
    std::map<std::pair<dev_t, ino_t>, std::pair<int, std::string>> m_links;
    std::vector<UniqueFd> m_link_dirs;
};

} // namespace

Result<void> shifted_copy(const std::string& src, const std::string& dst, const IdShift& shift) {
    UniqueFd s(::open(src.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!s.valid()) return sys_error(errno, fmt::format("open \"{}\"", src));
    if (::mkdir(dst.c_str(), 0700) != 0) return sys_error(errno, fmt::format("mkdir \"{}\"", dst));
    auto copied = [&]() -> Result<void> {
        UniqueFd d(::open(dst.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!d.valid()) return sys_error(errno, fmt::format("open \"{}\"", dst));
        Copier c(shift);
        TRY(c.copy_dir(s.get(), d.get(), src));
        return c.finish(s.get(), d.get(), src);
    }();
    if (!copied) (void)fs::remove_tree(dst); // the error that matters is the copy's
    return copied;
}

} // namespace ctr::runtime
