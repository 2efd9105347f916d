// SPDX-License-Identifier: MIT
// Machine lifecycle as the CLI drives it: create, start (spawn the supervisor and wait for
// readiness), stop (ask the supervisor, wait, escalate), remove.
#pragma once

#include <string>

#include "machine/machine.hpp"

namespace ctr::machine {

struct CreateOptions {
    std::string name; // empty: derived from the image
    std::string image;
    BootConfig boot;
    bool set_default = false;
};

// Makes the machine's directory and configuration from a stored image. The image must hold /sbin/init.
Result<MachineConfig> create(Machines& machines, const CreateOptions& opts);
// The calling user as a new machine records it: name, ids, home and shell from the password database.
UserSetup host_user();

// Boots the machine unless it runs; returns when it is ready, or fails with the supervisor's reason.
// `self_exe` is the binary to start as the supervisor. What it returns is a warning for the user, empty
// when there is none: a machine that booted although its console says a resource ran out.
Result<std::string> start(Machines& machines, const std::string& name, const std::string& self_exe);

// Stops the machine if it runs: its init gets the stop request, then SIGKILL after `timeout_s`.
Result<void> stop(Machines& machines, const std::string& name, int timeout_s);

// Stops the machine and deletes its directory (upper layer, config, logs).
Result<void> remove(Machines& machines, const std::string& name);

// A machine directory without config.json is what a cut-short rm or create leaves. Removes it, under the
// store and machine locks, and says whether there was one; an existing machine is left alone (false).
Result<bool> remove_leftover(Machines& machines, const std::string& name);

// Deletes the machine's directory, whatever is in it; the caller holds the locks and has checked.
Result<void> remove_tree(Machines& machines, const std::string& name);

// Bytes allocated by the machine's own upper layer (what it adds on top of the image).
uint64_t disk_usage(const Machines& machines, const std::string& name);

} // namespace ctr::machine
