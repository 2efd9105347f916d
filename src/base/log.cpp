// SPDX-License-Identifier: MIT
// Debug log state and output.
#include "base/log.hpp"

#include <unistd.h>

#include <cstdio>

namespace ctr::log {

namespace {
bool g_debug = false;
}

void set_debug(bool on) {
    g_debug = on;
}
bool debug_enabled() {
    return g_debug;
}

void write_debug(const std::string& line) {
    std::string out = fmt::format("debug[{}]: {}\n", ::getpid(), line);
    (void)!::write(STDERR_FILENO, out.data(), out.size()); // nowhere to report a failed debug write
}

} // namespace ctr::log
