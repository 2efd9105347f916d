// SPDX-License-Identifier: MIT
// Separating `machine run`'s command from its options: the command's own flags must never be read as
// ours, and "--" is optional before it.
#include <algorithm>
#include <set>

#include "cli/commands.hpp"

namespace ctr::cli {

namespace {
std::vector<std::string> g_command;

// Options of `machine run` that take a value in the next argument.
const std::set<std::string> k_run_valued = {"-n", "--name", "-u",         "--user", "--uid",     "--gid",
                                            "-e", "--env",  "--env-file", "-w",     "--workdir", "--cwd"};
} // namespace

const std::vector<std::string>& run_command_args() {
    return g_command;
}

void split_run_command(std::vector<std::string>& args) {
    size_t i = 0;
    // Global flags, then "machine"/"m", then flags, then "run".
    while (i < args.size() && args[i].rfind("-", 0) == 0)
        ++i;
    if (i >= args.size() || (args[i] != "machine" && args[i] != "m")) return;
    ++i;
    while (i < args.size() && args[i].rfind("-", 0) == 0)
        ++i;
    if (i >= args.size() || args[i] != "run") return;
    for (++i; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--") {
            g_command.assign(args.begin() + static_cast<long>(i) + 1, args.end());
            args.resize(i);
            return;
        }
        if (a.size() > 1 && a[0] == '-') {
            if (k_run_valued.count(a) && a.find('=') == std::string::npos) ++i;
            continue;
        }
        g_command.assign(args.begin() + static_cast<long>(i), args.end());
        args.resize(i);
        return;
    }
}

} // namespace ctr::cli
