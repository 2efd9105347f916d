// SPDX-License-Identifier: MIT
// Machine configuration, state and naming.
#include "machine/machine.hpp"
#include "machine/settings.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "base/fs.hpp"

namespace ctr::machine {

using nlohmann::json;

const char* status_name(Status s) {
    switch (s) {
    case Status::stopped:
        return "stopped";
    case Status::starting:
        return "starting";
    case Status::running:
        return "running";
    case Status::stopping:
        return "stopping";
    }
    return "unknown";
}

Error not_found(const std::string& name) {
    return make_error("container machine with ID {} not found", name);
}

Result<void> validate_name(const std::string& n) {
    bool ok = !n.empty() && n.size() <= 57 && n.front() != '-' && n.back() != '-';
    for (char c : n)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) ok = false;
    if (!ok)
        return make_error(
            "invalid container machine name \"{}\": it must start and end with a lowercase letter or "
            "digit, contain only lowercase letters, digits and hyphens, and be 1 to 57 characters long",
            n);
    return {};
}

std::string derive_name(const oci::Reference& ref) {
    std::string n = ref.base_name();
    if (!ref.tag.empty()) n += "-" + ref.tag;
    for (char& c : n)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) c = '-';
    std::string out;
    for (char c : n)
        if (!(c == '-' && (out.empty() || out.back() == '-'))) out += c;
    while (!out.empty() && out.back() == '-')
        out.pop_back();
    if (out.size() > 57) out.resize(57);
    while (!out.empty() && out.back() == '-')
        out.pop_back();
    return out.empty() ? "machine" : out;
}

uint64_t process_start_time(pid_t pid) {
    if (pid <= 0) return 0;
    auto text = fs::read_file(fmt::format("/proc/{}/stat", pid));
    if (!text) return 0;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    auto close = text->rfind(')');
    if (close == std::string::npos) return 0;
    size_t pos = close + 2;
    for (int field = 3; field < 22 && pos != std::string::npos; ++field)
        pos = text->find(' ', pos) + 1;
    if (pos == std::string::npos || pos == 0) return 0;
    if ((*text)[close + 2] == 'Z') return 0; // a zombie is as good as gone
    return std::strtoull(text->c_str() + pos, nullptr, 10);
}

BootConfig default_boot_config() {
    BootConfig b;
    long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    b.cpus = cpus > 0 ? static_cast<int>(cpus) : 1;
    uint64_t mem =
        static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    uint64_t half_gib = (mem / 2) >> 30;
    b.memory = std::max<uint64_t>(half_gib, 1) << 30;
    return b;
}

json config_to_json(const MachineConfig& c) {
    json platform = {{"os", c.platform.os}, {"architecture", c.platform.architecture}};
    if (!c.platform.variant.empty()) platform["variant"] = c.platform.variant;
    json out = {{"configuration",
             {{"id", c.id},
              {"image", {{"reference", c.image_reference}, {"descriptor", oci::descriptor_to_json(c.image)}}},
              {"platform", platform},
              {"userSetup",
               {{"username", c.user.username},
                {"uid", c.user.uid},
                {"gid", c.user.gid},
                {"home", c.user.home},
                {"shell", c.user.shell}}}}},
            {"createdDate", c.created}};
    if (c.ids.count > 0)
        out["configuration"]["idRange"] = {{"uid", c.ids.uid}, {"gid", c.ids.gid}, {"size", c.ids.count}};
    return out;
}

Result<MachineConfig> config_from_json(const json& j) {
    try {
        const json& k = j.at("configuration");
        MachineConfig c;
        c.id = k.at("id").get<std::string>();
        c.image_reference = k.at("image").at("reference").get<std::string>();
        const json& d = k.at("image").at("descriptor");
        c.image.media_type = d.at("mediaType").get<std::string>();
        c.image.digest = TRY(oci::parse_digest(d.at("digest").get<std::string>()));
        c.image.size = d.at("size").get<int64_t>();
        c.platform.os = k.at("platform").at("os").get<std::string>();
        c.platform.architecture = k.at("platform").at("architecture").get<std::string>();
        c.platform.variant = k.at("platform").value("variant", "");
        const json& u = k.at("userSetup");
        c.user.username = u.at("username").get<std::string>();
        c.user.uid = u.at("uid").get<uint32_t>();
        c.user.gid = u.at("gid").get<uint32_t>();
        c.user.home = u.value("home", "");
        c.user.shell = u.value("shell", "");
        c.created = j.value("createdDate", "");
        if (k.contains("idRange")) {
            const json& r = k.at("idRange");
            c.ids = {r.at("uid").get<uint32_t>(), r.at("gid").get<uint32_t>(), r.at("size").get<uint32_t>()};
        }
        return c;
    } catch (const json::exception& e) {
        return make_error("config.json is malformed: {}", e.what());
    }
}

Machines::Machines(store::Store& store) : m_store(store), m_root(store.root() + "/machines") {
    (void)fs::make_dirs(m_root, 0700); // reported by the first file operation below if it failed
}

bool Machines::exists(const std::string& name) const {
    return validate_name(name) && fs::exists(dir(name) + "/config.json");
}

Result<std::vector<oci::Digest>> Machines::images_in_use() const {
    std::vector<oci::Digest> out;
    for (const auto& m : TRY(names()))
        if (auto cfg = config(m)) out.push_back(cfg->image.digest);
    return out;
}

