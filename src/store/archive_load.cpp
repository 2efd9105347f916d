// SPDX-License-Identifier: MIT
// `image load`: unpack the archive's files into a work directory, then verify and move each blob into
// the content store, unpack layers, and name the images last so a failure leaves the table untouched.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>


#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "base/fs.hpp"
#include "base/log.hpp"
#include "base/size.hpp"
#include "store/archive.hpp"
#include "store/libarchive.hpp"

namespace ctr::store {

using nlohmann::json;

namespace {

struct Staged {
    std::string dir;
    std::map<std::string, std::string> symlinks; // archive path -> link target
};

// Archive paths we accept: relative, no "..", normalised ("./a//b" -> "a/b").
Result<std::string> clean_path(const std::string& name) {
    std::string out;
    size_t start = 0;
    while (start <= name.size()) {
        size_t slash = name.find('/', start);
        std::string p = name.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
        if (p == ".." || (start == 0 && p.empty() && !name.empty() && name[0] == '/'))
            return make_error("archive entry \"{}\" points outside the archive", name);
        if (!p.empty() && p != ".") out += (out.empty() ? "" : "/") + p;
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    return out;
}

Result<void> copy_entry_data(struct archive* a, int fd, const std::string& name) {
    char buf[1 << 16];
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, sizeof buf);
        if (n < 0) return make_error("archive entry \"{}\": {}", name, archive_error_string(a));
        if (n == 0) return {};
        const char* p = buf;
        size_t left = static_cast<size_t>(n);
        while (left > 0) {
            ssize_t w = ::write(fd, p, left);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) return sys_error(errno, fmt::format("write archive entry \"{}\"", name));
            p += w;
            left -= static_cast<size_t>(w);
        }
    }
}

Result<void> stage(const std::string& file, Staged& st) {
    ArchiveReader a(archive_read_new());
    TRY(support_store_filters(a.get()));
    archive_read_support_format_tar(a.get());
    auto not_an_archive = [&] {
        if (const char* c = unsupported_compression(file))
            return make_error("\"{}\" is compressed with {}: image load takes a tar, plain or compressed "
                              "with gzip or zstd",
                              file, c);
        return make_error("\"{}\" is not an image archive: {}", file, archive_error_string(a.get()));
    };
    if (archive_read_open_filename(a.get(), file.c_str(), 1 << 16) != ARCHIVE_OK) {
        int err = archive_errno(a.get());
        if (err == ENOENT || err == EACCES || err == EISDIR)
            return sys_error(err, fmt::format("open \"{}\"", file));
        return not_an_archive();
    }
    size_t entries = 0;
    for (;;) {
        struct archive_entry* e = nullptr;
        int r = archive_read_next_header(a.get(), &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) {
            if (entries == 0) return not_an_archive();
            return make_error("\"{}\" is damaged: {}", file, archive_error_string(a.get()));
        }
        ++entries;
        std::string path = TRY(clean_path(archive_entry_pathname(e) ? archive_entry_pathname(e) : ""));
        if (path.empty()) continue;
        mode_t type = archive_entry_filetype(e);
        if (type == AE_IFDIR) continue;
        if (type == AE_IFLNK) {
            st.symlinks[path] = archive_entry_symlink(e) ? archive_entry_symlink(e) : "";
            continue;
        }
        if (archive_entry_hardlink(e)) {
            std::string target = TRY(clean_path(archive_entry_hardlink(e)));
            st.symlinks[path] = "/" + target; // resolved from the archive root
            continue;
        }
        if (type != AE_IFREG) return make_error("archive entry \"{}\" is not a regular file", path);
        auto slash = path.rfind('/');
        if (slash != std::string::npos) TRY(fs::make_dirs(st.dir + "/" + path.substr(0, slash), 0700));
        std::string dst = st.dir + "/" + path;
        UniqueFd fd(::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd.valid()) {
            if (errno == EEXIST) return make_error("archive entry \"{}\" appears twice", path);
            return sys_error(errno, fmt::format("create \"{}\"", dst));
        }
        TRY(copy_entry_data(a.get(), fd.get(), path));
    }
    if (entries == 0) return make_error("\"{}\" is not an image archive: it is empty", file);
    return {};
}

// One of the archive's own JSON files ("index.json"), read whole only when it is at most `max_size`.
Result<std::string> read_document(const Staged& st, const std::string& name, size_t max_size) {
    auto text = fs::read_file(st.dir + "/" + name, max_size);
    if (!text && text.error().errnum == EFBIG)
        return make_error("the archive's {} is larger than {}, the most it may be", name,
                          format_limit(max_size));
    return text;
}

