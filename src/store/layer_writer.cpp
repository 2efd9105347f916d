// SPDX-License-Identifier: MIT
// Layer writing: a pax tar (libarchive) whose bytes are hashed (the diff_id) and fed to a gzip stream
// deflated on every CPU (store/gzip.hpp); the compressed bytes are hashed (the digest) on their way to
// the file. One pass over the tree, nothing staged on disk but the blob itself.
#include "store/layer_writer.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "base/fs.hpp"
#include "base/log.hpp"
#include "base/unique_fd.hpp"
#include "runtime/userns.hpp"
#include "store/gzip.hpp"
#include "store/libarchive.hpp"
#include "store/unpack.hpp"

namespace ctr::store {

namespace {

constexpr const char* k_opaque_marker = ".wh..wh..opq";
// Deeper trees are refused: each level holds a directory fd and a stack frame while it is walked.
constexpr size_t k_max_depth = 1024;
constexpr size_t k_max_rewrite = 4 << 20;
constexpr size_t k_max_xattr = 64 << 10;
constexpr size_t k_max_link = 64 << 10;

// The compressed side: hashes and writes what gzip produces; an error message, or "".
struct BlobSink {
    int fd = -1;
    oci::Sha256 hash;
    uint64_t size = 0;

    std::string write(const void* buf, size_t n) {
        const char* p = static_cast<const char*>(buf);
        for (size_t off = 0; off < n;) {
            ssize_t w = ::write(fd, p + off, n - off);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) return fmt::format("write the layer blob: {}", std::strerror(errno));
            off += static_cast<size_t>(w);
        }
        hash.update(buf, n);
        size += n;
        return {};
    }
};

// The uncompressed side: hashes and counts the tar stream, then hands it to gzip.
struct TarSink {
    ParallelGzip* gz = nullptr;
    oci::Sha256 hash;
    uint64_t size = 0;
    uint64_t limit = 0;
    std::string error;
};

la_ssize_t tar_write(struct archive*, void* opaque, const void* buf, size_t n) {
    auto* s = static_cast<TarSink*>(opaque);
    s->size += n;
    if (s->size > s->limit) {
        s->error = fmt::format("the layer grows beyond {} bytes uncompressed", s->limit);
        return -1;
    }
    s->hash.update(buf, n);
    if (auto r = s->gz->write(buf, n); !r) {
        s->error = r.error().message;
        return -1;
    }
    return static_cast<la_ssize_t>(n);
}

// A path the options leave out of the layer, with everything below it.
bool is_excluded(const LayerWriteOptions& o, const std::string& path) {
    return std::any_of(o.exclude.begin(), o.exclude.end(),
                       [&](const std::string& p) { return ::fnmatch(p.c_str(), path.c_str(), FNM_PATHNAME) == 0; });
}

// Overlay's own bookkeeping (opaque, origin, impure, redirect, uuid) is the kernel's, not the image's.
bool is_overlay_xattr(const std::string& name) {
    return name.rfind("trusted.overlay.", 0) == 0 || name.rfind("user.overlay.", 0) == 0;
}

class Walker {
public:
    Walker(struct archive* tar, TarSink& sink, const LayerWriteOptions& o)
        : m_tar(tar), m_sink(sink), m_opts(o) {}
    Result<void> root(int fd);
    uint64_t entries() const { return m_entries; }

private:
    Result<void> directory(int dirfd, const std::string& rel, size_t depth);
    Result<void> child(int dirfd, const std::string& name, const std::string& path, size_t depth);
    Result<void> header(struct archive_entry* e, const std::string& path);
    Result<void> file_data(int fd, uint64_t size, const std::string& path);
    void xattrs(int fd, struct archive_entry* e);
    bool excluded(const std::string& path) const;
    Error tar_error(const std::string& path, const char* op) const;
    static ArchiveEntry entry_for(const struct stat& st, const std::string& path);

