// SPDX-License-Identifier: MIT
// Size parsing and formatting.
#include "base/size.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace ctr {

Result<uint64_t> parse_size(const std::string& text) {
    // [whitespace] digits[.digits] [b|k|m|g|t|p [b|ib]], case-insensitive, binary units; no unit = bytes.
    size_t i = 0;
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])))
        ++i;
    size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
        ++i;
    std::string number = text.substr(start, i - start);
    if (number.empty() || number == "." || std::count(number.begin(), number.end(), '.') > 1)
        return make_error("invalid size \"{}\"", text);
    std::string unit;
    for (; i < text.size(); ++i)
        unit += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
    int shift = 0;
    if (!unit.empty()) {
        const std::string units = "bkmgtp";
        auto u = units.find(unit[0]);
        std::string rest = unit.substr(1);
        if (u == std::string::npos || !(rest.empty() || rest == "b" || rest == "ib") ||
            (u == 0 && !rest.empty()))
            return make_error("invalid size \"{}\": invalid symbol: {}", text, unit);
        shift = static_cast<int>(u) * 10;
    }
    long double value = std::strtold(number.c_str(), nullptr);
    long double bytes = value * static_cast<long double>(1ull << shift);
    if (bytes >= 18446744073709551615.0L) return make_error("invalid size \"{}\": too large", text);
    return static_cast<uint64_t>(bytes);
}

std::string format_size(uint64_t bytes) {
    static const char* k_units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1000.0 && u < 4) {
        v /= 1000.0;
        ++u;
    }
    if (u == 0) return fmt::format("{} B", bytes);
    return fmt::format("{:.{}f} {}", v, v < 10 ? 2 : (v < 100 ? 1 : 0), k_units[u]);
}

std::string format_limit(uint64_t bytes) {
    static const char* k_units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = -1;
    while (u < 4 && bytes != 0 && bytes % 1024 == 0) {
        bytes /= 1024;
        ++u;
    }
    if (u < 0) return fmt::format("{} bytes", bytes);
    return fmt::format("{} {}", bytes, k_units[u]);
}

} // namespace ctr
