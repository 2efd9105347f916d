// SPDX-License-Identifier: MIT
// The image store (SPEC §3): content-addressed blobs, unpacked layers shared by all images, and the
// table of image names. Layout under the data directory:
//   content/sha256/<hex>    blobs, written to tmp/, verified, renamed into place
//   layers/sha256/<hex>     one unpacked tree per layer, keyed by its diff_id (uncompressed digest)
//   images.json             image name -> manifest digest
//   lock                    held for every change to images, layers and names
//   tmp/                    work files of running commands, named after their pid; <pid>-pin-*
//                           list what a running pull has gathered, which GC keeps
//   partial/<hex>           blob downloads in progress or interrupted, resumed by the next pull
#pragma once

#include <sys/stat.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/lock.hpp"
#include "base/result.hpp"
#include "oci/digest.hpp"
#include "oci/image.hpp"
#include "oci/reference.hpp"
#include "runtime/idmap.hpp"
#include "runtime/userns_helper.hpp"

namespace ctr::store {

// $CONTAINER_DATA_DIR, else /var/lib/container for root, else ${XDG_DATA_HOME:-$HOME/.local/share}/container.
std::string data_dir();

struct ImageRecord {
    std::string name;   // normalised reference, "docker.io/library/alpine:latest"
    oci::Digest digest; // manifest digest
    std::string stored; // when it entered the store (RFC 3339)
};

// An image record with its documents read back from the store.
struct Image {
    ImageRecord record;
    oci::Manifest manifest;
    std::string manifest_json;
    oci::ImageConfig config;
    std::string config_json;
    uint64_t size = 0; // manifest + config + layer blobs, as stored
};

class Store {
public:
    // Opens (creating when missing) the store at data_dir(); mode 0700.
    // `light` is for commands that only read machine state (`machine run`): a root store's id checks
    // (ensure_root_ids) are left to the commands that work on layers.
    enum class Open { full, light };
    static Result<Store> open(Open how = Open::full);
    static Result<Store> open_at(const std::string& root);

    const std::string& root() const { return m_root; }
    // The user's keep-id map, read from the password database and /etc/subuid when first needed (only
    // for work on unpacked files, so commands like `machine run` never pay for it).
    Result<runtime::IdMap> id_map() const;
    // For the host's root: makes sure every layer is unpacked under the store's block of root's id pool
    // (recorded in "ids"). Layers unpacked under another map (the identity map of versions before
    // root-run machines got private ids, or an earlier pool) are unpacked again from their blobs, once.
    // Takes the store lock when it has work to do. A no-op for other users.
    Result<void> ensure_root_ids();

    // Serialises changes to images, layers and names. Also clears work files of dead commands.
    Result<FileLock> lock();

    std::string blob_path(const oci::Digest& d) const;
    std::string layer_path(const oci::Digest& diff_id) const;
    bool has_blob(const oci::Digest& d) const;
    bool has_layer(const oci::Digest& diff_id) const;
    // A fresh work directory in tmp/ (removed by the caller, or by a later lock() if the caller dies).
    Result<std::string> make_work_dir(const std::string& purpose);

    // Moves `path` into the content store after hashing it; fails (leaving `path`) when `expected` is
    // given and differs, or when `expected_size` (>= 0) differs.
    Result<oci::Digest> put_blob_file(const std::string& path, const std::optional<oci::Digest>& expected,
                                      int64_t expected_size = -1);
    Result<oci::Digest> put_blob_data(std::string_view data);
    // Where a download of blob `d` accumulates until it is complete (kept across failed pulls).
    std::string partial_path(const oci::Digest& d) const;
    // Moves a file the caller has already verified to hash to `d` into the content store.
    Result<void> put_verified_blob(const std::string& path, const oci::Digest& d);
    // Reads a blob (a JSON document) and checks it still hashes to its name. A blob of more than
    // `max_size` bytes (oci::k_max_manifest_size, k_max_config_size) fails after reading max_size + 1.
    // Verify::no reads it as it is: for a long-lived process that must not load libcrypto (its relocated
    // data alone is 0.4 MiB per process) and reads blobs that were verified when they entered the store.
    enum class Verify { yes, no };
    Result<std::string> read_blob(const oci::Digest& d, size_t max_size, Verify verify = Verify::yes) const;

