// SPDX-License-Identifier: MIT
// Top-level parser: global flags, verb groups, and the exit status contract.
#include "cli/app.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <fmt/format.h>

#include "base/fault.hpp"
#include "base/log.hpp"
#include "cli/commands.hpp"
#include "supervisor/supervisor.hpp"
#include "commit.h" // generated: CONTAINER_COMMIT

#ifndef CONTAINER_VERSION
#define CONTAINER_VERSION "0.0.0"
#endif
#define CONTAINER_VERSION_LINE "container version " CONTAINER_VERSION " (commit " CONTAINER_COMMIT ")"

namespace ctr::cli {

namespace {

std::string one_line(std::string s) {
    for (char& c : s)
        if (c == '\n' || c == '\r') c = ' ';
    while (!s.empty() && s.back() == ' ')
        s.pop_back();
    return s;
}

} // namespace

void print_error(const Error& e) {
    fmt::print(stderr, "Error: {}\n", one_line(e.message));
}

std::string self_exe() {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return "/proc/self/exe";
    buf[n] = 0;
    return buf;
}

void print_warning(const std::string& text) {
    if (!text.empty()) fmt::print(stderr, "Warning: {}\n", one_line(text));
}

Result<int> for_each_name(const std::vector<std::string>& names,
                          const std::function<Result<void>(const std::string&)>& fn) {
    int status = 0;
    for (const auto& n : names) {
        if (auto r = fn(n); !r) {
            std::fflush(stdout); // in order with the names already printed
            print_error(r.error());
            status = k_exit_failure;
        }
    }
    return status;
}

int run(int argc, char** argv) {
    fault_arm(); // tests only: see base/fault.hpp
    // A machine's supervisor (lifecycle.cpp starts it so) lives as long as the machine: it starts before
    // the verb table is built, which would otherwise stay on its heap all that time (0.2 MiB).
    if (argc == 3 && std::string_view(argv[1]) == "__supervise") {
        const char* debug = std::getenv("CONTAINER_DEBUG");
        log::set_debug(debug && *debug && std::string_view(debug) != "0");
        return supervisor::supervise(argv[2]);
    }
    CLI::App app("container: persistent Linux container machines made from OCI images", "container");
    app.set_version_flag("--version", CONTAINER_VERSION_LINE);
    bool debug = false;
    app.add_flag("--debug", debug, "Print debug messages (also CONTAINER_DEBUG=1)")
        ->envname("CONTAINER_DEBUG");
    app.require_subcommand(1);
    app.fallthrough();

    Action action;
    add_build_command(app, action);
    add_image_commands(app, action);
    add_machine_commands(app, action);
    add_registry_commands(app, action);
    add_system_commands(app, action);
    add_completion_commands(app, action);
    add_manual_commands(app, action);
    apply_manual(app);

    std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && args[0] == "__complete") { // the completion scripts: every word is data
        print_completions(app, {args.begin() + 1, args.end()});
        return 0;
    }
    split_run_command(args);
    std::reverse(args.begin(), args.end()); // CLI11 takes the arguments in reverse order
    try {
        app.parse(args);
    } catch (const CLI::CallForHelp&) {
        fmt::print("{}", app.help());
        return 0;
    } catch (const CLI::CallForAllHelp&) {
        fmt::print("{}", app.help("", CLI::AppFormatMode::All));
        return 0;
    } catch (const CLI::Success&) {
        fmt::print("{}\n", CONTAINER_VERSION_LINE);
        return 0;
    } catch (const CLI::ParseError& e) {
        // CLI11 reports help for a subcommand by throwing from it; find which one asked.
        if (e.get_exit_code() == 0) {
            fmt::print("{}", app.help());
            return 0;
        }
        fmt::print(stderr, "Error: {} (see 'container --help')\n", one_line(e.what()));
        return k_exit_usage;
    }
    log::set_debug(debug);
    if (!action) {
        fmt::print(stderr, "Error: no command given (see 'container --help')\n");
        return k_exit_usage;
    }
    Result<int> r = [&]() -> Result<int> {
        try {
            return action();
        } catch (const std::exception& e) {
            return make_error("{}", e.what());
        }
    }();
    if (!r) {
        print_error(r.error());
        return k_exit_failure;
    }
    return *r;
}

} // namespace ctr::cli
