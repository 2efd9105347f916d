// SPDX-License-Identifier: MIT
// `machine run`'s argument splitter over argv without the program name (arguments separated by NUL bytes,
// which argv cannot contain). What it takes out of argv must be exactly the tail it returns as the command,
// after an optional "--"; the options before it stay untouched.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/commands.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<std::string> args;
    std::string cur;
    for (size_t i = 0; i < size; ++i) {
        if (data[i] == '\0') {
            args.push_back(cur);
            cur.clear();
        } else {
            cur += static_cast<char>(data[i]);
        }
    }
    if (size > 0) args.push_back(cur);
    const std::vector<std::string> before = args;
    ctr::cli::split_run_command(args);
    if (args.size() == before.size()) {
        if (args != before) std::abort();
        return 0; // no command found; run_command_args() keeps the previous input's (set once per process)
    }
    bool prefix = args.size() < before.size() && std::equal(args.begin(), args.end(), before.begin());
    std::vector<std::string> tail(before.begin() + static_cast<long>(args.size()), before.end());
    if (!tail.empty() && tail.front() == "--") tail.erase(tail.begin());
    if (!prefix || tail != ctr::cli::run_command_args()) {
        std::fprintf(stderr, "split_run_command: argv lost or changed arguments that are not the command\n");
        std::abort();
    }
    return 0;
}
