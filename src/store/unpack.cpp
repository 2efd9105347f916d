// SPDX-License-Identifier: MIT
// Layer unpacking over libarchive with fd-relative, no-follow file operations.
#include "store/unpack.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>


#include <cstdlib>
#include <memory>
#include <vector>

#include "base/fs.hpp"
#include "base/log.hpp"
#include "base/size.hpp"
#include "base/unique_fd.hpp"
#include "store/libarchive.hpp"

namespace ctr::store {

namespace {

constexpr const char* k_whiteout_prefix = ".wh.";
constexpr const char* k_opaque_marker = ".wh..wh..opq";
constexpr uint64_t k_default_max_layer_size = 64ull << 30;
constexpr const char* k_max_layer_size_env = "CONTAINER_MAX_LAYER_SIZE";

// The decompressed byte stream of a blob, hashed and counted as it is read: the tar reader pulls from
// it, and gets an error once it passes `limit` bytes.
struct Stream {
    ArchiveReader raw;
    oci::Sha256 hash;
    uint64_t total = 0;
    uint64_t limit = 0;
    bool over_limit = false;
    std::string error;
    char buf[1 << 16];
};

Error too_big(uint64_t limit) {
    return Error{fmt::format("expands beyond {} (set {} to raise the limit)", format_limit(limit),
                             k_max_layer_size_env),
                 EFBIG};
}

// Hashes and counts `n` bytes just read; false once the stream has passed its limit.
bool account(Stream& s, la_ssize_t n) {
    s.total += static_cast<uint64_t>(n);
    if (s.total > s.limit) {
        s.over_limit = true;
        s.error = too_big(s.limit).message;
        return false;
    }
    s.hash.update(s.buf, static_cast<size_t>(n));
    return true;
}

la_ssize_t stream_read(struct archive*, void* opaque, const void** out) {
    auto* s = static_cast<Stream*>(opaque);
    la_ssize_t n = archive_read_data(s->raw.get(), s->buf, sizeof s->buf);
    if (n < 0) {
        s->error = archive_error_string(s->raw.get()) ? archive_error_string(s->raw.get()) : "read error";
        return -1;
    }
    if (!account(*s, n)) return -1;
    *out = s->buf;
    return n;
}

// `what` names the blob in messages.
Result<std::unique_ptr<Stream>> open_stream(int fd, const std::string& what, uint64_t limit) {
    auto s = std::make_unique<Stream>();
    s->limit = limit;
    s->raw.reset(archive_read_new());
    TRY(support_store_filters(s->raw.get()));
    archive_read_support_format_raw(s->raw.get());
    if (archive_read_open_fd(s->raw.get(), fd, 1 << 16) != ARCHIVE_OK)
        return make_error("open {}: {}", what, archive_error_string(s->raw.get()));
    struct archive_entry* e = nullptr;
    int r = archive_read_next_header(s->raw.get(), &e);
    if (r == ARCHIVE_EOF) return make_error("{} is empty", what);
    if (r < ARCHIVE_WARN) return make_error("read {}: {}", what, archive_error_string(s->raw.get()));
    return s;
}

Result<UniqueFd> open_blob(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return sys_error(errno, fmt::format("open \"{}\"", path));
    return fd;
}

// Drains what the tar reader left (end-of-archive padding) so the digest covers the whole stream.
Result<oci::Digest> finish_stream(Stream& s) {
    for (;;) {
        la_ssize_t n = archive_read_data(s.raw.get(), s.buf, sizeof s.buf);
        if (n < 0) return make_error("read: {}", archive_error_string(s.raw.get()));
        if (n == 0) break;
        if (!account(s, n)) return too_big(s.limit);
    }
    return s.hash.finish();
}

// Why a blob the tar reader could not start on is no layer: a compression we do not read is named.
Error not_a_tar(int blob_fd, const std::string& why) {
    if (const char* c = unsupported_compression(blob_fd))
        return make_error("compressed with {}, which the store does not read (layers are tar, plain or "
                          "compressed with gzip or zstd)",
                          c);
    return make_error("not a tar archive: {}", why);
}

struct DirMeta {
    std::vector<std::string> path;
    mode_t mode;
    struct timespec mtime;
};

class Unpacker {
public:
    Unpacker(int root_fd, struct archive* tar) : m_root(root_fd), m_tar(tar) {}

