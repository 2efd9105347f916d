// SPDX-License-Identifier: MIT
// Content store, image names and garbage collection.
#include "store/store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <ctime>
#include <set>

#include <nlohmann/json.hpp>

#include "base/fault.hpp"
#include "base/fs.hpp"
#include "base/log.hpp"
#include "base/size.hpp"
#include "runtime/userns.hpp"
#include "store/unpack.hpp"

namespace ctr::store {

using nlohmann::json;

std::string data_dir() {
    if (const char* d = std::getenv("CONTAINER_DATA_DIR"); d && *d) return d;
    if (::geteuid() == 0) return "/var/lib/container";
    if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::string(x) + "/container";
    const char* home = std::getenv("HOME");
    return std::string(home && *home ? home : "/") + "/.local/share/container";
}

std::string now_rfc3339() {
    std::time_t t = std::time(nullptr);
    struct tm tmv {};
    ::gmtime_r(&t, &tmv);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    return buf;
}

Result<Store> Store::open(Open how) {
    Store s = TRY(open_at(data_dir()));
    if (how == Open::full && ::geteuid() == 0) TRY(s.ensure_root_ids());
    return s;
}

Result<void> Store::ensure_root_ids() {
    if (::geteuid() != 0) return {};
    runtime::IdMap map = TRY(id_map());
    // The unpacker, root of the store's block, reaches layers/sha256/ through these: open to that block's
    // group alone (no host user has those ids).
    gid_t group = map.gids.at(0).outside;
    for (const char* sub : {"", "/layers", "/layers/sha256"}) {
        std::string dir = m_root + sub;
        struct stat st {};
        if (::stat(dir.c_str(), &st) != 0) return sys_error(errno, fmt::format("stat \"{}\"", dir));
        if (st.st_gid == group && (st.st_mode & 07777) == 0710) continue;
        if (::chown(dir.c_str(), 0, group) != 0 || ::chmod(dir.c_str(), 0710) != 0)
            return sys_error(errno, fmt::format("give \"{}\" to the store's ids", dir));
    }
    std::string want = fmt::format("{} {}\n", map.uids.at(0).outside, map.gids.at(0).outside);
    std::string marker = m_root + "/ids";
    if (auto have = fs::read_file(marker); have && *have == want) return {};
    auto held = TRY(lock());
    if (auto have = fs::read_file(marker); have && *have == want) return {};
    // Every unpacked tree goes (they are caches of the blobs), then the named images' layers come back.
    std::string layers = m_root + "/layers/sha256";
    if (DIR* d = ::opendir(layers.c_str())) {
        std::vector<std::string> names;
        while (struct dirent* e = ::readdir(d))
            if (std::string n = e->d_name; n != "." && n != "..") names.push_back(n);
        ::closedir(d);
        for (const auto& n : names)
            TRY(fs::remove_tree(layers + "/" + n));
    }
    for (const auto& rec : TRY(list())) {
        auto img = get(rec);
        if (!img) continue; // a broken image stays broken: `image rm` still removes it
        for (size_t i = 0; i < img->manifest.layers.size() && i < img->config.diff_ids.size(); ++i)
            if (has_blob(img->manifest.layers[i].digest))
                TRY(add_layer(img->manifest.layers[i], img->config.diff_ids[i]));
    }
    return fs::write_file_atomic(marker, want, 0600);
}

Result<Store> Store::open_at(const std::string& root) {
    if (root.empty() || root[0] != '/')
        return make_error("data directory \"{}\" is not an absolute path", root);
    for (const char* sub : {"", "/content/sha256", "/layers/sha256", "/tmp", "/partial"})
        TRY(fs::make_dirs(root + sub, 0700));
    Store s(root);
    // A root store's directories are open to the store's group (ensure_root_ids), not 0700.
    if (::geteuid() != 0 && ::chmod(root.c_str(), 0700) != 0)
        return sys_error(errno, fmt::format("chmod \"{}\"", root));
    return s;
}

std::string Store::blob_path(const oci::Digest& d) const {
    return m_root + "/content/sha256/" + d.hex;
}
std::string Store::layer_path(const oci::Digest& d) const {
    return m_root + "/layers/sha256/" + d.hex;
}
bool Store::has_blob(const oci::Digest& d) const {
    return fs::exists(blob_path(d));
}
bool Store::has_layer(const oci::Digest& d) const {
    return fs::exists(layer_path(d));
}

Result<std::string> Store::make_work_dir(const std::string& purpose) {
    return fs::make_temp_dir(m_root + "/tmp", fmt::format("{}-{}-", ::getpid(), purpose));
}

namespace {

// Work on unpacked layers, which only root of the user namespace may do: a request is its fields
// joined by NUL (paths may hold any other byte), "unpack" DEST DIFF_ID MAX_SIZE with the blob as `fd`,
// "remove" PATH, or "adopt" NAME DEST with NAME's directory as `fd`. Runs in a forked child: `fd` is
// owned here.
std::string layer_request(std::initializer_list<std::string> fields) {
    std::string out;
    for (const auto& f : fields)
        out += f + '\0';
    return out;
}

Result<void> do_layer_work(const std::string& request, int fd) {
    UniqueFd given(fd);
    std::vector<std::string> f;
    for (size_t i = 0, j; i < request.size(); i = j + 1) {
        j = request.find('\0', i);
        if (j == std::string::npos) j = request.size();
        f.push_back(request.substr(i, j - i));
    }
    if (f.size() == 4 && f[0] == "unpack" && given.valid()) {
        oci::Digest diff_id = TRY(oci::parse_digest(f[2]));
        auto u = unpack_layer(given.get(), f[1], diff_id, std::strtoull(f[3].c_str(), nullptr, 10));
        if (!u) (void)fs::remove_tree(f[1]); // the caller retries; the error that matters is the unpack one
        return u;
    }
    if (f.size() == 2 && f[0] == "remove") return fs::remove_tree(f[1]);
    // A directory moved to another parent must be writable by the mover (its ".." changes): root of the
    // namespace, which owns it. Both sides are named through fds of the caller's mounts: the helper's
    // mount namespace has mounts of its own, and rename() does not cross mounts.
    if (f.size() == 3 && f[0] == "adopt" && given.valid()) {
        std::string from = fmt::format("/proc/self/fd/{}/{}", given.get(), f[1]);
        if (::rename(from.c_str(), f[2].c_str()) == 0 || errno == ENOTEMPTY || errno == EEXIST) return {};
        return sys_error(errno, fmt::format("rename \"{}\" to \"{}\"", f[1], f[2]));
    }
    return make_error("invalid layer request");
}

} // namespace

Result<std::string> Store::layers_dir_for_helper() {
    if (!m_layers_fd) {
        std::string dir = m_root + "/layers/sha256";
        UniqueFd fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!fd.valid()) return sys_error(errno, fmt::format("open \"{}\"", dir));
        m_layers_fd = std::make_shared<UniqueFd>(std::move(fd));
    }
    return fmt::format("/proc/self/fd/{}", m_layers_fd->get());
}

