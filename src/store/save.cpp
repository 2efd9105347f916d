// SPDX-License-Identifier: MIT
// `image save`: the named images as one OCI image layout archive (oci-layout, index.json, blobs/).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>


#include <ctime>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "base/fs.hpp"
#include "store/archive.hpp"
#include "store/libarchive.hpp"

namespace ctr::store {

using nlohmann::json;

namespace {

Result<void> add_entry(struct archive* a, const std::string& name, mode_t type, int64_t size) {
    ArchiveEntry e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), type);
    archive_entry_set_perm(e.get(), type == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_size(e.get(), type == AE_IFDIR ? 0 : size);
    archive_entry_set_mtime(e.get(), std::time(nullptr), 0);
    if (archive_write_header(a, e.get()) != ARCHIVE_OK)
        return make_error("write archive entry \"{}\": {}", name, archive_error_string(a));
    return {};
}

Result<void> add_data(struct archive* a, const std::string& name, std::string_view data) {
    TRY(add_entry(a, name, AE_IFREG, static_cast<int64_t>(data.size())));
    if (archive_write_data(a, data.data(), data.size()) < 0)
        return make_error("write archive entry \"{}\": {}", name, archive_error_string(a));
    return {};
}

Result<void> add_file(struct archive* a, const std::string& name, const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return sys_error(errno, fmt::format("open \"{}\"", path));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return sys_error(errno, fmt::format("stat \"{}\"", path));
    TRY(add_entry(a, name, AE_IFREG, st.st_size));
    char buf[1 << 16];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return sys_error(errno, fmt::format("read \"{}\"", path));
        if (n == 0) return {};
        if (archive_write_data(a, buf, static_cast<size_t>(n)) < 0)
            return make_error("write archive entry \"{}\": {}", name, archive_error_string(a));
    }
}

} // namespace

Result<void> save_archive(const Store& store, const std::vector<ImageRecord>& images,
                          const std::string& file) {
    std::string tmp = file + ".tmp-XXXXXX";
    UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!fd.valid()) return sys_error(errno, fmt::format("create \"{}\"", tmp));
    ScopeExit cleanup([&] { (void)::unlink(tmp.c_str()); }); // the temp name is ours alone

    ArchiveWriter a(archive_write_new());
    archive_write_set_format_pax_restricted(a.get());
    if (archive_write_open_fd(a.get(), fd.get()) != ARCHIVE_OK)
        return make_error("write \"{}\": {}", file, archive_error_string(a.get()));

    json manifests = json::array();
    std::set<std::string> written;
    TRY(add_data(a.get(), "oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
    TRY(add_entry(a.get(), "blobs", AE_IFDIR, 0));
    TRY(add_entry(a.get(), "blobs/sha256", AE_IFDIR, 0));
    for (const auto& rec : images) {
        Image img = TRY(store.get(rec));
        std::vector<oci::Digest> blobs = {rec.digest, img.manifest.config.digest};
        for (const auto& l : img.manifest.layers)
            blobs.push_back(l.digest);
        for (const auto& d : blobs) {
            if (!written.insert(d.hex).second) continue;
            if (!store.has_blob(d))
                return make_error("image {}: blob {} is missing from the store", rec.name, d.str());
            TRY(add_file(a.get(), "blobs/sha256/" + d.hex, store.blob_path(d)));
        }
        oci::Descriptor desc;
        desc.media_type = img.manifest.media_type;
        desc.digest = rec.digest;
        desc.size = static_cast<int64_t>(img.manifest_json.size());
        desc.annotations["org.opencontainers.image.ref.name"] = rec.name;
        desc.annotations["io.containerd.image.name"] = rec.name;
        manifests.push_back(oci::descriptor_to_json(desc));
    }
    json index = {{"schemaVersion", 2}, {"mediaType", oci::media::k_oci_index}, {"manifests", manifests}};
    TRY(add_data(a.get(), "index.json", index.dump()));
    if (archive_write_close(a.get()) != ARCHIVE_OK)
        return make_error("write \"{}\": {}", file, archive_error_string(a.get()));
    if (::fsync(fd.get()) != 0) return sys_error(errno, fmt::format("fsync \"{}\"", tmp));
    if (::fchmod(fd.get(), 0644) != 0) return sys_error(errno, fmt::format("chmod \"{}\"", tmp));
    if (::rename(tmp.c_str(), file.c_str()) != 0)
        return sys_error(errno, fmt::format("rename \"{}\" to \"{}\"", tmp, file));
    cleanup.release();
    return {};
}

} // namespace ctr::store
