// SPDX-License-Identifier: MIT
// Boot-config settings as one table (k_settings in settings.cpp): for each, the `machine set` key, its
// parser and validator, its boot-config.json/inspect field and the `create`/`set` flags that feed it. The
// reference's parsing, validation and messages (apple-container-machine.md §2.3), with `kernel` refused
// (SPEC §9). The boot code that applies a setting reads BootConfig (supervisor.cpp).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "machine/machine.hpp"

namespace ctr::machine {

using Setting = std::pair<std::string, std::string>;

// What the command line checks of a flag's value before the setting's own parser sees it.
enum class FlagValue { text, positive_integer };

// A command-line option that feeds a setting: `create`'s and `set`'s `flag VALUE` means `key=VALUE`.
struct SettingFlag {
    const char* names;     // CLI11 spelling: "-v,--volume"
    const char* type_name; // placeholder, "a|b|c" for completion's choices
    const char* help;
    FlagValue value = FlagValue::text;
};

// Where `inspect` and `ls` show a setting.
enum class Shown { list_and_inspect, inspect };

// When a changed setting takes effect: at the machine's next boot (`set` says so), or at the next `run`.
enum class When { next_boot, next_run };

// A setting whose key may be given several times: each value adds one element, an empty value
// (`mounts=`) empties the list; given at all, the list replaces the machine's.
enum class Arity { one, list };

struct SettingInfo {
    const char* key;                 // `machine set` key
    const char* json;                // boot-config.json and inspect field
    std::vector<SettingFlag> flags;  // options of `create` and `set`
    std::vector<std::string> values; // what shell completion offers for `key=` (none: free-form)
    const char* help;                // `key=<…>` in set's help
    Arity arity;
    Shown shown;
    When when = When::next_boot;
};
const std::vector<SettingInfo>& settings_table();

// Facts about the host that validation needs.
struct HostFacts {
    bool has_kvm = false;
    std::string home; // the user's home (where home-mount puts it), for extra mounts' targets
};
HostFacts host_facts(const std::string& home);

// "cpus=4" -> {"cpus", "4"}; fails unless there is a key and a value (a list key may have an empty value).
Result<Setting> parse_setting(const std::string& arg);

// Applies the settings (last one wins for a key; a list key's values make the new list) to `current`;
// validates every value first, so on error nothing changes. A message may hold several lines, one per
// problem.
Result<BootConfig> apply_settings(const BootConfig& current, const std::vector<Setting>& settings,
                                  const HostFacts& host);

// boot-config.json, and the settings' part of inspect's and ls's JSON.
nlohmann::json boot_config_to_json(const BootConfig& b);
Result<BootConfig> boot_config_from_json(const nlohmann::json& j);
nlohmann::json settings_json(const BootConfig& b, Shown where);

// "SRC:DST[:ro|rw]" or "type=bind,source=SRC,target=DST[,readonly]" (the value of one mounts= element).
Result<ExtraMount> parse_mount(const std::string& text);
std::string mount_text(const ExtraMount& m); // the SRC:DST[:ro] form

// Whether `run` forwards the desktop for a machine so configured (desktop=auto: when home-mount is rw).
bool desktop_on(const BootConfig& b);

} // namespace ctr::machine
