// SPDX-License-Identifier: MIT
// Supervisor: boot, then a poll loop over the console pty and a signalfd.
#include "supervisor/supervisor.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/fs.hpp"
#include "base/idle.hpp"
#include "base/log.hpp"
#include "machine/machine.hpp"
#include "provisioning/provisioning.hpp"
#include "runtime/boot.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/limits.hpp"
#include "runtime/seccomp.hpp"
#include "runtime/shifted_copy.hpp"
#include "runtime/userns.hpp"
#include "supervisor/init_kind.hpp"

namespace ctr::supervisor {

namespace {

void say(const std::string& msg) {
    char stamp[32];
    std::time_t t = std::time(nullptr);
    struct tm tmv {};
    ::gmtime_r(&t, &tmv);
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    std::string line = fmt::format("{} supervisor[{}]: {}\n", stamp, ::getpid(), msg);
    (void)!::write(STDERR_FILENO, line.data(), line.size()); // boot.log; nowhere else to report
}

int parse_signal(const std::string& s) {
    std::string n = s.rfind("SIG", 0) == 0 ? s.substr(3) : s;
    if (!n.empty() && std::isdigit(static_cast<unsigned char>(n[0]))) return std::atoi(n.c_str());
    if (n.rfind("RTMIN+", 0) == 0) return SIGRTMIN + std::atoi(n.c_str() + 6);
    if (n == "RTMIN") return SIGRTMIN;
    for (int i = 1; i < 32; ++i)
        if (const char* a = ::sigabbrev_np(i); a && n == a) return i;
    return 0;
}

constexpr size_t k_max_reboots_a_minute = 10;

std::string read_stop_timeout(const std::string& dir) {
    auto t = fs::read_file(dir + "/stop-timeout");
    return t ? *t : "10";
}

// Removes the machine's cgroups once its processes are gone (they take a moment to leave).
void remove_cgroups(const std::string& unified, const std::vector<std::string>& v1) {
    // The machine's processes die with its init, but a pid namespace full of them takes a while to exit
    // (seconds, on a slow or emulated host): the unified cgroup says when the last one is gone.
    if (!unified.empty())
        for (int i = 0; i < 1000; ++i) {
            auto events = fs::read_file(unified + "/cgroup.events");
            if (!events || events->find("populated 0") != std::string::npos) break;
            ::usleep(10000);
        }
    std::vector<std::string> all = v1;
    if (!unified.empty()) all.push_back(unified);
    for (const auto& cg : all) {
        for (int i = 0; i < 100; ++i) {
            auto removed = runtime::remove_cgroup(cg);
            if (removed) break;
            if (i == 99) say("cgroup left behind: " + removed.error().message);
            ::usleep(10000);
        }
    }
}

struct Exit {
    int status = 0;        // init's wait status
    bool stopping = false; // a stop was asked for
};

// One boot of init, from exec to exit: copies the console to stdio.log, marks the machine ready, and on a
// stop request asks init to power off the way its kind expects, killing it when the timeout runs out.
struct Watch {
    machine::Machines& machines;
    const std::string& name;
    const std::string& dir;
    int console;   // the console pty's master
    int stdio_log; // may be -1: the console is then read and dropped
    int signals;   // signalfd for SIGCHLD, SIGTERM, SIGINT, SIGHUP
    pid_t init;
    int root; // O_PATH fd of the machine's root
    const InitKind& kind;
    int stop_signal; // the image's StopSignal, 0 for none
    machine::RunState& st;

    // Returns whether anything was read.
    bool copy_console(char* buf, size_t size) const {
        ssize_t got = ::read(console, buf, size);
        if (got > 0 && stdio_log >= 0) (void)!::write(stdio_log, buf, static_cast<size_t>(got));
        return got > 0;
    }

    void ask_to_stop(struct timespec& deadline) const {
        int secs = std::atoi(read_stop_timeout(dir).c_str());
        ::clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += secs;
        bool asked = false;
        if (stop_signal > 0)
            asked = ::kill(init, stop_signal) == 0;
        else if (kind.stop)
            asked = kind.stop(root, init);
        if (!asked) asked = ::kill(init, SIGTERM) == 0;
        say(fmt::format("stopping (timeout {}s)", secs));
    }

