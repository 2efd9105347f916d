// SPDX-License-Identifier: MIT
// Shared libraries opened with dlopen() on first use instead of linked. Linking libarchive (with
// ICU, libxml2 and seven compressors behind it) and libcrypto cost every start of the binary about
// 2.7 ms, three quarters of `container --version`, and `machine run` needs neither.
//
// CTR_LAZY_FUNCTION(lib, name) declares, in the enclosing namespace, a callable `name` that forwards
// to the C function of that name in `lib`. Code in that namespace or below calls the C API by its
// documented names; unqualified lookup finds the forwarder before the global declaration. A call to
// a function left out of the list still compiles, but fails to link, because the library is not linked.
//
// A library that cannot be opened, or lacks a function, ends the process with a one-line message
// naming the Debian package, as the dynamic loader would have at start. Every store operation
// already survives a killed process, so exiting at that point loses nothing.
#pragma once

namespace ctr {

class LazyLibrary {
public:
    constexpr LazyLibrary(const char* soname, const char* package) : m_soname(soname), m_package(package) {}
    // The address of `name` in the library; opens the library the first time. Thread-safe.
    void* symbol(const char* name) const;

private:
    void* handle() const;
    const char* m_soname;
    const char* m_package;
};

} // namespace ctr

// A function object, not a function, so that argument-dependent lookup (a `struct archive*` argument
// brings in the global namespace) cannot pick the global C function instead.
#define CTR_LAZY_FUNCTION(lib, name)                                                                         \
    inline constexpr auto name = [](auto... args) {                                                          \
        static const auto fn = reinterpret_cast<decltype(&::name)>((lib).symbol(#name));                     \
        return fn(args...);                                                                                  \
    };