Result<void> Store::start_layer_helper() {
    if (m_helper) return {};
    TRY(layers_dir_for_helper()); // open before the fork: the helper and its workers inherit it
    runtime::IdMap map = TRY(id_map());
    m_helper = std::make_shared<runtime::UsernsHelper>(TRY(runtime::UsernsHelper::start(map, do_layer_work)));
    return {};
}

Result<void> Store::layer_work(const std::string& request, int fd) {
    if (m_helper) return m_helper->call(request, fd);
    runtime::IdMap map = TRY(id_map());
    return runtime::run_as_mapped_root(map, [&] {
        return do_layer_work(request, fd >= 0 ? ::fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1);
    });
}

Result<void> Store::remove_owned_tree(const std::string& path) {
    if (::geteuid() == 0) return fs::remove_tree(path); // the host's root may remove any id's files
    // Unpacked trees belong to the mapped ids; only root of the user namespace may delete them.
    return layer_work(layer_request({"remove", path}), -1);
}

Result<runtime::IdMap> Store::id_map() const {
    if (!m_map) m_map = TRY(runtime::current_user_idmap());
    return *m_map;
}

Result<FileLock> Store::lock() {
    FileLock l = TRY(FileLock::acquire(m_root + "/lock"));
    // Work files are named "<pid>-…" (tmp/) or "tmp-<pid>-…" (layers/sha256/); clear those of dead commands.
    for (const auto& [dir, prefix] :
         {std::pair{m_root + "/tmp", ""}, std::pair{m_root + "/layers/sha256", "tmp-"}}) {
        DIR* d = ::opendir(dir.c_str());
        if (!d) continue;
        std::vector<std::string> stale;
        while (struct dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            // Only work-file names: a layer directory's hex name can start with digits too.
            if (n.rfind(prefix, 0) != 0 || n.find('-', std::string(prefix).size()) == std::string::npos)
                continue;
            std::string num = n.substr(std::string(prefix).size());
            if (num.empty() || !std::isdigit(static_cast<unsigned char>(num[0]))) continue;
            pid_t pid = static_cast<pid_t>(std::atol(num.c_str()));
            if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) stale.push_back(dir + "/" + n);
        }
        ::closedir(d);
        for (const auto& s : stale) {
            log::debug("removing work files of a dead command: {}", s);
            (void)remove_owned_tree(s); // best effort: the next lock() tries again
        }
    }
    return l;
}

