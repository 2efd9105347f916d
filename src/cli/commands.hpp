// SPDX-License-Identifier: MIT
// Registration of verbs on the parser. A verb's callback stores the action to run once parsing is done.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

#include "base/result.hpp"

namespace ctr::cli {

// The work chosen by the command line; returns the exit status.
using Action = std::function<Result<int>()>;

void add_image_commands(CLI::App& app, Action& action);

} // namespace ctr::cli
