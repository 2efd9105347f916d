// SPDX-License-Identifier: MIT
#include "registry/client.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "base/fault.hpp"
#include "base/log.hpp"
#include "base/size.hpp"
#include "base/unique_fd.hpp"

namespace ctr::registry {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int k_attempts = 5; // one try and four retries: 0.25 s, 0.5 s, 1 s, 2 s apart

void backoff(int attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250 << attempt));
}

// One unauthenticated GET, tried again after transient failures (5xx, resets), never after a 4xx.
HttpResponse get_retrying(const HttpRequest& req) {
    for (int attempt = 0;; ++attempt) {
        HttpResponse r = http_get(req);
        if (!r.transient || attempt + 1 == k_attempts) return r;
        backoff(attempt);
    }
}

bool is_loopback(const std::string& host) {
    std::string h = host;
    if (!h.empty() && h[0] == '[')
        h = h.substr(1, h.find(']') - 1);
    else if (auto c = h.rfind(':'); c != std::string::npos)
        h = h.substr(0, c);
    return h == "localhost" || h == "::1" || h.rfind("127.", 0) == 0;
}

std::string url_escape(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            out += static_cast<char>(c);
        else
            out += fmt::format("%{:02X}", c);
    }
    return out;
}

const char* k_manifest_accept =
    "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

} // namespace

Result<Scheme> parse_scheme(const std::string& text) {
    if (text == "auto") return Scheme::automatic;
    if (text == "http") return Scheme::http;
    if (text == "https") return Scheme::https;
    return make_error("invalid scheme \"{}\": expected auto, http or https", text);
}

std::string registry_error_text(const std::string& body) {
    json j = json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("errors") || !j["errors"].is_array()) return "";
    std::string out;
    for (const auto& e : j["errors"]) {
        if (!e.is_object()) continue;
        // Not json::value(): it throws when the field has another type, and this runs on download threads.
        std::string code = e.contains("code") && e["code"].is_string() ? e["code"].get<std::string>() : "";
        std::string msg =
            e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : "";
        if (!out.empty()) out += "; ";
        out += code.empty() ? msg : msg.empty() ? code : code + ": " + msg;
    }
    return out;
}

Client::Client(Client&& o) noexcept
    : m_host(std::move(o.m_host)), m_repo(std::move(o.m_repo)), m_base(std::move(o.m_base)),
      m_tls(std::move(o.m_tls)), m_settings(std::move(o.m_settings)), m_scheme(o.m_scheme),
      m_creds(std::move(o.m_creds)), m_push(o.m_push), m_mount_from(std::move(o.m_mount_from)),
      m_auth(std::move(o.m_auth)), m_auth_expiry(o.m_auth_expiry),
      m_last_challenge(std::move(o.m_last_challenge)) {}

Result<Client> Client::open(const std::string& host, const std::string& repository, const ClientOptions& o) {
    http_global_init();
    Client c;
    c.m_host = host;
    c.m_repo = repository;
    c.m_scheme = o.scheme;
    c.m_push = o.push;
    c.m_mount_from = o.mount_from;
    c.m_settings = TRY(registry_settings(host));
    c.m_tls.ca_file = c.m_settings.ca_file;
    c.m_tls.verify = !c.m_settings.insecure;
    if (o.credentials)
        c.m_creds = o.credentials;
    else
        c.m_creds = TRY(find_credentials(host));
    return c;
}

std::string Client::authorization() const {
    std::lock_guard<std::mutex> g(m_mu);
    return m_auth;
}

Error Client::http_error(const HttpResponse& r, const std::string& what) const {
    if (!r.transport_error.empty()) {
        if (r.refused) return make_error("cannot reach registry {}: {}", m_host, r.transport_error);
        return make_error("{}: {}", what, r.transport_error);
    }
    std::string detail = registry_error_text(r.body);
    return make_error("{}: the registry answered HTTP {}{}", what, r.status,
                      detail.empty() ? "" : " (" + detail + ")");
}