    Result<void> entry(struct archive_entry* e);
    Result<void> finish();

private:
    Result<void> apply(struct archive_entry* e, const std::vector<std::string>& parts);
    Result<UniqueFd> open_parent(const std::vector<std::string>& parts, bool create);
    Result<void> make_room(int parent, const std::string& name, bool is_dir);
    Result<void> write_data(int fd);
    void set_xattrs(int fd, struct archive_entry* e);

    int m_root;
    struct archive* m_tar;
    std::vector<DirMeta> m_dirs;
    std::string m_name; // the entry being applied, for messages
};

// Splits a tar name into components; "." and empty ones vanish, a leading "/" is dropped (the name
// is then relative to the layer), ".." is refused.
Result<std::vector<std::string>> split_name(const std::string& name) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (start <= name.size()) {
        size_t slash = name.find('/', start);
        std::string p = name.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
        if (p == "..") return make_error("entry \"{}\": path leaves the layer directory", name);
        if (!p.empty() && p != ".") parts.push_back(p);
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    return parts;
}

Result<UniqueFd> Unpacker::open_parent(const std::vector<std::string>& parts, bool create) {
    UniqueFd cur(::dup(m_root));
    if (!cur.valid()) return sys_error(errno, "dup");
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
        const std::string& p = parts[i];
        // O_NOFOLLOW|O_DIRECTORY: a symlink or file where a directory should be is an error, never a detour.
        int fd = ::openat(cur.get(), p.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && create) {
            if (::mkdirat(cur.get(), p.c_str(), 0755) != 0 && errno != EEXIST)
                return sys_error(errno, fmt::format("entry \"{}\": mkdir \"{}\"", m_name, p));
            fd = ::openat(cur.get(), p.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0) {
            if (errno == ELOOP || errno == ENOTDIR)
                return make_error("entry \"{}\": \"{}\" is not a directory (a symlink or file is in the way)",
                                  m_name, p);
            return sys_error(errno, fmt::format("entry \"{}\": open \"{}\"", m_name, p));
        }
        cur.reset(fd);
    }
    return cur;
}

Result<void> Unpacker::make_room(int parent, const std::string& name, bool is_dir) {
    struct stat st {};
    if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return {};
    if (is_dir && S_ISDIR(st.st_mode)) return {}; // directories merge
    auto r = fs::remove_tree_at(parent, name);
    if (!r) return wrap(std::move(r).error(), fmt::format("entry \"{}\": replace", m_name));
    return {};
}

Result<void> Unpacker::write_data(int fd) {
    const void* buf = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    for (;;) {
        int r = archive_read_data_block(m_tar, &buf, &size, &offset);
        if (r == ARCHIVE_EOF) return {};
        if (r < ARCHIVE_WARN)
            return make_error("entry \"{}\": {}", m_name,
                              archive_error_string(m_tar) ? archive_error_string(m_tar) : "read error");
        const char* p = static_cast<const char*>(buf);
        while (size > 0) {
            ssize_t n = ::pwrite(fd, p, size, offset);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return sys_error(errno, fmt::format("entry \"{}\": write", m_name));
            p += n;
            size -= static_cast<size_t>(n);
            offset += n;
        }
    }
}

void Unpacker::set_xattrs(int fd, struct archive_entry* e) {
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    archive_entry_xattr_reset(e);
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
        std::string n = name;
        // Overlay's own attributes would let a layer redirect or hide paths below it: never taken from a tar.
        if (n.rfind("trusted.overlay.", 0) == 0 || n.rfind("user.overlay.", 0) == 0) {
            log::debug("entry \"{}\": dropping xattr {}", m_name, n);
            continue;
        }
        if (::fsetxattr(fd, name, value, size, 0) != 0)
            log::debug("entry \"{}\": xattr {} not set: {}", m_name, n, std::strerror(errno));
    }
}

Result<void> Unpacker::entry(struct archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    m_name = raw ? raw : "";
    auto parts = split_name(m_name);
    if (!parts) return std::move(parts).error();
    return apply(e, *parts);
}

Result<void> Unpacker::apply(struct archive_entry* e, const std::vector<std::string>& parts) {
    mode_t type = archive_entry_filetype(e);
    mode_t mode = archive_entry_perm(e) & 07777;
    uid_t uid = static_cast<uid_t>(archive_entry_uid(e));
    gid_t gid = static_cast<gid_t>(archive_entry_gid(e));
    struct timespec times[2];
    times[1] = {static_cast<time_t>(archive_entry_mtime(e)), archive_entry_mtime_nsec(e)};
    times[0] = archive_entry_atime_is_set(e)
                   ? timespec{static_cast<time_t>(archive_entry_atime(e)), archive_entry_atime_nsec(e)}
                   : times[1];

    if (parts.empty()) { // the layer root itself
        if (type != AE_IFDIR) return make_error("entry \"{}\": the layer root is not a directory", m_name);
        if (::fchown(m_root, uid, gid) != 0)
            return sys_error(errno, fmt::format("entry \"{}\": chown", m_name));
        m_dirs.push_back({{}, mode, times[1]});
        return {};
    }
    const std::string& base = parts.back();
    UniqueFd parent = TRY(open_parent(parts, /*create=*/true));
    int pfd = parent.get();

    if (base == k_opaque_marker) {
        if (::fsetxattr(pfd, "user.overlay.opaque", "y", 1, 0) != 0)
            return sys_error(errno, fmt::format("entry \"{}\": mark directory opaque", m_name));
        (void)::fsetxattr(pfd, "trusted.overlay.opaque", "y", 1,
                          0); // only host root may; user.* serves the rest
        return {};
    }
    if (base.rfind(k_whiteout_prefix, 0) == 0) {
        std::string target = base.substr(4);
        if (target.empty() || target == "." || target == ".." || target.rfind(k_whiteout_prefix, 0) == 0)
            return make_error("entry \"{}\": invalid whiteout", m_name);
        TRY(make_room(pfd, target, false));
        if (::mknodat(pfd, target.c_str(), S_IFCHR | 0000, ::makedev(0, 0)) != 0)
            return sys_error(errno, fmt::format("entry \"{}\": create whiteout", m_name));
        return {};
    }

    if (const char* link = archive_entry_hardlink(e)) {
        std::string link_name = link;
        auto tparts = split_name(link_name);
        if (!tparts)
            return make_error("entry \"{}\": hard link target \"{}\" leaves the layer", m_name, link_name);
        if (tparts->empty()) return make_error("entry \"{}\": hard link to the layer root", m_name);
        auto tparent = open_parent(*tparts, /*create=*/false);
        if (!tparent)
            return make_error("entry \"{}\": hard link target \"{}\" is not in the layer", m_name, link_name);
        struct stat st {};
        if (::fstatat(tparent->get(), tparts->back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            return make_error("entry \"{}\": hard link target \"{}\" is not in the layer", m_name, link_name);
        if (S_ISDIR(st.st_mode)) return make_error("entry \"{}\": hard link to a directory", m_name);
        if (*tparts == parts) return {};
        TRY(make_room(pfd, base, false));
        if (::linkat(tparent->get(), tparts->back().c_str(), pfd, base.c_str(), 0) != 0)
            return sys_error(errno, fmt::format("entry \"{}\": link to \"{}\"", m_name, link_name));
        return {};
    }

    TRY(make_room(pfd, base, type == AE_IFDIR));
    auto fail = [&](const char* op) { return sys_error(errno, fmt::format("entry \"{}\": {}", m_name, op)); };
    switch (type) {
    case AE_IFREG: {
        UniqueFd fd(::openat(pfd, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd.valid()) return fail("create");
        TRY(write_data(fd.get()));
        if (::ftruncate(fd.get(), archive_entry_size(e)) != 0) return fail("truncate");
        if (::fchown(fd.get(), uid, gid) != 0) return fail(fmt::format("chown {}:{}", uid, gid).c_str());
        if (::fchmod(fd.get(), mode) != 0) return fail("chmod");
        set_xattrs(fd.get(), e);
        if (::futimens(fd.get(), times) != 0) return fail("set times");
        return {};
    }
    case AE_IFDIR: {
        if (::mkdirat(pfd, base.c_str(), 0700) != 0 && errno != EEXIST) return fail("mkdir");
        UniqueFd fd(::openat(pfd, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd.valid()) return fail("open directory");
        if (::fchown(fd.get(), uid, gid) != 0) return fail(fmt::format("chown {}:{}", uid, gid).c_str());
        set_xattrs(fd.get(), e);
        // Mode and times last: a 0555 directory must still take its children, and each child bumps mtime.
        m_dirs.push_back({parts, mode, times[1]});
        return {};
    }
    case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        if (::symlinkat(target ? target : "", pfd, base.c_str()) != 0) return fail("symlink");
        if (::fchownat(pfd, base.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) return fail("chown");
        if (::utimensat(pfd, base.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) return fail("set times");
        return {};
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
        dev_t dev = type == AE_IFIFO ? 0 : ::makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
        if (::mknodat(pfd, base.c_str(), type | mode, dev) != 0) {
            if (errno == EPERM && type != AE_IFIFO) {
                log::debug("entry \"{}\": device node skipped (not permitted here)", m_name);
                return {};
            }
            return fail("mknod");
        }
        if (::fchownat(pfd, base.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) return fail("chown");
        if (::fchmodat(pfd, base.c_str(), mode, 0) != 0) return fail("chmod");
        if (::utimensat(pfd, base.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) return fail("set times");
        return {};
    }
    case AE_IFSOCK:
        log::debug("entry \"{}\": socket skipped", m_name);
        return {};
    default:
        return make_error("entry \"{}\": unsupported file type {:o}", m_name, type);
    }
}

Result<void> Unpacker::finish() {
    // Deepest first, so setting a parent's time is not undone by work on its children.
    for (auto it = m_dirs.rbegin(); it != m_dirs.rend(); ++it) {
        m_name.clear();
        for (const auto& part : it->path)
            m_name += (m_name.empty() ? "" : "/") + part;
        if (m_name.empty()) m_name = ".";
        UniqueFd fd;
        if (it->path.empty()) {
            fd.reset(::dup(m_root));
        } else {
            // A parent replaced later in the layer (by a file, symlink or whiteout) took this directory with
            // it.
            auto parent = open_parent(it->path, false);
            if (!parent) continue;
            fd.reset(::openat(parent->get(), it->path.back().c_str(),
                              O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        }
        if (!fd.valid()) continue; // replaced by a later entry; that entry carries its own metadata
        if (::fchmod(fd.get(), it->mode) != 0)
            return sys_error(errno, fmt::format("entry \"{}\": chmod", m_name));
        struct timespec t[2] = {it->mtime, it->mtime};
        if (::futimens(fd.get(), t) != 0)
            return sys_error(errno, fmt::format("entry \"{}\": set times", m_name));
    }
    return {};
}

Error too_many_entries() {
    return Error{fmt::format("has more than {} entries", k_max_layer_entries), EFBIG};
}

Result<void> unpack_entries(int root, Stream& stream, int blob_fd, const std::optional<oci::Digest>& diff_id) {
    ArchiveReader tar(archive_read_new());
    archive_read_support_format_tar(tar.get());
    if (archive_read_open(tar.get(), &stream, nullptr, stream_read, nullptr) != ARCHIVE_OK)
        return not_a_tar(blob_fd, stream.error.empty() ? archive_error_string(tar.get()) : stream.error);
    Unpacker unpacker(root, tar.get());
    std::string last = "(start of archive)";
    size_t entries = 0;
    for (;;) {
        struct archive_entry* e = nullptr;
        int r = archive_read_next_header(tar.get(), &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) {
            std::string why = !stream.error.empty()             ? stream.error
                              : archive_error_string(tar.get()) ? archive_error_string(tar.get())
                                                                : "unreadable header";
            if (entries == 0) return not_a_tar(blob_fd, why);
            return make_error("entry after \"{}\": {}", last, why);
        }
        if (++entries > k_max_layer_entries) return too_many_entries();
        TRY(unpacker.entry(e));
        last = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    }
    if (entries == 0) return make_error("not a tar archive (no entries)");
    TRY(unpacker.finish());
    oci::Digest got = TRY(finish_stream(stream));
    if (diff_id && got != *diff_id)
        return make_error("uncompressed content hashes to {}, the image config says {}", got.str(),
                          diff_id->str());
    return {};
}

} // namespace

Result<uint64_t> max_layer_size() {
    const char* v = std::getenv(k_max_layer_size_env);
    if (!v || !*v) return k_default_max_layer_size;
    auto size = parse_size(v);
    if (!size) return wrap(std::move(size).error(), k_max_layer_size_env);
    if (*size == 0) return make_error("{}: the limit must be more than 0 bytes", k_max_layer_size_env);
    return *size;
}

Result<void> unpack_layer(int blob_fd, const std::string& dest_dir, const std::optional<oci::Digest>& diff_id,
                          uint64_t max_size) {
    UniqueFd root = TRY(fs::open_dir(dest_dir));
    if (::fchmod(root.get(), 0755) != 0) return sys_error(errno, fmt::format("chmod \"{}\"", dest_dir));
    auto stream = TRY(open_stream(blob_fd, "the layer blob", max_size));
    auto r = unpack_entries(root.get(), *stream, blob_fd, diff_id);
    // Past the limit the tar reader fails in whatever way a cut stream makes it: the limit is the news.
    if (!r && stream->over_limit) return too_big(max_size);
    return r;
}

Result<void> unpack_layer(const std::string& blob_path, const std::string& dest_dir,
                          const std::optional<oci::Digest>& diff_id, uint64_t max_size) {
    UniqueFd blob = TRY(open_blob(blob_path));
    return unpack_layer(blob.get(), dest_dir, diff_id, max_size);
}

Result<oci::Digest> tar_diff_id(const std::string& blob_path, uint64_t max_size) {
    UniqueFd blob = TRY(open_blob(blob_path));
    auto stream = TRY(open_stream(blob.get(), fmt::format("\"{}\"", blob_path), max_size));
    ArchiveReader tar(archive_read_new());
    archive_read_support_format_tar(tar.get());
    if (archive_read_open(tar.get(), stream.get(), nullptr, stream_read, nullptr) != ARCHIVE_OK)
        return make_error("\"{}\" is not a tar archive", blob_path);
    struct archive_entry* e = nullptr;
    uint64_t entries = 0;
    int r;
    while ((r = archive_read_next_header(tar.get(), &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        if (++entries > k_max_layer_entries) return too_many_entries();
        if (archive_read_data_skip(tar.get()) < ARCHIVE_WARN) {
            r = ARCHIVE_FATAL;
            break;
        }
    }
    if (stream->over_limit) return too_big(max_size);
    if (r != ARCHIVE_EOF || entries == 0)
        return make_error("\"{}\" is not a tar archive{}", blob_path,
                          entries ? fmt::format(" (damaged after {} entries)", entries) : "");
    return finish_stream(*stream);
}

} // namespace ctr::store