    struct archive* m_tar;
    TarSink& m_sink;
    const LayerWriteOptions& m_opts;
    std::map<std::pair<dev_t, ino_t>, std::string> m_links; // first path of each multiply-linked file
    uint64_t m_entries = 0;
    std::string m_xattr_names, m_xattr_value; // reused for every entry
};

Error Walker::tar_error(const std::string& path, const char* op) const {
    if (!m_sink.error.empty()) return make_error("\"{}\": {}", path, m_sink.error);
    return make_error("\"{}\": {}: {}", path, op, archive_error_string(m_tar));
}

bool Walker::excluded(const std::string& path) const {
    return is_excluded(m_opts, path);
}

ArchiveEntry Walker::entry_for(const struct stat& st, const std::string& path) {
    ArchiveEntry e(archive_entry_new());
    archive_entry_set_pathname(e.get(), path.c_str());
    archive_entry_set_perm(e.get(), st.st_mode & 07777);
    archive_entry_set_uid(e.get(), st.st_uid);
    archive_entry_set_gid(e.get(), st.st_gid);
    archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    return e;
}

Result<void> Walker::header(struct archive_entry* e, const std::string& path) {
    if (++m_entries > k_max_layer_entries)
        return Error{fmt::format("the layer has more than {} entries", k_max_layer_entries), EFBIG};
    if (archive_write_header(m_tar, e) < ARCHIVE_WARN) return tar_error(path, "write header");
    return {};
}

Result<void> Walker::file_data(int fd, uint64_t size, const std::string& path) {
    char buf[1 << 16];
    uint64_t done = 0;
    while (done < size) {
        ssize_t n = ::read(fd, buf, std::min<uint64_t>(sizeof buf, size - done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return sys_error(errno, fmt::format("read \"{}\"", path));
        if (n == 0) { // shrank since its header was written: the announced size is kept, zero-filled
            std::memset(buf, 0, sizeof buf);
            n = static_cast<ssize_t>(std::min<uint64_t>(sizeof buf, size - done));
        }
        if (archive_write_data(m_tar, buf, static_cast<size_t>(n)) != n) return tar_error(path, "write");
        done += static_cast<uint64_t>(n);
    }
    return {};
}

void Walker::xattrs(int fd, struct archive_entry* e) {
    std::string& names = m_xattr_names;
    std::string& value = m_xattr_value;
    names.resize(k_max_xattr);
    value.resize(k_max_xattr);
    ssize_t len = ::flistxattr(fd, names.data(), names.size());
    if (len <= 0) return;
    for (size_t off = 0; off < static_cast<size_t>(len);) {
        std::string n = names.c_str() + off;
        off += n.size() + 1;
        if (is_overlay_xattr(n)) continue;
        ssize_t vlen = ::fgetxattr(fd, n.c_str(), value.data(), value.size());
        if (vlen < 0) continue; // gone meanwhile, or too large to be a real attribute
        archive_entry_xattr_add_entry(e, n.c_str(), value.data(), static_cast<size_t>(vlen));
    }
}

bool is_opaque(int fd) {
    char v[2] = {};
    for (const char* name : {"user.overlay.opaque", "trusted.overlay.opaque"})
        if (::fgetxattr(fd, name, v, sizeof v) == 1 && v[0] == 'y') return true;
    return false;
}

Result<void> Walker::root(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return sys_error(errno, "stat the layer root");
    // The root entry keeps an empty layer a valid tar; its owner is the image's root, whoever made the
    // directory on the host.
    st.st_uid = 0;
    st.st_gid = 0;
    st.st_mode = S_IFDIR | 0755;
    ArchiveEntry e = entry_for(st, "./");
    archive_entry_set_filetype(e.get(), AE_IFDIR);
    TRY(header(e.get(), "./"));
    return directory(fd, "", 0);
}

Result<void> Walker::directory(int dirfd, const std::string& rel, size_t depth) {
    if (depth > k_max_depth)
        return make_error("\"{}\": directories nested more than {} deep", rel, k_max_depth);
    auto listed = fs::list_dir(dirfd);
    if (!listed) return wrap(std::move(listed).error(), fmt::format("list \"{}\"", rel.empty() ? "." : rel));
    std::vector<std::string> names = std::move(listed).value();
    for (const auto& n : names) {
        std::string path = rel.empty() ? n : rel + "/" + n;
        if (excluded(path)) {
            log::debug("layer: leaving out \"{}\"", path);
            continue;
        }
        TRY(child(dirfd, n, path, depth));
    }
    return {};
}

Result<void> Walker::child(int dirfd, const std::string& name, const std::string& path, size_t depth) {
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return {}; // removed while we walk (a machine committed without a pause)
        return sys_error(errno, fmt::format("stat \"{}\"", path));
    }
    std::string parent = path.substr(0, path.size() - name.size());
    if (S_ISCHR(st.st_mode) && st.st_rdev == ::makedev(0, 0)) { // overlay whiteout
        ArchiveEntry e = entry_for(st, parent + ".wh." + name);
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_perm(e.get(), 0);
        archive_entry_set_size(e.get(), 0);
        return header(e.get(), path);
    }
    if (S_ISDIR(st.st_mode)) {
        UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd.valid()) return sys_error(errno, fmt::format("open directory \"{}\"", path));
        if (::fstat(fd.get(), &st) != 0) return sys_error(errno, fmt::format("stat \"{}\"", path));
        ArchiveEntry e = entry_for(st, path + "/");
        archive_entry_set_filetype(e.get(), AE_IFDIR);
        xattrs(fd.get(), e.get());
        TRY(header(e.get(), path));
        if (is_opaque(fd.get())) {
            ArchiveEntry o = entry_for(st, path + "/" + k_opaque_marker);
            archive_entry_set_filetype(o.get(), AE_IFREG);
            archive_entry_set_perm(o.get(), 0);
            archive_entry_set_size(o.get(), 0);
            TRY(header(o.get(), path));
        }
        return directory(fd.get(), path, depth + 1);
    }
    if (S_ISREG(st.st_mode)) {
        if (st.st_nlink > 1) {
            auto [it, first] = m_links.emplace(std::pair{st.st_dev, st.st_ino}, path);
            if (!first) {
                ArchiveEntry e = entry_for(st, path);
                archive_entry_set_filetype(e.get(), AE_IFREG);
                archive_entry_set_hardlink(e.get(), it->second.c_str());
                archive_entry_set_size(e.get(), 0);
                return header(e.get(), path);
            }
        }
        // O_NONBLOCK|O_NOCTTY: if a FIFO or device took the name since the stat, opening it neither hangs
        // nor adopts a terminal; fstat then shows it is not the file we saw.
        UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
        if (!fd.valid()) {
            if (errno == ENOENT) return {};
            return sys_error(errno, fmt::format("open \"{}\"", path));
        }
        struct stat now {};
        if (::fstat(fd.get(), &now) != 0) return sys_error(errno, fmt::format("stat \"{}\"", path));
        if (!S_ISREG(now.st_mode) || now.st_ino != st.st_ino)
            return make_error("\"{}\" changed while it was read (commit a machine while it is paused)", path);
        ArchiveEntry e = entry_for(now, path);
        archive_entry_set_filetype(e.get(), AE_IFREG);
        xattrs(fd.get(), e.get());
        if (auto rw = m_opts.rewrite.find(path); rw != m_opts.rewrite.end()) {
            if (static_cast<uint64_t>(now.st_size) > k_max_rewrite)
                return make_error("\"{}\" is larger than {} bytes", path, k_max_rewrite);
            std::string content(static_cast<size_t>(now.st_size), '\0');
            size_t got = 0;
            while (got < content.size()) {
                ssize_t n = ::read(fd.get(), content.data() + got, content.size() - got);
                if (n < 0 && errno == EINTR) continue;
                if (n < 0) return sys_error(errno, fmt::format("read \"{}\"", path));
                if (n == 0) break;
                got += static_cast<size_t>(n);
            }
            content.resize(got);
            std::string out = rw->second(content);
            archive_entry_set_size(e.get(), static_cast<la_int64_t>(out.size()));
            TRY(header(e.get(), path));
            if (!out.empty() &&
                archive_write_data(m_tar, out.data(), out.size()) != static_cast<la_ssize_t>(out.size()))
                return tar_error(path, "write");
            return {};
        }
        archive_entry_set_size(e.get(), now.st_size);
        TRY(header(e.get(), path));
        return file_data(fd.get(), static_cast<uint64_t>(now.st_size), path);
    }
    if (S_ISLNK(st.st_mode)) {
        std::string target(k_max_link, '\0');
        ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
        if (n < 0) return sys_error(errno, fmt::format("read link \"{}\"", path));
        if (static_cast<size_t>(n) == target.size()) return make_error("\"{}\": link target too long", path);
        target.resize(static_cast<size_t>(n));
        ArchiveEntry e = entry_for(st, path);
        archive_entry_set_filetype(e.get(), AE_IFLNK);
        archive_entry_set_symlink(e.get(), target.c_str());
        return header(e.get(), path);
    }
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
        ArchiveEntry e = entry_for(st, path);
        archive_entry_set_filetype(e.get(), st.st_mode & S_IFMT);
        if (!S_ISFIFO(st.st_mode)) {
            archive_entry_set_rdevmajor(e.get(), major(st.st_rdev));
            archive_entry_set_rdevminor(e.get(), minor(st.st_rdev));
        }
        return header(e.get(), path);
    }
    log::debug("layer: socket \"{}\" left out", path); // sockets have no place in a tar
    return {};
}

