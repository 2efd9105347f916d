// SPDX-License-Identifier: MIT
// Unified-hierarchy cgroup handling for machines.
#include "runtime/cgroup.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "base/fs.hpp"
#include "runtime/spawn.hpp"

namespace ctr::runtime {

std::string unified_mount() {
    for (const char* p : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
        struct statfs s {};
        if (::statfs(p, &s) == 0 && s.f_type == CGROUP2_SUPER_MAGIC) return p;
    }
    return "";
}

std::string unified_path_from(const std::string& text) {
    size_t pos = 0;
    while (pos < text.size()) {
        size_t eol = text.find('\n', pos);
        std::string line = text.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
        pos = eol == std::string::npos ? text.size() : eol + 1;
        if (line.rfind("0::", 0) == 0) return line.substr(3);
    }
    return "";
}

CgroupManagerChoice cgroup_manager() {
    CgroupManagerChoice c;
    if (const char* v = std::getenv("CONTAINER_CGROUP_MANAGER"); v && *v) {
        c.chosen = true;
        c.manager = std::string(v) == "systemd" ? CgroupManager::systemd : CgroupManager::cgroupfs;
        return c;
    }
    std::string sock = "/run/systemd/private";
    if (::getuid() != 0) {
        const char* rt = std::getenv("XDG_RUNTIME_DIR");
        if (!rt || !*rt) return c;
        sock = std::string(rt) + "/systemd/private";
    }
    struct stat st {};
    if (::stat(sock.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return c;
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    for (size_t i = 0; i <= dirs.size();) {
        size_t j = dirs.find(':', i);
        if (j == std::string::npos) j = dirs.size();
        std::string d = dirs.substr(i, j - i);
        if (!d.empty() && ::access((d + "/systemd-run").c_str(), X_OK) == 0) {
            c.manager = CgroupManager::systemd;
            return c;
        }
        i = j + 1;
    }
    return c;
}

std::vector<std::string> systemd_scope_argv(const std::string& unit, const std::string& description) {
    std::vector<std::string> argv = {"systemd-run"};
    if (::getuid() != 0) argv.push_back("--user");
    for (const char* a : {"--scope", "--quiet", "--collect", "--property=Delegate=yes"})
        argv.push_back(a);
    argv.push_back("--unit=" + unit);
    argv.push_back("--description=" + description);
    argv.push_back("--");
    return argv;
}

std::string cgroup_delegation_fix() {
    uid_t uid = ::getuid();
    std::string user = std::to_string(uid);
    if (const struct passwd* pw = ::getpwuid(uid)) user = pw->pw_name;
    if (uid == 0) return "make the unified cgroup hierarchy writable for root (is /sys/fs/cgroup mounted read-only?)";
    struct stat st {};
    if (::stat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode)) {
        const char* rt = std::getenv("XDG_RUNTIME_DIR");
        std::string sock = rt && *rt ? std::string(rt) + "/systemd/private" : "";
        if (sock.empty() || ::stat(sock.c_str(), &st) != 0)
            return fmt::format("no systemd user manager runs for this login (su and sudo start none): log in "
                               "as {} through ssh or a console, or run 'loginctl enable-linger {}' and set "
                               "XDG_RUNTIME_DIR=/run/user/{}",
                               user, user, uid);
        return "the systemd user manager gave no delegated scope (see 'container machine logs --boot'); "
               "CONTAINER_CGROUP_MANAGER=cgroupfs uses a cgroup delegated by hand instead";
    }
    return fmt::format("this host runs no systemd to delegate one: as root, make a cgroup below {}, chown it "
                       "and its cgroup.procs, cgroup.threads and cgroup.subtree_control to {}, and start "
                       "container from a shell moved into it",
                       unified_mount().empty() ? std::string("/sys/fs/cgroup") : unified_mount(), user);
}

Result<void> attach_through_manager(const std::string& unit, const std::string& subcgroup, pid_t pid) {
    std::vector<std::string> args = {"busctl"};
    if (::getuid() != 0) args.push_back("--user");
    for (const char* a : {"--quiet", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                          "org.freedesktop.systemd1.Manager", "AttachProcessesToUnit", "ssau"})
        args.push_back(a);
    for (const std::string& a : {unit, subcgroup, std::string("1"), std::to_string(pid)})
        args.push_back(a);
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t child = ::fork();
    if (child < 0) return sys_error(errno, "fork");
    if (child == 0) {
        harden_child();
        int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        for (int fd = 0; fd < 3; ++fd)
            ::dup2(null, fd);
        ::execvp(argv[0], argv.data());
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return make_error("busctl AttachProcessesToUnit {} {}: failed (status {})", unit, subcgroup, status);
    return {};
}

Result<std::string> own_cgroup_dir() {
    std::string mount = unified_mount();
    if (mount.empty()) return make_error("no cgroup2 hierarchy is mounted");
    std::string own = unified_path_from(TRY(fs::read_file("/proc/self/cgroup")));
    return mount + (own == "/" ? "" : own);
}

Result<std::string> leave_scope_root() {
    std::string scope = TRY(own_cgroup_dir());
    std::string leaf = scope + "/supervisor";
    if (::mkdir(leaf.c_str(), 0755) != 0 && errno != EEXIST)
        return sys_error(errno, fmt::format("mkdir \"{}\"", leaf));
    // systemd-run may still be here as our parent; everything goes.
    std::string procs = TRY(fs::read_file(scope + "/cgroup.procs"));
    for (size_t i = 0; i < procs.size();) {
        size_t j = procs.find('\n', i);
        if (j == std::string::npos) j = procs.size();
        pid_t pid = static_cast<pid_t>(std::atol(procs.substr(i, j - i).c_str()));
        if (pid > 0) {
            auto m = move_to_cgroup(leaf, pid);
            if (!m && m.error().errnum != ESRCH) return std::move(m).error(); // gone meanwhile is fine
        }
        i = j + 1;
    }
    return scope;
}

Result<std::string> create_machine_cgroup(const std::string& name, const std::string& parent_dir) {
    std::string parent = parent_dir.empty() ? TRY(own_cgroup_dir()) : parent_dir;
    if (::access((parent + "/cgroup.procs").c_str(), W_OK) != 0)
        return make_error("cgroup \"{}\" is not writable by this user", parent);
    std::string dir = parent + "/machine-" + name;
    if (fs::exists(dir)) (void)remove_cgroup(dir); // a stale one from a killed supervisor; mkdir reports
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
        return sys_error(errno, fmt::format("mkdir \"{}\"", dir));
    return dir;
}

Result<void> move_to_cgroup(const std::string& dir, pid_t pid) {
    std::string procs = dir + "/cgroup.procs";
    UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid()) return sys_error(errno, fmt::format("open \"{}\"", procs));
    std::string text = std::to_string(pid);
    if (::write(fd.get(), text.data(), text.size()) < 0)
        return sys_error(errno, fmt::format("move pid {} into \"{}\"", pid, dir));
    return {};
}

Result<void> move_self_to_cgroup(const std::string& dir) {
    std::string tasks = dir + "/tasks";
    UniqueFd fd(::open(tasks.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid()) {
        if (errno == ENOENT) return move_to_cgroup(dir, ::getpid()); // cgroup2 has no tasks file
        return sys_error(errno, fmt::format("open \"{}\"", tasks));
    }
    if (::write(fd.get(), "0", 1) < 0) return sys_error(errno, fmt::format("move into \"{}\"", dir));
    return {};
}

Result<void> remove_cgroup(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return errno == ENOENT ? Result<void>{} : sys_error(errno, fmt::format("opendir \"{}\"", dir));
    std::vector<std::string> subs;
    while (struct dirent* e = ::readdir(d))
        if (e->d_type == DT_DIR && std::string(e->d_name) != "." && std::string(e->d_name) != "..")
            subs.push_back(dir + "/" + e->d_name);
    ::closedir(d);
    for (const auto& s : subs)
        TRY(remove_cgroup(s));
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
        return sys_error(errno, fmt::format("rmdir \"{}\"", dir));
    return {};
}

} // namespace ctr::runtime
