// SPDX-License-Identifier: MIT
// File work in a user namespace for a process with several threads. fork() copies only the calling
// thread, so a child forked while another thread holds the allocator's (or libarchive's, or libcurl's)
// lock can hang as soon as it allocates. The helper is forked while the caller is still single-threaded,
// enters the user namespace once, and forks one worker per request from there, where it is the only
// thread: requests may come from any thread of the caller, several at once.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "runtime/idmap.hpp"

namespace ctr::runtime {

class UsernsHelper {
public:
    // Runs in a worker as root of the namespace: `request` is what call() was given, `fd` its descriptor
    // (or -1), owned by the worker. Its error (errno and message) is call()'s result.
    using Handler = std::function<Result<void>(const std::string& request, int fd)>;

    // Forks the helper, which enters a new user namespace with `map` (newuidmap/newgidmap) and waits for
    // requests. Call only while single-threaded. With an identity `map` nothing is started and call()
    // runs `handler` in the calling thread, as run_as_mapped_root does.
    static Result<UsernsHelper> start(const IdMap& map, Handler handler);

    // Has `handler` run on `request` and `fd` (-1 for none; stays open here) in a fresh worker and waits
    // for its result. Thread-safe. Fails when the helper or the worker died without answering.
    Result<void> call(const std::string& request, int fd) const;

    UsernsHelper(UsernsHelper&& o) noexcept;
    UsernsHelper& operator=(UsernsHelper&&) = delete;
    // Closes the request socket; the helper waits for its workers and exits, and is reaped here.
    ~UsernsHelper();

private:
    UsernsHelper() = default;
    Handler m_handler; // used here only with an identity map
    UniqueFd m_sock;   // requests to the helper (SOCK_SEQPACKET)
    pid_t m_pid = -1;
};

} // namespace ctr::runtime
