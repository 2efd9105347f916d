// SPDX-License-Identifier: MIT
// Table and JSON printing.
#include "cli/output.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ctr::cli {

void print_table(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows) {
    std::vector<size_t> width(headers.size());
    for (size_t i = 0; i < headers.size(); ++i)
        width[i] = headers[i].size();
    for (const auto& r : rows)
        for (size_t i = 0; i < r.size() && i < width.size(); ++i)
            width[i] = std::max(width[i], r[i].size());
    auto line = [&](const std::vector<std::string>& cells) {
        std::string out;
        for (size_t i = 0; i < cells.size(); ++i) {
            if (i + 1 == cells.size())
                out += cells[i];
            else
                out += fmt::format("{:<{}}  ", cells[i], width[i]);
        }
        fmt::print("{}\n", out);
    };
    line(headers);
    for (const auto& r : rows)
        line(r);
}

void print_json(const nlohmann::json& j) {
    fmt::print("{}\n", j.dump(2));
}

} // namespace ctr::cli
