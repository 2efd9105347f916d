// SPDX-License-Identifier: MIT
// Boot-config settings from `key=value` text (`machine set`, and `create`'s flags): the reference's
// parsing, validation and messages (apple-container-machine.md §2.3), with `kernel` refused (SPEC §9).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/result.hpp"
#include "machine/machine.hpp"

namespace ctr::machine {

using Setting = std::pair<std::string, std::string>;

// The keys `machine set` takes, with the values shell completion offers for each (none: free-form).
struct SettingKey {
    const char* key;
    std::vector<std::string> values;
};
const std::vector<SettingKey>& setting_keys();

// "cpus=4" -> {"cpus", "4"}; fails unless there is a key and a value.
Result<Setting> parse_setting(const std::string& arg);

// Applies the settings (last one wins for a key) to `current`; validates every value first, so on
// error nothing changes. `host_has_kvm` decides whether virtualization=true is possible.
Result<BootConfig> apply_settings(const BootConfig& current, const std::vector<Setting>& settings,
                                  bool host_has_kvm);

} // namespace ctr::machine
