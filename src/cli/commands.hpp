// SPDX-License-Identifier: MIT
// Registration of verbs on the parser. A verb's callback stores the action to run once parsing is done.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

#include "base/result.hpp"
#include "registry/pull.hpp"
#include "store/store.hpp"

namespace ctr::cli {

// The work chosen by the command line; returns the exit status.
using Action = std::function<Result<int>()>;

// `machine run [options] CMD ARG…`: everything from CMD on (or after "--") is the command, untouched by
// option parsing. split_run_command() takes it out of argv before parsing; run_command_args() returns it.
void split_run_command(std::vector<std::string>& args);
const std::vector<std::string>& run_command_args();

// Placeholders of option values (shown in --help) that also tell shell completion what to offer:
// machine names, image names, `set` keys and values, files. A placeholder "a|b|c" offers those words.
inline constexpr const char* k_machine_type = "MACHINE";
inline constexpr const char* k_image_type = "IMAGE";
inline constexpr const char* k_setting_type = "KEY=VALUE";
inline constexpr const char* k_file_type = "FILE";

// A command users see (help, completion, man pages): not hidden, not internal (`__supervise`, `__man`).
inline bool visible(const CLI::App* a) {
    return !a->get_group().empty() && !a->get_name().empty() && a->get_name()[0] != '_';
}

// Prints `e` as the one line of a failed command: "Error: <message>".
void print_error(const Error& e);
// This binary's path (supervisors, export-app's launchers and its own `machine run` children start it).
std::string self_exe();
// "Warning: TEXT" on stderr, one line; nothing for an empty text.
void print_warning(const std::string& text);
// Runs `fn` for each of `names` in order. A failure prints its line and the others still run; the
// status is 1 if any failed.
Result<int> for_each_name(const std::vector<std::string>& names,
                          const std::function<Result<void>(const std::string&)>& fn);

void add_image_commands(CLI::App& app, Action& action);
void add_registry_commands(CLI::App& app, Action& action);
void add_pull_command(CLI::App* image, Action& action);

// How to pull: shared by `image pull` and the pull `machine create` does for an image not stored yet.
struct PullFlags {
    std::string platform, os, arch, scheme = "auto", progress = "auto";
    int max_concurrent = 3;
};
void add_pull_flags(CLI::App* sub, PullFlags& f, bool with_platform);
// Pulls `text` into the store (taking its lock), with the progress display the flags ask for.
Result<registry::PullResult> pull_image(store::Store& s, const std::string& text, const PullFlags& f);
void add_machine_commands(CLI::App& app, Action& action);
// `machine commit` (cli/commit_cmds.cpp) and `image push` (cli/push_cmds.cpp).
void add_commit_command(CLI::App* machine, Action& action);
void add_push_command(CLI::App* image, Action& action);
// `machine export-app` (cli/export_app.cpp).
void add_export_app_command(CLI::App* machine, Action& action);
// `build` (cli/build_cmds.cpp).
void add_build_command(CLI::App& app, Action& action);
// `system check [--repair]` (cli/system_cmds.cpp).
void add_system_commands(CLI::App& app, Action& action);
// `completion bash|zsh|fish` (cli/completion.cpp), whose scripts call `container __complete WORD…`:
// print_completions() prints the candidates for the last of those words, run before any parsing.
void add_completion_commands(CLI::App& app, Action& action);
void print_completions(const CLI::App& app, const std::vector<std::string>& words);
// `help [COMMAND…]` and the hidden `__man DIR` that writes the man pages (cli/manual.cpp), and
// apply_manual(), which gives every command its hand-written description and examples under --help.
// Called after every command is registered.
void add_manual_commands(CLI::App& app, Action& action);
void apply_manual(CLI::App& app);

} // namespace ctr::cli