    // systemd accepts commands once its private socket exists; a user's systemctl goes through the
    // system bus, so when the image has D-Bus wait for its socket too (a few seconds at most).
    bool systemd_ready(struct timespec& systemd_since) const {
        bool systemd_up = exists_in_machine(root, "run/systemd/private");
        bool bus_needed = exists_in_machine(root, "usr/lib/systemd/system/dbus.socket") ||
                          exists_in_machine(root, "lib/systemd/system/dbus.socket");
        bool bus_up = exists_in_machine(root, "run/dbus/system_bus_socket");
        struct timespec now {};
        ::clock_gettime(CLOCK_MONOTONIC, &now);
        if (systemd_up && systemd_since.tv_sec == 0) systemd_since = now;
        bool bus_gave_up = systemd_up && now.tv_sec - systemd_since.tv_sec >= 5;
        return systemd_up && (!bus_needed || bus_up || bus_gave_up);
    }

    Exit run() {
        Exit ex;
        struct timespec deadline {};
        struct timespec systemd_since {};
        bool idle = false;
        char buf[8192];
        for (;;) {
            struct pollfd fds[2] = {{console, POLLIN, 0}, {signals, POLLIN, 0}};
            int timeout = (!st.ready || ex.stopping) ? 50 : -1;
            if (timeout < 0 && !idle) {
                // From here on the loop only copies console output and waits for a signal, maybe for days.
                release_idle_memory();
                idle = true;
            }
            int n = ::poll(fds, 2, timeout);
            if (n < 0 && errno != EINTR) break;
            if (fds[0].revents & POLLIN) copy_console(buf, sizeof buf);
            bool init_gone = false;
            if (fds[1].revents & POLLIN) {
                struct signalfd_siginfo si {};
                while (::read(signals, &si, sizeof si) == sizeof si) {
                    if (si.ssi_signo == SIGCHLD) {
                        if (::waitpid(init, &ex.status, WNOHANG) == init) init_gone = true;
                    } else if (!ex.stopping) {
                        ex.stopping = true;
                        st.stopping = true;
                        (void)machines.write_state(name, st); // status shows "stopping"; not essential
                        ask_to_stop(deadline);
                    }
                }
            }
            if (init_gone) break;
            if (ex.stopping) {
                struct timespec now {};
                ::clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec > deadline.tv_sec ||
                    (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec)) {
                    say("stop timeout: killing init");
                    ::kill(init, SIGKILL);
                    deadline.tv_sec += 3600;
                }
            }
            if (!st.ready && !ex.stopping && kind.ready == Ready::systemd_sockets && systemd_ready(systemd_since)) {
                st.ready = true;
                (void)machines.write_state(name, st); // the waiting CLI times out if this keeps failing
                say("ready");
            }
        }
        // Drain what init wrote last. The tty layer hands a slave's output to the master from a kernel
        // work queue, so the last lines may arrive just after init is gone: wait a little for them.
        struct pollfd last = {console, POLLIN, 0};
        while (::poll(&last, 1, 10) > 0 && copy_console(buf, sizeof buf)) {
        }
        return ex;
    }
};

} // namespace

