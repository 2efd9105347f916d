// SPDX-License-Identifier: MIT
// UniqueFd: a move-only owner of one file descriptor, closed on destruction; and ScopeExit.
#pragma once

#include <unistd.h>

#include <utility>

namespace ctr {

class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : m_fd(fd) {}
    UniqueFd(UniqueFd&& o) noexcept : m_fd(o.release()) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) reset(o.release());
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const { return m_fd; }
    bool valid() const { return m_fd >= 0; }
    int release() { return std::exchange(m_fd, -1); }
    void reset(int fd = -1) {
        if (m_fd >= 0) (void)::close(m_fd); // close errors on a read-only or already-synced fd carry nothing
        m_fd = fd;
    }

private:
    int m_fd = -1;
};

template <typename F> class ScopeExit {
public:
    explicit ScopeExit(F f) : m_f(std::move(f)) {}
    ScopeExit(const ScopeExit&) = delete;
    ScopeExit& operator=(const ScopeExit&) = delete;
    ~ScopeExit() {
        if (m_armed) m_f();
    }
    void release() { m_armed = false; }

private:
    F m_f;
    bool m_armed = true;
};

} // namespace ctr
