// SPDX-License-Identifier: MIT
// Fault injection for tests/system/test_fault_injection.sh: the steps that change what is on disk
// call fault_point(), and a test makes the process kill itself (SIGKILL) at the Nth one it passes,
// which is a kill at an exactly chosen point instead of one timed by a sleep.
//
//   CONTAINER_FAULT_AT=N     the Nth point (1-based) kills this process; 0 only counts
//   CONTAINER_FAULT_LOG=F    each point passed appends its name to F (how a test learns how many there are)
//
// Both are read once, by fault_arm() at start, and removed from the environment, so they never reach
// the supervisor or any other child. Points passed in other processes (forked workers) do not count.
#pragma once

namespace ctr {

void fault_arm();
void fault_point(const char* where);

} // namespace ctr