Result<oci::Digest> Store::put_blob_file(const std::string& path, const std::optional<oci::Digest>& expected,
                                         int64_t expected_size) {
    uint64_t size = 0;
    oci::Digest d = TRY(oci::sha256_file(path, &size));
    if (expected && d != *expected)
        return make_error("blob {} does not match its digest (content hashes to {})", expected->str(),
                          d.str());
    if (expected_size >= 0 && size != static_cast<uint64_t>(expected_size))
        return make_error("blob {} has {} bytes, its descriptor says {}", d.str(), size, expected_size);
    if (::chmod(path.c_str(), 0644) != 0) return sys_error(errno, fmt::format("chmod \"{}\"", path));
    std::string dst = blob_path(d);
    fault_point("put_blob: verified");
    if (::rename(path.c_str(), dst.c_str()) != 0)
        return sys_error(errno, fmt::format("rename \"{}\" to \"{}\"", path, dst));
    fault_point("put_blob: stored");
    return d;
}

std::string Store::partial_path(const oci::Digest& d) const {
    return m_root + "/partial/" + d.hex;
}

Result<void> Store::put_verified_blob(const std::string& path, const oci::Digest& d) {
    if (::chmod(path.c_str(), 0644) != 0) return sys_error(errno, fmt::format("chmod \"{}\"", path));
    std::string dst = blob_path(d);
    fault_point("put_verified_blob: verified");
    if (::rename(path.c_str(), dst.c_str()) != 0)
        return sys_error(errno, fmt::format("rename \"{}\" to \"{}\"", path, dst));
    fault_point("put_verified_blob: stored");
    return {};
}

Result<oci::Digest> Store::put_blob_data(std::string_view data) {
    oci::Digest d = oci::sha256_of(data);
    if (has_blob(d)) return d;
    TRY(fs::write_file_atomic(blob_path(d), data, 0644));
    return d;
}

Result<std::string> Store::read_blob(const oci::Digest& d, size_t max_size, Verify verify) const {
    auto data = fs::read_file(blob_path(d), max_size);
    if (!data && data.error().errnum == EFBIG)
        return Error{fmt::format("blob {} is larger than {}, the most an image document may be", d.str(),
                                 format_limit(max_size)),
                     EFBIG};
    if (!data) return make_error("blob {} is missing from the store", d.str());
    if (verify == Verify::yes && oci::sha256_of(*data) != d) return make_error("blob {} in the store is corrupt", d.str());
    return std::move(data).value();
}

