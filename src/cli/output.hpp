// SPDX-License-Identifier: MIT
// What listings print: aligned tables with a header row, or JSON.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ctr::cli {

enum class Format { table, json };

void print_table(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows);
void print_json(const nlohmann::json& j);

} // namespace ctr::cli