// Follows archive symlinks (docker save links repeated layers) to a staged file path.
Result<std::string> staged_file(const Staged& st, const std::string& archive_path) {
    std::string p = TRY(clean_path(archive_path));
    for (int hops = 0; hops < 16; ++hops) {
        auto it = st.symlinks.find(p);
        if (it == st.symlinks.end()) {
            std::string full = st.dir + "/" + p;
            if (!fs::exists(full)) {
                if (hops == 0) return make_error("the archive has no file \"{}\"", p);
                return make_error("the archive's \"{}\" links to \"{}\", which is not in the archive",
                                  archive_path, p);
            }
            return full;
        }
        std::string target = it->second;
        if (!target.empty() && target[0] == '/')
            target = target.substr(1);
        else {
            auto slash = p.rfind('/');
            target = (slash == std::string::npos ? "" : p.substr(0, slash + 1)) + target;
        }
        p = TRY(clean_path(target));
    }
    return make_error("the archive's link \"{}\" loops", archive_path);
}

// Moves a staged blob into the store after checking digest and size; a blob seen before is checked once.
Result<void> take_blob(Store& store, const Staged& st, const oci::Descriptor& d) {
    if (store.has_blob(d.digest)) {
        struct stat sb {};
        if (::stat(store.blob_path(d.digest).c_str(), &sb) == 0 && sb.st_size != d.size)
            return make_error("blob {} has {} bytes, its descriptor says {}", d.digest.str(), sb.st_size,
                              d.size);
        return {};
    }
    std::string path = TRY(staged_file(st, "blobs/sha256/" + d.digest.hex));
    TRY(store.put_blob_file(path, d.digest, d.size));
    return {};
}

Result<oci::Digest> take_manifest(Store& store, const Staged& st, const oci::Descriptor& desc) {
    oci::Descriptor mdesc = desc;
    if (oci::is_index_type(desc.media_type)) {
        TRY(take_blob(store, st, desc));
        oci::Index idx = TRY(oci::parse_index(TRY(store.read_blob(desc.digest, oci::k_max_manifest_size))));
        oci::Platform want = oci::host_platform();
        auto it = std::find_if(idx.manifests.begin(), idx.manifests.end(), [&](const oci::Descriptor& m) {
            return m.platform && oci::platform_matches(want, *m.platform);
        });
        if (it == idx.manifests.end())
            return make_error("the archive's image index has no {} image", want.str());
        mdesc = *it;
    } else if (!oci::is_manifest_type(desc.media_type)) {
        return make_error("unsupported media type \"{}\" in index.json", desc.media_type);
    }
    TRY(take_blob(store, st, mdesc));
    oci::Manifest m = TRY(oci::parse_manifest(TRY(store.read_blob(mdesc.digest, oci::k_max_manifest_size))));
    TRY(take_blob(store, st, m.config));
    oci::ImageConfig cfg = TRY(oci::parse_config(TRY(store.read_blob(m.config.digest, oci::k_max_config_size))));
    if (cfg.diff_ids.size() != m.layers.size())
        return make_error("image config lists {} layers, the manifest {}", cfg.diff_ids.size(),
                          m.layers.size());
    for (size_t i = 0; i < m.layers.size(); ++i) {
        TRY(take_blob(store, st, m.layers[i]));
        TRY(store.add_layer(m.layers[i], cfg.diff_ids[i]));
    }
    return mdesc.digest;
}

// OCI ref.name annotations are often only a tag; then the archive's file name supplies the repository.
Result<std::string> oci_image_name(const oci::Descriptor& d, const std::string& file) {
    std::string name;
    if (auto it = d.annotations.find("io.containerd.image.name"); it != d.annotations.end())
        name = it->second;
    else if (auto r = d.annotations.find("org.opencontainers.image.ref.name"); r != d.annotations.end())
        name = r->second;
    std::string stem = file.substr(file.rfind('/') == std::string::npos ? 0 : file.rfind('/') + 1);
    stem = stem.substr(0, stem.find('.'));
    if (name.find_first_of(":/@") == std::string::npos) {
        std::string tag = name.empty() ? "latest" : name;
        name = "localhost/" + stem + ":" + tag;
    }
    auto ref = oci::parse_reference(name);
    if (!ref) return wrap(std::move(ref).error(), "image name in the archive");
    return ref->str();
}

Result<std::vector<std::pair<std::string, oci::Digest>>> load_oci(Store& store, const Staged& st,
                                                                  const std::string& file) {
    std::string text = TRY(read_document(st, "index.json", oci::k_max_manifest_size));
    auto kind = oci::document_kind(text);
    if (!kind) return wrap(std::move(kind).error(), "index.json");
    oci::Index idx = TRY(oci::parse_index(text));
    if (idx.manifests.empty()) return make_error("index.json lists no images");
    std::vector<std::pair<std::string, oci::Digest>> out;
    for (const auto& d : idx.manifests) {
        std::string name = TRY(oci_image_name(d, file));
        oci::Digest digest = TRY(take_manifest(store, st, d));
        out.emplace_back(name, digest);
    }
    return out;
}

