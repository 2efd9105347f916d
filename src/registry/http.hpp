// SPDX-License-Identifier: MIT
// One HTTP(S) GET over libcurl, the only transfer the pull protocol needs. Redirects are followed (blob
// GETs are often sent to a CDN); a credential header is never forwarded to another host (libcurl's rule
// for custom Authorization headers). The outcome says whether trying again could help.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace ctr::registry {

struct TlsOptions {
    bool verify = true;  // false only for registries configured as insecure
    std::string ca_file; // extra trust for this registry; empty means the system CAs
};

struct HttpRequest {
    std::string url;
    std::vector<std::string> headers; // "Name: value"
    int64_t range_from = -1;          // >= 0: ask for bytes from here on (Range: bytes=N-)
    TlsOptions tls;
    // Receives the body of a 2xx response (with its status) as it arrives; returning false aborts the
    // transfer. Without a sink the body is kept in HttpResponse::body (bounded by max_body).
    std::function<bool(long, const char*, size_t)> sink;
    size_t max_body = 8 << 20;
};

struct HttpResponse {
    long status = 0;
    std::map<std::string, std::string> headers; // of the final response, names lower-cased
    std::string body;                           // error bodies always land here
    // Set when no HTTP answer completed: the transport's own words, and whether a retry may succeed.
    std::string transport_error;
    bool transient = false;     // reset, truncated transfer, timeout, 5xx
    bool refused = false;       // nothing listens there (or the name does not resolve)
    bool tls_failed = false;    // no TLS session: handshake failed or the peer was not verified
    bool tls_untrusted = false; // of those, the peer's certificate was not trusted
    bool aborted = false;       // the sink said stop

    bool ok() const { return transport_error.empty() && !aborted && status >= 200 && status < 300; }
    std::string header(const std::string& lower_name) const {
        auto it = headers.find(lower_name);
        return it == headers.end() ? std::string() : it->second;
    }
};

HttpResponse http_get(const HttpRequest& req);

// Loads libcurl and runs its global init; call before threads start (that init is not thread-safe).
void http_global_init();

} // namespace ctr::registry
