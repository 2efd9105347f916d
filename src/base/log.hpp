// SPDX-License-Identifier: MIT
// Debug logging to stderr, enabled by --debug or CONTAINER_DEBUG=1. The only printing library code does.
#pragma once

#include <fmt/format.h>

namespace ctr::log {

void set_debug(bool on);
bool debug_enabled();
void write_debug(const std::string& line);

template <typename... Args> void debug(fmt::format_string<Args...> f, Args&&... args) {
    if (debug_enabled()) write_debug(fmt::format(f, std::forward<Args>(args)...));
}

} // namespace ctr::log
