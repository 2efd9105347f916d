// SPDX-License-Identifier: MIT
// Ignore rules, source selection, hashing and copying for COPY/ADD.
#include "build/context.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>

#include "base/fs.hpp"
#include "base/unique_fd.hpp"
#include "oci/digest.hpp"
#include "store/libarchive.hpp"

namespace ctr::build {

namespace {

constexpr uint64_t k_in_root = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
constexpr size_t k_max_depth = 1024;

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

// "./a//b/" -> "a/b"; "." and "/" -> "".
std::string clean(const std::string& p) {
    std::vector<std::string> parts;
    size_t i = 0;
    while (i <= p.size()) {
        size_t j = p.find('/', i);
        if (j == std::string::npos) j = p.size();
        std::string c = p.substr(i, j - i);
        if (c == "..") {
            if (!parts.empty()) parts.pop_back();
        } else if (!c.empty() && c != ".") {
            parts.push_back(c);
        }
        i = j + 1;
    }
    std::string out;
    for (const auto& c : parts)
        out += (out.empty() ? "" : "/") + c;
    return out;
}

bool has_glob(const std::string& s) {
    return s.find_first_of("*?[") != std::string::npos;
}

// Walks the tree below `dirfd` (prefix `rel`), never through a link, calling `fn` for each entry.
Result<void> walk(int dirfd, const std::string& rel, size_t depth, const IgnoreRules& ignore,
                  const std::function<Result<void>(int, const std::string&, const std::string&,
                                                   const struct stat&)>& fn) {
    if (depth > k_max_depth) return make_error("\"{}\" is nested too deeply", rel);
    for (const auto& name : TRY(fs::list_dir(dirfd))) {
        std::string path = rel.empty() ? name : rel + "/" + name;
        struct stat st {};
        if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            return sys_error(errno, fmt::format("stat \"{}\"", path));
        bool skip = ignore.excluded(path);
        if (skip && !(S_ISDIR(st.st_mode) && ignore.has_exceptions())) continue;
        if (!skip) TRY(fn(dirfd, name, path, st));
        if (S_ISDIR(st.st_mode)) {
            UniqueFd sub(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!sub.valid()) return sys_error(errno, fmt::format("open \"{}\"", path));
            TRY(walk(sub.get(), path, depth + 1, ignore, fn));
        }
    }
    return {};
}

Result<UniqueFd> open_in(int root, const std::string& rel, int flags) {
    std::string p = rel.empty() ? "." : rel;
    int fd = fs::openat2_raw(root, p.c_str(), flags | O_CLOEXEC, 0, k_in_root);
    if (fd < 0) return sys_error(errno, fmt::format("open \"{}\"", rel));
    return UniqueFd(fd);
}

} // namespace

bool glob_match(const std::string& pat, const std::string& s) {
    // Dynamic programming over (pattern position, text position): no backtracking blow-up on hostile
    // patterns. ok[j] says whether the pattern so far matches s[0..j).
    const size_t n = s.size();
    std::vector<char> ok(n + 1, 0), next(n + 1, 0);
    ok[0] = 1;
    size_t i = 0;
    while (i < pat.size()) {
        std::fill(next.begin(), next.end(), 0);
        char c = pat[i];
        if (c == '*') {
            bool dbl = i + 1 < pat.size() && pat[i + 1] == '*';
            size_t len = dbl ? 2 : 1;
            // "**/" also matches nothing at all (a/**/b matches a/b).
            if (dbl && i + 2 < pat.size() && pat[i + 2] == '/') {
                for (size_t j = 0; j <= n; ++j)
                    next[j] = ok[j];
                // Or anything ending in '/' after a position the pattern reached: one pass, a running "seen".
                bool seen = false;
                for (size_t k = 0; k <= n; ++k) {
                    if (k > 0 && seen && s[k - 1] == '/') next[k] = 1;
                    if (ok[k]) seen = true;
                }
                len = 3;
            } else {
                for (size_t j = 0; j <= n; ++j) {
                    if (!ok[j] && !(j > 0 && next[j - 1] && (dbl || s[j - 1] != '/'))) continue;
                    next[j] = 1;
                }
            }
            i += len;
        } else if (c == '[') {
            size_t end = pat.find(']', i + 2);
            if (end == std::string::npos) return false; // malformed, as Go's filepath.Match
            std::string cls = pat.substr(i, end - i + 1);
            for (size_t j = 0; j < n; ++j)
                if (ok[j] && s[j] != '/' && ::fnmatch(cls.c_str(), std::string(1, s[j]).c_str(), 0) == 0)
                    next[j + 1] = 1;
            i = end + 1;
        } else {
            char lit = c;
            if (c == '\\' && i + 1 < pat.size()) lit = pat[++i];
            for (size_t j = 0; j < n; ++j)
                if (ok[j] && ((c == '?' && s[j] != '/') || (c != '?' && s[j] == lit))) next[j + 1] = 1;
            ++i;
        }
        ok.swap(next);
    }
    return ok[n];
}

IgnoreRules IgnoreRules::parse(const std::string& text) {
    IgnoreRules r;
    size_t b = 0;
    while (b < text.size()) {
        size_t e = text.find('\n', b);
        if (e == std::string::npos) e = text.size();
        std::string line = trim(text.substr(b, e - b));
        b = e + 1;
        if (line.empty() || line[0] == '#') continue;
        bool exc = line[0] == '!';
        if (exc) line = trim(line.substr(1));
        std::string p = clean(line);
        if (p.empty()) continue;
        r.m_rules.push_back({p, exc});
        r.m_exceptions = r.m_exceptions || exc;
    }
    return r;
}

Result<IgnoreRules> IgnoreRules::for_context(int context_fd) {
    for (const char* name : {".containerignore", ".dockerignore"}) {
        UniqueFd fd(::openat(context_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd.valid()) {
            if (errno == ENOENT) continue;
            return sys_error(errno, fmt::format("open {}", name));
        }
        std::string text;
        char buf[65536];
        ssize_t n;
        while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) {
            text.append(buf, static_cast<size_t>(n));
            if (text.size() > (4 << 20)) return make_error("{} is larger than 4 MiB", name);
        }
        return parse(text);
    }
    return IgnoreRules{};
}

bool IgnoreRules::excluded(const std::string& path) const {
    bool out = false;
    for (const auto& r : m_rules) {
        bool m = glob_match(r.pattern, path);
        // A pattern matching a parent directory covers everything below it.
        for (size_t p = path.find('/'); !m && p != std::string::npos; p = path.find('/', p + 1))
            m = glob_match(r.pattern, path.substr(0, p));
        if (m) out = !r.exception;
    }
    return out;
}

Result<std::vector<std::string>> select_sources(int root, const std::vector<std::string>& patterns,
                                                const IgnoreRules& ignore) {
    std::vector<std::string> out;
    for (const auto& raw : patterns) {
        std::string p = clean(raw);
        size_t before = out.size();
        if (!has_glob(p)) {
            if (p.empty() || !ignore.excluded(p)) {
                auto fd = open_in(root, p, O_PATH | O_NOFOLLOW);
                if (fd) out.push_back(p);
            }
        } else {
            TRY(walk(root, "", 0, ignore, [&](int, const std::string&, const std::string& path, const struct stat&) {
                if (glob_match(p, path)) out.push_back(path);
                return Result<void>{};
            }));
        }
        if (out.size() == before)
            return make_error("\"{}\": not found in the build context (or excluded by .dockerignore)", raw);
    }
    return out;
}

Result<std::string> hash_sources(int root, const std::vector<std::string>& sources, const IgnoreRules& ignore) {
    oci::Sha256 h;
    auto add = [&](int dirfd, const std::string& name, const std::string& path, const struct stat& st) -> Result<void> {
        h.update(fmt::format("{}\n{:o} {} {} {} {}\n", path, st.st_mode, st.st_uid, st.st_gid, st.st_size,
                             st.st_mtim.tv_sec));
        if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t n = ::readlinkat(dirfd, name.c_str(), target, sizeof target);
            if (n > 0) h.update(target, static_cast<size_t>(n));
        } else if (S_ISREG(st.st_mode)) {
            UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
            if (!fd.valid()) return sys_error(errno, fmt::format("open \"{}\"", path));
            char buf[65536];
            ssize_t n;
            while ((n = ::read(fd.get(), buf, sizeof buf)) > 0)
                h.update(buf, static_cast<size_t>(n));
            if (n < 0) return sys_error(errno, fmt::format("read \"{}\"", path));
        }
        return {};
    };
    for (const auto& s : sources) {
        std::string parent = s.find('/') == std::string::npos ? "" : s.substr(0, s.rfind('/'));
        std::string name = s.empty() ? "." : s.substr(s.rfind('/') + 1);
        UniqueFd dir = TRY(open_in(root, parent, O_RDONLY | O_DIRECTORY));
        struct stat st {};
        if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            return sys_error(errno, fmt::format("stat \"{}\"", s));
        TRY(add(dir.get(), name, s, st));
        if (S_ISDIR(st.st_mode)) {
            UniqueFd sub = TRY(open_in(root, s, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
            TRY(walk(sub.get(), s, 0, ignore, add));
        }
    }
    return h.finish().hex;
}

namespace {

struct Copier {
    const CopyOptions& o;
    int dst_root;

    // The directory `path` (absolute, in the image) resolved inside the root, made with its parents.
    // A link on the way whose target is missing is followed there (inside the root), as mkdir -p would.
    Result<UniqueFd> make_dirs(const std::string& path, int links = 0) {
        if (links > 40) return make_error("too many levels of symbolic links in \"{}\"", path);
        std::string rel = clean(path);
        auto fd = open_in(dst_root, rel, O_PATH | O_DIRECTORY);
        if (fd) return fd;
        if (rel.empty()) return fd;
        std::string parent = rel.find('/') == std::string::npos ? "" : rel.substr(0, rel.rfind('/'));
        std::string leaf = rel.substr(rel.rfind('/') + 1);
        UniqueFd p = TRY(make_dirs(parent, links));
        if (::mkdirat(p.get(), leaf.c_str(), 0755) != 0) {
            if (errno != EEXIST) return sys_error(errno, fmt::format("mkdir \"/{}\"", rel));
            char target[4096];
            ssize_t n = ::readlinkat(p.get(), leaf.c_str(), target, sizeof target - 1);
            if (n <= 0) return open_in(dst_root, rel, O_PATH | O_DIRECTORY); // a file there: its error
            target[n] = 0;
            return make_dirs(target[0] == '/' ? std::string(target) : "/" + parent + "/" + target, links + 1);
        }
        if (::fchownat(p.get(), leaf.c_str(), o.uid, o.gid, AT_SYMLINK_NOFOLLOW) != 0)
            return sys_error(errno, fmt::format("chown \"/{}\"", rel));
        return open_in(dst_root, rel, O_PATH | O_DIRECTORY);
    }

    Result<void> set_meta(int dirfd, const std::string& name, const struct stat& st, bool link) {
        int flags = AT_SYMLINK_NOFOLLOW;
        if (::fchownat(dirfd, name.c_str(), o.uid, o.gid, flags) != 0)
            return sys_error(errno, fmt::format("chown \"{}\"", name));
        if (!link) {
            mode_t m = o.mode ? *o.mode : (st.st_mode & 07777);
            if (::fchmodat(dirfd, name.c_str(), m, 0) != 0) return sys_error(errno, fmt::format("chmod \"{}\"", name));
        }
        struct timespec t[2] = {st.st_atim, st.st_mtim};
        if (::utimensat(dirfd, name.c_str(), t, flags) != 0)
            return sys_error(errno, fmt::format("set the times of \"{}\"", name));
        return {};
    }

    // One entry `name` of `sdir` (path `rel` in its tree) to `name_out` in `ddir`.
    Result<void> entry(int sdir, const std::string& name, const std::string& rel, int ddir,
                       const std::string& out, size_t depth) {
        if (depth > k_max_depth) return make_error("\"{}\" is nested too deeply", rel);
        struct stat st {};
        if (::fstatat(sdir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            return sys_error(errno, fmt::format("stat \"{}\"", rel));
        struct stat old {};
        bool exists = ::fstatat(ddir, out.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0;
        if (exists && !(S_ISDIR(old.st_mode) && S_ISDIR(st.st_mode))) {
            if (S_ISDIR(old.st_mode)) return make_error("cannot replace the directory \"{}\" with \"{}\"", out, rel);
            if (::unlinkat(ddir, out.c_str(), 0) != 0) return sys_error(errno, fmt::format("replace \"{}\"", out));
            exists = false;
        }
        if (S_ISDIR(st.st_mode)) {
            if (!exists && ::mkdirat(ddir, out.c_str(), 0700) != 0) return sys_error(errno, fmt::format("mkdir \"{}\"", out));
            UniqueFd s(::openat(sdir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            UniqueFd d(::openat(ddir, out.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!s.valid() || !d.valid()) return sys_error(errno, fmt::format("open \"{}\"", rel));
            for (const auto& n : TRY(fs::list_dir(s.get()))) {
                std::string r = rel.empty() ? n : rel + "/" + n;
                if (o.ignore && o.ignore->excluded(r)) {
                    if (!o.ignore->has_exceptions()) continue;
                    struct stat cs {};
                    if (::fstatat(s.get(), n.c_str(), &cs, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(cs.st_mode)) continue;
                }
                TRY(entry(s.get(), n, r, d.get(), n, depth + 1));
            }
            return set_meta(ddir, out, st, false);
        }
        if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t n = ::readlinkat(sdir, name.c_str(), target, sizeof target - 1);
            if (n < 0) return sys_error(errno, fmt::format("readlink \"{}\"", rel));
            target[n] = 0;
            if (::symlinkat(target, ddir, out.c_str()) != 0) return sys_error(errno, fmt::format("symlink \"{}\"", out));
            return set_meta(ddir, out, st, true);
        }
        if (!S_ISREG(st.st_mode)) return {}; // devices, fifos and sockets are not copied
        UniqueFd s(::openat(sdir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
        if (!s.valid()) return sys_error(errno, fmt::format("open \"{}\"", rel));
        struct stat now {};
        if (::fstat(s.get(), &now) != 0 || !S_ISREG(now.st_mode))
            return make_error("\"{}\" changed while it was copied", rel);
        UniqueFd d(::openat(ddir, out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!d.valid()) return sys_error(errno, fmt::format("create \"{}\"", out));
        TRY(fs::copy_fd(s.get(), d.get(), rel, out));
        return set_meta(ddir, out, st, false);
    }
};

} // namespace

Result<void> copy_sources(int src_root, const std::vector<std::string>& sources, int dst_root, const CopyOptions& o) {
    Copier c{o, dst_root};
    for (const auto& s : sources) {
        std::string parent = s.find('/') == std::string::npos ? "" : s.substr(0, s.rfind('/'));
        std::string name = s.empty() ? "." : s.substr(s.rfind('/') + 1);
        UniqueFd sdir = TRY(open_in(src_root, parent, O_RDONLY | O_DIRECTORY));
        struct stat st {};
        if (::fstatat(sdir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            return sys_error(errno, fmt::format("stat \"{}\"", s));
        if (S_ISDIR(st.st_mode)) {
            // A directory's contents, not the directory itself, go to the destination.
            UniqueFd d = TRY(c.make_dirs(o.dest));
            UniqueFd dd(::openat(d.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            UniqueFd src(::openat(sdir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!dd.valid() || !src.valid()) return sys_error(errno, fmt::format("open \"{}\"", s));
            for (const auto& n : TRY(fs::list_dir(src.get()))) {
                std::string r = s.empty() ? n : s + "/" + n;
                if (o.ignore && o.ignore->excluded(r) && !o.ignore->has_exceptions()) continue;
                TRY(c.entry(src.get(), n, r, dd.get(), n, 0));
            }
            continue;
        }
        std::string dest = clean(o.dest);
        bool into = o.dest_is_dir;
        if (!into && !dest.empty()) {
            auto existing = open_in(dst_root, dest, O_PATH | O_DIRECTORY);
            into = static_cast<bool>(existing);
        }
        if (dest.empty()) into = true;
        std::string dir = into ? dest : (dest.find('/') == std::string::npos ? "" : dest.substr(0, dest.rfind('/')));
        std::string out = into ? name : dest.substr(dest.rfind('/') + 1);
        if (o.extract && S_ISREG(st.st_mode)) {
            UniqueFd f(::openat(sdir.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
            if (!f.valid()) return sys_error(errno, fmt::format("open \"{}\"", s));
            auto r = extract_archive(f.get(), dst_root, o.dest, o, o.chowned);
            if (r) continue;
            if (r.error().errnum != EINVAL) return r; // an archive, but broken: say so
        }
        UniqueFd d = TRY(c.make_dirs("/" + dir));
        UniqueFd dd(::openat(d.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!dd.valid()) return sys_error(errno, fmt::format("open \"/{}\"", dir));
        TRY(c.entry(sdir.get(), name, s, dd.get(), out, 0));
    }
    return {};
}

Result<void> extract_archive(int archive, int dst_root, const std::string& dest, const CopyOptions& o, bool chown) {
    ArchiveReader a(archive_read_new());
    if (!a) return make_error("archive_read_new failed");
    TRY(store::support_store_filters(a.get()));
    archive_read_support_format_tar(a.get());
    if (::lseek(archive, 0, SEEK_SET) != 0) return sys_error(errno, "seek the archive");
    if (archive_read_open_fd(a.get(), archive, 65536) != ARCHIVE_OK)
        return Error{"not an archive", EINVAL};
    Copier c{o, dst_root};
    struct archive_entry* e = nullptr;
    bool first = true;
    for (;;) {
        int r = archive_read_next_header(a.get(), &e);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            if (first) return Error{"not an archive", EINVAL};
            return make_error("read the archive: {}", archive_error_string(a.get()));
        }
        first = false;
        const char* raw = archive_entry_pathname(e);
        std::string rel = clean(raw ? raw : "");
        std::string full = clean(dest) + (rel.empty() ? "" : "/" + rel);
        std::string parent = full.find('/') == std::string::npos ? "" : full.substr(0, full.rfind('/'));
        std::string leaf = full.substr(full.rfind('/') + 1);
        mode_t type = archive_entry_filetype(e);
        uid_t uid = chown ? o.uid : static_cast<uid_t>(archive_entry_uid(e));
        gid_t gid = chown ? o.gid : static_cast<gid_t>(archive_entry_gid(e));
        mode_t perm = o.mode ? *o.mode : static_cast<mode_t>(archive_entry_perm(e) & 07777);
        if (rel.empty() || type == AE_IFDIR) {
            UniqueFd d = TRY(c.make_dirs("/" + full));
            (void)d;
            UniqueFd p = TRY(c.make_dirs("/" + parent));
            if (!rel.empty()) {
                if (::fchownat(p.get(), leaf.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0 ||
                    ::fchmodat(p.get(), leaf.c_str(), perm, 0) != 0)
                    return sys_error(errno, fmt::format("set the owner and mode of \"/{}\"", full));
            }
            continue;
        }
        UniqueFd p = TRY(c.make_dirs("/" + parent));
        UniqueFd dir(::openat(p.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!dir.valid()) return sys_error(errno, fmt::format("open \"/{}\"", parent));
        struct stat old {};
        if (::fstatat(dir.get(), leaf.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISDIR(old.st_mode)) return make_error("cannot replace the directory \"/{}\" with a file", full);
            if (::unlinkat(dir.get(), leaf.c_str(), 0) != 0) return sys_error(errno, fmt::format("replace \"/{}\"", full));
        }
        if (const char* hl = archive_entry_hardlink(e)) {
            std::string target = clean(dest) + "/" + clean(hl);
            UniqueFd t = TRY(open_in(dst_root, target, O_PATH | O_NOFOLLOW));
            std::string via = fmt::format("/proc/self/fd/{}", t.get());
            if (::linkat(AT_FDCWD, via.c_str(), dir.get(), leaf.c_str(), AT_SYMLINK_FOLLOW) != 0)
                return sys_error(errno, fmt::format("link \"/{}\"", full));
            continue;
        }
        if (type == AE_IFLNK) {
            const char* target = archive_entry_symlink(e);
            if (::symlinkat(target ? target : "", dir.get(), leaf.c_str()) != 0)
                return sys_error(errno, fmt::format("symlink \"/{}\"", full));
            if (::fchownat(dir.get(), leaf.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
                return sys_error(errno, fmt::format("chown \"/{}\"", full));
            continue;
        }
        if (type != AE_IFREG) continue; // devices, fifos: not made in a user namespace anyway
        UniqueFd f(::openat(dir.get(), leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!f.valid()) return sys_error(errno, fmt::format("create \"/{}\"", full));
        const void* buf;
        size_t size;
        la_int64_t off;
        for (;;) {
            int rr = archive_read_data_block(a.get(), &buf, &size, &off);
            if (rr == ARCHIVE_EOF) break;
            if (rr != ARCHIVE_OK) return make_error("read \"{}\" from the archive: {}", rel, archive_error_string(a.get()));
            const char* pb = static_cast<const char*>(buf);
            for (size_t done = 0; done < size;) {
                ssize_t w = ::pwrite(f.get(), pb + done, size - done, off + static_cast<off_t>(done));
                if (w < 0 && errno == EINTR) continue;
                if (w < 0) return sys_error(errno, fmt::format("write \"/{}\"", full));
                done += static_cast<size_t>(w);
            }
        }
        if (::fchown(f.get(), uid, gid) != 0 || ::fchmod(f.get(), perm) != 0)
            return sys_error(errno, fmt::format("set the owner and mode of \"/{}\"", full));
        struct timespec t[2] = {{archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
                                {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
        (void)::futimens(f.get(), t); // times are kept where the file system allows
    }
    return {};
}

Result<std::pair<uid_t, gid_t>> resolve_owner(int root, const std::string& spec) {
    auto colon = spec.find(':');
    std::string user = spec.substr(0, colon);
    std::string group = colon == std::string::npos ? "" : spec.substr(colon + 1);
    auto numeric = [](const std::string& s) {
        return !s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), ::isdigit);
    };
    // name -> (id, primary gid) from a passwd/group-format file of the image.
    auto find = [&](const char* file, const std::string& name) -> std::optional<std::pair<uint32_t, uint32_t>> {
        auto fd = open_in(root, file, O_RDONLY);
        if (!fd) return std::nullopt;
        std::string text;
        char buf[65536];
        ssize_t n;
        while ((n = ::read(fd->get(), buf, sizeof buf)) > 0 && text.size() < (4 << 20))
            text.append(buf, static_cast<size_t>(n));
        size_t b = 0;
        while (b < text.size()) {
            size_t e = text.find('\n', b);
            if (e == std::string::npos) e = text.size();
            std::string line = text.substr(b, e - b);
            b = e + 1;
            std::vector<std::string> f;
            size_t i = 0;
            while (f.size() < 4) {
                size_t j = line.find(':', i);
                f.push_back(line.substr(i, j == std::string::npos ? std::string::npos : j - i));
                if (j == std::string::npos) break;
                i = j + 1;
            }
            if (f.size() >= 3 && f[0] == name && numeric(f[2]))
                return std::make_pair(static_cast<uint32_t>(std::stoul(f[2])),
                                      f.size() >= 4 && numeric(f[3]) ? static_cast<uint32_t>(std::stoul(f[3])) : 0u);
        }
        return std::nullopt;
    };
    uid_t uid = 0;
    gid_t gid = 0;
    if (numeric(user)) {
        uid = static_cast<uid_t>(std::stoul(user));
    } else if (auto u = find("etc/passwd", user)) {
        uid = u->first;
        gid = u->second;
    } else {
        return make_error("--chown {}: no user {} in the image", spec, user);
    }
    if (!group.empty()) {
        if (numeric(group))
            gid = static_cast<gid_t>(std::stoul(group));
        else if (auto g = find("etc/group", group))
            gid = g->first;
        else
            return make_error("--chown {}: no group {} in the image", spec, group);
    } else if (numeric(user)) {
        gid = static_cast<gid_t>(uid);
    }
    return std::make_pair(uid, gid);
}

} // namespace ctr::build