Result<void> Client::ping() {
    // Plain HTTP only when asked for (--scheme http), for registries configured as insecure, and on loopback.
    bool allow_http = m_settings.insecure || is_loopback(m_host);
    HttpRequest req;
    req.tls = m_tls;
    auto ping_at = [&](const std::string& scheme) {
        m_base = scheme + "://" + m_host;
        req.url = url("/v2/");
        return get_retrying(req);
    };
    HttpResponse r = ping_at(m_scheme == Scheme::http ? "http" : "https");
    // Like Docker: a loopback or insecure registry that does not speak TLS is asked again over HTTP.
    if (r.tls_failed && m_scheme == Scheme::automatic && allow_http) {
        HttpResponse tls_r = r;
        r = ping_at("http");
        // Only a registry's answer counts (a TLS server answers plain HTTP with 400): else the TLS error.
        bool registry_answered =
            r.transport_error.empty() && (r.status == 200 || r.status == 401 || r.status >= 500);
        if (!registry_answered)
            return make_error("cannot talk to registry {}: {}", m_host, tls_r.transport_error);
    }
    if (!r.transport_error.empty()) {
        if (r.tls_failed)
            return make_error("cannot talk to registry {} over TLS: {} ({} in registries.json)", m_host,
                              r.transport_error,
                              r.tls_untrusted ? "a CA for it can be set"
                                              : "if it speaks only plain HTTP, mark it \"insecure\"");
        return http_error(r, fmt::format("cannot reach registry {}", m_host));
    }
    if (r.status == 200) return {};
    if (r.status == 401) return authenticate(r.header("www-authenticate"));
    if (r.status == 404)
        return make_error("{} is not a container registry (no /v2/ endpoint at {})", m_host, m_base);
    return http_error(r, fmt::format("registry {}", m_host));
}

Result<void> Client::check_login() {
    TRY(ping());
    HttpRequest req;
    req.url = url("/v2/");
    HttpResponse r = get(req);
    if (r.status == 200) return {};
    if (r.status == 401 || r.status == 403)
        return make_error("registry {} refused the credentials of user \"{}\" (wrong user name or password?)",
                          m_host, m_creds ? m_creds->username : "");
    return http_error(r, fmt::format("registry {}", m_host));
}

Result<std::string> Client::fetch_token(const Challenge& c) {
    auto realm = c.params.find("realm");
    if (realm == c.params.end() || realm->second.empty())
        return make_error("registry {} asked for a bearer token without saying where to get it", m_host);
    std::string u = realm->second;
    std::string sep = u.find('?') == std::string::npos ? "?" : "&";
    if (auto s = c.params.find("service"); s != c.params.end()) {
        u += sep + "service=" + url_escape(s->second);
        sep = "&";
    }
    if (!m_repo.empty()) {
        u += sep +
             "scope=" + url_escape(fmt::format("repository:{}:{}", m_repo, m_push ? "pull,push" : "pull"));
        sep = "&";
    }
    for (const auto& from : m_mount_from)
        u += sep + "scope=" + url_escape(fmt::format("repository:{}:pull", from));
    HttpRequest req;
    req.url = u;
    req.tls = m_tls;
    req.max_body = 1 << 20;
    if (m_creds)
        req.headers.push_back("Authorization: Basic " +
                              base64_encode(m_creds->username + ":" + m_creds->password));
    HttpResponse r = get_retrying(req);
    if (r.status == 401 || r.status == 403) {
        if (m_creds)
            return make_error(
                "registry {} refused the credentials of user \"{}\" (wrong user name or password?)", m_host,
                m_creds->username);
        return make_error("registry {} requires authentication: run 'container registry login {}'", m_host,
                          m_host);
    }
    if (!r.ok()) return http_error(r, fmt::format("get a token for {}", where()));
    json j = json::parse(r.body, nullptr, false);
    std::string token;
    if (j.is_object()) {
        if (j.contains("token") && j["token"].is_string())
            token = j["token"];
        else if (j.contains("access_token") && j["access_token"].is_string())
            token = j["access_token"];
    }
    if (token.empty()) return make_error("the token service of {} answered without a token", m_host);
    int64_t lifetime =
        j.contains("expires_in") && j["expires_in"].is_number_integer() ? j["expires_in"].get<int64_t>() : 60;
    // 60 s is the distribution spec's minimum; a day bounds it above, as seconds in nanoseconds overflow.
    lifetime = std::clamp<int64_t>(lifetime, 60, 24 * 3600);
    std::lock_guard<std::mutex> g(m_mu);
    // Renew a little early so a token does not expire in the middle of a request.
    m_auth_expiry = Clock::now() + std::chrono::seconds(lifetime - 10);
    return token;
}

