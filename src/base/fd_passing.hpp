// SPDX-License-Identifier: MIT
// Passing one file descriptor over a Unix socket (SCM_RIGHTS), as the boot child hands over its root
// and `run` hands over the machine's pseudo-terminal. Neither allocates, so both are safe after fork.
#pragma once

namespace ctr {

// Sends `fd` with one data byte; false with errno set on failure. `fd` stays open in the sender.
bool send_fd(int sock, int fd);
// Receives a descriptor sent by send_fd, close-on-exec; -1 when none arrived.
int recv_fd(int sock);

} // namespace ctr