Result<void> Store::add_layer(const oci::Descriptor& layer, const oci::Digest& diff_id) {
    if (has_layer(diff_id)) return {};
    uint64_t max_size = TRY(max_layer_size());
    std::string blob = blob_path(layer.digest);
    UniqueFd blob_fd(::open(blob.c_str(), O_RDONLY | O_CLOEXEC));
    if (!blob_fd.valid()) return sys_error(errno, fmt::format("open \"{}\"", blob));
    std::string tmp = TRY(fs::make_temp_dir(m_root + "/layers/sha256", fmt::format("tmp-{}-", ::getpid())));
    if (::geteuid() == 0) {
        // A root-run store unpacks as root of the store's block of ids: the directory is that root's.
        runtime::IdMap map = TRY(id_map());
        if (::chown(tmp.c_str(), map.uids.at(0).outside, map.gids.at(0).outside) != 0)
            return sys_error(errno, fmt::format("chown \"{}\"", tmp));
    }
    std::string dest = TRY(layers_dir_for_helper()) + tmp.substr(tmp.rfind('/'));
    auto r = layer_work(layer_request({"unpack", dest, diff_id.str(), std::to_string(max_size)}), blob_fd.get());
    if (!r) {
        (void)remove_owned_tree(tmp); // gone already unless the helper died; a later lock() retries
        return wrap(std::move(r).error(), fmt::format("layer {}", layer.digest.str()));
    }
    std::string dst = layer_path(diff_id);
    fault_point("add_layer: unpacked");
    if (::rename(tmp.c_str(), dst.c_str()) != 0) {
        int err = errno;
        (void)remove_owned_tree(tmp); // same as above
        if (err == ENOTEMPTY || err == EEXIST) return {};
        return sys_error(err, fmt::format("rename \"{}\" to \"{}\"", tmp, dst));
    }
    return {};
}

