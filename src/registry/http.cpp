// SPDX-License-Identifier: MIT
#include "registry/http.hpp"

#include <curl/curl.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "base/log.hpp"

#include <dlfcn.h>

namespace ctr::registry {

namespace {

// libcurl is opened on first use, not linked: it brings about 25 shared libraries (GnuTLS, Kerberos,
// LDAP, libssh2, …) whose loading cost every command, `machine run` included, about 3 ms at start.
struct Curl {
    decltype(&curl_global_init) global_init = nullptr;
    decltype(&curl_easy_init) easy_init = nullptr;
    decltype(&curl_easy_setopt) easy_setopt = nullptr;
    decltype(&curl_easy_perform) easy_perform = nullptr;
    decltype(&curl_easy_getinfo) easy_getinfo = nullptr;
    decltype(&curl_easy_cleanup) easy_cleanup = nullptr;
    decltype(&curl_easy_strerror) easy_strerror = nullptr;
    decltype(&curl_slist_append) slist_append = nullptr;
    decltype(&curl_slist_free_all) slist_free_all = nullptr;
    std::string error;
};

const Curl& curl() {
    static const Curl api = [] {
        Curl c;
        void* h = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            c.error = fmt::format("cannot load libcurl (package libcurl4): {}", ::dlerror());
            return c;
        }
        auto sym = [&](auto& fn, const char* name) {
            fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(h, name));
            if (!fn && c.error.empty()) c.error = fmt::format("libcurl.so.4 lacks {}", name);
        };
        sym(c.global_init, "curl_global_init");
        sym(c.easy_init, "curl_easy_init");
        sym(c.easy_setopt, "curl_easy_setopt");
        sym(c.easy_perform, "curl_easy_perform");
        sym(c.easy_getinfo, "curl_easy_getinfo");
        sym(c.easy_cleanup, "curl_easy_cleanup");
        sym(c.easy_strerror, "curl_easy_strerror");
        sym(c.slist_append, "curl_slist_append");
        sym(c.slist_free_all, "curl_slist_free_all");
        if (c.error.empty()) c.global_init(CURL_GLOBAL_DEFAULT);
        return c;
    }();
    return api;
}

struct Transfer {
    const HttpRequest* req;
    HttpResponse* resp;
    long status = 0;   // of the response whose headers are being read
    uint64_t sent = 0; // body bytes handed to libcurl
    std::string read_error;
};

size_t on_read(char* buf, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const HttpRequest& r = *t->req;
    uint64_t total = r.upload_fd >= 0 ? r.upload_size : r.body.size();
    size_t want = static_cast<size_t>(std::min<uint64_t>(size * n, total - t->sent));
    if (want == 0) return 0;
    if (r.upload_fd < 0) {
        std::memcpy(buf, r.body.data() + t->sent, want);
    } else {
        ssize_t got;
        do {
            got = ::pread(r.upload_fd, buf, want, static_cast<off_t>(r.upload_offset + t->sent));
        } while (got < 0 && errno == EINTR);
        if (got <= 0) { // the file is shorter than announced: never send less than Content-Length says
            t->read_error = got < 0 ? std::strerror(errno) : "file ended early";
            return CURL_READFUNC_ABORT;
        }
        want = static_cast<size_t>(got);
    }
    t->sent += want;
    if (r.upload_progress) r.upload_progress(t->sent);
    return want;
}

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
    (void)curl();
}

HttpResponse http_request(const HttpRequest& req) {
    HttpResponse resp;
    const Curl& api = curl();
    if (!api.error.empty()) {
        resp.transport_error = api.error;
        return resp;
    }
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> h(api.easy_init(), api.easy_cleanup);
    if (!h) {
        resp.transport_error = "cannot start a transfer (libcurl)";
        return resp;
    }
    Transfer t{&req, &resp};
    char errbuf[CURL_ERROR_SIZE] = {};
    struct curl_slist* headers = nullptr;
    for (const auto& hd : req.headers)
        headers = api.slist_append(headers, hd.c_str());
    const bool sends_body = req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
    // No "Expect: 100-continue" round trip before a body: registries answer at once anyway.
    if (sends_body) headers = api.slist_append(headers, "Expect:");
    std::unique_ptr<struct curl_slist, decltype(&curl_slist_free_all)> hguard(headers, api.slist_free_all);
    CURL* c = h.get();
    api.easy_setopt(c, CURLOPT_URL, req.url.c_str());
    api.easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    // A body cannot be sent twice from here: uploads are not redirected.
    api.easy_setopt(c, CURLOPT_FOLLOWLOCATION, sends_body ? 0L : 1L);
    if (req.method == "HEAD") api.easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (sends_body) {
        curl_off_t size = static_cast<curl_off_t>(req.upload_fd >= 0 ? req.upload_size : req.body.size());
        api.easy_setopt(c, CURLOPT_UPLOAD, 1L);
        api.easy_setopt(c, CURLOPT_INFILESIZE_LARGE, size);
        api.easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        api.easy_setopt(c, CURLOPT_READDATA, &t);
        if (req.method != "PUT") api.easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    api.easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    api.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    api.easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    api.easy_setopt(c, CURLOPT_USERAGENT, "container/0.1 (+libcurl)");
    api.easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    // A stalled transfer (under 1 KiB/s for 60 s) is a failure that a retry may fix.
    api.easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    api.easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    api.easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    api.easy_setopt(c, CURLOPT_HEADERDATA, &t);
    api.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    api.easy_setopt(c, CURLOPT_WRITEDATA, &t);
    api.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    api.easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (!req.tls.ca_file.empty()) api.easy_setopt(c, CURLOPT_CAINFO, req.tls.ca_file.c_str());
    if (!req.tls.verify) {
        api.easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        api.easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    std::string range;
    if (req.range_from >= 0) {
        range = fmt::format("{}-", req.range_from);
        api.easy_setopt(c, CURLOPT_RANGE, range.c_str());
    }
    CURLcode rc = api.easy_perform(c);
    api.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
    if (resp.aborted) return resp;
    if (rc != CURLE_OK) {
        resp.transport_error = errbuf[0] ? errbuf : api.easy_strerror(rc);
        resp.transient = transient_code(rc);
        resp.refused = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST;
        resp.tls_untrusted = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE;
        resp.tls_failed = rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
                          rc == CURLE_SSL_CACERT_BADFILE;
        if (!t.read_error.empty()) resp.transport_error = "read the upload: " + t.read_error;
        log::debug("{} {}: {}", req.method, req.url, resp.transport_error);
        return resp;
    }
    if (resp.status >= 500) resp.transient = true;
    log::debug("{} {}{} -> {}", req.method, req.url, range.empty() ? "" : " bytes=" + range, resp.status);
    return resp;
}

} // namespace ctr::registry
