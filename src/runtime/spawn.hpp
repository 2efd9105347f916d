// SPDX-License-Identifier: MIT
// What every child process of the tool does first, and how it reports failure. Every fork/clone in
// the tool (supervisor, boot child, mount helper, provisioning, `run`, stop helpers, user-namespace
// helpers) starts with harden_child() and reports through a ChildStatus pipe: a fixed-size
// {step, errno} record, so nothing between fork and exec allocates or throws to report.
#pragma once

#include <sys/types.h>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace ctr::runtime {

// The first thing a child does (async-signal-safe, allocation-free):
// - PR_SET_DUMPABLE 0, so that nothing in a machine can read its /proc files (environ, exe, fds, mem)
//   or ptrace it until it execs;
// - a fresh anonymous session keyring, so the caller's keys are not reachable from a machine;
// - every descriptor >= 3 marked close-on-exec, so nothing the caller had open reaches the program it
//   runs. They stay usable until exec: the child's own pipes and namespace fds need no exception.
void harden_child();

// One failure record. `step` names the operation and its object ("mount proc on /proc").
struct ChildFailure {
    char step[240];
    int err; // errno, or 0 when `step` is the whole message
    int code; // the exit status the child ends with
};

// The pipe a child reports its failure over: the child writes one ChildFailure and exits; a pipe that
// closes without a record (close-on-exec) means the child reached exec.
class ChildStatus {
public:
    static Result<ChildStatus> make();
    int write_fd() const { return m_w.get(); }
    // In the parent, after fork: close our copy of the write end.
    void parent_side() { m_w.reset(); }
    // In the parent: waits for exec or a failure record; a failure comes back as an Error "step: errno text".
    Result<void> wait();
    // The raw record, for callers that want the child's exit code.
    bool read_failure(ChildFailure& out);

private:
    UniqueFd m_r, m_w;
};

// In the child: writes {step, err} to `fd` and _exit(code). Formats nothing but a bounded copy.
[[noreturn]] void child_fail(int fd, const char* step, int err, int code = 125);
// Same, with the step built from two parts ("mount " + target): truncated to fit, never allocates.
[[noreturn]] void child_fail2(int fd, const char* step, const char* object, int err, int code = 125);

// Turns a failure record into an Error ("step: errno text").
Error failure_error(const ChildFailure& f);

} // namespace ctr::runtime
