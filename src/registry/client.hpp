// SPDX-License-Identifier: MIT
// A client of one repository on one registry, speaking the OCI distribution protocol: the /v2/ ping,
// authentication (anonymous, Basic, Bearer tokens from the challenge's realm), manifests by tag or digest
// and blobs, verified against their digests as they stream, resumed with range requests and retried with
// backoff after transient failures (5xx, resets, truncation), never after a 4xx.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "oci/digest.hpp"
#include "oci/image.hpp"
#include "oci/reference.hpp"
#include "registry/config.hpp"
#include "registry/http.hpp"

namespace ctr::registry {

enum class Scheme { automatic, http, https };
Result<Scheme> parse_scheme(const std::string& text);

struct ClientOptions {
    Scheme scheme = Scheme::automatic;
    // Credentials to use instead of the ones in the credential files (`registry login`).
    std::optional<Credentials> credentials;
    // Pushing: tokens are asked for pull and push on the repository, and for pull on these repositories
    // of the same registry too (the sources of cross-repository blob mounts).
    bool push = false;
    std::vector<std::string> mount_from;
};

struct Document {
    std::string media_type;
    std::string body;
    oci::Digest digest;
};

class Client {
public:
    // `host` is a registry host[:port] as references name it (docker.io is served elsewhere).
    static Result<Client> open(const std::string& host, const std::string& repository, const ClientOptions& o);

    // Finds the scheme and the authentication the registry wants and obtains a token if it uses them.
    Result<void> ping();
    // ping(), then proves the credentials work: the registry answers /v2/ with them.
    Result<void> check_login();
    // The manifest or index that `tag_or_digest` names; a digest is verified.
    Result<Document> manifest(const std::string& tag_or_digest);
    // Streams blob `d` into `path`, continuing after the bytes already there, hashing everything; the file
    // is complete and verified on success. On a digest mismatch the file is deleted. `progress` receives
    // the byte count so far; `cancel` stops the transfer (the file is kept for a later resume).
    Result<void> fetch_blob(const oci::Descriptor& d, const std::string& path,
                            const std::function<void(uint64_t)>& progress, const std::atomic<bool>& cancel);

    // One request with the current authorization (renewed once on 401), retried after transient
    // failures when `retry_transient`. `path_or_url` is a path below the registry ("/v2/…") or an
    // absolute URL (the Location of an upload session).
    HttpResponse send(HttpRequest req, bool retry_transient = true);
    std::string url_of(const std::string& path_or_url) const;
    const std::string& repository() const { return m_repo; }
    Error http_error(const HttpResponse& r, const std::string& what) const;
    // The words for a 401 or 403: who was refused, and `registry login` when there were no credentials.
    Error denied(const std::string& what) const;

    const std::string& host() const { return m_host; }
    std::string where() const { return m_host + "/" + m_repo; }

    Client(Client&& o) noexcept;

private:
    Client() = default;
    std::string url(const std::string& path) const { return m_base + path; }
    // GET with the current authorization; on 401 authenticates again once. Retries transient failures.
    HttpResponse get(HttpRequest req, bool retry_transient = true);
    Result<void> authenticate(const std::string& challenge_header);
    Result<std::string> fetch_token(const Challenge& c);
    std::string authorization() const;

    std::string m_host, m_repo, m_base;
    TlsOptions m_tls;
    RegistrySettings m_settings;
    Scheme m_scheme = Scheme::automatic;
    std::optional<Credentials> m_creds;
    bool m_push = false;
    std::vector<std::string> m_mount_from;
    mutable std::mutex m_mu; // guards the authorization below (blob fetches run on several threads)
    std::string m_auth;      // "Bearer …" / "Basic …" / empty
    std::chrono::steady_clock::time_point m_auth_expiry = std::chrono::steady_clock::time_point::max();
    std::string m_last_challenge;
};

// Human-readable registry error: the "errors" array of a distribution error body, if there is one.
std::string registry_error_text(const std::string& body);

} // namespace ctr::registry
