// SPDX-License-Identifier: MIT
// Desktop forwarding: the plan from the caller's variables, the host half (a helper in namespaces of its
// own clones each socket's mount, so an unprivileged caller can take them) and the machine half (the
// joined process attaches them in /run/user/<uid>). Why at join time and not at boot: docs/RUNTIME.md.
#include "runtime/desktop.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "base/fd_passing.hpp"
#include "runtime/spawn.hpp"

#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

namespace ctr::runtime {

namespace {

constexpr const char* k_runtime = "@RUNTIME@";
constexpr size_t k_max_xauthority = 1 << 20;

// The socket itself, not a link to one: a path such as PULSE_SERVER's may lie in a directory a machine
// can write (the shared home), and a link planted there would hand it another socket of the user's.
bool is_socket(const std::string& p) {
    struct stat st {};
    return !p.empty() && p[0] == '/' && ::lstat(p.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

bool is_dir(const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The display number of a local X display (":0", ":1.0", "unix:2"), or nothing for a remote one.
std::optional<std::string> local_display(const std::string& d) {
    std::string rest;
    if (d.rfind(':', 0) == 0)
        rest = d.substr(1);
    else if (d.rfind("unix:", 0) == 0)
        rest = d.substr(5);
    else
        return std::nullopt;
    std::string num = rest.substr(0, rest.find('.'));
    if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    return num;
}

// The caller's Xauthority file, never through a link (it may lie in a home the machine can write).
std::string read_xauthority(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    struct stat st {};
    if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<size_t>(st.st_size) > k_max_xauthority)
        return "";
    std::string data(static_cast<size_t>(st.st_size), '\0');
    size_t got = 0;
    while (got < data.size()) {
        ssize_t n = ::read(fd.get(), data.data() + got, data.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<size_t>(n);
    }
    data.resize(got);
    return data;
}

} // namespace

std::string filter_xauthority(const std::string& data, const std::string& display) {
    std::string out;
    size_t pos = 0;
    auto field = [&](std::string* value) {
        if (pos + 2 > data.size()) return false;
        size_t len = (static_cast<unsigned char>(data[pos]) << 8) | static_cast<unsigned char>(data[pos + 1]);
        if (pos + 2 + len > data.size()) return false;
        if (value) *value = data.substr(pos + 2, len);
        pos += 2 + len;
        return true;
    };
    while (pos + 2 <= data.size()) {
        size_t start = pos;
        pos += 2; // family
        std::string number;
        if (!field(nullptr) || !field(&number) || !field(nullptr) || !field(nullptr)) break;
        // Kept as FamilyWild: the entry names the host's hostname, which the machine's is not.
        if (number == display) out += "\xff\xff" + data.substr(start + 2, pos - start - 2);
    }
    return out;
}

DesktopPlan plan_desktop(const std::function<const char*(const char*)>& getenv) {
    auto var = [&](const char* name) {
        const char* v = getenv(name);
        return std::string(v ? v : "");
    };
    DesktopPlan p;
    std::string rt = var("XDG_RUNTIME_DIR");
    if (!rt.empty() && rt[0] != '/') rt.clear();
    auto in_rt = [&](const std::string& name) { return rt.empty() ? std::string() : rt + "/" + name; };
    const std::string at = k_runtime;

    if (std::string w = var("WAYLAND_DISPLAY"); !w.empty()) {
        std::string path = w[0] == '/' ? w : in_rt(w);
        std::string name = w.substr(w.rfind('/') + 1);
        if (is_socket(path) && !name.empty() && name != "." && name != "..") {
            p.sockets.push_back({"wayland", path, name, false});
            p.env.push_back("WAYLAND_DISPLAY=" + name);
        }
    }
    if (std::string d = var("DISPLAY"); !d.empty()) {
        auto num = local_display(d);
        if (num && is_dir("/tmp/.X11-unix"))
            p.sockets.push_back({"x11", "/tmp/.X11-unix", "/tmp/.X11-unix", true});
        p.env.push_back("DISPLAY=" + d); // a remote display is reached over the shared network as it is
        std::string file = var("XAUTHORITY");
        if (file.empty() && !var("HOME").empty()) file = var("HOME") + "/.Xauthority";
        if (num && !file.empty()) p.xauthority = filter_xauthority(read_xauthority(file), *num);
        if (!p.xauthority.empty()) p.env.push_back("XAUTHORITY=" + at + "/Xauthority");
    }
    std::string pulse = var("PULSE_SERVER");
    std::string pulse_path = pulse.rfind("unix:", 0) == 0 ? pulse.substr(5)
                             : pulse.empty()              ? in_rt("pulse/native")
                                                          : "";
    if (is_socket(pulse_path)) {
        p.sockets.push_back({"pulseaudio", pulse_path, "pulse/native", false});
        p.env.push_back("PULSE_SERVER=unix:" + at + "/pulse/native");
    }
    if (std::string pw = in_rt("pipewire-0"); is_socket(pw))
        p.sockets.push_back({"pipewire", pw, "pipewire-0", false});
    std::string bus = var("DBUS_SESSION_BUS_ADDRESS");
    std::string bus_path;
    if (bus.rfind("unix:path=", 0) == 0)
        bus_path =
            bus.substr(10, bus.find(',') == std::string::npos ? std::string::npos : bus.find(',') - 10);
    else if (bus.empty())
        bus_path = in_rt("bus");
    if (is_socket(bus_path)) {
        p.sockets.push_back({"dbus", bus_path, "bus", false});
        p.env.push_back("DBUS_SESSION_BUS_ADDRESS=unix:path=" + at + "/bus");
    } else if (bus.rfind("unix:abstract=", 0) == 0) {
        p.env.push_back("DBUS_SESSION_BUS_ADDRESS=" + bus); // abstract sockets: the network is shared
    }
    if (!rt.empty() || !p.sockets.empty() || !p.xauthority.empty()) p.env.push_back("XDG_RUNTIME_DIR=" + at);
    return p;
}

Result<std::vector<UniqueFd>> take_desktop_sockets(const DesktopPlan& plan) {
    std::vector<UniqueFd> out;
    if (plan.sockets.empty()) return out;
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return sys_error(errno, "socketpair");
    UniqueFd parent(sv[0]), child(sv[1]);
    pid_t pid = ::fork();
    if (pid < 0) return sys_error(errno, "fork");
    if (pid == 0) {
        // Namespaces of our own: cloning a mount needs CAP_SYS_ADMIN over the mount namespace, which any
        // user has in one it made. Nothing here can reach the machine.
        harden_child();
        parent.reset();
        if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) ::_exit(1);
        for (const auto& s : plan.sockets) {
            UniqueFd tree(::open_tree(AT_FDCWD, s.host_path.c_str(),
                                      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW |
                                          (s.dir ? AT_RECURSIVE : 0)));
            bool sent = tree.valid() ? send_fd(child.get(), tree.get()) : ::send(child.get(), "-", 1, 0) == 1;
            if (!sent) ::_exit(1);
        }
        ::_exit(0);
    }
    child.reset();
    for (size_t i = 0; i < plan.sockets.size(); ++i)
        out.emplace_back(recv_fd(parent.get())); // -1 for one not taken (or when the helper died)
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return out;
}

std::vector<std::string> attach_desktop(const DesktopPlan& plan, std::vector<UniqueFd>& trees, uid_t uid,
                                        gid_t gid) {
    // In the machine, as its root: the machine's own paths, at the machine's own privilege. Files are made
    // as the machine's root (our ids until the command's setresuid are the caller's, unmapped here).
    (void)::setfsgid(0); // cannot fail with CAP_SETGID in the machine's namespace; then chown shows it
    (void)::setfsuid(0);
    std::string rt = "/run/user/" + std::to_string(uid);
    (void)::mkdir("/run/user", 0755); // exists already, or made: the next step shows which
    bool have_rt = false;
    if (::mkdir(rt.c_str(), 0700) == 0 || errno == EEXIST) {
        UniqueFd dir(::open(rt.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        have_rt = dir.valid() && ::fchown(dir.get(), uid, gid) == 0 && ::fchmod(dir.get(), 0700) == 0;
    }
    auto private_dir = [&](const std::string& path, mode_t mode, bool own) {
        if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) return false;
        UniqueFd d(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        return d.valid() && (!own || ::fchown(d.get(), uid, gid) == 0) && ::fchmod(d.get(), mode) == 0;
    };
    for (size_t i = 0; i < plan.sockets.size() && i < trees.size(); ++i) {
        const DesktopSocket& s = plan.sockets[i];
        if (!trees[i].valid()) continue;
        bool absolute = s.target[0] == '/';
        if (!absolute && !have_rt) continue;
        std::string target = absolute ? s.target : rt + "/" + s.target;
        std::string parent = target.substr(0, target.rfind('/'));
        if (absolute && !private_dir(parent, 01777, false)) continue; // /tmp: the machine's own
        if (!absolute && parent != rt && !private_dir(parent, 0700, true)) continue;
        (void)::umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW); // an earlier run's; none: EINVAL
        if (s.dir) {
            if (!private_dir(target, 01777, false)) continue;
        } else {
            UniqueFd f(::open(target.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
            if (!f.valid()) continue;
        }
        (void)::move_mount(trees[i].get(), "", AT_FDCWD, target.c_str(),
                           MOVE_MOUNT_F_EMPTY_PATH); // else without
        trees[i].reset();
    }
    if (have_rt && !plan.xauthority.empty()) {
        std::string file = rt + "/Xauthority";
        (void)::unlink(file.c_str()); // written fresh each run, never through a link
        UniqueFd f(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (f.valid()) {
            (void)!::write(f.get(), plan.xauthority.data(),
                           plan.xauthority.size()); // small; X reports a bad one
            (void)::fchown(f.get(), uid, gid);
        }
    }
    std::vector<std::string> env;
    for (std::string e : plan.env) {
        if (auto at = e.find(k_runtime); at != std::string::npos) {
            if (!have_rt) continue;
            e.replace(at, std::strlen(k_runtime), rt);
        }
        env.push_back(e);
    }
    return env;
}

} // namespace ctr::runtime
