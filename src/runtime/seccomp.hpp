// SPDX-License-Identifier: MIT
// The machine's system call filter: a deny list at least as strict as systemd-nspawn's default, built
// with libseccomp (loaded on first use) into a BPF program that children install without allocating.
#pragma once

#include <linux/filter.h>

#include <string>
#include <vector>

#include "base/result.hpp"

namespace ctr::runtime {

// What the filter refuses and how: each entry is a system call name and the errno it fails with.
struct DeniedCall {
    const char* name;
    int err;
};
extern const DeniedCall k_denied_calls[];

// The filter as a BPF program for this machine's architectures (x86-64 plus its i386 and x32 ABIs, so
// a 32-bit program in the machine is filtered the same way rather than killed or let through).
Result<std::vector<sock_filter>> machine_filter();

// The filter as machine_filter() makes it, kept in the file `path` by the supervisor at boot so that
// each `run` reads 300 bytes instead of loading libseccomp and compiling the list again. A missing or
// malformed file (another version's supervisor) falls back to machine_filter().
Result<void> save_filter(const std::string& path, const std::vector<sock_filter>& prog);
Result<std::vector<sock_filter>> load_filter(const std::string& path);

// In a child, before it drops to an unprivileged user: installs `prog` (CAP_SYS_ADMIN in the current user
// namespace, which machine root has, stands in for no_new_privs). Async-signal-safe; false with errno set.
bool install_filter(const std::vector<sock_filter>& prog);

} // namespace ctr::runtime
