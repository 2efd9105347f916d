// SPDX-License-Identifier: MIT
#include "registry/push.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "base/log.hpp"
#include "base/unique_fd.hpp"

namespace ctr::registry {

namespace {

constexpr uint64_t k_monolithic_max = 1 << 20;  // a blob this small goes up in one PUT
constexpr int k_attempts = 5;                   // per session, as the client's retries
constexpr int k_sessions = 3;                   // upload sessions started for one blob before giving up
constexpr uint64_t k_chunk_after_413 = 8 << 20; // PATCH size once a registry (or its proxy) said 413

class NullObserver : public PullObserver {
public:
    void layers(const std::vector<oci::Descriptor>&) override {}
    void bytes(size_t, uint64_t) override {}
    void state(size_t, State) override {}
};

void backoff(int attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250 << std::min(attempt, 4)));
}

// "?" or "&", to add a query parameter to an upload URL (which often carries its own state).
std::string with_param(const std::string& url, const std::string& param) {
    return url + (url.find('?') == std::string::npos ? "?" : "&") + param;
}

// The end of a "Range: 0-N" header (N + 1 bytes received), or -1. "0-0" is read as nothing received:
// distribution answers it for an empty session too, and a session of exactly one byte that is
// resent from the start fails its digest and is started over.
int64_t received(const HttpResponse& r) {
    std::string v = r.header("range");
    auto dash = v.find('-');
    if (dash == std::string::npos) return -1;
    char* end = nullptr;
    long long n = std::strtoll(v.c_str() + dash + 1, &end, 10);
    if (!end || *end != 0 || n < 0) return -1;
    return n == 0 ? 0 : n + 1;
}

class Uploader {
public:
    Uploader(Client& c, const store::Store& s) : m_client(c), m_store(s) {}
    enum class Outcome { uploaded, present, mounted };
    Result<Outcome> blob(const oci::Descriptor& d, const std::vector<std::string>& mount_from,
                         const std::function<void(uint64_t)>& progress);

private:
    Result<bool> exists(const oci::Descriptor& d);
    Result<std::optional<std::string>> start(const oci::Descriptor& d, const std::string& from,
                                             bool* mounted);
    Result<bool> send(int fd, const oci::Descriptor& d, std::string location,
                      const std::function<void(uint64_t)>& progress);
    std::string what(const oci::Descriptor& d) const {
        return fmt::format("blob {} to {}", d.digest.str(), m_client.where());
    }

    Client& m_client;
    const store::Store& m_store;
    // The most one PATCH sends: everything, until a 413 (request too large) says otherwise.
    uint64_t m_chunk = UINT64_MAX;
};

Result<bool> Uploader::exists(const oci::Descriptor& d) {
    HttpRequest req;
    req.method = "HEAD";
    req.url = fmt::format("/v2/{}/blobs/{}", m_client.repository(), d.digest.str());
    HttpResponse r = m_client.send(req);
    if (r.status == 200) return true;
    if (r.status == 404) return false;
    if (r.status == 401 || r.status == 403) return m_client.denied("access to " + m_client.where());
    return m_client.http_error(r, "check " + what(d));
}

// A new upload session (its absolute Location), or none when the blob was mounted from `from` instead.
Result<std::optional<std::string>> Uploader::start(const oci::Descriptor& d, const std::string& from,
                                                   bool* mounted) {
    HttpRequest req;
    req.method = "POST";
    req.url = fmt::format("/v2/{}/blobs/uploads/", m_client.repository());
    if (!from.empty()) req.url += fmt::format("?mount={}&from={}", d.digest.str(), from);
    HttpResponse r = m_client.send(req);
    if (r.status == 201 && !from.empty()) {
        *mounted = true;
        return std::optional<std::string>();
    }
    if (r.status == 401 || r.status == 403) return m_client.denied("pushing to " + m_client.where());
    if (r.status != 202 || r.header("location").empty())
        return m_client.http_error(r, "start the upload of " + what(d));
    return std::optional<std::string>(m_client.url_of(r.header("location")));
}

