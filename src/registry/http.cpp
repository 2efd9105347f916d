// SPDX-License-Identifier: MIT
#include "registry/http.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include <fmt/format.h>

#include "base/log.hpp"

namespace ctr::registry {

namespace {

struct Transfer {
    const HttpRequest* req;
    HttpResponse* resp;
    long status = 0; // of the response whose headers are being read
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    std::string line(data, size * n);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
        line.pop_back();
    if (line.rfind("HTTP/", 0) == 0) {
        t->resp->headers.clear(); // a new response (after a redirect or 100-continue)
        auto sp = line.find(' ');
        t->status = sp == std::string::npos ? 0 : std::strtol(line.c_str() + sp + 1, nullptr, 10);
        return size * n;
    }
    auto colon = line.find(':');
    if (colon == std::string::npos) return size * n;
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    size_t v = colon + 1;
    while (v < line.size() && line[v] == ' ')
        ++v;
    t->resp->headers[name] = line.substr(v);
    return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    size_t len = size * n;
    bool success = t->status >= 200 && t->status < 300;
    if (success && t->req->sink) {
        if (!t->req->sink(t->status, data, len)) {
            t->resp->aborted = true;
            return 0; // libcurl stops with CURLE_WRITE_ERROR
        }
        return len;
    }
    if (t->resp->body.size() + len > t->req->max_body) {
        t->resp->aborted = true;
        return 0;
    }
    t->resp->body.append(data, len);
    return len;
}

bool transient_code(CURLcode c) {
    switch (c) {
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

} // namespace

void http_global_init() {
    static bool done = false;
    if (!done) curl_global_init(CURL_GLOBAL_DEFAULT);
    done = true;
}

HttpResponse http_get(const HttpRequest& req) {
    HttpResponse resp;
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> h(curl_easy_init(), curl_easy_cleanup);
    if (!h) {
        resp.transport_error = "cannot start a transfer (libcurl)";
        return resp;
    }
    Transfer t{&req, &resp};
    char errbuf[CURL_ERROR_SIZE] = {};
    struct curl_slist* headers = nullptr;
    for (const auto& hd : req.headers)
        headers = curl_slist_append(headers, hd.c_str());
    std::unique_ptr<struct curl_slist, decltype(&curl_slist_free_all)> hguard(headers, curl_slist_free_all);
    CURL* c = h.get();
    curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "container/0.1 (+libcurl)");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    // A stalled transfer (under 1 KiB/s for 60 s) is a failure that a retry may fix.
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (!req.tls.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, req.tls.ca_file.c_str());
    if (!req.tls.verify) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    std::string range;
    if (req.range_from >= 0) {
        range = fmt::format("{}-", req.range_from);
        curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
    }
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
    if (resp.aborted) return resp;
    if (rc != CURLE_OK) {
        resp.transport_error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
        resp.transient = transient_code(rc);
        resp.refused = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST;
        resp.tls_failed = rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
                          rc == CURLE_SSL_CACERT_BADFILE;
        log::debug("GET {}: {}", req.url, resp.transport_error);
        return resp;
    }
    if (resp.status >= 500) resp.transient = true;
    log::debug("GET {}{} -> {}", req.url, range.empty() ? "" : " bytes=" + range, resp.status);
    return resp;
}

} // namespace ctr::registry
