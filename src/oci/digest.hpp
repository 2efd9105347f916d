// SPDX-License-Identifier: MIT
// Content digests ("sha256:<64 hex>") and streaming SHA-256 over OpenSSL.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace ctr::oci {

struct Digest {
    std::string algorithm; // only "sha256" is accepted
    std::string hex;

    std::string str() const { return algorithm + ":" + hex; }
    // First 12 hex characters, as image listings show them.
    std::string short_hex() const { return hex.substr(0, 12); }
    bool empty() const { return hex.empty(); }
    bool operator==(const Digest&) const = default;
};

// Fails with a message naming the text unless it is "sha256:" followed by 64 lowercase hex digits.
Result<Digest> parse_digest(std::string_view text);

class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(Sha256&&) noexcept;
    Sha256& operator=(Sha256&&) noexcept;
    void update(const void* data, size_t size);
    void update(std::string_view s) { update(s.data(), s.size()); }
    // Finishes the hash; the object must not be updated afterwards.
    Digest finish();

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

Digest sha256_of(std::string_view data);
// Streams the file through SHA-256; also returns its size through `size` when given.
Result<Digest> sha256_file(const std::string& path, uint64_t* size = nullptr);

} // namespace ctr::oci