// Sends the blob in the session at `location` and closes it with its digest. False when the session
// is lost (the registry forgot it, or kept failing): the caller starts another.
Result<bool> Uploader::send(int fd, const oci::Descriptor& d, std::string location,
                            const std::function<void(uint64_t)>& progress) {
    const uint64_t size = static_cast<uint64_t>(d.size);
    uint64_t offset = 0;
    bool monolithic = size <= k_monolithic_max;
    bool resumed = false;
    for (int attempt = 0; attempt < k_attempts;) {
        if (!monolithic && offset < size) {
            HttpRequest req;
            req.method = "PATCH";
            req.url = location;
            req.headers = {"Content-Type: application/octet-stream",
                           fmt::format("Content-Range: {}-{}", offset, size - 1)};
            req.upload_fd = fd;
            req.upload_offset = offset;
            req.upload_size = std::min(size - offset, m_chunk);
            req.headers[1] = fmt::format("Content-Range: {}-{}", offset, offset + req.upload_size - 1);
            const uint64_t base = offset;
            req.upload_progress = [&](uint64_t sent) { progress(base + sent); };
            HttpResponse r = m_client.send(req, /*retry_transient=*/false);
            if (r.status == 202) {
                if (!r.header("location").empty()) location = m_client.url_of(r.header("location"));
                int64_t got = received(r);
                offset = got >= 0 ? static_cast<uint64_t>(got) : base + req.upload_size;
                if (offset <= base) ++attempt; // accepted, yet no further: do not go round for ever
                continue;
            }
            if (r.status == 401 || r.status == 403) return m_client.denied("pushing to " + m_client.where());
            if (r.status == 404) return false; // the session is gone
            if (r.status == 405 || r.status == 400 || r.status == 501) {
                log::debug("{}: PATCH refused (HTTP {}); sending it in one PUT", what(d), r.status);
                monolithic = true;
                offset = 0;
                continue;
            }
            if (r.status == 413 && m_chunk > k_chunk_after_413) {
                log::debug("{}: PATCH too large for the registry; sending {} bytes at a time", what(d),
                           k_chunk_after_413);
                m_chunk = k_chunk_after_413; // then ask where to go on, as after a cut
            } else if (!r.transient && r.status != 416) {
                return m_client.http_error(r, "upload " + what(d));
            }
            // Cut or refused: ask the registry how much it kept and go on from there.
            ++attempt;
            log::debug("{}: {} after byte {}; asking where to resume", what(d),
                       r.transport_error.empty() ? fmt::format("HTTP {}", r.status) : r.transport_error,
                       offset);
            backoff(attempt - 1);
            HttpRequest status;
            status.url = location;
            HttpResponse s = m_client.send(status);
            if (s.status != 204) return false;
            if (!s.header("location").empty()) location = m_client.url_of(s.header("location"));
            int64_t got = received(s);
            offset = got >= 0 ? static_cast<uint64_t>(got) : 0;
            if (offset > size) return false;
            resumed = true;
            continue;
        }
        HttpRequest put;
        put.method = "PUT";
        put.url = with_param(location, "digest=" + d.digest.str());
        put.headers = {"Content-Type: application/octet-stream"};
        put.upload_fd = fd;
        put.upload_offset = 0;
        put.upload_size = monolithic ? size : 0;
        if (monolithic) put.upload_progress = progress;
        HttpResponse r = m_client.send(put, /*retry_transient=*/false);
        if (r.status == 201 || r.status == 204) {
            progress(size);
            return true;
        }
        if (r.status == 401 || r.status == 403) return m_client.denied("pushing to " + m_client.where());
        if (r.status == 404) return false;
        // A resumed session whose bytes do not add up to the digest: the registry lost some of the cut
        // request's bytes. Start over rather than fail.
        if (r.status == 400 && resumed) return false;
        if (!r.transient) return m_client.http_error(r, "finish the upload of " + what(d));
        ++attempt;
        backoff(attempt - 1);
        // The PUT may have landed before the answer was lost.
        if (TRY(exists(d))) return true;
        if (monolithic) return false; // a failed PUT ends the session: a new one is needed
    }
    return false;
}

Result<Uploader::Outcome> Uploader::blob(const oci::Descriptor& d, const std::vector<std::string>& mount_from,
                                         const std::function<void(uint64_t)>& progress) {
    if (TRY(exists(d))) return Outcome::present;
    std::string path = m_store.blob_path(d.digest);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return make_error("blob {} is missing from the store", d.digest.str());
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || st.st_size != d.size)
        return make_error("blob {} in the store has {} bytes, its descriptor says {}", d.digest.str(),
                          static_cast<int64_t>(st.st_size), d.size);
    for (int session = 0; session < k_sessions; ++session) {
        bool mounted = false;
        std::string from = session == 0 && !mount_from.empty() ? mount_from.front() : "";
        auto location = TRY(start(d, from, &mounted));
        if (mounted) return Outcome::mounted;
        if (TRY(send(fd.get(), d, *location, progress))) return Outcome::uploaded;
        log::debug("{}: upload session lost; starting another", what(d));
    }
    return make_error("upload {}: the registry kept failing", what(d));
}