// Takes out of a tree what write_layer() leaves out of its tar, so that the tree equals the layer's unpack.
class Trimmer {
public:
    explicit Trimmer(const LayerWriteOptions& o) : m_opts(o) {}
    Result<void> root(int fd) {
        TRY(strip_xattrs(fd, "."));
        if (::fchmod(fd, 0755) != 0) return sys_error(errno, "chmod the layer root"); // as its tar entry
        return directory(fd, "", 0);
    }

private:
    Result<void> directory(int dirfd, const std::string& rel, size_t depth) {
        if (depth > k_max_depth) return make_error("\"{}\": directories nested more than {} deep", rel, k_max_depth);
        struct stat self {};
        if (::fstat(dirfd, &self) != 0) return sys_error(errno, fmt::format("stat \"{}\"", rel));
        bool removed = false;
        for (const auto& n : TRY(fs::list_dir(dirfd))) {
            std::string path = rel.empty() ? n : rel + "/" + n;
            struct stat st {};
            if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
                return sys_error(errno, fmt::format("stat \"{}\"", path));
            if (S_ISSOCK(st.st_mode) || is_excluded(m_opts, path)) {
                TRY(fs::remove_tree_at(dirfd, n));
                removed = true;
                continue;
            }
            if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) continue; // only these carry xattrs in a layer
            int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0);
            UniqueFd fd(::openat(dirfd, n.c_str(), flags));
            if (!fd.valid()) return sys_error(errno, fmt::format("open \"{}\"", path));
            TRY(strip_xattrs(fd.get(), path));
            if (S_ISDIR(st.st_mode)) TRY(directory(fd.get(), path, depth + 1));
        }
        if (removed) { // the unpacked directory never had the entry: its time is the one the tar gives
            struct timespec t[2] = {self.st_atim, self.st_mtim};
            if (::futimens(dirfd, t) != 0) return sys_error(errno, fmt::format("set the time of \"{}\"", rel));
        }
        return {};
    }

    // Overlay's bookkeeping (origin, impure, ...) goes, but for the opaque mark unpack sets again; so do
    // attributes too large for the writer.
    Result<void> strip_xattrs(int fd, const std::string& path) {
        m_names.resize(k_max_xattr);
        m_value.resize(k_max_xattr);
        ssize_t len = ::flistxattr(fd, m_names.data(), m_names.size());
        if (len < 0 && errno == ERANGE) return make_error("\"{}\": too many extended attributes", path);
        for (size_t off = 0; len > 0 && off < static_cast<size_t>(len);) {
            std::string n = m_names.c_str() + off;
            off += n.size() + 1;
            ssize_t vlen = ::fgetxattr(fd, n.c_str(), m_value.data(), m_value.size());
            bool opaque = n == "user.overlay.opaque" && vlen == 1 && m_value[0] == 'y';
            if ((is_overlay_xattr(n) && !opaque) || (vlen < 0 && errno == ERANGE))
                if (::fremovexattr(fd, n.c_str()) != 0 && errno != ENODATA)
                    return sys_error(errno, fmt::format("\"{}\": remove xattr {}", path, n));
        }
        return {};
    }

    const LayerWriteOptions& m_opts;
    std::string m_names, m_value;
};

} // namespace