namespace {

// The GPU nodes this host has: /dev/dri, and NVIDIA's character devices (/dev/nvidia0, nvidiactl,
// nvidia-uvm, nvidia-modeset, …). Nothing else NVIDIA needs (its user-space libraries) is provided.
std::vector<std::string> gpu_devices() {
    std::vector<std::string> out;
    struct stat st {};
    if (::lstat("/dev/dri", &st) == 0 && S_ISDIR(st.st_mode)) out.push_back("/dev/dri");
    if (DIR* d = ::opendir("/dev")) {
        while (struct dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n.rfind("nvidia", 0) == 0 && ::fstatat(::dirfd(d), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISCHR(st.st_mode))
                out.push_back("/dev/" + n);
        }
        ::closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace

int supervise(const std::string& name) {
    auto store_r = store::Store::open();
    if (!store_r) {
        say(store_r.error().message);
        return 1;
    }
    store::Store& store = *store_r;
    machine::Machines machines(store);
    std::string dir = machines.dir(name);
    auto fail = [&](const std::string& msg) {
        say("boot failed: " + msg);
        (void)fs::write_file_atomic(dir + "/boot-error", msg + "\n"); // the CLI falls back to "died"
        machines.clear_state(name);
        return 1;
    };
    auto cfg = machines.config(name);
    if (!cfg) return fail(cfg.error().message);
    auto boot = machines.boot_config(name);
    if (!boot) return fail(boot.error().message);
    store::ImageRecord rec{cfg->image_reference, cfg->image.digest, ""};
    // Unverified: the supervisor lives as long as the machine and must not load libcrypto for this; the
    // blobs were verified when they entered the store, and `container system check` verifies them again.
    auto img = store.get(rec, store::Store::Verify::no);
    if (!img) return fail(fmt::format("image {}: {}", cfg->image_reference, img.error().message));

    runtime::BootSpec spec;
    spec.hostname = name;
    for (auto it = img->config.diff_ids.rbegin(); it != img->config.diff_ids.rend(); ++it)
        spec.lowerdirs += (spec.lowerdirs.empty() ? "" : ":") + store.layer_path(*it);
    spec.rootfs = dir + "/rootfs";
    spec.upper = dir + "/upper";
    spec.work = dir + "/work";
    if (auto r = fs::make_dirs(spec.rootfs, 0755); !r) return fail(r.error().message);
    spec.home = cfg->user.home;
    spec.home_mount = boot->home_mount == "ro"     ? runtime::HomeMount::ro
                      : boot->home_mount == "none" ? runtime::HomeMount::none
                                                   : runtime::HomeMount::rw;
    spec.data_dir = store::data_dir();
    // Extra mounts' sources, opened now with no link followed anywhere on the path: `set` stored each as
    // its real path, so a link found there now was put there later, perhaps by a machine through a
    // shared directory, and would lead the mount (as us, as root for a root-run machine) elsewhere.
    // Each open is on its own safe; they are repeated in each mount namespace the source is cloned in
    // (open_tree clones only a mount of the caller's own namespace).
    auto open_source = [](const std::string& path) {
        return UniqueFd(fs::openat2_raw(AT_FDCWD, path.c_str(), O_PATH | O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS));
    };
    for (const auto& m : boot->mounts) {
        UniqueFd fd = open_source(m.source);
        struct stat st {};
        if (!fd.valid() && errno == ELOOP)
            return fail(fmt::format("mount source '{}' has a link on its path, which it did not have when it was set "
                                    "(set it again by its real path, or machine set -n {} mounts= to remove it)",
                                    m.source, name));
        if (!fd.valid() || ::fstat(fd.get(), &st) != 0)
            return fail(fmt::format("mount source '{}' does not exist (machine set -n {} mounts= removes the "
                                    "machine's extra mounts)",
                                    m.source, name));
        spec.extra_mounts.push_back({"", m.source, m.target, m.read_only, S_ISDIR(st.st_mode)});
    }
    // What open_tree is given: the source opened so, through its magic link.
    auto source_path = [](const UniqueFd& fd) { return fmt::format("/proc/self/fd/{}", fd.get()); };
    spec.kvm = boot->virtualization;
    if (boot->gpu) spec.gpu_devices = gpu_devices();
    if (const char* sock = std::getenv("SSH_AUTH_SOCK"); sock && *sock) spec.ssh_auth_sock = sock;
    spec.hosts =
        fmt::format("127.0.0.1 localhost\n127.0.1.1 {}\n::1 localhost ip6-localhost ip6-loopback\n", name);
    if (auto rc = fs::read_file("/etc/resolv.conf")) spec.resolv_conf = *rc;
    spec.provision = !fs::exists(dir + "/provisioned");
    spec.provision_script = provisioning::builtin_script();
    spec.image_provision_script = provisioning::k_image_script;
    spec.provision_env = {"CONTAINER_USER=" + cfg->user.username,
                          "CONTAINER_UID=" + std::to_string(cfg->user.uid),
                          "CONTAINER_GID=" + std::to_string(cfg->user.gid),
                          "CONTAINER_HOME=" + cfg->user.home,
                          "CONTAINER_MACHINE_ID=" + name,
                          "CONTAINER_SHELL=" + cfg->user.shell,
                          "CONTAINER_HOME_MOUNT=" + boot->home_mount};
    spec.env = {"container=container-machine",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=vt220", "HOME=/"};

    // The console: a pty whose output we copy to stdio.log.
    int ptm = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (ptm < 0 || ::grantpt(ptm) != 0 || ::unlockpt(ptm) != 0) return fail("allocate the console pty");
    UniqueFd master(ptm);
    (void)::fcntl(ptm, F_SETFL, O_NONBLOCK); // the final drain must not block; poll drives the rest
    spec.console = ::ptsname(ptm);
    {
        // Keep a slave open so the master never reads EIO between init's reopenings of the console.
        struct termios tio {};
        int s = ::open(spec.console.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (s >= 0 && ::tcgetattr(s, &tio) == 0) {
            tio.c_oflag &= ~static_cast<tcflag_t>(ONLCR);
            (void)::tcsetattr(s, TCSANOW, &tio); // cosmetic: no \r in the log
        }
        if (s >= 0) (void)::fcntl(s, F_SETFD, FD_CLOEXEC); // kept for the process's life, on purpose
    }
    // Where /dev/pts is mounted with gid=5 (every systemd host), the slave's group is tty, which the
    // machine's namespace does not map: its root then may not open the console (capabilities only
    // override permissions on files whose owner and group are both mapped). The user's own group is.
    if (::getuid() != 0 && ::chown(spec.console.c_str(), static_cast<uid_t>(-1), ::getgid()) != 0)
        return fail(fmt::format("chgrp the console: {}", std::strerror(errno)));
    UniqueFd stdio_log(::open((dir + "/stdio.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));

    // The supervisor's namespace maps the machine's ids and, so it can keep working on the user's files,
    // the user's own: for a regular user the keep-id map; for root the machine's private block, with the
    // host's root at k_host_root_inside (outside the machine's ids, so not mapped into the machine).
    bool root_run = ::getuid() == 0;
    runtime::IdMap map;
    runtime::IdMap machine_map; // the machine's namespace, one level further down
    uid_t own_uid = ::getuid();
    gid_t own_gid = ::getgid();
    std::vector<UniqueFd> idmapped_layers;
    UniqueFd idmapped_home;
    std::vector<UniqueFd> idmapped_mounts; // one per extra mount, when made
    if (root_run) {
        if (cfg->ids.count == 0)
            return fail(fmt::format("container machine {} was made before root-run machines got ids of their own, so "
                                    "its files belong to the host's root: remove it and create it again",
                                    name));
        constexpr uint32_t k_host_root_inside = 65536;
        map.uids = {{0, cfg->ids.uid, cfg->ids.count}, {k_host_root_inside, 0, 1}};
        map.gids = {{0, cfg->ids.gid, cfg->ids.count}, {k_host_root_inside, 0, 1}};
        machine_map.uids = machine_map.gids = {{0, 0, cfg->ids.count}};
        own_uid = own_gid = k_host_root_inside;
        // The console is the machine root's terminal: the host's root allocated it.
        if (::chown(spec.console.c_str(), cfg->ids.uid, cfg->ids.gid) != 0)
            return fail(fmt::format("chown the console: {}", std::strerror(errno)));
        // The layers are stored once, under the store's block; each machine sees them through idmapped
        // mounts that show that block as its own. Made now, while this process is the host's root.
        auto store_map = store.id_map();
        if (!store_map) return fail(store_map.error().message);
        // The data directory's path is open to the store's group (store.cpp): mapped here too, so this
        // namespace's root may override the permissions there as it may for the host root's files.
        map.gids.push_back({k_host_root_inside + 1, store_map->gids.at(0).outside, 1});
        runtime::IdMap layer_view;
        layer_view.uids = {{store_map->uids.at(0).outside, cfg->ids.uid, cfg->ids.count}};
        layer_view.gids = {{store_map->gids.at(0).outside, cfg->ids.gid, cfg->ids.count}};
        auto layers_ns = runtime::make_userns_fd(layer_view);
        if (!layers_ns) return fail(layers_ns.error().message);
        const char* knob = std::getenv("CONTAINER_IDMAPPED_MOUNTS"); // "0": the copy below, for tests
        bool idmapped = !(knob && std::string(knob) == "0");
        std::string why = "CONTAINER_IDMAPPED_MOUNTS=0";
        for (auto it = img->config.diff_ids.rbegin(); idmapped && it != img->config.diff_ids.rend(); ++it) {
            auto tree = runtime::idmapped_tree(store.layer_path(*it), layers_ns->get());
            if (!tree) {
                idmapped = false;
                why = tree.error().message;
                idmapped_layers.clear();
                break;
            }
            idmapped_layers.push_back(std::move(tree).value());
        }
        if (!idmapped) {
            // Without idmapped mounts (Linux < 5.19, or a file system without them) this machine gets a copy
            // of the layers owned by its own ids, made once and kept with the machine.
            say(fmt::format("no idmapped mounts ({}): this machine uses its own copy of the image's layers", why));
            runtime::IdShift shift{store_map->uids.at(0).outside, cfg->ids.uid, store_map->gids.at(0).outside,
                                   cfg->ids.gid, cfg->ids.count};
            spec.lowerdirs.clear();
            for (auto it = img->config.diff_ids.rbegin(); it != img->config.diff_ids.rend(); ++it) {
                std::string copy = fmt::format("{}/layer-copies/{}", dir, it->hex);
                if (!fs::exists(copy)) {
                    std::string tmp = copy + ".tmp";
                    if (auto r = fs::make_dirs(dir + "/layer-copies", 0700); !r) return fail(r.error().message);
                    if (auto r = fs::remove_tree(tmp); !r) return fail(r.error().message);
                    if (auto r = runtime::shifted_copy(store.layer_path(*it), tmp, shift); !r)
                        return fail(r.error().message);
                    if (::rename(tmp.c_str(), copy.c_str()) != 0)
                        return fail(fmt::format("rename \"{}\": {}", tmp, std::strerror(errno)));
                }
                spec.lowerdirs += (spec.lowerdirs.empty() ? "" : ":") + copy;
            }
        }
        // Root's home: its own files are root's inside (host uid 0 shows as the machine's root), and files
        // root writes there from inside belong to the host's root. Without idmapped mounts it is bound as it
        // is, and its files show as nobody's inside.
        if (idmapped && boot->home_mount != "none" && !cfg->user.home.empty()) {
            runtime::IdMap home_view;
            home_view.uids = {{0, cfg->ids.uid, cfg->ids.count}};
            home_view.gids = {{0, cfg->ids.gid, cfg->ids.count}};
            auto home_ns = runtime::make_userns_fd(home_view);
            if (!home_ns) return fail(home_ns.error().message);
            auto tree = runtime::idmapped_tree(cfg->user.home, home_ns->get());
            if (!tree) return fail(tree.error().message);
            idmapped_home = std::move(tree).value();
        }
        // Extra mounts are shared as the home is: the host's ids seen as the machine's.
        if (idmapped && !spec.extra_mounts.empty()) {
            runtime::IdMap view;
            view.uids = {{0, cfg->ids.uid, cfg->ids.count}};
            view.gids = {{0, cfg->ids.gid, cfg->ids.count}};
            auto ns = runtime::make_userns_fd(view);
            if (!ns) return fail(ns.error().message);
            for (const auto& m : spec.extra_mounts) {
                UniqueFd source = open_source(m.host_path);
                if (!source.valid()) return fail(fmt::format("open the mount source '{}': {}", m.host_path, std::strerror(errno)));
                auto tree = runtime::idmapped_tree(source_path(source), ns->get());
                if (!tree) return fail(fmt::format("mount source '{}': {}", m.host_path, tree.error().message));
                idmapped_mounts.push_back(std::move(tree).value());
            }
        }
    } else {
        auto user_map = runtime::current_user_idmap();
        if (!user_map) return fail(user_map.error().message);
        map = *user_map;
        machine_map = runtime::nested_identity(map);
    }
    std::string cgroup;
    // Started in a delegated scope of its own (lifecycle's start()): the machine's cgroup goes beside
    // the supervisor's, both below the scope.
    std::string cgroup_parent;
    if (const char* in_scope = std::getenv("CONTAINER_IN_SCOPE"); in_scope && std::string(in_scope) == "1") {
        if (auto scope = runtime::leave_scope_root())
            cgroup_parent = *scope;
        else
            say("in a systemd scope, but cannot use it: " + scope.error().message);
    }
    std::string no_cgroup; // why the machine has none, for an init that cannot do without
    const std::string cgroup_fix = runtime::cgroup_delegation_fix(); // (as the caller, before the userns)
    if (auto cg = runtime::create_machine_cgroup(name, cgroup_parent)) {
        cgroup = *cg;
        // `run` commands go to a leaf of their own beside init: once systemd inside enables controllers
        // for its children, the machine's cgroup may hold no process itself (the kernel refuses with
        // EBUSY), and a command that cannot join it would run outside the machine's limits.
        if (::mkdir((cgroup + "/" + runtime::k_run_cgroup).c_str(), 0755) != 0 && errno != EEXIST)
            say(fmt::format("mkdir the run cgroup: {}", std::strerror(errno)));
    } else {
        no_cgroup = cg.error().message;
        say("no unified cgroup for the machine: " + no_cgroup);
    }
    if (root_run && !cgroup.empty()) {
        // Delegated to the machine's root as systemd delegates to a user: the directory and the files
        // that manage its subtree, never the limits set on it (memory.max, cpu.max stay the host's).
        for (const char* f : {"", "/cgroup.procs", "/cgroup.threads", "/cgroup.subtree_control"})
            if (::chown((cgroup + f).c_str(), cfg->ids.uid, cfg->ids.gid) != 0)
                say(fmt::format("delegate {}{}: {}", cgroup, f, std::strerror(errno)));
    }
    runtime::LimitPlan limits = runtime::plan_limits(runtime::discover_layout(cgroup), name, boot->cpus,
                                                     boot->memory, runtime::allowed_cpus());
    runtime::apply_plan(limits);
    for (const auto& n : limits.not_enforced)
        say("limit not enforced: " + n);
    spec.cpus = runtime::parse_cpu_list(limits.cpu_list);

    sigset_t mask;
    sigemptyset(&mask);
    for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP})
        sigaddset(&mask, s);
    ::sigprocmask(SIG_BLOCK, &mask, nullptr);
    UniqueFd sfd(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));

    // The supervisor works from a user namespace of its own: mounts it makes there (the read-only
    // home) are locked for the machine, whose namespaces are created one level further down, so root
    // in the machine can neither remount them writable nor get under them.
    if (auto e = runtime::enter_userns(map); !e) return fail(e.error().message);
    // Files the supervisor writes from here on (state, logs, cgroups) stay the user's own: the user's ids
    // map to themselves in this namespace. Root's other capabilities (mount, id maps) remain.
    auto fs_ids = [](uid_t u, gid_t g) {
        (void)::setfsgid(g); // cannot fail for a mapped id; the next write would show it
        (void)::setfsuid(u);
    };
    fs_ids(own_uid, own_gid);
    // Never dumpable while a machine process may run: root in the machine is the same host id as our own
    // root here, and could otherwise ptrace the supervisor, which sees the host's files as the user.
    // (Dumpable until now, because newuidmap checks who owns our /proc entry.) boot_init() makes an
    // exception of its own for the moment between clone and id map, before the machine runs anything.
    (void)::prctl(PR_SET_DUMPABLE, 0);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0)
        return fail(fmt::format("make the supervisor's mounts private: {}", std::strerror(errno)));
    if (root_run) {
        // The machine's root walks from its directory into rootfs/ when it boots (boot.cpp), without
        // access to the data directory above: search permission here, for nobody else can get this far.
        if (::chmod(dir.c_str(), 0711) != 0) return fail(fmt::format("chmod \"{}\": {}", dir, std::strerror(errno)));
        // The idmapped trees go where the overlay and the mount plan can name them, in this namespace only.
        if (!idmapped_layers.empty()) spec.lowerdirs.clear();
        for (size_t i = 0; i < idmapped_layers.size(); ++i) {
            std::string at = fmt::format("{}/lower/{}", dir, i);
            if (auto r = fs::make_dirs(at, 0700); !r) return fail(r.error().message);
            if (::move_mount(idmapped_layers[i].get(), "", AT_FDCWD, at.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0)
                return fail(fmt::format("attach layer {} at \"{}\": {}", i, at, std::strerror(errno)));
            spec.lowerdirs += (spec.lowerdirs.empty() ? "" : ":") + at;
        }
        if (idmapped_home.valid()) {
            std::string at = dir + "/home";
            if (auto r = fs::make_dirs(at, 0700); !r) return fail(r.error().message);
            if (::move_mount(idmapped_home.get(), "", AT_FDCWD, at.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0)
                return fail(fmt::format("attach the home at \"{}\": {}", at, std::strerror(errno)));
            spec.home_source = at;
        }
    }
    // Otherwise the home's mount tree is taken now, before any boot mounts the machine's root: bound at
    // boot time, recursively, it would carry the machine's own root along when the data directory lies
    // in the home (masked, but systemd inside would still make a unit of each of its mounts).
    if (spec.home_source.empty() && spec.home_mount != runtime::HomeMount::none && !spec.home.empty()) {
        UniqueFd tree(::open_tree(AT_FDCWD, spec.home.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
        std::string at = dir + "/home";
        if (!tree.valid()) return fail(fmt::format("clone the home \"{}\": {}", spec.home, std::strerror(errno)));
        if (auto r = fs::make_dirs(at, 0700); !r) return fail(r.error().message);
        if (::move_mount(tree.get(), "", AT_FDCWD, at.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0)
            return fail(fmt::format("attach the home at \"{}\": {}", at, std::strerror(errno)));
        spec.home_source = at;
    }
    // Extra mounts likewise: each tree taken (or the idmapped one made above) and attached in this
    // namespace, where the mount plan binds it from.
    for (size_t i = 0; i < spec.extra_mounts.size(); ++i) {
        runtime::ExtraBind& m = spec.extra_mounts[i];
        UniqueFd tree = i < idmapped_mounts.size() ? std::move(idmapped_mounts[i]) : UniqueFd();
        if (!tree.valid()) {
            UniqueFd source = open_source(m.host_path);
            if (!source.valid()) return fail(fmt::format("open the mount source '{}': {}", m.host_path, std::strerror(errno)));
            tree.reset(::open_tree(AT_FDCWD, source_path(source).c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
        }
        if (!tree.valid()) return fail(fmt::format("clone the mount source \"{}\": {}", m.host_path, std::strerror(errno)));
        std::string at = fmt::format("{}/mounts/{}", dir, i);
        if (auto r = fs::make_dirs(dir + "/mounts", 0700); !r) return fail(r.error().message);
        (void)::unlink(at.c_str()); // a previous boot's mount point, which may have been of the other type
        (void)::rmdir(at.c_str());
        if (m.dir) {
            if (auto r = fs::make_dirs(at, 0700); !r) return fail(r.error().message);
        } else if (UniqueFd f(::open(at.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)); !f.valid()) {
            return fail(fmt::format("create \"{}\": {}", at, std::strerror(errno)));
        }
        if (::move_mount(tree.get(), "", AT_FDCWD, at.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0)
            return fail(fmt::format("attach the mount source \"{}\" at \"{}\": {}", m.host_path, at, std::strerror(errno)));
        m.source = at;
    }
    // The system call filter, for `run` to install without compiling it each time (see seccomp.hpp).
    if (auto filter = runtime::machine_filter(); !filter)
        return fail(filter.error().message);
    else if (auto saved = runtime::save_filter(dir + "/seccomp.bpf", *filter); !saved)
        say("save the seccomp filter (each run compiles it instead): " + saved.error().message);
    // Boot init and watch it until it exits. When it asked for a reboot (and nobody asked to stop), boot
    // it again, as a host's firmware would; an init that keeps rebooting at once is stopped instead.
    int stop_signal = img->config.stop_signal.empty() ? 0 : parse_signal(img->config.stop_signal);
    std::vector<struct timespec> reboots;
    std::string own_cgroup;
    if (!cgroup.empty()) {
        if (auto own = runtime::own_cgroup_dir())
            own_cgroup = *own;
        else
            own_cgroup = cgroup.substr(0, cgroup.rfind('/'));
    }
    for (;;) {
        say(fmt::format("booting {} from {}", name, cfg->image_reference));
        // Writing the child's id map needs root's file access for a moment (its /proc files are root's).
        // The child is born in the machine cgroup: the supervisor steps in for the clone and back out
        // after (as the cgroup's owner; root of this namespace may not move processes in a delegated tree).
        // A root-run machine's cgroup belongs to the machine's root, which is our root here.
        if (root_run) fs_ids(0, 0);
        if (!cgroup.empty()) {
            if (auto m = runtime::move_to_cgroup(cgroup, ::getpid()); !m) {
                say("cannot enter the machine cgroup (limits not enforced): " + m.error().message);
                no_cgroup = m.error().message;
                (void)runtime::remove_cgroup(cgroup); // unused now
                cgroup.clear();
            }
        }
        for (const auto& d : limits.attach) {
            if (auto m = runtime::move_to_cgroup(d, ::getpid()); !m) {
                say("limit not enforced: " + m.error().message);
                if (reboots.empty()) limits.not_enforced.push_back(m.error().message); // once, not per boot
            }
        }
        // An init that exits at once without a writable cgroup is not started without one: one line
        // that says what this host needs, instead of a boot that fails the same way on every `run`.
        spec.check_root = nullptr;
        if (cgroup.empty())
            spec.check_root = [&](int root) -> Result<void> {
                const InitKind& k = init_kind(root);
                if (!k.needs_cgroup) return {};
                return make_error("{} needs a cgroup it can write and this user has none delegated ({}): {}",
                                  k.name, no_cgroup, cgroup_fix);
            };
        fs_ids(0, 0);
        auto booted = runtime::boot_init(spec, machine_map, "");
        fs_ids(own_uid, own_gid);
        if (!cgroup.empty()) (void)runtime::move_to_cgroup(own_cgroup, ::getpid()); // else stays, harmless
        for (const auto& d : limits.attach)
            (void)runtime::move_to_cgroup(d.substr(0, d.rfind('/')), ::getpid()); // same
        if (!booted) {
            if (root_run) fs_ids(0, 0); // the machine's cgroup is its root's
            remove_cgroups(cgroup, limits.attach); // empty: the child is gone
            return fail(booted.error().message);
        }
        if (spec.provision) {
            // Recorded on the host, so it never runs twice; init only started because it succeeded.
            if (auto w = fs::write_file_atomic(dir + "/provisioned", store::now_rfc3339() + "\n"); !w)
                say("record provisioning: " + w.error().message);
            else
                say("first-boot provisioning done");
            spec.provision = false;
        }
        const InitKind& kind = init_kind(booted->root.get());
        machine::RunState st;
        st.supervisor_pid = ::getpid();
        st.supervisor_start = machine::process_start_time(st.supervisor_pid);
        st.init_pid = booted->pid;
        st.init_start = machine::process_start_time(booted->pid);
        st.started = store::now_rfc3339();
        st.cgroup = cgroup;
        st.cgroups_v1 = limits.attach;
        st.cpu_list = limits.cpu_list;
        st.cpus = boot->cpus;
        st.memory = boot->memory;
        st.cpu_time_limited = limits.cpu_time_limited;
        st.memory_limited = limits.memory_limited;
        st.not_enforced = limits.not_enforced;
        st.ready = kind.ready == Ready::at_exec;
        (void)::unlink((dir + "/boot-error").c_str()); // from an earlier failed boot, if any
        if (auto w = machines.write_state(name, st); !w) say("write state: " + w.error().message);
        say(fmt::format("init started as pid {} ({})", booted->pid, kind.name));
        if (st.ready) say("ready");

        Watch w{machines,
                name,
                dir,
                master.get(),
                stdio_log.get(),
                sfd.get(),
                booted->pid,
                booted->root.get(),
                kind,
                stop_signal,
                st};
        Exit ex = w.run();
        booted->root.reset();
        // A pid namespace's init that calls reboot() ends with SIGINT (power off, halt) or SIGHUP (restart).
        int status = ex.status;
        bool reboot = WIFSIGNALED(status) && WTERMSIG(status) == SIGHUP;
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGINT)
            say("init powered off");
        else if (reboot)
            say("init asked for a reboot");
        else if (WIFSIGNALED(status))
            say(fmt::format("init killed by signal {}", WTERMSIG(status)));
        else
            say(fmt::format("init exited with status {}", WEXITSTATUS(status)));
        if (!reboot || ex.stopping) break;
        struct timespec now {};
        ::clock_gettime(CLOCK_MONOTONIC, &now);
        std::erase_if(reboots, [&](const struct timespec& t) { return now.tv_sec - t.tv_sec >= 60; });
        if (reboots.size() >= k_max_reboots_a_minute) {
            say(fmt::format("{} reboots within a minute: stopped instead", reboots.size() + 1));
            break;
        }
        reboots.push_back(now);
        // Still this supervisor's machine while it reboots: no init pid, so the state does not read as
        // stale, and not ready, so commands wait for the new init.
        machine::RunState between = st;
        between.init_pid = 0;
        between.init_start = 0;
        between.ready = false;
        // Without that record another command would take the machine for stopped and boot it twice.
        if (auto noted = machines.write_state(name, between); !noted) {
            say("cannot record the reboot (" + noted.error().message + "): stopped instead");
            break;
        }
    }
    // A root-run machine's cgroup (and what systemd made in it) is its root's: removed as that root.
    if (root_run) fs_ids(0, 0);
    remove_cgroups(cgroup, limits.attach);
    if (root_run) fs_ids(own_uid, own_gid);
    machines.clear_state(name);
    say("stopped");
    return 0;
}

} // namespace ctr::supervisor
