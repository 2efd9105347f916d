// SPDX-License-Identifier: MIT
// The OpenSSL functions the project uses (SHA-256 and base64), loaded on first use (see
// base/lazy_lib.hpp). Include this instead of <openssl/evp.h>.
#pragma once

#include <openssl/evp.h>

#include "base/lazy_lib.hpp"

namespace ctr {

inline constexpr LazyLibrary k_libcrypto{"libcrypto.so.3", "libssl3"};

CTR_LAZY_FUNCTION(k_libcrypto, EVP_DecodeBlock)
CTR_LAZY_FUNCTION(k_libcrypto, EVP_DigestFinal_ex)
CTR_LAZY_FUNCTION(k_libcrypto, EVP_DigestInit_ex)
CTR_LAZY_FUNCTION(k_libcrypto, EVP_DigestUpdate)
CTR_LAZY_FUNCTION(k_libcrypto, EVP_EncodeBlock)
CTR_LAZY_FUNCTION(k_libcrypto, EVP_MD_CTX_free)
CTR_LAZY_FUNCTION(k_libcrypto, EVP_MD_CTX_new)
CTR_LAZY_FUNCTION(k_libcrypto, EVP_sha256)

} // namespace ctr
