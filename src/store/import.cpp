// SPDX-License-Identifier: MIT
// `image import`: a root filesystem tarball becomes a one-layer image. The tarball is stored as given
// (plain, gzip or zstd) and becomes the layer blob; the config and manifest are written here.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/fs.hpp"
#include "store/archive.hpp"
#include "store/image_writer.hpp"
#include "store/libarchive.hpp"
#include "store/unpack.hpp"

namespace ctr::store {

using nlohmann::json;

namespace {

Result<void> copy_file(const std::string& from, const std::string& to) {
    UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in.valid()) return sys_error(errno, fmt::format("open \"{}\"", from));
    struct stat st {};
    if (::fstat(in.get(), &st) != 0) return sys_error(errno, fmt::format("stat \"{}\"", from));
    if (!S_ISREG(st.st_mode)) return make_error("\"{}\" is not a regular file", from);
    UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!out.valid()) return sys_error(errno, fmt::format("create \"{}\"", to));
    TRY(fs::copy_fd(in.get(), out.get(), from, to));
    if (::fsync(out.get()) != 0) return sys_error(errno, fmt::format("fsync \"{}\"", to));
    return {};
}

const char* layer_media_type(const std::string& path) {
    unsigned char m[4] = {};
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.valid() && ::read(fd.get(), m, 4) == 4) {
        if (m[0] == 0x1f && m[1] == 0x8b) return oci::media::k_oci_layer_gzip;
        if (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) return oci::media::k_oci_layer_zstd;
    }
    return oci::media::k_oci_layer;
}

} // namespace

Result<oci::Digest> import_rootfs(Store& store, const std::string& file, const std::string& name) {
    std::string work = TRY(store.make_work_dir("import"));
    ScopeExit cleanup([&] { (void)fs::remove_tree(work); }); // a later lock() removes leftovers
    std::string blob = work + "/layer";
    TRY(copy_file(file, blob));
    auto diff_id = tar_diff_id(blob, TRY(max_layer_size()));
    if (!diff_id) {
        if (diff_id.error().errnum == EFBIG) return wrap(std::move(diff_id).error(), fmt::format("\"{}\"", file));
        if (const char* c = unsupported_compression(blob))
            return make_error("\"{}\" is compressed with {}: import takes tar, tar.gz or tar.zst", file, c);
        return make_error("\"{}\" is not a root filesystem tarball (tar, tar.gz or tar.zst)", file);
    }
    oci::Descriptor layer;
    layer.media_type = layer_media_type(blob);
    uint64_t size = 0;
    layer.digest = TRY(oci::sha256_file(blob, &size));
    layer.size = static_cast<int64_t>(size);
    if (!store.has_blob(layer.digest)) TRY(store.put_blob_file(blob, layer.digest));
    TRY(store.add_layer(layer, *diff_id));

    oci::Platform p = oci::host_platform();
    std::string created = now_rfc3339();
    json config = {{"created", created},
                   {"architecture", p.architecture},
                   {"os", p.os},
                   {"config", {{"Cmd", {"/sbin/init"}}}},
                   {"rootfs", {{"type", "layers"}, {"diff_ids", {diff_id->str()}}}},
                   {"history", {{{"created", created}, {"created_by", "container image import"}}}}};
    if (!p.variant.empty()) config["variant"] = p.variant;
    return name_image(store, name, config.dump(), {layer});
}

} // namespace ctr::store