Result<void> Store::adopt_layer(const std::string& tree, const oci::Digest& diff_id) {
    if (has_layer(diff_id)) return {};
    log::debug("layer {}: the written tree taken as the unpacked layer", diff_id.str());
    fault_point("adopt_layer: before");
    if (::geteuid() == 0) { // the host's root may move any id's directory
        if (::rename(tree.c_str(), layer_path(diff_id).c_str()) == 0 || errno == ENOTEMPTY || errno == EEXIST)
            return {};
        return sys_error(errno, fmt::format("rename \"{}\" to \"{}\"", tree, layer_path(diff_id)));
    }
    auto slash = tree.find_last_of('/');
    if (slash == std::string::npos || slash + 1 == tree.size()) return make_error("\"{}\" is not a tree's path", tree);
    UniqueFd parent(::open(tree.substr(0, slash).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!parent.valid()) return sys_error(errno, fmt::format("open \"{}\"", tree.substr(0, slash)));
    std::string dest = TRY(layers_dir_for_helper()) + "/" + diff_id.hex;
    return layer_work(layer_request({"adopt", tree.substr(slash + 1), dest}), parent.get());
}

Result<std::vector<ImageRecord>> Store::list() const {
    std::string path = m_root + "/images.json";
    if (!fs::exists(path)) return std::vector<ImageRecord>{};
    std::string text = TRY(fs::read_file(path));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("images") || !j["images"].is_object())
        return make_error("\"{}\" is corrupt", path);
    std::vector<ImageRecord> out;
    for (auto& [name, v] : j["images"].items()) {
        if (!v.is_object() || !v.contains("digest") || !v["digest"].is_string())
            return make_error("\"{}\" is corrupt (entry {})", path, name);
        ImageRecord r;
        r.name = name;
        r.digest = TRY(oci::parse_digest(v["digest"].get<std::string>()));
        r.stored = v.contains("stored") && v["stored"].is_string() ? v["stored"].get<std::string>() : "";
        out.push_back(std::move(r));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return out;
}

Result<void> Store::write_records(const std::vector<ImageRecord>& recs) {
    json images = json::object();
    for (const auto& r : recs)
        images[r.name] = {{"digest", r.digest.str()}, {"stored", r.stored}};
    return fs::write_file_atomic(m_root + "/images.json", json{{"images", images}}.dump(2) + "\n", 0600);
}

Result<Image> Store::get(const ImageRecord& rec, Verify verify) const {
    Image img;
    img.record = rec;
    img.manifest_json = TRY(read_blob(rec.digest, oci::k_max_manifest_size, verify));
    img.manifest = TRY(oci::parse_manifest(img.manifest_json));
    img.config_json = TRY(read_blob(img.manifest.config.digest, oci::k_max_config_size, verify));
    img.config = TRY(oci::parse_config(img.config_json));
    img.size = img.manifest_json.size() + static_cast<uint64_t>(img.manifest.config.size);
    for (const auto& l : img.manifest.layers)
        img.size += static_cast<uint64_t>(l.size);
    return img;
}

Result<void> Store::add_image(const std::string& name, const oci::Digest& manifest_digest) {
    Image probe;
    probe.record = {name, manifest_digest, now_rfc3339()};
    Image img = TRY(get(probe.record));
    if (img.config.diff_ids.size() != img.manifest.layers.size())
        return make_error("image {}: config lists {} layers, manifest {}", name, img.config.diff_ids.size(),
                          img.manifest.layers.size());
    for (size_t i = 0; i < img.manifest.layers.size(); ++i) {
        if (!has_blob(img.manifest.layers[i].digest))
            return make_error("image {}: layer {} is missing", name, img.manifest.layers[i].digest.str());
        if (!has_layer(img.config.diff_ids[i]))
            return make_error("image {}: layer {} is not unpacked", name, img.config.diff_ids[i].str());
    }
    std::vector<ImageRecord> recs = TRY(list());
    std::erase_if(recs, [&](const ImageRecord& r) { return r.name == name; });
    recs.push_back(probe.record);
    return write_records(recs);
}

Result<ImageRecord> Store::find(const std::string& text) const {
    std::vector<ImageRecord> recs = TRY(list());
    std::string hex = text.rfind("sha256:", 0) == 0 ? text.substr(7) : text;
    bool hexish = hex.size() >= 12 && hex.size() <= 64 &&
                  hex.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (hexish) {
        std::vector<const ImageRecord*> hits;
        for (const auto& r : recs)
            if (r.digest.hex.rfind(hex, 0) == 0) hits.push_back(&r);
        if (!hits.empty()) {
            // Several names of one image are fine; several images are ambiguous.
            for (const auto* h : hits)
                if (h->digest != hits[0]->digest) return make_error("image ID {} is ambiguous", text);
            return *hits[0];
        }
    }
    auto ref = oci::parse_reference(text);
    if (!ref) return std::move(ref).error();
    for (const auto& r : recs)
        if (r.name == ref->str()) return r;
    return Error{fmt::format("image {} not found", text), ENOENT};
}

Result<void> Store::tag(const ImageRecord& src, const std::string& dst_name) {
    std::vector<ImageRecord> recs = TRY(list());
    std::erase_if(recs, [&](const ImageRecord& r) { return r.name == dst_name; });
    recs.push_back({dst_name, src.digest, now_rfc3339()});
    return write_records(recs);
}

Result<void> Store::remove_name(const std::string& name) {
    std::vector<ImageRecord> recs = TRY(list());
    auto n = std::erase_if(recs, [&](const ImageRecord& r) { return r.name == name; });
    if (n == 0) return make_error("image {} not found", name);
    return write_records(recs);
}

Store::Pin::~Pin() {
    if (!m_path.empty()) (void)::unlink(m_path.c_str()); // else a later lock() removes it (our pid is gone)
}

Result<void> Store::Pin::set(const std::vector<oci::Digest>& digests) {
    if (m_path.empty()) {
        static std::atomic<int> n{0};
        m_path = fmt::format("{}/tmp/{}-pin-{}", m_store->root(), ::getpid(), n++);
    }
    std::string text;
    for (const auto& d : digests)
        text += d.hex + "\n";
    return fs::write_file_atomic(m_path, text, 0600);
}

namespace {

// Digests pinned by live commands (tmp/<pid>-pin-*).
std::set<std::string> pinned(const std::string& root) {
    std::set<std::string> out;
    DIR* d = ::opendir((root + "/tmp").c_str());
    if (!d) return out;
    std::vector<std::string> pins;
    while (struct dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        auto dash = n.find("-pin-");
        if (dash == std::string::npos || dash == 0 || !std::isdigit(static_cast<unsigned char>(n[0])))
            continue;
        pid_t pid = static_cast<pid_t>(std::atol(n.c_str()));
        if (pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM)) pins.push_back(root + "/tmp/" + n);
    }
    ::closedir(d);
    for (const auto& p : pins) {
        auto text = fs::read_file(p);
        if (!text) continue; // its pull ended meanwhile
        size_t i = 0;
        while (i < text->size()) {
            size_t j = text->find('\n', i);
            if (j == std::string::npos) j = text->size();
            out.insert(text->substr(i, j - i));
            i = j + 1;
        }
    }
    return out;
}

} // namespace

