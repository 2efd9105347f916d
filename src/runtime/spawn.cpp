// SPDX-License-Identifier: MIT
// Child hardening and the {step, errno} failure pipe.
#include "runtime/spawn.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/keyctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

namespace ctr::runtime {

void harden_child() {
    (void)::prctl(PR_SET_DUMPABLE, 0); // cannot fail for 0
    // A new anonymous session keyring replaces the caller's (refused only without keyrings in the kernel).
    (void)::syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, nullptr);
    (void)::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC); // Linux 5.11; fds stay open until exec
}

Result<ChildStatus> ChildStatus::make() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return sys_error(errno, "pipe");
    ChildStatus s;
    s.m_r.reset(p[0]);
    s.m_w.reset(p[1]);
    return s;
}

bool ChildStatus::read_failure(ChildFailure& out) {
    m_w.reset();
    size_t got = 0;
    char* p = reinterpret_cast<char*>(&out);
    while (got < sizeof out) {
        ssize_t n = ::read(m_r.get(), p + got, sizeof out - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<size_t>(n);
    }
    if (got != sizeof out) return false;
    out.step[sizeof out.step - 1] = 0;
    return true;
}

Result<void> ChildStatus::wait() {
    ChildFailure f{};
    if (read_failure(f)) return failure_error(f);
    return {};
}

Error failure_error(const ChildFailure& f) {
    if (f.err == 0) return Error{f.step, 0};
    return sys_error(f.err, f.step);
}

[[noreturn]] void child_fail2(int fd, const char* step, const char* object, int err, int code) {
    ChildFailure f{};
    size_t n = 0;
    for (const char* s : {step, object})
        for (; s && *s && n + 1 < sizeof f.step; ++s)
            f.step[n++] = *s;
    f.err = err;
    f.code = code;
    (void)!::write(fd, &f, sizeof f); // a pipe write of this size is atomic; silence reads as failure too
    ::_exit(code);
}

[[noreturn]] void child_fail(int fd, const char* step, int err, int code) {
    child_fail2(fd, step, nullptr, err, code);
}

} // namespace ctr::runtime
