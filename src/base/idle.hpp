// SPDX-License-Identifier: MIT
// Handing back what a long-lived, mostly idle process (a machine's supervisor) holds but will not touch
// again soon. A machine's supervisor sleeps in poll() for days; every page it keeps mapped counts
// against the user once per machine.
#pragma once

namespace ctr {

// Returns the heap's free memory to the kernel (malloc_trim), drops this process's mappings of file
// pages it never wrote (code and read-only data of the binary and its libraries: they come back from
// the page cache on the next touch, so only what the idle loop runs stays mapped), and drops the stack
// below the current frame. Mappings with private (written) pages, such as relocated data, are left
// alone, since dropping those would lose the writes. Best effort: any step that fails is skipped.
void release_idle_memory();

} // namespace ctr
