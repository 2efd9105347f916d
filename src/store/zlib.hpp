// SPDX-License-Identifier: MIT
// The zlib functions the layer writer uses, loaded on first use (see base/lazy_lib.hpp). Include this
// instead of <zlib.h>; code in ctr:: calls them by their usual names (deflateInit2 is zlib's macro over
// deflateInit2_).
#pragma once

#include <zlib.h>

#include "base/lazy_lib.hpp"

namespace ctr {

inline constexpr LazyLibrary k_zlib{"libz.so.1", "zlib1g"};

CTR_LAZY_FUNCTION(k_zlib, crc32)
CTR_LAZY_FUNCTION(k_zlib, crc32_combine)
CTR_LAZY_FUNCTION(k_zlib, deflate)
CTR_LAZY_FUNCTION(k_zlib, deflateBound)
CTR_LAZY_FUNCTION(k_zlib, deflateEnd)
CTR_LAZY_FUNCTION(k_zlib, deflateInit2_)
CTR_LAZY_FUNCTION(k_zlib, deflateSetDictionary)
CTR_LAZY_FUNCTION(k_zlib, inflate)
CTR_LAZY_FUNCTION(k_zlib, inflateEnd)
CTR_LAZY_FUNCTION(k_zlib, inflateInit2_)

} // namespace ctr
