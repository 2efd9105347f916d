// SPDX-License-Identifier: MIT
#include "registry/pull.hpp"

#include <unistd.h>

#include <mutex>
#include <thread>

#include "base/log.hpp"

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

} // namespace

Result<PullResult> pull(store::Store& store, const oci::Reference& ref, const PullOptions& o) {
    NullObserver null_observer;
    PullObserver& obs = o.observer ? *o.observer : null_observer;
    Client client = TRY(Client::open(ref.registry_host(), ref.path, o.client));
    TRY(client.ping());

    std::string wanted = ref.digest.empty() ? ref.tag : ref.digest;
    Document top = TRY(client.manifest(wanted));
    Document man;
    if (oci::is_index_type(top.media_type)) {
        oci::Index idx = TRY(oci::parse_index(top.body));
        oci::Platform want = o.platform ? *o.platform : oci::host_platform();
        auto it = std::find_if(idx.manifests.begin(), idx.manifests.end(), [&](const oci::Descriptor& m) {
            return m.platform && oci::platform_matches(want, *m.platform) && oci::is_manifest_type(m.media_type);
        });
        if (it == idx.manifests.end())
            return make_error("image {} has no {} variant; it has: {}", ref.str(), want.str(), platform_list(idx));
        man = TRY(client.manifest(it->digest.str()));
        if (!oci::is_manifest_type(man.media_type))
            return make_error("the {} entry of {} is not an image manifest", want.str(), ref.str());
    } else {
        man = std::move(top);
    }
    oci::Manifest m = TRY(oci::parse_manifest(man.body));

    // The config first: it names the layers' uncompressed digests, and its platform is checked.
    std::atomic<bool> cancel{false};
    if (!store.has_blob(m.config.digest)) {
        std::string part = store.partial_path(m.config.digest);
        auto r = client.fetch_blob(m.config, part, [](uint64_t) {}, cancel);
        if (!r) return std::move(r).error();
        TRY(store.put_verified_blob(part, m.config.digest));
    }
    oci::ImageConfig cfg = TRY(oci::parse_config(TRY(store.read_blob(m.config.digest))));
    if (o.platform && !oci::platform_matches(*o.platform, cfg.platform))
        return make_error("image {} is for {}, not {}", ref.str(), cfg.platform.str(), o.platform->str());
    if (cfg.diff_ids.size() != m.layers.size())
        return make_error("image {}: its config lists {} layers, its manifest {}", ref.str(), cfg.diff_ids.size(),
                          m.layers.size());
    for (const auto& l : m.layers)
        if (!oci::is_layer_type(l.media_type))
            return make_error("image {}: layer {} has unsupported media type \"{}\"", ref.str(), l.digest.str(),
                              l.media_type);

    // One job per distinct layer; workers download, verify and unpack, several at once.
    struct Job {
        oci::Descriptor desc;
        oci::Digest diff_id;
    };
    std::vector<Job> jobs;
    for (size_t i = 0; i < m.layers.size(); ++i) {
        bool seen = std::any_of(jobs.begin(), jobs.end(), [&](const Job& j) { return j.diff_id == cfg.diff_ids[i]; });
        if (!seen) jobs.push_back({m.layers[i], cfg.diff_ids[i]});
    }
    std::vector<oci::Descriptor> descs;
    for (const auto& j : jobs)
        descs.push_back(j.desc);
    obs.layers(descs);
    (void)TRY(store.id_map()); // read once here, not from several threads

    std::atomic<size_t> next{0};
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
                std::string part = store.partial_path(job.desc.digest);
                auto r = client.fetch_blob(job.desc, part, [&](uint64_t n) { obs.bytes(i, n); }, cancel);
                if (!r) return fail(std::move(r).error());
                if (auto p = store.put_verified_blob(part, job.desc.digest); !p) return fail(std::move(p).error());
            } else {
                obs.bytes(i, static_cast<uint64_t>(job.desc.size));
            }
            if (have_layer) {
                obs.state(i, PullObserver::State::done);
                continue;
            }
            obs.state(i, PullObserver::State::unpacking);
            if (auto u = store.add_layer(job.desc, job.diff_id); !u)
                return fail(wrap(std::move(u).error(), fmt::format("layer {}", job.desc.digest.str())));
            obs.state(i, PullObserver::State::done);
        }
    };
    size_t n_workers = std::clamp<size_t>(static_cast<size_t>(std::max(o.max_concurrent_downloads, 1)), 1, jobs.size() ? jobs.size() : 1);
    std::vector<std::thread> threads;
    for (size_t t = 0; t < n_workers; ++t)
        threads.emplace_back(worker);
    for (auto& t : threads)
        t.join();
    if (first_error) return wrap(std::move(*first_error), fmt::format("pull {}", ref.str()));

    // Everything is in place: store the manifest and name the image.
    oci::Digest md = TRY(store.put_blob_data(man.body));
    PullResult res;
    res.name = ref.str();
    res.manifest = md;
    res.platform = cfg.platform;
    TRY(store.add_image(res.name, md));
    return res;
}

} // namespace ctr::registry