Result<void> Client::authenticate(const std::string& header) {
    auto c = parse_challenge(header);
    if (!c) return make_error("registry {} requires authentication it does not describe", m_host);
    {
        std::lock_guard<std::mutex> g(m_mu);
        m_last_challenge = header;
    }
    if (c->scheme == "bearer") {
        std::string token = TRY(fetch_token(*c));
        std::lock_guard<std::mutex> g(m_mu);
        m_auth = "Bearer " + token;
        return {};
    }
    if (c->scheme == "basic") {
        if (!m_creds)
            return make_error("registry {} requires authentication: run 'container registry login {}'",
                              m_host, m_host);
        std::lock_guard<std::mutex> g(m_mu);
        m_auth = "Basic " + base64_encode(m_creds->username + ":" + m_creds->password);
        m_auth_expiry = Clock::time_point::max();
        return {};
    }
    return make_error("registry {} asks for \"{}\" authentication, which is not supported", m_host,
                      c->scheme);
}

HttpResponse Client::get(HttpRequest req, bool retry_transient) {
    req.tls = m_tls;
    bool renewed = false;
    for (int attempt = 0;; ++attempt) {
        HttpRequest r = req;
        std::string challenge;
        {
            std::lock_guard<std::mutex> g(m_mu);
            if (!m_auth.empty() && Clock::now() >= m_auth_expiry) challenge = m_last_challenge;
        }
        if (!challenge.empty()) (void)authenticate(challenge); // expired token: renew before asking
        if (std::string a = authorization(); !a.empty()) r.headers.push_back("Authorization: " + a);
        HttpResponse resp = http_get(r);
        if (resp.status == 401 && !renewed && resp.transport_error.empty()) {
            renewed = true;
            if (authenticate(resp.header("www-authenticate"))) {
                --attempt;
                continue;
            }
            return resp;
        }
        if (!resp.transient || !retry_transient || attempt + 1 == k_attempts) return resp;
        log::debug("{}: {}; trying again", req.url,
                   resp.transport_error.empty() ? fmt::format("HTTP {}", resp.status) : resp.transport_error);
        backoff(attempt);
    }
}

HttpResponse Client::send(HttpRequest req, bool retry_transient) {
    req.url = url_of(req.url);
    return get(std::move(req), retry_transient);
}

std::string Client::url_of(const std::string& path_or_url) const {
    if (path_or_url.rfind("http://", 0) == 0 || path_or_url.rfind("https://", 0) == 0) return path_or_url;
    return url(path_or_url);
}

Error Client::denied(const std::string& what) const {
    if (m_creds) return make_error("registry {} denied user \"{}\" {}", m_host, m_creds->username, what);
    return make_error("registry {} denied {}: run 'container registry login {}'", m_host, what, m_host);
}

