// SPDX-License-Identifier: MIT
// Digest parsing and SHA-256 hashing.
#include "oci/digest.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "oci/libcrypto.hpp"

#include "base/unique_fd.hpp"

namespace ctr::oci {

Result<Digest> parse_digest(std::string_view text) {
    auto colon = text.find(':');
    if (colon == std::string_view::npos) return make_error("invalid digest \"{}\": missing algorithm", text);
    std::string_view alg = text.substr(0, colon), hex = text.substr(colon + 1);
    if (alg != "sha256") return make_error("invalid digest \"{}\": unsupported algorithm \"{}\"", text, alg);
    if (hex.size() != 64) return make_error("invalid digest \"{}\": expected 64 hex digits", text);
    for (char c : hex)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return make_error("invalid digest \"{}\": not lowercase hex", text);
    return Digest{std::string(alg), std::string(hex)};
}

struct Sha256::Impl {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : m_impl(std::make_unique<Impl>()) {
    EVP_DigestInit_ex(m_impl->ctx, EVP_sha256(), nullptr);
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, size_t size) {
    EVP_DigestUpdate(m_impl->ctx, data, size);
}

Digest Sha256::finish() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(m_impl->ctx, md, &len);
    static const char* k_hex = "0123456789abcdef";
    std::string hex;
    hex.reserve(len * 2);
    for (unsigned i = 0; i < len; ++i) {
        hex += k_hex[md[i] >> 4];
        hex += k_hex[md[i] & 15];
    }
    return Digest{"sha256", hex};
}

Digest sha256_of(std::string_view data) {
    Sha256 h;
    h.update(data);
    return h.finish();
}

Result<Digest> sha256_file(const std::string& path, uint64_t* size) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return sys_error(errno, fmt::format("open \"{}\"", path));
    Sha256 h;
    uint64_t total = 0;
    char buf[1 << 16];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return sys_error(errno, fmt::format("read \"{}\"", path));
        if (n == 0) break;
        h.update(buf, static_cast<size_t>(n));
        total += static_cast<uint64_t>(n);
    }
    if (size) *size = total;
    return h.finish();
}

} // namespace ctr::oci
