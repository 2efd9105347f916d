// SPDX-License-Identifier: MIT
// Machine lifecycle.
#include "machine/lifecycle.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "base/fault.hpp"
#include "base/fs.hpp"
#include "base/log.hpp"
#include "base/unique_fd.hpp"
#include "machine/commit.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/idmap.hpp"
#include "runtime/spawn.hpp"
#include "runtime/userns.hpp"

namespace ctr::machine {

namespace {

constexpr int k_ready_timeout_s = 120;

// How long create, start and a booting run wait for readiness: $CONTAINER_READY_TIMEOUT seconds when
// that is a positive number (a slow host, or a test of the timeout itself), else two minutes.
int ready_timeout_s() {
    const char* v = std::getenv("CONTAINER_READY_TIMEOUT");
    if (!v || !*v) return k_ready_timeout_s;
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    return (*end == 0 && n > 0 && n <= 86400) ? static_cast<int>(n) : k_ready_timeout_s;
}

uint64_t usage_at(int dirfd) {
    uint64_t total = 0;
    DIR* d = ::fdopendir(dirfd);
    if (!d) {
        ::close(dirfd);
        return 0;
    }
    while (struct dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        struct stat st {};
        if (::fstatat(::dirfd(d), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        total += static_cast<uint64_t>(st.st_blocks) * 512;
        if (S_ISDIR(st.st_mode)) {
            int sub = ::openat(::dirfd(d), n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) total += usage_at(sub);
        }
    }
    ::closedir(d);
    return total;
}

// A root-run machine's private ids: the first block of root's pool that no other machine has (block 0
// is the store's). Called under the store lock, so two creates never take the same block.
Result<IdRangeConfig> allocate_ids(Machines& machines) {
    runtime::RootPool pool = TRY(runtime::root_id_pool());
    std::vector<uint32_t> used;
    for (const auto& n : TRY(machines.names()))
        if (auto c = machines.config(n); c && c->ids.count > 0) used.push_back(c->ids.uid);
    for (uint32_t k = 1; k < pool.slices(); ++k) {
        uint32_t uid = pool.uids.start + k * runtime::k_slice_ids;
        if (std::find(used.begin(), used.end(), uid) == used.end())
            return IdRangeConfig{uid, pool.gids.start + k * runtime::k_slice_ids, runtime::k_slice_ids};
    }
    return make_error("root's id range has no free block of 65536 ids for another machine ({} in use)", used.size());
}

} // namespace

UserSetup host_user() {
    UserSetup u;
    u.uid = ::getuid();
    u.gid = ::getgid();
    if (struct passwd* pw = ::getpwuid(u.uid)) {
        u.username = pw->pw_name;
        u.home = pw->pw_dir;
        u.shell = pw->pw_shell;
    } else {
        u.username = std::to_string(u.uid);
        const char* home = std::getenv("HOME");
        u.home = home ? home : "/";
        u.shell = "/bin/sh";
    }
    return u;
}

Result<MachineConfig> create(Machines& machines, const CreateOptions& opts) {
    store::Store& store = machines.store();
    auto lock = TRY(store.lock());
    auto rec = store.find(opts.image);
    if (!rec)
        return wrap(std::move(rec).error(),
                    "image is not in the local store (load, import or pull it first)");
    store::Image img = TRY(store.get(*rec));
    oci::Reference ref = TRY(oci::parse_reference(rec->name));
    std::string name = opts.name.empty() ? derive_name(ref) : opts.name;
    TRY(validate_name(name));
    if (machines.exists(name)) return make_error("container machine with ID {} already exists", name);
    // The image's own init boots the machine: without one there is nothing to boot. A layer that
    // cannot be read is left for the boot to report.
    if (auto init = store.lookup(img, "sbin/init"); init && (!*init || !S_ISREG((*init)->st_mode)))
        return make_error("image {} has no /sbin/init, so it cannot boot as a machine", rec->name);
    MachineConfig c;
    c.id = name;
    c.image_reference = rec->name;
    c.image.media_type = img.manifest.media_type;
    c.image.digest = rec->digest;
    c.image.size = static_cast<int64_t>(img.manifest_json.size());
    c.platform = img.config.platform;
    c.user = host_user();
    if (::geteuid() == 0) c.ids = TRY(allocate_ids(machines));
    c.created = store::now_rfc3339();
    // config.json last: a machine exists once it is there, so a killed create leaves only a stray dir.
    std::string dir = machines.dir(name);
    bool made = !fs::exists(dir);
    TRY(fs::make_dirs(dir, 0700));
    // A create that fails here (a full disk) takes its directory with it; a killed one leaves it to
    // `system check --repair` and to the next create of the name, which writes over it.
    ScopeExit undo([&] {
        if (made) (void)fs::remove_tree(dir);
    });
    TRY(machines.write_boot_config(name, opts.boot));
    TRY(machines.write_config(c));
    undo.release();
    if (opts.set_default || machines.default_name().empty()) TRY(machines.set_default(name));
    return c;
}

namespace {

// Starts `container __supervise NAME` detached (its own session, no terminal, output to boot.log), in a
// systemd scope when `manager` says so, and returns its pid (or systemd-run's, which becomes it).
Result<pid_t> spawn_supervisor(const std::string& dir, const std::string& name, const std::string& self_exe,
                               runtime::CgroupManager manager) {
    std::vector<std::string> args;
    if (manager == runtime::CgroupManager::systemd)
        args = runtime::systemd_scope_argv(fmt::format("container-machine-{}", name),
                                           fmt::format("container machine {}", name));
    for (const auto& a : {self_exe, std::string("__supervise"), name})
        args.push_back(a);
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    std::string boot_log = dir + "/boot.log";
    int pfd[2];
    if (::pipe2(pfd, O_CLOEXEC) != 0) return sys_error(errno, "pipe");
    UniqueFd rd(pfd[0]), wr(pfd[1]);
    pid_t pid = ::fork();
    if (pid < 0) return sys_error(errno, "fork");
    if (pid == 0) {
        // Detach twice: the supervisor belongs to no terminal and no CLI process.
        ::setsid();
        pid_t sup = ::fork();
        if (sup != 0) {
            (void)!::write(wr.get(), &sup, sizeof sup); // a short write reads as "no pid" below
            ::_exit(0);
        }
        // Nothing of the caller reaches the supervisor, and so the machine: only stdio, and a keyring of its own.
        runtime::harden_child();
        int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        int log = ::open(boot_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        ::dup2(null, 0);
        ::dup2(log >= 0 ? log : null, 1);
        ::dup2(log >= 0 ? log : null, 2);
        if (manager == runtime::CgroupManager::systemd) {
            ::setenv("CONTAINER_IN_SCOPE", "1", 1);
            ::execvp(argv[0], argv.data());
        } else {
            ::unsetenv("CONTAINER_IN_SCOPE");
            ::execv(self_exe.c_str(), argv.data());
        }
        ::_exit(127);
    }
    wr.reset();
    pid_t sup = 0;
    if (::read(rd.get(), &sup, sizeof sup) != static_cast<ssize_t>(sizeof sup)) sup = 0;
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (sup < 0) return make_error("cannot start the supervisor of container machine {}: fork failed", name);
    return sup;
}

void note_in_boot_log(const std::string& dir, const std::string& msg) {
    int fd = ::open((dir + "/boot.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return; // only a note
    std::string line = store::now_rfc3339() + " container: " + msg + "\n";
    (void)!::write(fd, line.data(), line.size());
    ::close(fd);
}

// The size of the console log before a boot: what that boot writes starts there.
off_t log_size(const std::string& dir) {
    struct stat st {};
    return ::lstat((dir + "/stdio.log").c_str(), &st) == 0 ? st.st_size : 0;
}

// When this boot's console (from `from`, at most its last 64 KiB) says "Too many open files": that is
// how systemd (PID 1, journald, logind) reports the user's inotify instances running out, which the
// kernel's default of 128 per user does at about sixteen systemd machines. Init then stops, or runs
// without the services that failed. The log is the machine's own output: it can only make us print this.
std::string inotify_hint(const std::string& dir, off_t from) {
    UniqueFd fd(::open((dir + "/stdio.log").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= from) return "";
    constexpr off_t k_tail = 64 * 1024;
    off_t at = std::max(from, st.st_size - k_tail);
    std::string tail(static_cast<size_t>(st.st_size - at), '\0');
    ssize_t got = ::pread(fd.get(), tail.data(), tail.size(), at);
    if (got <= 0 || tail.substr(0, static_cast<size_t>(got)).find("Too many open files") == std::string::npos)
        return "";
    std::string limit = "?";
    if (auto v = fs::read_file("/proc/sys/fs/inotify/max_user_instances")) {
        limit = *v;
        while (!limit.empty() && limit.back() == '\n')
            limit.pop_back();
    }
    return fmt::format("its console says \"Too many open files\", which is how systemd fails when the user's "
                       "inotify instances run out (fs.inotify.max_user_instances={}): raise it, e.g. "
                       "'sysctl -w fs.inotify.max_user_instances=1024'",
                       limit);
}

} // namespace

Result<std::string> start(Machines& machines, const std::string& name, const std::string& self_exe) {
    auto lock = TRY(machines.lock(name));
    std::string dir = machines.dir(name);
    pid_t sup = 0;
    off_t log_from = log_size(dir);
    runtime::CgroupManagerChoice manager = runtime::cgroup_manager();
    if (!machines.state(name)) {
        machines.clear_state(name);
        (void)::unlink((dir + "/boot-error").c_str()); // stale from an earlier boot
        sup = TRY(spawn_supervisor(dir, name, self_exe, manager.manager));
        fault_point("start: supervisor spawned");
    }
    auto t0 = std::chrono::steady_clock::now();
    const int timeout_s = ready_timeout_s();
    bool seen = false;
    for (;;) {
        auto st = machines.state(name);
        if (st && st->ready) {
            std::string hint = sup > 0 ? inotify_hint(dir, log_from) : "";
            return hint.empty() ? hint : fmt::format("container machine {} is running, but {}", name, hint);
        }
        if (st) seen = true;
        auto err = fs::read_file(dir + "/boot-error");
        if (err && !err->empty()) {
            std::string m = *err;
            while (!m.empty() && m.back() == '\n')
                m.pop_back();
            // It exits right after writing this: once it is gone, the machine's files are still.
            for (int i = 0; i < 1000 && sup > 0 && process_start_time(sup) != 0; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
            return make_error("failed to boot container machine {}: {}", name, m);
        }
        if (seen && !st) {
            std::string hint = inotify_hint(dir, log_from);
            return make_error("container machine {} stopped while booting{}{} (see 'container machine logs {}')",
                              name, hint.empty() ? "" : ": ", hint, name);
        }
        if (!seen && sup > 0 && process_start_time(sup) == 0 && !machines.state(name) &&
            !fs::exists(dir + "/boot-error")) { // (written just before it exited: the loop reports it)
            // Gone before it recorded anything: systemd-run could not make the scope, or the binary
            // could not start. A scope that was only detected is given up for the caller's cgroup.
            if (manager.manager == runtime::CgroupManager::systemd && !manager.chosen) {
                note_in_boot_log(dir, "no systemd scope (see above); booting in this command's cgroup");
                manager.manager = runtime::CgroupManager::cgroupfs;
                sup = TRY(spawn_supervisor(dir, name, self_exe, manager.manager));
                continue;
            }
            return make_error("failed to boot container machine {}: its supervisor exited at once (see "
                              "'container machine logs --boot {}')",
                              name, name);
        }
        if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(timeout_s)) {
            // Left running: its console log says why init never got there, and a later command waits again.
            return make_error("container machine {} was not ready within {}s: its init is still starting "
                              "(see 'container machine logs {}'; 'container machine stop {}' ends it)",
                              name, timeout_s, name, name);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(seen ? 10 : 5));
    }
}

Result<void> stop(Machines& machines, const std::string& name, int timeout_s) {
    auto lock = TRY(machines.lock(name));
    auto st = machines.state(name);
    if (!st) {
        machines.clear_state(name);
        return {};
    }
    // A frozen init would take the stop request only at the timeout's SIGKILL.
    TRY(thaw_if_left_frozen(machines, name, *st, LockHeld::yes));
    TRY(fs::write_file_atomic(machines.dir(name) + "/stop-timeout", std::to_string(timeout_s)));
    if (::kill(st->supervisor_pid, SIGTERM) != 0 && errno != ESRCH)
        return sys_error(errno, fmt::format("signal the supervisor of {}", name));
    fault_point("stop: supervisor signalled");
    auto t0 = std::chrono::steady_clock::now();
    while (process_start_time(st->supervisor_pid) == st->supervisor_start) {
        if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(timeout_s + 10)) {
            // The supervisor is stuck: killing it kills init (parent-death signal) and so the machine.
            log::debug("supervisor {} did not stop; killing it", st->supervisor_pid);
            ::kill(st->supervisor_pid, SIGKILL);
            for (int i = 0; i < 200 && process_start_time(st->init_pid) == st->init_start; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            if (!st->cgroup.empty()) (void)runtime::remove_cgroup(st->cgroup); // gone with the machine
            machines.clear_state(name);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return {};
}

// The upper layer holds files of the machine's mapped ids: the host's root removes them directly, a
// regular user as root of a namespace with its map.
Result<void> remove_tree(Machines& machines, const std::string& name) {
    std::string dir = machines.dir(name);
    if (::geteuid() == 0) return fs::remove_tree(dir);
    runtime::IdMap map = TRY(machines.store().id_map());
    return runtime::run_as_mapped_root(map, [&] { return fs::remove_tree(dir); });
}

Result<void> remove(Machines& machines, const std::string& name) {
    TRY(stop(machines, name, 10));
    auto slock = TRY(machines.store().lock());
    auto lock = TRY(machines.lock(name));
    bool was_default = machines.default_name() == name;
    std::string dir = machines.dir(name);
    // config.json first: from here on the machine does not exist, even if the removal below is cut short.
    if (::unlink((dir + "/config.json").c_str()) != 0 && errno != ENOENT)
        return sys_error(errno, fmt::format("remove \"{}/config.json\"", dir));
    fault_point("rm: config removed");
    TRY(remove_tree(machines, name));
    if (was_default) machines.clear_default();
    return {};
}

Result<bool> remove_leftover(Machines& machines, const std::string& name) {
    TRY(validate_name(name));
    auto slock = TRY(machines.store().lock());
    auto lock = TRY(machines.lock(name));
    std::string dir = machines.dir(name);
    struct stat st {};
    if (machines.exists(name) || ::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;
    TRY(remove_tree(machines, name));
    return true;
}

uint64_t disk_usage(const Machines& machines, const std::string& name) {
    int fd = ::open((machines.dir(name) + "/upper").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return 0;
    return usage_at(fd);
}

} // namespace ctr::machine
