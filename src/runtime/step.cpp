// SPDX-License-Identifier: MIT
// A build step's command in a throwaway machine: the runner process that stands where a machine's
// supervisor stands (its own user and mount namespace), boots the step with boot_init() and waits.
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "runtime/boot.hpp"
#include "runtime/spawn.hpp"
#include "runtime/userns.hpp"

namespace ctr::runtime {

Result<int> run_step(const BootSpec& spec, const IdMap& outer, const IdMap& inner,
                     const std::function<void(std::string_view)>& on_output) {
    if (!spec.step) return make_error("run_step: no command");
    int out[2], rep[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return sys_error(errno, "pipe");
    UniqueFd out_r(out[0]), out_w(out[1]);
    if (::pipe2(rep, O_CLOEXEC) != 0) return sys_error(errno, "pipe");
    UniqueFd rep_r(rep[0]), rep_w(rep[1]);
    BootSpec s = spec;
    s.step->output_fd = out_w.get();
    pid_t pid = ::fork();
    if (pid < 0) return sys_error(errno, "fork the build step's runner");
    if (pid == 0) {
        harden_child();
        (void)::prctl(PR_SET_PDEATHSIG, SIGKILL); // the build's end is the step's end
        out_r.reset();
        rep_r.reset();
        auto r = [&]() -> Result<int> {
            TRY(enter_userns(outer));
            if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0)
                return sys_error(errno, "make the step runner's mounts private");
            BootedInit b = TRY(boot_init(s, inner, ""));
            int st = 0;
            while (::waitpid(b.pid, &st, 0) < 0)
                if (errno != EINTR) return sys_error(errno, "wait for the build step");
            return st;
        }();
        std::string msg = r ? fmt::format("S{}", *r) : fmt::format("E{}\n{}", r.error().errnum, r.error().message);
        (void)!::write(rep_w.get(), msg.data(), msg.size()); // silence reads as a failure
        ::_exit(0);
    }
    out_w.reset();
    rep_w.reset();
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(out_r.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (on_output) on_output(std::string_view(buf, static_cast<size_t>(n)));
    }
    std::string report;
    for (;;) {
        ssize_t n = ::read(rep_r.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        report.append(buf, static_cast<size_t>(n));
    }
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (report.empty()) return make_error("the build step's runner died");
    if (report[0] == 'S') return std::atoi(report.c_str() + 1);
    size_t nl = report.find('\n');
    Error e{nl == std::string::npos ? report.substr(1) : report.substr(nl + 1), 0};
    e.errnum = std::atoi(report.c_str() + 1);
    return e;
}

} // namespace ctr::runtime
