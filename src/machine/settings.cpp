// SPDX-License-Identifier: MIT
// The settings table and the one loop each of `set`, `create`, boot-config.json and inspect runs over it.
// A new setting is a row here (plus the boot code that applies it).
#include "machine/settings.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>

#include "base/size.hpp"
#include "base/text.hpp"

namespace ctr::machine {

using nlohmann::json;

namespace {

std::string lower(std::string s) {
    for (char& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

Result<bool> parse_bool(const std::string& key, const std::string& v) {
    std::string l = lower(v);
    if (l == "true" || l == "t") return true;
    if (l == "false" || l == "f") return false;
    if (key == "desktop")
        return make_error("invalid value '{}' for desktop. Expected 'auto', 'true' or 'false'.", v);
    return make_error("invalid value '{}' for {}. Expected 'true' or 'false'.", v, key);
}

// What a row does, beside what SettingInfo describes. `parse` is called once for a one-value key (the
// last value given) and, for a list key, once with "" (empty the list) and then once per value.
struct Row {
    SettingInfo info;
    Result<void> (*parse)(BootConfig& b, const std::string& value, const HostFacts& host);
    json (*to_json)(const BootConfig& b);
    void (*from_json)(BootConfig& b, const json& j); // j is the field's value; throws json::exception
    bool required_in_json = false;                   // else a missing field keeps BootConfig's default
    // Checks of the whole result (across settings); problems appended one per line. May be null.
    void (*check)(const BootConfig& b, const HostFacts& host, std::vector<std::string>& problems) = nullptr;
};

// --- extra mounts ---

// Collapses repeated slashes and drops a trailing one ("/a//b/" -> "/a/b").
std::string normalize(const std::string& p) {
    std::string out;
    for (char c : p)
        if (!(c == '/' && !out.empty() && out.back() == '/')) out += c;
    while (out.size() > 1 && out.back() == '/')
        out.pop_back();
    return out;
}

bool under(const std::string& path, const std::string& dir) {
    return path == dir || (dir == "/" ? !path.empty() && path[0] == '/' : path.rfind(dir + "/", 0) == 0);
}

// Problems with one mount that need no other setting: one line each.
std::vector<std::string> mount_problems(const ExtraMount& m) {
    std::vector<std::string> p;
    if (m.source.empty() || m.source[0] != '/')
        p.push_back(fmt::format("mount source '{}' is not an absolute path", m.source));
    else if (struct stat st{}; ::stat(m.source.c_str(), &st) != 0)
        p.push_back(fmt::format("mount source '{}' does not exist", m.source));
    if (m.target.empty() || m.target[0] != '/') {
        p.push_back(fmt::format("mount target '{}' is not an absolute path", m.target));
        return p;
    }
    for (const auto& part : split(m.target, '/'))
        if (part == "." || part == "..") {
            p.push_back(fmt::format("mount target '{}' has '.' or '..' in it", m.target));
            return p;
        }
    if (m.target == "/") {
        p.push_back("mount target '/' is the machine's root");
        return p;
    }
    for (const char* api : {"/proc", "/sys", "/dev"})
        if (under(m.target, api))
            p.push_back(fmt::format("mount target '{}' is over {}, which the machine's runtime provides",
                                    m.target, api));
    return p;
}

Result<void> parse_mounts(BootConfig& b, const std::string& v, const HostFacts&) {
    if (v.empty()) {
        b.mounts.clear();
        return {};
    }
    ExtraMount m = TRY(parse_mount(v));
    auto problems = mount_problems(m);
    if (!problems.empty()) return make_error("{}", join(problems, "\n"));
    // Stored as its real path: boot then opens it with no link followed (supervisor.cpp), so a link a
    // machine plants on the way later is refused instead of followed.
    if (char* real = ::realpath(m.source.c_str(), nullptr)) {
        m.source = real;
        ::free(real);
    }
    for (const auto& other : b.mounts)
        if (other.target == m.target) return make_error("mount target '{}' is given twice", m.target);
    b.mounts.push_back(std::move(m));
    return {};
}

void check_mounts(const BootConfig& b, const HostFacts& host, std::vector<std::string>& problems) {
    if (b.home_mount == "none" || host.home.empty()) return;
    for (const auto& m : b.mounts)
        if (under(m.target, host.home) || under(host.home, m.target))
            problems.push_back(
                fmt::format("mount target '{}' is over the home mount {} (home-mount=none frees it)",
                            m.target, host.home));
}

json mounts_to_json(const BootConfig& b) {
    json a = json::array();
    for (const auto& m : b.mounts)
        a.push_back({{"source", m.source}, {"target", m.target}, {"readOnly", m.read_only}});
    return a;
}

void mounts_from_json(BootConfig& b, const json& j) {
    for (const auto& m : j)
        b.mounts.push_back({m.at("source").get<std::string>(), m.at("target").get<std::string>(),
                            m.value("readOnly", false)});
}

// --- one parser per setting ---

Result<void> parse_cpus(BootConfig& b, const std::string& v, const HostFacts&) {
    bool digits = !v.empty() && std::all_of(v.begin() + (v[0] == '-' ? 1 : 0), v.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
    });
    if (!digits || v.size() > 9) return make_error("failed to parse {} for cpus", v);
    long n = std::stol(v);
    if (n <= 0) return make_error("invalid CPU count '{}'. Must be a positive integer (e.g., 4).", n);
    b.cpus = static_cast<int>(n);
    return {};
}

Result<void> parse_memory(BootConfig& b, const std::string& v, const HostFacts&) {
    uint64_t bytes = TRY(parse_size(v));
    if (bytes < (1ull << 30)) return make_error("invalid memory value '{}'. Must be at least 1G.", v);
    b.memory = bytes;
    return {};
}

Result<void> parse_home_mount(BootConfig& b, const std::string& v, const HostFacts&) {
    if (v != "ro" && v != "rw" && v != "none")
        return make_error("invalid home mount option '{}'. Valid options: ro, rw, none", v);
    b.home_mount = v;
    return {};
}

Result<void> parse_virtualization(BootConfig& b, const std::string& v, const HostFacts& host) {
    b.virtualization = TRY(parse_bool("virtualization", v));
    if (b.virtualization && !host.has_kvm)
        return make_error("virtualization=true needs /dev/kvm, and this host has none");
    return {};
}

Result<void> parse_desktop(BootConfig& b, const std::string& v, const HostFacts&) {
    if (lower(v) == "auto")
        b.desktop = "auto";
    else
        b.desktop = TRY(parse_bool("desktop", v)) ? "true" : "false";
    return {};
}

Result<void> parse_gpu(BootConfig& b, const std::string& v, const HostFacts&) {
    b.gpu = TRY(parse_bool("gpu", v));
    return {};
}

// A field of BootConfig as JSON, both ways.
template <auto Field> json field_to_json(const BootConfig& b) {
    return b.*Field;
}
template <auto Field> void field_from_json(BootConfig& b, const json& j) {
    j.get_to(b.*Field);
}
#define CTR_FIELD(f) field_to_json<&BootConfig::f>, field_from_json<&BootConfig::f>

// --- the table: one row per setting, in the order `set` validates them ---

const std::vector<Row>& rows() {
    using F = FlagValue;
    // clang-format off
    static const std::vector<Row> table = {
        {{"cpus", "cpus", {{"--cpus", "INT", "Number of CPUs (default: all)", F::positive_integer}},
          {"1", "2", "4", "8"}, "cpus=<number>", Arity::one, Shown::list_and_inspect},
         parse_cpus, CTR_FIELD(cpus), true},
        {{"memory", "memory", {{"--memory", "SIZE", "Memory limit, e.g. 2G (default: half of host memory)"}},
          {"1G", "2G", "4G", "8G"}, "memory=<size> (e.g. 2G)", Arity::one, Shown::list_and_inspect},
         parse_memory, CTR_FIELD(memory), true},
        {{"home-mount", "homeMount", {{"--home-mount", "rw|ro|none", "Home directory mount: rw, ro or none (default: rw)"}},
          {"rw", "ro", "none"}, "home-mount=<ro|rw|none>", Arity::one, Shown::inspect},
         parse_home_mount, CTR_FIELD(home_mount)},
        {{"virtualization", "virtualization", {},
          {"true", "false"}, "virtualization=<true|false>", Arity::one, Shown::inspect},
         parse_virtualization, CTR_FIELD(virtualization)},
        {{"mounts", "mounts", {{"-v,--volume", "SRC:DST[:MODE]", "Share a host path at DST in the machine, MODE ro or rw (repeatable)"},
                               {"--mount", "type=bind,source=SRC,target=DST[,readonly]", "Share a host path (repeatable)"}},
          {}, "mounts=<SRC:DST[:ro]> (repeatable; mounts= removes them)", Arity::list, Shown::inspect},
         parse_mounts, mounts_to_json, mounts_from_json, false, check_mounts},
        {{"desktop", "desktop", {},
          {"auto", "true", "false"}, "desktop=<auto|true|false>", Arity::one, Shown::inspect, When::next_run},
         parse_desktop, CTR_FIELD(desktop)},
        {{"gpu", "gpu", {},
          {"true", "false"}, "gpu=<true|false>", Arity::one, Shown::inspect},
         parse_gpu, CTR_FIELD(gpu)},
    };
    // clang-format on
    return table;
}

#undef CTR_FIELD

const Row* find_row(const std::string& key) {
    for (const auto& r : rows())
        if (key == r.info.key) return &r;
    return nullptr;
}

} // namespace

const std::vector<SettingInfo>& settings_table() {
    static const std::vector<SettingInfo> infos = [] {
        std::vector<SettingInfo> v;
        for (const auto& r : rows())
            v.push_back(r.info);
        return v;
    }();
    return infos;
}

bool desktop_on(const BootConfig& b) {
    return b.desktop == "true" || (b.desktop == "auto" && b.home_mount == "rw");
}

HostFacts host_facts(const std::string& home) {
    return {::access("/dev/kvm", F_OK) == 0, normalize(home)};
}

Result<Setting> parse_setting(const std::string& arg) {
    auto eq = arg.find('=');
    bool empty_ok = eq != std::string::npos && eq > 0 && [&] {
        const Row* r = find_row(arg.substr(0, eq));
        return r && r->info.arity == Arity::list;
    }();
    if (eq == std::string::npos || eq == 0 || (eq + 1 == arg.size() && !empty_ok))
        return make_error("invalid argument format '{}'. Expected 'key=value'", arg);
    return Setting{arg.substr(0, eq), arg.substr(eq + 1)};
}

Result<BootConfig> apply_settings(const BootConfig& current, const std::vector<Setting>& settings,
                                  const HostFacts& host) {
    std::map<std::string, std::vector<std::string>> given;
    std::vector<std::string> unknown;
    for (const auto& [k, v] : settings) {
        if (k == "kernel" || find_row(k))
            given[k].push_back(v);
        else if (std::find(unknown.begin(), unknown.end(), k) == unknown.end())
            unknown.push_back(k);
    }
    if (!unknown.empty()) {
        std::string valid;
        for (const auto& r : rows())
            valid += std::string(r.info.key) + ", ";
        return make_error("unknown fields '{}'. Valid: {}kernel", join(unknown, ", "), valid);
    }
    BootConfig b = current;
    std::vector<std::string> problems; // a list key's values: every bad one is reported
    for (const auto& r : rows()) {
        auto it = given.find(r.info.key);
        if (it == given.end()) continue;
        if (r.info.arity == Arity::one) {
            TRY(r.parse(b, it->second.back(), host));
            continue;
        }
        TRY(r.parse(b, "", host));
        for (const auto& v : it->second)
            if (auto ok = r.parse(b, v, host); !ok) problems.push_back(ok.error().message);
    }
    if (given.count("kernel"))
        return make_error("kernel cannot be set: container machines run on the host's kernel");
    for (const auto& r : rows())
        if (r.check) r.check(b, host, problems);
    if (!problems.empty()) return make_error("{}", join(problems, "\n"));
    return b;
}

json boot_config_to_json(const BootConfig& b) {
    json j = json::object();
    for (const auto& r : rows())
        j[r.info.json] = r.to_json(b);
    return j;
}

Result<BootConfig> boot_config_from_json(const json& j) {
    try {
        BootConfig b;
        for (const auto& r : rows()) {
            if (r.required_in_json)
                r.from_json(b, j.at(r.info.json));
            else if (j.contains(r.info.json))
                r.from_json(b, j.at(r.info.json));
        }
        return b;
    } catch (const json::exception& e) {
        return make_error("boot-config.json is malformed: {}", e.what());
    }
}

json settings_json(const BootConfig& b, Shown where) {
    json j = json::object();
    for (const auto& r : rows())
        if (where == Shown::inspect || r.info.shown == Shown::list_and_inspect) j[r.info.json] = r.to_json(b);
    return j;
}

Result<ExtraMount> parse_mount(const std::string& text) {
    ExtraMount m;
    if (text.rfind("type=", 0) == 0) {
        auto usage = [&] {
            return make_error("invalid mount '{}': expected type=bind,source=SRC,target=DST[,readonly]",
                              text);
        };
        bool bind = false;
        for (const auto& field : split(text, ',')) {
            auto eq = field.find('=');
            std::string k = field.substr(0, eq), v = eq == std::string::npos ? "" : field.substr(eq + 1);
            if (k == "type" && v == "bind")
                bind = true;
            else if (k == "type")
                return make_error("invalid mount '{}': only type=bind is supported", text);
            else if (k == "source" || k == "src")
                m.source = v;
            else if (k == "target" || k == "destination" || k == "dst")
                m.target = v;
            else if ((k == "readonly" || k == "ro") && (eq == std::string::npos || v == "true" || v == "1"))
                m.read_only = true;
            else if ((k == "readonly" || k == "ro") && (v == "false" || v == "0"))
                m.read_only = false;
            else
                return make_error("invalid mount '{}': unknown field '{}'", text, field);
        }
        if (!bind || m.source.empty() || m.target.empty()) return usage();
    } else {
        auto parts = split(text, ':');
        if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty() ||
            (parts.size() == 3 && parts[2] != "ro" && parts[2] != "rw"))
            return make_error("invalid volume '{}': expected SRC:DST[:ro|rw]", text);
        m.source = parts[0];
        m.target = parts[1];
        m.read_only = parts.size() == 3 && parts[2] == "ro";
    }
    m.source = normalize(m.source);
    m.target = normalize(m.target);
    return m;
}

std::string mount_text(const ExtraMount& m) {
    return m.source + ":" + m.target + (m.read_only ? ":ro" : "");
}

} // namespace ctr::machine
