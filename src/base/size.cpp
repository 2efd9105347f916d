// SPDX-License-Identifier: MIT
// Size parsing and formatting.
#include "base/size.hpp"

#include <cctype>

namespace ctr {

Result<uint64_t> parse_size(const std::string& text) {
    size_t i = 0;
    uint64_t value = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        uint64_t next = value * 10 + static_cast<uint64_t>(text[i] - '0');
        if (next / 10 != value) return make_error("invalid size \"{}\": too large", text);
        value = next;
        ++i;
    }
    if (i == 0) return make_error("invalid size \"{}\": expected a number with an optional K, M, G or T", text);
    std::string unit;
    for (; i < text.size(); ++i) unit += static_cast<char>(std::toupper(static_cast<unsigned char>(text[i])));
    int shift = 0;
    if (unit.empty() || unit == "B") shift = 0;
    else if (unit == "K" || unit == "KB" || unit == "KIB") shift = 10;
    else if (unit == "M" || unit == "MB" || unit == "MIB") shift = 20;
    else if (unit == "G" || unit == "GB" || unit == "GIB") shift = 30;
    else if (unit == "T" || unit == "TB" || unit == "TIB") shift = 40;
    else return make_error("invalid size \"{}\": unknown unit \"{}\"", text, unit);
    if (shift > 0 && value > (UINT64_MAX >> shift)) return make_error("invalid size \"{}\": too large", text);
    return value << shift;
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

} // namespace ctr
