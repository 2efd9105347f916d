// SPDX-License-Identifier: MIT
#include "base/lazy_lib.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <fmt/format.h>

namespace ctr {

namespace {

[[noreturn]] void die(const std::string& message) {
    std::string line = fmt::format("container: {}\n", message);
    (void)!::write(STDERR_FILENO, line.data(), line.size());
    ::_exit(127);
}

} // namespace

void* LazyLibrary::handle() const {
    // One handle per soname; dlopen() itself is thread-safe and returns the same handle again.
    void* h = ::dlopen(m_soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) die(fmt::format("cannot load {} (package {}): {}", m_soname, m_package, ::dlerror()));
    return h;
}

void* LazyLibrary::symbol(const char* name) const {
    void* fn = ::dlsym(handle(), name);
    if (!fn) die(fmt::format("{} (package {}) lacks {}", m_soname, m_package, name));
    return fn;
}

} // namespace ctr
