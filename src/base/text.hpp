// SPDX-License-Identifier: MIT
// Small text helpers shared by the parsers of colon- and comma-separated files and option lists.
#pragma once

#include <string>
#include <vector>

namespace ctr {

// The parts of `s` between each `sep`: "a::b" gives {"a", "", "b"}, "" gives {""}.
std::vector<std::string> split(const std::string& s, char sep);

} // namespace ctr