Result<void> trim_to_layer(int root_fd, const LayerWriteOptions& opts) {
    if (!opts.rewrite.empty()) return make_error("a layer with rewritten files is not its tree");
    return Trimmer(opts).root(root_fd);
}

Result<WrittenLayer> write_layer(int root_fd, int out_fd, const LayerWriteOptions& opts) {
    BlobSink blob;
    blob.fd = out_fd;
    ParallelGzip gz(opts.compression_level, [&](const void* p, size_t n) { return blob.write(p, n); });

    TarSink sink;
    sink.gz = &gz;
    sink.limit = opts.max_size;
    ArchiveWriter tar(archive_write_new());
    archive_write_set_format_pax_restricted(tar.get());
    archive_write_set_bytes_per_block(tar.get(), 10240);
    archive_write_set_bytes_in_last_block(tar.get(), 1); // the end-of-archive blocks, no record padding
    if (archive_write_open(tar.get(), &sink, nullptr, tar_write, nullptr) != ARCHIVE_OK)
        return make_error("start the layer: {}", archive_error_string(tar.get()));
    Walker w(tar.get(), sink, opts);
    TRY(w.root(root_fd));
    if (archive_write_close(tar.get()) != ARCHIVE_OK)
        return make_error("finish the layer: {}",
                          sink.error.empty() ? archive_error_string(tar.get()) : sink.error);
    if (auto r = gz.finish(); !r) return make_error("finish the layer blob: {}", r.error().message);
    WrittenLayer out;
    out.diff_id = sink.hash.finish();
    out.digest = blob.hash.finish();
    out.size = blob.size;
    out.entries = w.entries();
    return out;
}

