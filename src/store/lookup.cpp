// SPDX-License-Identifier: MIT
// Path lookup in an image's merged tree, read straight from its unpacked layers: what a machine would
// see at that path once the overlay is mounted, without mounting it.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <cerrno>

#include "base/fs.hpp"
#include "store/store.hpp"

namespace ctr::store {

namespace {

constexpr int k_max_symlinks = 40; // as the kernel allows for one path

std::vector<std::string> split_path(const std::string& p) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i <= p.size()) {
        size_t j = p.find('/', i);
        if (j == std::string::npos) j = p.size();
        if (j > i) out.push_back(p.substr(i, j - i));
        i = j + 1;
    }
    return out;
}

bool is_whiteout(const struct stat& st) {
    return S_ISCHR(st.st_mode) && st.st_rdev == ::makedev(0, 0);
}

// `dirfd` is an O_PATH fd, which fgetxattr does not take; its /proc/self/fd link does.
bool is_opaque(int dirfd) {
    std::string self = fmt::format("/proc/self/fd/{}", dirfd);
    char v[2] = {};
    for (const char* name : {"user.overlay.opaque", "trusted.overlay.opaque"})
        if (::getxattr(self.c_str(), name, v, sizeof v) == 1 && v[0] == 'y') return true;
    return false; // unreadable (a directory the user may not read) counts as not opaque
}

// One directory of the merged view: its path, and the lowest layer whose entries still show in it (an
// opaque directory or a non-directory in an upper layer hides everything below).
struct Dir {
    std::string path; // relative to a layer root, "." for the root
    size_t limit;
};

} // namespace

Result<std::optional<struct stat>> Store::lookup(const Image& img, const std::string& path) const {
    // Layer fds, top-most first, as overlayfs stacks them.
    std::vector<UniqueFd> layers;
    for (auto it = img.config.diff_ids.rbegin(); it != img.config.diff_ids.rend(); ++it) {
        UniqueFd fd(::open(layer_path(*it).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!fd.valid()) return sys_error(errno, fmt::format("open layer \"{}\"", layer_path(*it)));
        layers.push_back(std::move(fd));
    }
    if (layers.empty()) return std::optional<struct stat>{};
    std::vector<Dir> dirs{{".", layers.size() - 1}};
    std::vector<std::string> todo = split_path(path);
    int links = 0;
    while (!todo.empty()) {
        std::string name = todo.front();
        todo.erase(todo.begin());
        if (name == ".") continue;
        if (name == "..") {
            if (dirs.size() > 1) dirs.pop_back();
            continue;
        }
        const Dir& cur = dirs.back();
        std::optional<struct stat> found;
        std::string target;
        std::optional<size_t> child_limit;
        for (size_t i = 0; i <= cur.limit; ++i) {
            // No symlinks on the way: `cur` is a directory in the merged view, and a layer that has a
            // non-directory there hides what lies below it.
            UniqueFd parent(fs::openat2_raw(layers[i].get(), cur.path.c_str(),
                                            O_PATH | O_DIRECTORY | O_CLOEXEC, 0,
                                            RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH));
            if (!parent.valid()) {
                if (errno == ENOENT) continue;
                if (errno == ENOTDIR || errno == ELOOP) break;
                return sys_error(errno,
                                 fmt::format("look up \"{}\" in a layer of {}", cur.path, img.record.name));
            }
            struct stat st {};
            if (::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
                if (errno != ENOENT)
                    return sys_error(errno,
                                     fmt::format("look up \"{}/{}\" in {}", cur.path, name, img.record.name));
                if (is_opaque(parent.get())) { // nothing below shows through this directory
                    if (found) child_limit = i;
                    break;
                }
                continue;
            }
            if (!found) {
                if (is_whiteout(st)) return std::optional<struct stat>{};
                found = st;
                if (S_ISLNK(st.st_mode)) {
                    char buf[4096];
                    ssize_t n = ::readlinkat(parent.get(), name.c_str(), buf, sizeof buf);
                    if (n < 0 || n == sizeof buf)
                        return sys_error(n < 0 ? errno : ENAMETOOLONG,
                                         fmt::format("read link \"{}/{}\"", cur.path, name));
                    target.assign(buf, static_cast<size_t>(n));
                    break;
                }
                if (!S_ISDIR(st.st_mode)) break;
                UniqueFd self(
                    ::openat(parent.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
                if (self.valid() && is_opaque(self.get())) {
                    child_limit = i;
                    break;
                }
                continue;
            }
            // Below the top-most entry of a directory: lower directories merge into it, anything else
            // (and an opaque directory) ends the merge.
            if (!S_ISDIR(st.st_mode)) {
                child_limit = i - 1;
                break;
            }
            UniqueFd self(
                ::openat(parent.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (self.valid() && is_opaque(self.get())) {
                child_limit = i;
                break;
            }
        }
        if (!found) return std::optional<struct stat>{};
        if (S_ISLNK(found->st_mode)) {
            if (++links > k_max_symlinks) return std::optional<struct stat>{};
            if (!target.empty() && target[0] == '/') dirs.resize(1);
            auto parts = split_path(target);
            todo.insert(todo.begin(), parts.begin(), parts.end());
            continue;
        }
        if (S_ISDIR(found->st_mode)) {
            dirs.push_back({cur.path == "." ? name : cur.path + "/" + name, child_limit.value_or(cur.limit)});
            if (todo.empty()) return found;
            continue;
        }
        if (!todo.empty()) return std::optional<struct stat>{}; // a file where a directory should be
        return found;
    }
    // The path named the root itself (or resolved back to it).
    struct stat st {};
    if (::fstatat(layers[0].get(), "", &st, AT_EMPTY_PATH) != 0) return sys_error(errno, "stat a layer root");
    return std::optional<struct stat>{st};
}

} // namespace ctr::store
