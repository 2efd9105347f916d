// SPDX-License-Identifier: MIT
// Setting validation.
#include "machine/settings.hpp"

#include <algorithm>
#include <cctype>
#include <map>

#include "base/size.hpp"

namespace ctr::machine {

namespace {
constexpr const char* k_valid = "cpus, memory, home-mount, virtualization, kernel";

std::string lower(std::string s) {
    for (char& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}
} // namespace

const std::vector<SettingKey>& setting_keys() {
    // `kernel` is known only to be refused (SPEC §9): it is not offered.
    static const std::vector<SettingKey> keys = {
        {"cpus", {"1", "2", "4", "8"}},
        {"memory", {"1G", "2G", "4G", "8G"}},
        {"home-mount", {"rw", "ro", "none"}},
        {"virtualization", {"true", "false"}},
    };
    return keys;
}

Result<Setting> parse_setting(const std::string& arg) {
    auto eq = arg.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == arg.size())
        return make_error("invalid argument format '{}'. Expected 'key=value'", arg);
    return Setting{arg.substr(0, eq), arg.substr(eq + 1)};
}

Result<BootConfig> apply_settings(const BootConfig& current, const std::vector<Setting>& settings,
                                  bool host_has_kvm) {
    std::map<std::string, std::string> last;
    std::vector<std::string> unknown;
    for (const auto& [k, v] : settings) {
        const auto& keys = setting_keys();
        if (k == "kernel" || std::any_of(keys.begin(), keys.end(), [&](const SettingKey& s) { return k == s.key; }))
            last[k] = v;
        else if (std::find(unknown.begin(), unknown.end(), k) == unknown.end())
            unknown.push_back(k);
    }
    if (!unknown.empty()) {
        std::string list;
        for (const auto& u : unknown)
            list += (list.empty() ? "" : ", ") + u;
        return make_error("unknown fields '{}'. Valid: {}", list, k_valid);
    }
    BootConfig b = current;
    if (auto it = last.find("cpus"); it != last.end()) {
        const std::string& v = it->second;
        bool digits = !v.empty() && std::all_of(v.begin() + (v[0] == '-' ? 1 : 0), v.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c));
        });
        if (!digits || v.size() > 9) return make_error("failed to parse {} for cpus", v);
        long n = std::stol(v);
        if (n <= 0) return make_error("invalid CPU count '{}'. Must be a positive integer (e.g., 4).", n);
        b.cpus = static_cast<int>(n);
    }
    if (auto it = last.find("memory"); it != last.end()) {
        uint64_t bytes = TRY(parse_size(it->second));
        if (bytes < (1ull << 30))
            return make_error("invalid memory value '{}'. Must be at least 1G.", it->second);
        b.memory = bytes;
    }
    if (auto it = last.find("home-mount"); it != last.end()) {
        const std::string& v = it->second;
        if (v != "ro" && v != "rw" && v != "none")
            return make_error("invalid home mount option '{}'. Valid options: ro, rw, none", v);
        b.home_mount = v;
    }
    if (auto it = last.find("virtualization"); it != last.end()) {
        std::string v = lower(it->second);
        if (v == "true" || v == "t")
            b.virtualization = true;
        else if (v == "false" || v == "f")
            b.virtualization = false;
        else
            return make_error("invalid value '{}' for virtualization. Expected 'true' or 'false'.",
                              it->second);
        if (b.virtualization && !host_has_kvm)
            return make_error("virtualization=true needs /dev/kvm, and this host has none");
    }
    if (last.count("kernel"))
        return make_error("kernel cannot be set: container machines run on the host's kernel");
    return b;
}

} // namespace ctr::machine