    // Unpacks the blob `layer` into layers/<diff_id> unless that layer is already there. The uncompressed
    // stream must hash to `diff_id` and stay within max_layer_size(); on any failure nothing is left
    // under layers/. Several threads may call it at once only after start_layer_helper().
    Result<void> add_layer(const oci::Descriptor& layer, const oci::Digest& diff_id);
    // The directory `tree` (on the store's file system, owned by the store's ids, and equal to the
    // unpack of the layer `diff_id`: trim_to_layer() of the tree write_layer just wrote) becomes
    // layers/<diff_id> by a rename, where unpacking would write it again. Left in place when that layer
    // is there already: the caller removes it with its work directory.
    Result<void> adopt_layer(const std::string& tree, const oci::Digest& diff_id);
    // From now on layers are unpacked and removed by workers of a helper process in the user namespace
    // (runtime/userns_helper.hpp) instead of children forked from this process, which is unsafe once it
    // has threads. Call while single-threaded; the helper ends with the last copy of this Store.
    Result<void> start_layer_helper();

    // Checks the manifest's blobs are all present and its layers unpacked, then names it.
    Result<void> add_image(const std::string& name, const oci::Digest& manifest_digest);

    Result<std::vector<ImageRecord>> list() const;
    Result<Image> get(const ImageRecord& rec, Verify verify = Verify::yes) const;
    // Looks an image up by reference ("alpine", "x:tag"), full digest, or a unique digest prefix of at
    // least 12 hex digits. Fails with "image <text> not found" (errnum ENOENT).
    Result<ImageRecord> find(const std::string& text) const;
    // What a machine of `img` would find at `path` (relative to its root): resolved through the
    // unpacked layers as overlayfs merges them (whiteouts, opaque directories), following symbolic
    // links inside the image (absolute ones from the image's root). Nothing when the path does not
    // resolve; an error only when a layer cannot be read.
    Result<std::optional<struct stat>> lookup(const Image& img, const std::string& path) const;
    Result<void> tag(const ImageRecord& src, const std::string& dst_name);
    Result<void> remove_name(const std::string& name);
    // Deletes blobs and layers that no image name and none of `in_use` (manifest digests of images
    // machines were made from) needs any more, nor any pin of a live command.
    Result<void> collect_garbage(const std::vector<oci::Digest>& in_use = {});

    // Keeps blobs and layers from garbage collection while a command that does not hold the lock (a
    // pull) gathers them: the digests (of blobs or of layers) are written to a pin file in tmp/ named
    // after this process, which GC honours while the process lives. Each call replaces the pin's list;
    // the destructor removes the file.
    class Pin {
    public:
        explicit Pin(Store& s) : m_store(&s) {}
        Pin(const Pin&) = delete;
        Pin& operator=(const Pin&) = delete;
        ~Pin();
        Result<void> set(const std::vector<oci::Digest>& digests);

    private:
        Store* m_store;
        std::string m_path;
    };

private:
    explicit Store(std::string root) : m_root(std::move(root)) {}
    Result<void> write_records(const std::vector<ImageRecord>& recs);
    Result<void> remove_owned_tree(const std::string& path);
    // Runs a layer request (unpack or remove, see store.cpp) as root of the user namespace.
    Result<void> layer_work(const std::string& request, int fd);

    std::string m_root;
    mutable std::optional<runtime::IdMap> m_map;
    std::shared_ptr<runtime::UsernsHelper> m_helper;
    // layers/sha256 as an open directory, so the unpacker's namespace reaches it through
    // /proc/self/fd/N without search permission on the directories above (root's home, for root).
    Result<std::string> layers_dir_for_helper();
    std::shared_ptr<UniqueFd> m_layers_fd;
};

std::string now_rfc3339();

} // namespace ctr::store