Result<WrittenLayer> write_layer_as(const runtime::IdMap& map, const std::string& root,
                                    const std::string& blob_path, const LayerWriteOptions& opts) {
    UniqueFd out(::open(blob_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!out.valid()) return sys_error(errno, fmt::format("create \"{}\"", blob_path));
    ScopeExit drop([&] { (void)::unlink(blob_path.c_str()); });
    // The result comes back over a pipe: the work runs in a forked child when `map` is not the identity.
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return sys_error(errno, "pipe");
    UniqueFd rd(p[0]), wr(p[1]);
    // Opened here and reopened through /proc in the namespace: its root may not search the directories
    // above (root's data directory is 0700 and host root is not mapped there).
    UniqueFd path_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!path_fd.valid()) return sys_error(errno, fmt::format("open \"{}\"", root));
    auto r = runtime::run_as_mapped_root(map, [&]() -> Result<void> {
        std::string via = fmt::format("/proc/self/fd/{}", path_fd.get());
        UniqueFd dir(::open(via.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!dir.valid()) return sys_error(errno, fmt::format("open \"{}\"", root));
        WrittenLayer l = TRY(write_layer(dir.get(), out.get(), opts));
        if (::fsync(out.get()) != 0) return sys_error(errno, "fsync the layer blob");
        if (opts.trim_tree) TRY(trim_to_layer(dir.get(), opts));
        std::string line = fmt::format("{} {} {} {}\n", l.digest.str(), l.size, l.diff_id.str(), l.entries);
        if (::write(wr.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()))
            return sys_error(errno, "report the layer");
        return {};
    });
    wr.reset();
    if (!r) return std::move(r).error();
    char buf[256] = {};
    ssize_t n = ::read(rd.get(), buf, sizeof buf - 1);
    if (n <= 0) return make_error("the layer writer ended without a result");
    char digest[128] = {}, diff_id[128] = {};
    unsigned long long size = 0, entries = 0;
    if (std::sscanf(buf, "%127s %llu %127s %llu", digest, &size, diff_id, &entries) != 4)
        return make_error("the layer writer sent a malformed result");
    WrittenLayer l;
    l.digest = TRY(oci::parse_digest(digest));
    l.diff_id = TRY(oci::parse_digest(diff_id));
    l.size = size;
    l.entries = entries;
    drop.release();
    return l;
}

} // namespace ctr::store
