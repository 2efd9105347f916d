// SPDX-License-Identifier: MIT
// Small text helpers shared by the parsers of colon- and comma-separated files and option lists.
#pragma once

#include <string>
#include <vector>

namespace ctr {

// The parts of `s` between each `sep`: "a::b" gives {"a", "", "b"}, "" gives {""}.
std::vector<std::string> split(const std::string& s, char sep);
// The parts with `sep` between them: {"a", "b"}, ", " gives "a, b".
std::string join(const std::vector<std::string>& parts, const std::string& sep);

} // namespace ctr
