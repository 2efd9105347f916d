// SPDX-License-Identifier: MIT
// One HTTP(S) request over libcurl: GET and HEAD for pulls, POST, PATCH and PUT with a body from memory or
// a file range for pushes. Redirects of GET and HEAD are followed (blob GETs are often sent to a CDN); a
// credential header is never forwarded to another host (libcurl's rule for custom Authorization
// headers). The outcome says whether trying again could help.
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
    std::string method = "GET"; // GET, HEAD, POST, PUT or PATCH
    std::string url;
    std::vector<std::string> headers; // "Name: value"
    int64_t range_from = -1;          // >= 0: ask for bytes from here on (Range: bytes=N-)
    TlsOptions tls;
    // Receives the body of a 2xx response (with its status) as it arrives; returning false aborts the
    // transfer. Without a sink the body is kept in HttpResponse::body (bounded by max_body).
    std::function<bool(long, const char*, size_t)> sink;
    size_t max_body = 8 << 20;
    // The request body (POST, PUT, PATCH): `body`, or when upload_fd >= 0 bytes [upload_offset,
    // upload_offset + upload_size) of that file, read with pread (the fd's offset does not move).
    std::string body;
    int upload_fd = -1;
    uint64_t upload_offset = 0, upload_size = 0;
    // Receives the count of body bytes sent so far.
    std::function<void(uint64_t)> upload_progress;
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

HttpResponse http_request(const HttpRequest& req);
inline HttpResponse http_get(const HttpRequest& req) { return http_request(req); }

// Loads libcurl and runs its global init; call before threads start (that init is not thread-safe).
void http_global_init();

} // namespace ctr::registry
