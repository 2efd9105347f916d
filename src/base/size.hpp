// SPDX-License-Identifier: MIT
// Human sizes: parsing "512M"/"2G"/"1024" and printing "12.3 MB".
#pragma once

#include <cstdint>
#include <string>

#include "base/result.hpp"

namespace ctr {

// Accepts a decimal number with an optional unit b, k, m, g, t or p (binary, case-insensitive, optionally
// followed by "b" or "ib": "1.5GiB", "512m", "8G"); no unit means bytes.
Result<uint64_t> parse_size(const std::string& text);
// Decimal units as `docker images` prints them: "512 B", "4.2 MB", "1.07 GB".
std::string format_size(uint64_t bytes);
// Binary units, exact, for limits a user sets: "64 GiB", "512 MiB", "1536 KiB", "1000 bytes".
std::string format_limit(uint64_t bytes);

} // namespace ctr