// Other repositories of the same registry that hold each blob, from the names in the store.
std::map<std::string, std::vector<std::string>> mount_sources(const store::Store& store,
                                                              const oci::Reference& dest) {
    std::map<std::string, std::vector<std::string>> out;
    auto recs = store.list();
    if (!recs) return out;
    for (const auto& rec : *recs) {
        auto ref = oci::parse_reference(rec.name);
        if (!ref || ref->domain != dest.domain || ref->path == dest.path) continue;
        auto img = store.get(rec);
        if (!img) continue;
        std::vector<oci::Descriptor> blobs = img->manifest.layers;
        blobs.push_back(img->manifest.config);
        for (const auto& l : blobs) {
            auto& v = out[l.digest.str()];
            if (std::find(v.begin(), v.end(), ref->path) == v.end()) v.push_back(ref->path);
        }
    }
    return out;
}

} // namespace

Result<PushResult> push(const store::Store& store, const store::Image& img, const oci::Reference& dest,
                        const PushOptions& o) {
    if (!dest.digest.empty() && dest.digest != img.record.digest.str())
        return make_error("cannot push {} as {}: its digest is {}", img.record.name, dest.str(),
                          img.record.digest.str());
    auto sources = mount_sources(store, dest);
    ClientOptions co = o.client;
    co.push = true;
    for (const auto& [digest, repos] : sources)
        for (const auto& r : repos)
            if (std::find(co.mount_from.begin(), co.mount_from.end(), r) == co.mount_from.end() &&
                co.mount_from.size() < 8)
                co.mount_from.push_back(r);
    Client client = TRY(Client::open(dest.registry_host(), dest.path, co));
    TRY(client.ping());

    NullObserver null_obs;
    PullObserver& obs = o.observer ? *o.observer : null_obs;
    std::vector<oci::Descriptor> blobs = img.manifest.layers;
    blobs.push_back(img.manifest.config);
    obs.layers(blobs);

    PushResult result;
    result.manifest = img.record.digest;
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex mu;
    std::optional<Error> first_error;
    auto worker = [&] {
        Uploader up(client, store);
        for (;;) {
            size_t i = next.fetch_add(1);
            if (i >= blobs.size() || failed.load()) return;
            const auto& d = blobs[i];
            obs.state(i, PullObserver::State::downloading);
            auto it = sources.find(d.digest.str());
            auto r = up.blob(d, it == sources.end() ? std::vector<std::string>() : it->second,
                             [&obs, i](uint64_t n) { obs.bytes(i, n); });
            std::lock_guard<std::mutex> g(mu);
            if (!r) {
                if (!first_error) first_error = std::move(r).error();
                failed = true;
                return;
            }
            obs.state(i, *r == Uploader::Outcome::uploaded ? PullObserver::State::done
                                                           : PullObserver::State::present);
            (*r == Uploader::Outcome::uploaded  ? result.uploaded
             : *r == Uploader::Outcome::mounted ? result.mounted
                                                : result.present)++;
        }
    };
    int n = std::max(1, std::min<int>(o.max_concurrent_uploads, static_cast<int>(blobs.size())));
    std::vector<std::thread> threads;
    for (int t = 1; t < n; ++t)
        threads.emplace_back(worker);
    worker();
    for (auto& t : threads)
        t.join();
    if (first_error) return *first_error;

    // The manifest last, as stored: its digest is the one `image inspect` shows.
    HttpRequest put;
    put.method = "PUT";
    put.url = fmt::format("/v2/{}/manifests/{}", dest.path, dest.tag.empty() ? dest.digest : dest.tag);
    put.headers = {"Content-Type: " + img.manifest.media_type};
    put.body = img.manifest_json;
    HttpResponse r = client.send(put);
    if (r.status == 401 || r.status == 403) return client.denied("pushing to " + client.where());
    if (r.status != 201 && r.status != 200) return client.http_error(r, "put the manifest of " + dest.str());
    if (std::string h = r.header("docker-content-digest");
        h.rfind("sha256:", 0) == 0 && h != img.record.digest.str())
        return make_error("the registry stored the manifest of {} as {}, not {}", dest.str(), h,
                          img.record.digest.str());
    return result;
}

} // namespace ctr::registry
