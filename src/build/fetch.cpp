// SPDX-License-Identifier: MIT
// ADD's downloads (build/fetch.hpp).
#include "build/fetch.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "base/fs.hpp"
#include "base/unique_fd.hpp"
#include "oci/digest.hpp"
#include "registry/http.hpp"
#include "store/unpack.hpp"

namespace ctr::build {

Result<std::string> fetch_url(const std::string& url, const std::string& path,
                              const std::optional<std::string>& checksum) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid()) return sys_error(errno, fmt::format("create \"{}\"", path));
    registry::http_global_init();
    uint64_t limit = TRY(store::max_layer_size()), got = 0;
    oci::Sha256 h;
    std::string werr;
    registry::HttpRequest req;
    req.url = url;
    req.sink = [&](long, const char* p, size_t n) {
        got += n;
        if (got > limit) {
            werr = "larger than the layer size limit";
            return false;
        }
        h.update(p, n);
        if (auto w = fs::write_all(fd.get(), std::string_view(p, n), path); !w) {
            werr = w.error().message;
            return false;
        }
        return true;
    };
    registry::HttpResponse r = registry::http_request(req);
    if (!werr.empty()) return make_error("{}", werr);
    if (!r.transport_error.empty()) return make_error("{}", r.transport_error);
    if (!r.ok()) return make_error("HTTP status {}", r.status);
    std::string sum = h.finish().str();
    if (checksum && sum != *checksum) return make_error("checksum mismatch: expected {}, got {}", *checksum, sum);
    return sum;
}

} // namespace ctr::build