Result<std::vector<std::pair<std::string, oci::Digest>>> load_docker(Store& store, const Staged& st) {
    std::string text = TRY(read_document(st, "manifest.json", oci::k_max_manifest_size));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_array())
        return make_error("manifest.json is not a docker save manifest list");
    std::vector<std::pair<std::string, oci::Digest>> out;
    for (const auto& item : j) {
        if (!item.is_object() || !item.contains("Config") || !item["Config"].is_string() ||
            !item.contains("Layers") || !item["Layers"].is_array())
            return make_error("manifest.json: an entry lacks Config or Layers");
        oci::Manifest m;
        m.media_type = oci::media::k_oci_manifest;
        std::string cfg_path = TRY(staged_file(st, item["Config"].get<std::string>()));
        uint64_t cfg_size = 0;
        m.config.digest = TRY(oci::sha256_file(cfg_path, &cfg_size));
        m.config.size = static_cast<int64_t>(cfg_size);
        m.config.media_type = oci::media::k_oci_config;
        if (!store.has_blob(m.config.digest)) TRY(store.put_blob_file(cfg_path, m.config.digest));
        oci::ImageConfig cfg = TRY(oci::parse_config(TRY(store.read_blob(m.config.digest, oci::k_max_config_size))));
        if (cfg.diff_ids.size() != item["Layers"].size())
            return make_error("image config lists {} layers, manifest.json {}", cfg.diff_ids.size(),
                              item["Layers"].size());
        size_t i = 0;
        for (const auto& l : item["Layers"]) {
            if (!l.is_string()) return make_error("manifest.json: a layer path is not a string");
            std::string path = TRY(staged_file(st, l.get<std::string>()));
            oci::Descriptor d;
            uint64_t size = 0;
            d.digest = TRY(oci::sha256_file(path, &size));
            d.size = static_cast<int64_t>(size);
            unsigned char magic[4] = {};
            UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
            if (fd.valid() && ::read(fd.get(), magic, 4) == 4) {
                if (magic[0] == 0x1f && magic[1] == 0x8b)
                    d.media_type = oci::media::k_oci_layer_gzip;
                else if (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd)
                    d.media_type = oci::media::k_oci_layer_zstd;
            }
            if (d.media_type.empty()) d.media_type = oci::media::k_oci_layer;
            if (!store.has_blob(d.digest)) TRY(store.put_blob_file(path, d.digest));
            TRY(store.add_layer(d, cfg.diff_ids[i++]));
            m.layers.push_back(d);
        }
        oci::Digest md = TRY(store.put_blob_data(oci::manifest_to_json(m)));
        if (!item.contains("RepoTags") || !item["RepoTags"].is_array() || item["RepoTags"].empty())
            return make_error("an image in manifest.json has no name (RepoTags is empty)");
        for (const auto& t : item["RepoTags"]) {
            if (!t.is_string()) return make_error("manifest.json: a RepoTags entry is not a string");
            auto ref = oci::parse_reference(t.get<std::string>());
            if (!ref) return wrap(std::move(ref).error(), "image name in manifest.json");
            out.emplace_back(ref->str(), md);
        }
    }
    return out;
}

} // namespace

Result<std::vector<std::string>> load_archive(Store& store, const std::string& file) {
    struct stat sb {};
    if (::stat(file.c_str(), &sb) != 0) return sys_error(errno, fmt::format("open \"{}\"", file));
    if (!S_ISREG(sb.st_mode)) return make_error("\"{}\" is not a regular file", file);
    Staged st;
    st.dir = TRY(store.make_work_dir("load"));
    ScopeExit cleanup([&] { (void)fs::remove_tree(st.dir); }); // a later lock() removes leftovers
    TRY(stage(file, st));
    std::vector<std::pair<std::string, oci::Digest>> images;
    if (fs::exists(st.dir + "/index.json") && fs::exists(st.dir + "/oci-layout")) {
        log::debug("{}: OCI image layout archive", file);
        images = TRY(load_oci(store, st, file));
    } else if (fs::exists(st.dir + "/manifest.json")) {
        log::debug("{}: docker save archive", file);
        images = TRY(load_docker(store, st));
    } else {
        return make_error("\"{}\" is neither an OCI image layout archive nor a docker save archive", file);
    }
    std::vector<std::string> names;
    for (const auto& [name, digest] : images) {
        TRY(store.add_image(name, digest));
        names.push_back(name);
    }
    return names;
}

} // namespace ctr::store
