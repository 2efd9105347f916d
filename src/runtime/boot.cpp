// SPDX-License-Identifier: MIT
// The boot child. Between clone() and execve() failures are reported to the parent as one
// "<step>: <errno text>" message over a pipe; the parent owns all logging.
#include "runtime/boot.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "base/fd_passing.hpp"
#include "base/fs.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/userns.hpp"

namespace ctr::runtime {

namespace {

// What to mount inside the new root, in order; targets are relative to the root.
enum class Kind { fs, bind, rbind_ro, dev_node, symlink, dir };
struct MountEntry {
    Kind kind;
    const char* source;
    const char* target;
    const char* fstype;
    unsigned long flags;
    const char* data;
};

// sysfs cannot be mounted without owning a network namespace (the host network is shared), so the
// host's /sys is bound read-only; cgroup2 is mounted fresh on top for the machine's own subtree.
constexpr MountEntry k_mounts[] = {
    {Kind::fs, "proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr},
    {Kind::rbind_ro, "/sys", "sys", nullptr, 0, nullptr},
    {Kind::fs, "cgroup2", "sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr},
    {Kind::fs, "tmpfs", "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"},
    {Kind::dev_node, "/dev/null", "dev/null", nullptr, 0, nullptr},
    {Kind::dev_node, "/dev/zero", "dev/zero", nullptr, 0, nullptr},
    {Kind::dev_node, "/dev/full", "dev/full", nullptr, 0, nullptr},
    {Kind::dev_node, "/dev/random", "dev/random", nullptr, 0, nullptr},
    {Kind::dev_node, "/dev/urandom", "dev/urandom", nullptr, 0, nullptr},
    {Kind::dev_node, "/dev/tty", "dev/tty", nullptr, 0, nullptr},
    {Kind::dir, nullptr, "dev/pts", nullptr, 0755, nullptr},
    {Kind::fs, "devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"},
    {Kind::symlink, "pts/ptmx", "dev/ptmx", nullptr, 0, nullptr},
    {Kind::dir, nullptr, "dev/shm", nullptr, 01777, nullptr},
    {Kind::fs, "tmpfs", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"},
    {Kind::symlink, "/proc/self/fd", "dev/fd", nullptr, 0, nullptr},
    {Kind::symlink, "/proc/self/fd/0", "dev/stdin", nullptr, 0, nullptr},
    {Kind::symlink, "/proc/self/fd/1", "dev/stdout", nullptr, 0, nullptr},
    {Kind::symlink, "/proc/self/fd/2", "dev/stderr", nullptr, 0, nullptr},
    {Kind::fs, "tmpfs", "run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755"},
    {Kind::fs, "tmpfs", "tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"},
};

constexpr int k_kept_caps[] = {
    CAP_AUDIT_CONTROL,
    CAP_AUDIT_WRITE,
    CAP_CHOWN,
    CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH,
    CAP_FOWNER,
    CAP_FSETID,
    CAP_IPC_OWNER,
    CAP_KILL,
    CAP_LEASE,
    CAP_LINUX_IMMUTABLE,
    CAP_MKNOD,
    CAP_NET_BIND_SERVICE,
    CAP_NET_BROADCAST,
    CAP_NET_RAW,
    CAP_SETFCAP,
    CAP_SETGID,
    CAP_SETPCAP,
    CAP_SETUID,
    CAP_SYS_ADMIN,
    CAP_SYS_BOOT,
    CAP_SYS_CHROOT,
    CAP_SYS_NICE,
    CAP_SYS_PTRACE,
    CAP_SYS_RESOURCE,
    CAP_SYS_TTY_CONFIG,
};

struct Child {
    const BootSpec* spec;
    int go_fd;   // parent writes one byte when the map and cgroup are in place
    int err_fd;  // child writes "<step>: <error>" on failure; closed by exec on success
    int sock_fd; // child sends its new root as an fd
};

[[noreturn]] void die(const Child& c, const std::string& step) {
    std::string msg = fmt::format("{}: {}", step, std::strerror(errno));
    (void)!::write(c.err_fd, msg.data(), msg.size()); // the parent treats silence as failure too
    ::_exit(1);
}

[[noreturn]] void die_msg(const Child& c, const std::string& msg) {
    (void)!::write(c.err_fd, msg.data(), msg.size()); // the parent treats silence as failure too
    ::_exit(1);
}

// Runs the provisioning script in the finished root, as root, with stdout and stderr on ours (boot.log).
void provision(const Child& c, const BootSpec& s) {
    bool own = ::access(s.image_provision_script.c_str(), X_OK) == 0;
    pid_t pid = ::fork();
    if (pid < 0) die(c, "fork for provisioning");
    if (pid == 0) {
        int null = ::open("/dev/null", O_RDONLY);
        if (null >= 0) ::dup2(null, 0);
        ::dup2(2, 1);
        std::vector<std::string> env = s.provision_env;
        env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        std::vector<char*> envp;
        for (auto& e : env)
            envp.push_back(e.data());
        envp.push_back(nullptr);
        if (own) {
            char* argv[] = {const_cast<char*>(s.image_provision_script.c_str()), nullptr};
            ::execve(argv[0], argv, envp.data());
        } else {
            char* argv[] = {const_cast<char*>("/bin/sh"), const_cast<char*>("-c"),
                            const_cast<char*>(s.provision_script.c_str()),
                            const_cast<char*>("create-user.sh"), nullptr};
            ::execve("/bin/sh", argv, envp.data());
        }
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) die(c, "wait for provisioning");
    std::string which = own ? s.image_provision_script : "the built-in provisioning script";
    if (WIFSIGNALED(status)) die_msg(c, fmt::format("{} was killed by signal {}", which, WTERMSIG(status)));
    if (WEXITSTATUS(status) != 0)
        die_msg(c, fmt::format("{} failed with exit status {}", which, WEXITSTATUS(status)));
}

unsigned long locked_flags(const char* path) {
    struct statvfs s {};
    if (::statvfs(path, &s) != 0) return 0;
    unsigned long f = 0;
    if (s.f_flag & ST_NOSUID) f |= MS_NOSUID;
    if (s.f_flag & ST_NODEV) f |= MS_NODEV;
    if (s.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
    if (s.f_flag & ST_NOATIME) f |= MS_NOATIME;
    if (s.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
    if (s.f_flag & ST_RELATIME) f |= MS_RELATIME;
    return f;
}

// Read-only remount of a bind mount; flags the kernel locked in the user namespace must be repeated.
bool remount_ro(const std::string& path) {
    return ::mount(nullptr, path.c_str(), nullptr,
                   MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags(path.c_str()), nullptr) == 0;
}

void make_dirs_in(const Child& c, const std::string& path, mode_t mode) {
    for (size_t pos = 1;; ++pos) {
        pos = path.find('/', pos);
        std::string part = path.substr(0, pos);
        if (::mkdir(part.c_str(), mode) != 0 && errno != EEXIST) die(c, "mkdir " + part);
        if (pos == std::string::npos) break;
    }
}

void write_in_root(const Child& c, const std::string& path, const std::string& text) {
    (void)::unlink(path.c_str()); // a symlink (resolv.conf -> ../run/…) must not be followed out
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) die(c, "write " + path);
    (void)!::write(fd, text.data(), text.size());
    ::close(fd);
}

void apply_mounts(const Child& c, const std::string& root) {
    for (const auto& m : k_mounts) {
        std::string target = root + "/" + m.target;
        switch (m.kind) {
        case Kind::dir:
            if (::mkdir(target.c_str(), static_cast<mode_t>(m.flags)) != 0 && errno != EEXIST)
                die(c, "mkdir " + target);
            break;
        case Kind::symlink:
            (void)::unlink(target.c_str()); // replaced each boot
            if (::symlink(m.source, target.c_str()) != 0) die(c, "symlink " + target);
            break;
        case Kind::dev_node: {
            int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
            if (fd < 0) die(c, "create " + target);
            ::close(fd);
            if (::mount(m.source, target.c_str(), nullptr, MS_BIND, nullptr) != 0)
                die(c, fmt::format("mount \"{}\" on \"{}\" (bind)", m.source, target));
            break;
        }
        case Kind::rbind_ro:
            make_dirs_in(c, target, 0755);
            if (::mount(m.source, target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
                die(c, fmt::format("mount \"{}\" on \"{}\" (rbind)", m.source, target));
            if (!remount_ro(target)) die(c, fmt::format("remount \"{}\" read-only", target));
            break;
        case Kind::bind:
            if (::mount(m.source, target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
                die(c, fmt::format("mount \"{}\" on \"{}\" (rbind)", m.source, target));
            break;
        case Kind::fs:
            make_dirs_in(c, target, 0755);
            if (::mount(m.source, target.c_str(), m.fstype, m.flags, m.data) != 0)
                die(c, fmt::format("mount \"{}\" on \"{}\" ({})", m.fstype, target, m.data ? m.data : ""));
            break;
        }
    }
}

int child_main(void* arg) {
    const Child& c = *static_cast<Child*>(arg);
    const BootSpec& s = *c.spec;
    // The supervisor blocks the signals it reads through signalfd; init must start with none blocked.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    char b = 0;
    if (::read(c.go_fd, &b, 1) != 1 || b != 'g') ::_exit(1);
    if (::setresgid(0, 0, 0) != 0) die(c, "setresgid 0");
    (void)::setgroups(0, nullptr); // refused when setgroups is denied; no supplementary groups is the goal
    if (::setresuid(0, 0, 0) != 0) die(c, "setresuid 0");
    if (::unshare(CLONE_NEWCGROUP) != 0) die(c, "unshare cgroup namespace");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) die(c, "make / a slave mount");
    if (::sethostname(s.hostname.data(), s.hostname.size()) != 0) die(c, "sethostname");

    // The first boot makes the machine's own layer as root of the namespace, so "/" belongs to root.
    if (::mkdir(s.upper.c_str(), 0755) != 0 && errno != EEXIST) die(c, "mkdir " + s.upper);
    if (::mkdir(s.work.c_str(), 0700) != 0 && errno != EEXIST) die(c, "mkdir " + s.work);
    std::string opts =
        fmt::format("lowerdir={},upperdir={},workdir={},userxattr", s.lowerdirs, s.upper, s.work);
    if (::mount("overlay", s.rootfs.c_str(), "overlay", 0, opts.c_str()) != 0)
        die(c, fmt::format("mount overlay on \"{}\"", s.rootfs));
    const std::string& r = s.rootfs;
    apply_mounts(c, r);
    // The console: the supervisor's pty, so init's output reaches stdio.log.
    std::string console = r + "/dev/console";
    int cfd = ::open(console.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (cfd < 0) die(c, "create " + console);
    ::close(cfd);
    if (::mount(s.console.c_str(), console.c_str(), nullptr, MS_BIND, nullptr) != 0) die(c, "bind console");
    if (s.kvm && ::access("/dev/kvm", F_OK) == 0) {
        std::string kvm = r + "/dev/kvm";
        int kfd = ::open(kvm.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (kfd >= 0) ::close(kfd);
        if (::mount("/dev/kvm", kvm.c_str(), nullptr, MS_BIND, nullptr) != 0) die(c, "bind /dev/kvm");
    }
    if (s.home_mount != HomeMount::none && !s.home.empty()) {
        std::string target = r + s.home;
        make_dirs_in(c, target, 0755);
        const std::string& source = s.home_source.empty() ? s.home : s.home_source;
        if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
            die(c, fmt::format("mount \"{}\" on \"{}\" (rbind)", source, target));
        // A staged source is read-only and locked already; otherwise this remount is only a default.
        if (s.home_mount == HomeMount::ro && !remount_ro(target)) die(c, "remount home read-only");
    }
    if (!s.ssh_auth_sock.empty()) {
        std::string dir = r + "/var/host-services";
        make_dirs_in(c, dir, 0755);
        std::string target = dir + "/ssh-auth.sock";
        int sfd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (sfd >= 0) ::close(sfd);
        if (::mount(s.ssh_auth_sock.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0)
            (void)::unlink(target.c_str()); // the agent is optional; the machine boots without it
    }
    write_in_root(c, r + "/etc/hosts", s.hosts);
    write_in_root(c, r + "/etc/hostname", s.hostname + "\n"); // systemd sets the hostname from it
    if (!s.resolv_conf.empty()) write_in_root(c, r + "/etc/resolv.conf", s.resolv_conf);

    if (::chdir(r.c_str()) != 0) die(c, "chdir " + r);
    if (::syscall(SYS_pivot_root, ".", ".") != 0) die(c, "pivot_root");
    if (::umount2(".", MNT_DETACH) != 0) die(c, "detach the old root");
    if (::chdir("/") != 0) die(c, "chdir /");
    int rootfd = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) die(c, "open /");
    if (!send_fd(c.sock_fd, rootfd)) die(c, "send root fd");
    ::close(rootfd);
    if (!s.cpus.empty()) {
        cpu_set_t set;
        CPU_ZERO(&set);
        for (int cpu : s.cpus)
            CPU_SET(cpu, &set);
        if (::sched_setaffinity(0, sizeof set, &set) != 0) die(c, "set CPU affinity");
    }
    drop_bounding_capabilities();
    if (s.provision) provision(c, s);
    if (::setsid() < 0) die(c, "setsid");
    int con = ::open("/dev/console", O_RDWR);
    if (con < 0) die(c, "open /dev/console");
    if (::ioctl(con, TIOCSCTTY, 0) != 0) die(c, "make /dev/console the controlling terminal");
    for (int fd = 0; fd < 3; ++fd)
        if (::dup2(con, fd) < 0) die(c, "dup2 console");
    if (con > 2) ::close(con);
    // Credentials are final: a supervisor that dies takes the machine with it.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) die(c, "set parent death signal");
    std::vector<char*> envp;
    for (const auto& e : s.env)
        envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    char* argv[] = {const_cast<char*>("/sbin/init"), nullptr};
    ::execve("/sbin/init", argv, envp.data());
    die(c, "execute /sbin/init");
}

} // namespace

bool remount_read_only(const std::string& path) {
    return remount_ro(path);
}

bool kept_capability(int cap) {
    for (int k : k_kept_caps)
        if (k == cap) return true;
    return false;
}

void drop_bounding_capabilities() {
    for (int cap = 0; cap <= 63; ++cap) {
        if (kept_capability(cap)) continue;
        if (::prctl(PR_CAPBSET_READ, cap) < 0) break; // past the kernel's last capability
        (void)::prctl(PR_CAPBSET_DROP, cap);          // only fails for caps we never had
    }
}

Result<BootedInit> boot_init(const BootSpec& spec, const IdMap& map, const std::string& cgroup) {
    int go[2], err[2], sock[2];
    if (::pipe2(go, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) return sys_error(errno, "pipe");
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sock) != 0)
        return sys_error(errno, "socketpair");
    UniqueFd go_r(go[0]), go_w(go[1]), err_r(err[0]), err_w(err[1]), sock_p(sock[0]), sock_c(sock[1]);
    Child child{&spec, go_r.get(), err_w.get(), sock_c.get()};
    constexpr size_t k_stack = 1 << 20;
    std::vector<char> stack(k_stack);
    pid_t pid =
        ::clone(child_main, stack.data() + k_stack,
                CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD, &child);
    if (pid < 0) return sys_error(errno, "clone the machine's init");
    go_r.reset();
    err_w.reset();
    sock_c.reset();
    auto abort_child = [&](Error e) -> Result<BootedInit> {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        return e;
    };
    auto mapped = write_id_maps(pid, map);
    if (!mapped) return abort_child(wrap(std::move(mapped).error(), "set up the user namespace id map"));
    if (!cgroup.empty()) {
        auto moved = move_to_cgroup(cgroup, pid);
        if (!moved) return abort_child(std::move(moved).error());
    }
    char g = 'g';
    if (::write(go_w.get(), &g, 1) != 1) return abort_child(sys_error(errno, "start the machine's init"));
    BootedInit out;
    out.pid = pid;
    // The root fd arrives just before exec; then the error pipe closes on exec (or carries the failure).
    out.root.reset(recv_fd(sock_p.get()));
    std::string failure;
    char buf[512];
    for (;;) {
        ssize_t n = ::read(err_r.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        failure.append(buf, static_cast<size_t>(n));
    }
    if (!failure.empty() || !out.root.valid()) {
        ::waitpid(pid, nullptr, 0);
        return make_error("boot: {}", failure.empty() ? "the machine's init died during setup" : failure);
    }
    return out;
}

} // namespace ctr::runtime