Result<void> Store::collect_garbage(const std::vector<oci::Digest>& in_use) {
    std::set<std::string> blobs = pinned(m_root);
    std::set<std::string> layers = blobs;
    std::vector<ImageRecord> roots = TRY(list());
    for (const auto& d : in_use)
        roots.push_back({"(in use by a machine)", d, ""});
    for (const auto& rec : roots) {
        auto img = get(rec);
        if (!img) {
            // Keep what we cannot account for rather than delete something an image may still need.
            log::debug("garbage collection skipped: {}", img.error().message);
            return {};
        }
        blobs.insert(rec.digest.hex);
        blobs.insert(img->manifest.config.digest.hex);
        for (const auto& l : img->manifest.layers)
            blobs.insert(l.digest.hex);
        for (const auto& d : img->config.diff_ids)
            layers.insert(d.hex);
    }
    auto sweep = [&](const std::string& dir, const std::set<std::string>& keep, bool owned) -> Result<void> {
        DIR* d = ::opendir(dir.c_str());
        if (!d) return sys_error(errno, fmt::format("opendir \"{}\"", dir));
        std::vector<std::string> victims;
        while (struct dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n.size() == 64 && !keep.count(n)) victims.push_back(n);
        }
        ::closedir(d);
        for (const auto& v : victims) {
            log::debug("removing unused {}/{}", dir, v);
            if (owned)
                TRY(remove_owned_tree(dir + "/" + v));
            else if (::unlink((dir + "/" + v).c_str()) != 0 && errno != ENOENT)
                return sys_error(errno, fmt::format("unlink \"{}/{}\"", dir, v));
            fault_point("collect_garbage: removed one");
        }
        return {};
    };
    TRY(sweep(m_root + "/layers/sha256", layers, true));
    TRY(sweep(m_root + "/content/sha256", blobs, false));
    // Build cache entries (build/cache.cpp) whose layers went with this collection go too.
    std::string cache = m_root + "/build-cache";
    if (DIR* d = ::opendir(cache.c_str())) {
        std::vector<std::string> stale;
        while (struct dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n.size() != 64) continue;
            auto text = fs::read_file(cache + "/" + n, 1 << 20);
            auto j = text ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
            bool keep = j.is_object() && j["layers"].is_array();
            if (keep)
                for (const auto& l : j["layers"])
                    if (!l.is_string() || !blobs.count(l.get<std::string>().substr(7))) keep = false;
            if (!keep) stale.push_back(n);
        }
        ::closedir(d);
        for (const auto& n : stale)
            (void)::unlink((cache + "/" + n).c_str()); // a leftover entry is only a cache miss later
    }
    return {};
}

} // namespace ctr::store
