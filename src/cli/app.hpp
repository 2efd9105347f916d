// SPDX-License-Identifier: MIT
// The command line: the verb table, argument parsing and the mapping of results to exit status
// (0 success, 1 runtime error with "Error: <one line>" on stderr, 64 usage error).
#pragma once

namespace ctr::cli {

inline constexpr int k_exit_failure = 1;
inline constexpr int k_exit_usage = 64;

int run(int argc, char** argv);

} // namespace ctr::cli