Result<Document> Client::manifest(const std::string& tag_or_digest) {
    HttpRequest req;
    req.url = url(fmt::format("/v2/{}/manifests/{}", m_repo, tag_or_digest));
    req.headers.push_back(k_manifest_accept);
    req.max_body = oci::k_max_manifest_size;
    std::string what = fmt::format("{}:{}", where(), tag_or_digest);
    if (tag_or_digest.rfind("sha256:", 0) == 0) what = fmt::format("{}@{}", where(), tag_or_digest);
    HttpResponse r = get(req);
    if (r.status == 404) {
        std::string detail = registry_error_text(r.body);
        if (detail.find("NAME_UNKNOWN") != std::string::npos)
            return make_error("repository {} not found ({})", where(), detail);
        return make_error("image {} not found{}", what, detail.empty() ? "" : " (" + detail + ")");
    }
    if (r.status == 401 || r.status == 403) {
        if (m_creds)
            return make_error("registry {} denied user \"{}\" access to {}", m_host, m_creds->username,
                              where());
        return make_error(
            "registry {} denied access to {}: run 'container registry login {}' if it needs credentials",
            m_host, where(), m_host);
    }
    if (r.aborted)
        return make_error("the manifest of {} is larger than {}, the most a manifest may be", what,
                          format_limit(oci::k_max_manifest_size));
    if (!r.ok()) return http_error(r, fmt::format("get the manifest of {}", what));
    Document d;
    d.body = std::move(r.body);
    d.digest = oci::sha256_of(d.body);
    d.media_type = r.header("content-type");
    if (auto semi = d.media_type.find(';'); semi != std::string::npos) d.media_type.resize(semi);
    if (d.media_type.rfind("application/vnd.docker.distribution.manifest.v1", 0) == 0)
        return make_error(
            "{} is a Docker schema 1 image, which is deprecated and not supported: push it again "
            "with a current tool to get a v2 or OCI manifest",
            what);
    if (tag_or_digest.rfind("sha256:", 0) == 0 && d.digest.str() != tag_or_digest)
        return make_error("the manifest the registry sent for {} hashes to {}", what, d.digest.str());
    if (std::string h = r.header("docker-content-digest"); h.rfind("sha256:", 0) == 0 && h != d.digest.str())
        return make_error("the manifest of {} hashes to {}, the registry says {}", what, d.digest.str(), h);
    if (!oci::is_manifest_type(d.media_type) && !oci::is_index_type(d.media_type)) {
        // Some registries send a generic type; the document says what it is.
        json j = json::parse(d.body, nullptr, false);
        if (j.is_object() && j.contains("schemaVersion") && j["schemaVersion"] == 1)
            return make_error("{} is a Docker schema 1 image, which is deprecated and not supported", what);
        std::string inner = j.is_object() && j.contains("mediaType") && j["mediaType"].is_string()
                                ? j["mediaType"].get<std::string>()
                                : "";
        if (oci::is_manifest_type(inner) || oci::is_index_type(inner))
            d.media_type = inner;
        else if (auto k = oci::document_kind(d.body))
            d.media_type =
                *k == oci::DocumentKind::index ? oci::media::k_oci_index : oci::media::k_oci_manifest;
        else
            return make_error("{}: unsupported manifest type \"{}\"", what, d.media_type);
    }
    return d;
}

