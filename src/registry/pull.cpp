// SPDX-License-Identifier: MIT
#include "registry/pull.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "base/log.hpp"
#include "base/size.hpp"
#include "base/unique_fd.hpp"

namespace ctr::registry {

namespace {

std::string platform_list(const oci::Index& idx) {
    std::string out;
    for (const auto& m : idx.manifests) {
        if (!m.platform || m.platform->os == "unknown") continue; // attestations
        if (!out.empty()) out += ", ";
        out += m.platform->str();
    }
    return out.empty() ? "none" : out;
}

class NullObserver : public PullObserver {
public:
    void layers(const std::vector<oci::Descriptor>&) override {}
    void bytes(size_t, uint64_t) override {}
    void state(size_t, State) override {}
};

struct Job {
    oci::Descriptor desc;
    oci::Digest diff_id;
};

// Downloads blob `d` into the content store unless it is there. Concurrent pulls of the same blob take
// turns on its partial file (flock): the second finds the blob stored when its turn comes.
Result<void> fetch_into_store(Client& client, store::Store& store, const oci::Descriptor& d,
                              const std::function<void(uint64_t)>& progress,
                              const std::atomic<bool>& cancel) {
    for (;;) {
        if (store.has_blob(d.digest)) return {};
        std::string part = store.partial_path(d.digest);
        UniqueFd fd(::open(part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
        if (!fd.valid()) return sys_error(errno, fmt::format("open \"{}\"", part));
        if (::flock(fd.get(), LOCK_EX) != 0) return sys_error(errno, fmt::format("lock \"{}\"", part));
        // The file we waited for may have been moved into the store (or dropped) by the pull before us.
        struct stat held {};
        struct stat now {};
        if (::fstat(fd.get(), &held) != 0 || ::stat(part.c_str(), &now) != 0 || held.st_ino != now.st_ino ||
            held.st_dev != now.st_dev)
            continue;
        if (store.has_blob(d.digest)) {
            if (held.st_size == 0) (void)::unlink(part.c_str()); // made by us just now, for nothing
            return {};
        }
        TRY(client.fetch_blob(d, part, progress, cancel));
        return store.put_verified_blob(part, d.digest);
    }
}

// Fetches and unpacks what `jobs` lacks, `concurrency` layers at once; the first error cancels the rest.
Result<void> fetch_layers(Client& client, store::Store& store, const std::vector<Job>& jobs, int concurrency,
                          PullObserver& obs) {
    std::atomic<size_t> next{0};
    std::atomic<bool> cancel{false};
    std::mutex err_mu;
    std::optional<Error> first_error;
    auto worker = [&] {
        for (;;) {
            size_t i = next.fetch_add(1);
            if (i >= jobs.size() || cancel.load()) return;
            const Job& job = jobs[i];
            auto fail = [&](Error e) {
                std::lock_guard<std::mutex> g(err_mu);
                if (!first_error) first_error = std::move(e);
                cancel = true;
            };
            // The image's blobs are all kept (save needs them), even when another image's blob of the
            // same content already gave the unpacked layer.
            bool have_layer = store.has_layer(job.diff_id);
            if (have_layer && store.has_blob(job.desc.digest)) {
                obs.state(i, PullObserver::State::present);
                continue;
            }
            if (!store.has_blob(job.desc.digest)) {
                obs.state(i, PullObserver::State::downloading);
                auto r = fetch_into_store(
                    client, store, job.desc, [&](uint64_t n) { obs.bytes(i, n); }, cancel);
                if (!r) return fail(std::move(r).error());
            } else {
                obs.bytes(i, static_cast<uint64_t>(job.desc.size));
            }
            if (have_layer) {
                obs.state(i, PullObserver::State::done);
                continue;
            }
            // Unpacked beside the store's layers and renamed into place; a concurrent unpack of the same
            // layer loses the rename and drops its copy.
            obs.state(i, PullObserver::State::unpacking);
            if (auto u = store.add_layer(job.desc, job.diff_id); !u) return fail(std::move(u).error());
            obs.state(i, PullObserver::State::done);
        }
    };
    size_t n_workers =
        std::clamp<size_t>(static_cast<size_t>(std::max(concurrency, 1)), 1, jobs.empty() ? 1 : jobs.size());
    std::vector<std::thread> threads;
    for (size_t t = 0; t < n_workers; ++t)
        threads.emplace_back(worker);
    for (auto& t : threads)
        t.join();
    if (first_error) return std::move(*first_error);
    return {};
}

} // namespace

Result<PullResult> pull(store::Store& store, const oci::Reference& ref, const PullOptions& o) {
    NullObserver null_observer;
    PullObserver& obs = o.observer ? *o.observer : null_observer;
    // Before any thread (libcurl's resolver, the layer workers): layers are unpacked in the user
    // namespace by children of this helper, never by forking a process that has threads.
    TRY(store.start_layer_helper());
    Client client = TRY(Client::open(ref.registry_host(), ref.path, o.client));
    TRY(client.ping());

    std::string wanted = ref.digest.empty() ? ref.tag : ref.digest;
    Document top = TRY(client.manifest(wanted));
    Document man;
    if (oci::is_index_type(top.media_type)) {
        oci::Index idx = TRY(oci::parse_index(top.body));
        oci::Platform want = o.platform ? *o.platform : oci::host_platform();
        auto it = std::find_if(idx.manifests.begin(), idx.manifests.end(), [&](const oci::Descriptor& m) {
            return m.platform && oci::platform_matches(want, *m.platform) &&
                   oci::is_manifest_type(m.media_type);
        });
        if (it == idx.manifests.end())
            return make_error("image {} has no {} variant; it has: {}", ref.str(), want.str(),
                              platform_list(idx));
        man = TRY(client.manifest(it->digest.str()));
        if (!oci::is_manifest_type(man.media_type))
            return make_error("the {} entry of {} is not an image manifest", want.str(), ref.str());
    } else {
        man = std::move(top);
    }
    oci::Manifest m = TRY(oci::parse_manifest(man.body));

    // The store lock is taken only to name the image: other commands go on while the blobs arrive. A
    // pin keeps what has arrived from a garbage collection meanwhile.
    store::Store::Pin pin(store);
    std::vector<oci::Digest> pinned{man.digest, m.config.digest};
    for (const auto& l : m.layers)
        pinned.push_back(l.digest);
    TRY(pin.set(pinned));

    // The config first: it names the layers' uncompressed digests, and its platform is checked.
    if (m.config.size > static_cast<int64_t>(oci::k_max_config_size))
        return make_error("image {}: its config is {} bytes, more than the {} an image config may be", ref.str(),
                          m.config.size, format_limit(oci::k_max_config_size));
    std::atomic<bool> cancel{false};
    TRY(fetch_into_store(
        client, store, m.config, [](uint64_t) {}, cancel));
    oci::ImageConfig cfg = TRY(oci::parse_config(TRY(store.read_blob(m.config.digest, oci::k_max_config_size))));
    if (o.platform && !oci::platform_matches(*o.platform, cfg.platform))
        return make_error("image {} is for {}, not {}", ref.str(), cfg.platform.str(), o.platform->str());
    if (cfg.diff_ids.size() != m.layers.size())
        return make_error("image {}: its config lists {} layers, its manifest {}", ref.str(),
                          cfg.diff_ids.size(), m.layers.size());
    for (const auto& l : m.layers)
        if (!oci::is_layer_type(l.media_type))
            return make_error("image {}: layer {} has unsupported media type \"{}\"", ref.str(),
                              l.digest.str(), l.media_type);
    pinned.insert(pinned.end(), cfg.diff_ids.begin(), cfg.diff_ids.end());
    TRY(pin.set(pinned));

    // One job per distinct layer; workers download, verify and unpack, several at once.
    std::vector<Job> jobs;
    for (size_t i = 0; i < m.layers.size(); ++i) {
        bool seen =
            std::any_of(jobs.begin(), jobs.end(), [&](const Job& j) { return j.diff_id == cfg.diff_ids[i]; });
        if (!seen) jobs.push_back({m.layers[i], cfg.diff_ids[i]});
    }
    std::vector<oci::Descriptor> descs;
    for (const auto& j : jobs)
        descs.push_back(j.desc);
    obs.layers(descs);

    for (int round = 0;; ++round) {
        if (round > 0)
            TRY(fetch_into_store(
                client, store, m.config, [](uint64_t) {}, cancel));
        if (auto f = fetch_layers(client, store, jobs, o.max_concurrent_downloads, obs); !f)
            return wrap(std::move(f).error(), fmt::format("pull {}", ref.str()));
        auto lock = TRY(store.lock());
        // A collection that read the pins just before they were written may have taken something that
        // was already here: then fetch it again.
        bool complete = store.has_blob(m.config.digest);
        for (const auto& j : jobs)
            complete = complete && store.has_blob(j.desc.digest) && store.has_layer(j.diff_id);
        if (!complete) {
            if (round == 2)
                return make_error("pull {}: its blobs keep disappearing from the store", ref.str());
            continue;
        }
        oci::Digest md = TRY(store.put_blob_data(man.body));
        PullResult res;
        res.name = ref.str();
        res.manifest = md;
        res.platform = cfg.platform;
        TRY(store.add_image(res.name, md));
        return res;
    }
}

} // namespace ctr::registry
