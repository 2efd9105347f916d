// SPDX-License-Identifier: MIT
// Limit plans and their executor.
#include "runtime/limits.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "base/fs.hpp"
#include "base/log.hpp"

namespace ctr::runtime {

namespace {

bool has_word(const std::string& list, const std::string& word) {
    std::istringstream in(list);
    std::string w;
    while (in >> w)
        if (w == word) return true;
    return false;
}

} // namespace

std::string format_cpu_list(const std::vector<int>& cpus) {
    std::string out;
    for (size_t i = 0; i < cpus.size();) {
        size_t j = i;
        while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1)
            ++j;
        out += (out.empty() ? "" : ",") +
               (j == i ? std::to_string(cpus[i]) : std::to_string(cpus[i]) + "-" + std::to_string(cpus[j]));
        i = j + 1;
    }
    return out;
}

std::vector<int> parse_cpu_list(const std::string& list) {
    std::vector<int> out;
    std::istringstream in(list);
    std::string r;
    while (std::getline(in, r, ',')) {
        if (r.empty()) continue;
        auto dash = r.find('-');
        int a = std::atoi(r.c_str()), b = dash == std::string::npos ? a : std::atoi(r.c_str() + dash + 1);
        for (int i = a; i <= b; ++i)
            out.push_back(i);
    }
    return out;
}

std::vector<int> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> out;
    if (::sched_getaffinity(0, sizeof set, &set) != 0) return out;
    for (int i = 0; i < CPU_SETSIZE; ++i)
        if (CPU_ISSET(i, &set)) out.push_back(i);
    return out;
}

LimitPlan plan_limits(const CgroupLayout& l, const std::string& machine, int cpus, uint64_t memory,
                      const std::vector<int>& host_cpus) {
    LimitPlan p;
    std::vector<int> chosen(host_cpus.begin(), host_cpus.begin() + std::min<size_t>(host_cpus.size(), cpus));
    p.cpu_list = format_cpu_list(chosen);
    if (static_cast<size_t>(cpus) > host_cpus.size())
        p.not_enforced.push_back(
            fmt::format("cpus: {} requested, the host allows {}", cpus, host_cpus.size()));
    std::string v2_parent = l.v2_dir.empty() ? "" : l.v2_dir.substr(0, l.v2_dir.rfind('/'));
    auto v2_has = [&](const char* c) { return !l.v2_dir.empty() && has_word(l.v2_parent_controllers, c); };
    std::string leaf = "machine-" + machine;
    auto v1_dir = [&](const std::string& c) -> std::string {
        auto it = l.v1_parent.find(c);
        if (it == l.v1_parent.end()) return "";
        std::string d = it->second + "/" + leaf;
        if (std::find(p.mkdirs.begin(), p.mkdirs.end(), d) == p.mkdirs.end()) {
            p.mkdirs.push_back(d);
            p.attach.push_back(d);
        }
        return d;
    };
    // Controllers are enabled for the machine's cgroup from its parent, then configured in it.
    for (const char* c : {"cpuset", "cpu", "memory"})
        if (v2_has(c)) p.writes.push_back({v2_parent + "/cgroup.subtree_control", std::string("+") + c});

    if (v2_has("cpuset")) {
        p.writes.push_back({l.v2_dir + "/cpuset.cpus", p.cpu_list});
    } else if (std::string d = v1_dir("cpuset"); !d.empty()) {
        p.writes.push_back({d + "/cpuset.cpus", p.cpu_list});
        p.writes.push_back({d + "/cpuset.mems", l.v1_cpuset_mems.empty() ? "0" : l.v1_cpuset_mems});
    }
    std::string quota = std::to_string(static_cast<uint64_t>(cpus) * 100000);
    if (v2_has("cpu")) {
        p.writes.push_back({l.v2_dir + "/cpu.max", quota + " 100000"});
        p.cpu_time_limited = true;
    } else if (std::string d = v1_dir("cpu"); !d.empty()) {
        p.writes.push_back({d + "/cpu.cfs_period_us", "100000"});
        p.writes.push_back({d + "/cpu.cfs_quota_us", quota});
        p.cpu_time_limited = true;
    } else {
        p.not_enforced.push_back(
            "cpus: CPU time is not limited (no cpu controller is delegated to this user); "
            "the machine still sees only its CPUs");
    }
    std::string bytes = std::to_string(memory);
    if (v2_has("memory")) {
        p.writes.push_back({l.v2_dir + "/memory.max", bytes});
        p.memory_limited = true;
    } else if (std::string d = v1_dir("memory"); !d.empty()) {
        p.writes.push_back({d + "/memory.limit_in_bytes", bytes});
        p.memory_limited = true;
    } else {
        p.not_enforced.push_back("memory: not limited (no memory controller is delegated to this user)");
    }
    return p;
}

CgroupLayout discover_layout(const std::string& v2_dir) {
    CgroupLayout l;
    l.v2_dir = v2_dir;
    if (!v2_dir.empty()) {
        auto c = fs::read_file(v2_dir.substr(0, v2_dir.rfind('/')) + "/cgroup.controllers");
        if (c) l.v2_parent_controllers = *c;
    }
    auto self = fs::read_file("/proc/self/cgroup");
    if (!self) return l;
    std::istringstream in(*self);
    std::string line;
    while (std::getline(in, line)) {
        // "4:cpu,cpuacct:/path" (v1); "0::/path" is the unified one.
        auto a = line.find(':'), b = line.find(':', a + 1);
        if (a == std::string::npos || b == std::string::npos) continue;
        std::string ctrls = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
        std::istringstream cs(ctrls);
        std::string c;
        while (std::getline(cs, c, ',')) {
            if (c != "cpu" && c != "cpuset" && c != "memory") continue;
            // Debian mounts co-mounted hierarchies under their joint name with per-controller symlinks.
            std::string dir = "/sys/fs/cgroup/" + c + (path == "/" ? "" : path);
            if (::access((dir + "/cgroup.procs").c_str(), W_OK) == 0 && ::access(dir.c_str(), W_OK) == 0)
                l.v1_parent[c] = dir;
        }
    }
    if (auto it = l.v1_parent.find("cpuset"); it != l.v1_parent.end()) {
        auto mems = fs::read_file(it->second + "/cpuset.mems");
        if (mems) {
            l.v1_cpuset_mems = *mems;
            while (!l.v1_cpuset_mems.empty() && l.v1_cpuset_mems.back() == '\n')
                l.v1_cpuset_mems.pop_back();
        }
    }
    return l;
}

void apply_plan(LimitPlan& p) {
    for (const auto& d : p.mkdirs) {
        if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) {
            p.not_enforced.push_back(fmt::format("cgroup {}: mkdir: {}", d, std::strerror(errno)));
            std::erase(p.attach, d);
        }
    }
    for (const auto& w : p.writes) {
        int fd = ::open(w.file.c_str(), O_WRONLY | O_CLOEXEC);
        bool ok =
            fd >= 0 && ::write(fd, w.value.data(), w.value.size()) == static_cast<ssize_t>(w.value.size());
        int err = errno;
        if (fd >= 0) ::close(fd);
        if (!ok) {
            std::string what = w.file.find("memory") != std::string::npos ? "memory" : "cpus";
            p.not_enforced.push_back(
                fmt::format("{}: write {} to {}: {}", what, w.value, w.file, std::strerror(err)));
            if (what == "memory")
                p.memory_limited = false;
            else if (w.file.find("cpu.") != std::string::npos)
                p.cpu_time_limited = false;
        } else {
            log::debug("cgroup: {} = {}", w.file, w.value);
        }
    }
}

} // namespace ctr::runtime
