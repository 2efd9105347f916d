// SPDX-License-Identifier: MIT
// The per-machine supervisor (SPEC §6): a detached, single-threaded process that boots the machine,
// copies init's console to stdio.log, records state, stops init the way its kind expects, and cleans
// up when init ends for any reason.
#pragma once

#include <string>

namespace ctr::supervisor {

// Runs the machine `name` until its init exits; returns the process exit status. Its own steps go to
// stderr (boot.log); a boot failure is also written to <machine>/boot-error for the waiting CLI.
int supervise(const std::string& name);

} // namespace ctr::supervisor