Result<std::vector<std::string>> Machines::names() const {
    std::vector<std::string> out;
    DIR* d = ::opendir(m_root.c_str());
    if (!d) return sys_error(errno, fmt::format("opendir \"{}\"", m_root));
    while (struct dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != ".." && exists(n)) out.push_back(n);
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

namespace {
Result<json> read_json(const std::string& path) {
    std::string text = TRY(fs::read_file(path));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) return make_error("\"{}\" is not valid JSON", path);
    return j;
}
} // namespace

Result<MachineConfig> Machines::config(const std::string& name) const {
    if (!exists(name)) return not_found(name);
    return config_from_json(TRY(read_json(dir(name) + "/config.json")));
}

Result<void> Machines::write_config(const MachineConfig& c) {
    TRY(fs::make_dirs(dir(c.id), 0700));
    return fs::write_file_atomic(dir(c.id) + "/config.json", config_to_json(c).dump(2) + "\n", 0600);
}

Result<BootConfig> Machines::boot_config(const std::string& name) const {
    if (!exists(name)) return not_found(name);
    std::string path = dir(name) + "/boot-config.json";
    if (!fs::exists(path)) return default_boot_config();
    return boot_config_from_json(TRY(read_json(path)));
}

Result<void> Machines::write_boot_config(const std::string& name, const BootConfig& b) {
    return fs::write_file_atomic(dir(name) + "/boot-config.json", boot_config_to_json(b).dump(2) + "\n",
                                 0600);
}

std::optional<RunState> Machines::state(const std::string& name) const {
    auto j = read_json(dir(name) + "/state.json");
    if (!j) return std::nullopt;
    RunState s;
    s.supervisor_pid = j->value("supervisorPid", 0);
    s.supervisor_start = j->value("supervisorStart", 0ull);
    s.init_pid = j->value("initPid", 0);
    s.init_start = j->value("initStart", 0ull);
    s.started = j->value("startedDate", "");
    s.ready = j->value("ready", false);
    s.stopping = j->value("stopping", false);
    s.cgroup = j->value("cgroup", "");
    if (auto v = j->find("cgroupsV1"); v != j->end() && v->is_array())
        for (const auto& x : *v)
            if (x.is_string()) s.cgroups_v1.push_back(x.get<std::string>());
    s.cpu_list = j->value("cpuList", "");
    s.cpus = j->value("cpus", 0);
    s.memory = j->value("memory", 0ull);
    s.cpu_time_limited = j->value("cpuTimeLimited", false);
    s.memory_limited = j->value("memoryLimited", false);
    if (auto v = j->find("notEnforced"); v != j->end() && v->is_array())
        for (const auto& x : *v)
            if (x.is_string()) s.not_enforced.push_back(x.get<std::string>());
    // After a host reboot or a killed supervisor the pids are stale or reused: start times tell.
    if (s.supervisor_pid <= 0 || process_start_time(s.supervisor_pid) != s.supervisor_start)
        return std::nullopt;
    // A live supervisor still owns the machine when its init has just exited: it is cleaning up or
    // booting it again (reboot). Not stopped, then (a second supervisor must not boot it), but not ready.
    if (s.init_pid > 0 && process_start_time(s.init_pid) != s.init_start) s.ready = false;
    return s;
}

Status Machines::status(const std::string& name) const {
    auto s = state(name);
    if (!s) return Status::stopped;
    if (s->stopping) return Status::stopping;
    return s->ready ? Status::running : Status::starting;
}

Result<void> Machines::write_state(const std::string& name, const RunState& s) {
    json j = {{"supervisorPid", s.supervisor_pid},
              {"supervisorStart", s.supervisor_start},
              {"initPid", s.init_pid},
              {"initStart", s.init_start},
              {"startedDate", s.started},
              {"ready", s.ready},
              {"stopping", s.stopping},
              {"cgroup", s.cgroup},
              {"cgroupsV1", s.cgroups_v1},
              {"cpuList", s.cpu_list},
              {"cpus", s.cpus},
              {"memory", s.memory},
              {"cpuTimeLimited", s.cpu_time_limited},
              {"memoryLimited", s.memory_limited},
              {"notEnforced", s.not_enforced}};
    return fs::write_file_atomic(dir(name) + "/state.json", j.dump(2) + "\n", 0600);
}

void Machines::clear_state(const std::string& name) {
    (void)::unlink((dir(name) + "/state.json").c_str()); // absent already is fine
}

std::string Machines::default_name() const {
    auto text = fs::read_file(m_root + "/default");
    if (!text) return "";
    std::string n = *text;
    while (!n.empty() && (n.back() == '\n' || n.back() == ' '))
        n.pop_back();
    return exists(n) ? n : "";
}

Result<void> Machines::set_default(const std::string& name) {
    if (!exists(name)) return not_found(name);
    return fs::write_file_atomic(m_root + "/default", name + "\n", 0600);
}

void Machines::clear_default() {
    (void)::unlink((m_root + "/default").c_str());
} // absent is fine

Result<std::string> Machines::resolve(const std::string& name) const {
    if (name.empty()) {
        std::string d = default_name();
        if (d.empty()) return make_error("no container machine specified and no default set");
        return d;
    }
    if (!exists(name)) return not_found(name);
    return name;
}

Result<FileLock> Machines::lock(const std::string& name) {
    TRY(fs::make_dirs(m_root + "/.locks", 0700));
    return FileLock::acquire(m_root + "/.locks/" + name);
}

} // namespace ctr::machine
