// SPDX-License-Identifier: MIT
// The init-kind table, and what each kind's stop request writes inside the machine (init_kind.hpp).
#include "supervisor/init_kind.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <iterator>
#include <string>

#include <fmt/format.h>

#include "base/fs.hpp"
#include "base/unique_fd.hpp"

namespace ctr::supervisor {

namespace {

// Opens `path` inside the machine's root for writing: resolved there (links planted by the image never
// lead to the host), and only when it is of type `type` (S_IFIFO, S_IFREG). Opening a FIFO or a regular
// file without O_TRUNC or O_CREAT changes nothing, so the type is checked on the open fd.
UniqueFd open_in_machine(int root, const char* path, mode_t type) {
    UniqueFd fd(fs::openat2_raw(root, path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0,
                                RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS));
    struct stat st {};
    if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || (st.st_mode & S_IFMT) != type) return UniqueFd();
    return fd;
}

// sysvinit's "telinit 0": a runlevel request on /run/initctl, which must be the FIFO init made.
bool sysvinit_runlevel0(int root) {
    struct {
        int magic = 0x03091969;
        int cmd = 1; // INIT_CMD_RUNLVL
        int runlevel = '0';
        int sleeptime = 0;
        char data[368] = {};
    } req;
    UniqueFd fd = open_in_machine(root, "run/initctl", S_IFIFO);
    return fd.valid() && ::write(fd.get(), &req, sizeof req) == static_cast<ssize_t>(sizeof req);
}

// runit's "runit-init 0": stopit executable, reboot not, then SIGCONT to PID 1. Both files are made or
// changed through fds of the machine's own /etc/runit, never through a path the machine could redirect.
bool runit_halt(int root, pid_t init) {
    UniqueFd dir(fs::openat2_raw(root, "etc/runit", O_PATH | O_DIRECTORY | O_CLOEXEC, 0,
                                 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS));
    if (!dir.valid()) return false;
    UniqueFd stopit(::openat(dir.get(), "stopit", O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0100));
    struct stat st {};
    if (!stopit.valid() || ::fstat(stopit.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
    (void)::fchmod(stopit.get(), 0100); // already so when created
    UniqueFd reboot(::openat(dir.get(), "reboot", O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (reboot.valid() && ::fstat(reboot.get(), &st) == 0 && S_ISREG(st.st_mode)) {
        // fchmod needs a real fd; the O_PATH fd is reopened through our own /proc, never by name.
        (void)::chmod(fmt::format("/proc/self/fd/{}", reboot.get()).c_str(), 0); // halting is the default then
    }
    return ::kill(init, SIGCONT) == 0;
}

// Runs `fn` with the file access of the machine's root (the same host id as the supervisor's own
// root, whose files in the machine the init control files are), then back to the user's.
bool as_machine_root(const std::function<bool()>& fn) {
    uid_t u = static_cast<uid_t>(::setfsuid(static_cast<uid_t>(-1)));
    gid_t g = static_cast<gid_t>(::setfsgid(static_cast<gid_t>(-1)));
    (void)::setfsgid(0); // cannot fail for a mapped id
    (void)::setfsuid(0);
    bool ok = fn();
    (void)::setfsgid(g);
    (void)::setfsuid(u);
    return ok;
}

bool stop_systemd(int, pid_t init) {
    return ::kill(init, SIGRTMIN + 4) == 0;
}
bool stop_busybox(int, pid_t init) {
    return ::kill(init, SIGUSR2) == 0;
}
bool stop_sysvinit(int root, pid_t) {
    return as_machine_root([&] { return sysvinit_runlevel0(root); });
}
bool stop_runit(int root, pid_t init) {
    return as_machine_root([&] { return runit_halt(root, init); });
}

const InitKind k_init_kinds[] = {
    {"systemd", {"systemd", nullptr}, stop_systemd, Ready::systemd_sockets, true},
    {"busybox", {"busybox", nullptr}, stop_busybox, Ready::at_exec, false},
    {"runit", {"runit-init", "runit"}, stop_runit, Ready::at_exec, false},
    {"sysvinit", {"init", nullptr}, stop_sysvinit, Ready::at_exec, false},
    {"other", {nullptr, nullptr}, nullptr, Ready::at_exec, false},
};

} // namespace

// Whether `path` exists in the machine, resolved inside its root.
bool exists_in_machine(int root, const char* path) {
    UniqueFd fd(fs::openat2_raw(root, path, O_PATH | O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS));
    return fd.valid();
}

// Follows /sbin/init's symlinks inside the machine's root to name the init system. Every step resolves
// in that root (RESOLVE_IN_ROOT), so absolute links such as /sbin -> /usr/sbin stay in the machine.
const InitKind& init_kind(int root) {
    std::string path = "sbin/init";
    for (int hops = 0; hops < 40; ++hops) {
        size_t slash = path.rfind('/');
        std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
        std::string leaf = path.substr(slash == std::string::npos ? 0 : slash + 1);
        UniqueFd d(fs::openat2_raw(root, dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_IN_ROOT));
        if (!d.valid()) break;
        char buf[4096];
        ssize_t n = ::readlinkat(d.get(), leaf.c_str(), buf, sizeof buf - 1);
        if (n <= 0) break; // not a link: `leaf` is the init binary itself
        std::string target(buf, static_cast<size_t>(n));
        path = target[0] == '/' ? target.substr(1) : dir + "/" + target;
    }
    std::string base = path.substr(path.rfind('/') + 1);
    for (const InitKind& k : k_init_kinds)
        for (const char* b : k.binaries)
            if (b && base == b) return k;
    return k_init_kinds[std::size(k_init_kinds) - 1];
}

} // namespace ctr::supervisor
