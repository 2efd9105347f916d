// SPDX-License-Identifier: MIT
// Error and Result<T>: an expected-style return type (GCC 12 has no std::expected) and the TRY helper.
// Library code returns errors; only cli/ prints them.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace ctr {

// One line that names the operation, the object and, for system calls, the errno text.
struct Error {
    std::string message;
    int errnum = 0;
};

// "open "/x" (O_RDONLY): No such file or directory"
Error sys_error(int errnum, std::string what);
template <typename... Args> Error make_error(fmt::format_string<Args...> f, Args&&... args) {
    return Error{fmt::format(f, std::forward<Args>(args)...), 0};
}
// Prefixes context to an error: "loading image: <original>".
Error wrap(Error e, const std::string& context);

template <typename T> class [[nodiscard]] Result {
public:
    Result(T value) : m_v(std::in_place_index<0>, std::move(value)) {}
    Result(Error e) : m_v(std::in_place_index<1>, std::move(e)) {}

    bool has_value() const { return m_v.index() == 0; }
    explicit operator bool() const { return has_value(); }
    T& value() & { return std::get<0>(m_v); }
    T&& value() && { return std::get<0>(std::move(m_v)); }
    const T& value() const& { return std::get<0>(m_v); }
    T& operator*() & { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const Error& error() const& { return std::get<1>(m_v); }
    Error&& error() && { return std::get<1>(std::move(m_v)); }

private:
    std::variant<T, Error> m_v;
};

template <> class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error e) : m_error(std::move(e)), m_failed(true) {}

    bool has_value() const { return !m_failed; }
    explicit operator bool() const { return !m_failed; }
    void value() const {}
    const Error& error() const& { return m_error; }
    Error&& error() && { return std::move(m_error); }

private:
    Error m_error;
    bool m_failed = false;
};

} // namespace ctr

// Evaluates a Result; on error returns it from the enclosing function, else yields the value.
#define CTR_CONCAT_(a, b) a##b
#define CTR_CONCAT(a, b) CTR_CONCAT_(a, b)
#define TRY(expr) CTR_TRY_IMPL(expr, CTR_CONCAT(ctr_try_result_, __COUNTER__))
#define CTR_TRY_IMPL(expr, var)                                                                              \
    ({                                                                                                       \
        auto&& var = (expr);                                                                                 \
        if (!var) return std::move(var).error();                                                             \
        std::move(var).value();                                                                              \
    })