Result<void> Client::fetch_blob(const oci::Descriptor& d, const std::string& path,
                                const std::function<void(uint64_t)>& progress,
                                const std::atomic<bool>& cancel) {
    std::string what = fmt::format("blob {} of {}", d.digest.str(), where());
    const uint64_t size = static_cast<uint64_t>(std::max<int64_t>(d.size, 0));
    bool fetched = false;
    ScopeExit drop_empty([&] {
        struct stat st {};
        if (!fetched && ::stat(path.c_str(), &st) == 0 && st.st_size == 0)
            (void)::unlink(
                path.c_str()); // nothing in it to resume; a failed unlink leaves only an empty file
    });
    for (int round = 0;; ++round) {
        UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
        if (!fd.valid()) return sys_error(errno, fmt::format("open \"{}\"", path));
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) return sys_error(errno, fmt::format("stat \"{}\"", path));
        uint64_t have = static_cast<uint64_t>(st.st_size);
        if (have > size) {
            if (::ftruncate(fd.get(), 0) != 0) return sys_error(errno, fmt::format("truncate \"{}\"", path));
            have = 0;
        }
        // Bytes kept from an interrupted pull are hashed first; the download continues after them.
        oci::Sha256 hash;
        char buf[1 << 16];
        for (uint64_t left = have; left > 0;) {
            ssize_t n = ::read(fd.get(), buf, std::min<uint64_t>(sizeof buf, left));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return sys_error(n < 0 ? errno : EIO, fmt::format("read \"{}\"", path));
            hash.update(buf, static_cast<size_t>(n));
            left -= static_cast<uint64_t>(n);
        }
        if (have > 0) log::debug("{}: resuming after {} of {} bytes", what, have, size);
        uint64_t done = have;
        progress(done);
        std::string local_error;
        bool drop_partial = false;
        int attempt = 0, restarts = 0;
        while (done < size) {
            HttpRequest req;
            req.url = url(fmt::format("/v2/{}/blobs/{}", m_repo, d.digest.str()));
            req.range_from = done > 0 ? static_cast<int64_t>(done) : -1;
            bool first_chunk = true;
            req.sink = [&](long status, const char* p, size_t n) -> bool {
                if (cancel.load()) return false;
                bool whole = status == 200 && first_chunk && done > 0;
                first_chunk = false;
                if (whole) {
                    // The server ignored the range and sends the whole blob: start the file over.
                    if (::ftruncate(fd.get(), 0) != 0) {
                        local_error = fmt::format("truncate \"{}\": {}", path, std::strerror(errno));
                        return false;
                    }
                    hash = oci::Sha256();
                    done = 0;
                }
                if (done + n > size) {
                    local_error = fmt::format("{}: the registry sent more than its {} bytes", what, size);
                    return false;
                }
                fault_point("download: a chunk");
                for (size_t off = 0; off < n;) {
                    ssize_t w = ::pwrite(fd.get(), p + off, n - off, static_cast<off_t>(done + off));
                    if (w < 0 && errno == EINTR) continue;
                    if (w < 0) {
                        // A download that filled the disk is not kept to resume: it would keep it full.
                        if (errno == ENOSPC || errno == EDQUOT) drop_partial = true;
                        local_error = fmt::format("write \"{}\": {}", path, std::strerror(errno));
                        return false;
                    }
                    off += static_cast<size_t>(w);
                }
                hash.update(p, n);
                done += n;
                progress(done);
                return true;
            };
            uint64_t before = done;
            HttpResponse r = get(req, /*retry_transient=*/false);
            if (!local_error.empty()) {
                if (drop_partial || local_error.find("more than") != std::string::npos) ::unlink(path.c_str());
                return make_error("{}", local_error);
            }
            if (cancel.load()) return make_error("{}: cancelled", what);
            if (r.ok() && done >= size) break;
            if (r.status == 416 && restarts++ == 0) { // our offset is past what it has: start over
                if (::ftruncate(fd.get(), 0) != 0)
                    return sys_error(errno, fmt::format("truncate \"{}\"", path));
                hash = oci::Sha256();
                done = 0;
                continue;
            }
            if (r.status == 404) return make_error("{} not found in the registry", what);
            if (r.status == 401 || r.status == 403)
                return make_error("registry {} denied access to {}", m_host, what);
            bool transient = r.transient || (r.ok() && done < size); // a 2xx that ended early
            if (!transient) return http_error(r, fmt::format("download {}", what));
            if (done > before) attempt = 0; // progress was made: the retry budget starts again
            if (++attempt >= k_attempts) {
                if (r.ok()) return make_error("download {}: the transfer kept ending early", what);
                return http_error(r, fmt::format("download {}", what));
            }
            log::debug("{}: {} after {} bytes; trying again", what,
                       r.transport_error.empty() ? fmt::format("HTTP {}", r.status) : r.transport_error,
                       done);
            backoff(attempt - 1);
        }
        if (::fsync(fd.get()) != 0) return sys_error(errno, fmt::format("fsync \"{}\"", path));
        oci::Digest got = hash.finish();
        if (got == d.digest) {
            fetched = true;
            return {};
        }
        ::unlink(path.c_str());
        if (have > 0 && round == 0) {
            log::debug("{}: the kept partial download was bad; downloading it again", what);
            continue;
        }
        return make_error("{} does not match its digest: the registry sent content hashing to {}", what,
                          got.str());
    }
}

} // namespace ctr::registry
