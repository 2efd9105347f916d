// SPDX-License-Identifier: MIT
// Namespace joining and the user switch inside the machine.
#include "runtime/join.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>

#include "base/fd_passing.hpp"
#include "base/fs.hpp"
#include "base/log.hpp"
#include "base/text.hpp"
#include "base/unique_fd.hpp"
#include "runtime/boot.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/seccomp.hpp"
#include "runtime/spawn.hpp"

extern char** environ;

namespace ctr::runtime {

namespace {

struct PasswdEntry {
    std::string name;
    uint32_t uid = 0, gid = 0;
    std::string home, shell;
};

// The machine's own /etc/passwd, read by hand: NSS modules would be loaded from the machine's disk.
std::optional<PasswdEntry> find_passwd(const std::optional<std::string>& name, std::optional<uint32_t> uid) {
    auto text = fs::read_file("/etc/passwd");
    if (!text) return std::nullopt;
    for (const auto& line : split(*text, '\n')) {
        auto f = split(line, ':');
        if (f.size() < 7) continue;
        PasswdEntry e{f[0], static_cast<uint32_t>(std::strtoul(f[2].c_str(), nullptr, 10)),
                      static_cast<uint32_t>(std::strtoul(f[3].c_str(), nullptr, 10)), f[5], f[6]};
        if ((name && e.name == *name) || (!name && uid && e.uid == *uid)) return e;
    }
    return std::nullopt;
}

std::optional<gid_t> find_group(const std::string& name) {
    auto text = fs::read_file("/etc/group");
    if (!text) return std::nullopt;
    for (const auto& line : split(*text, '\n')) {
        auto f = split(line, ':');
        if (f.size() >= 3 && f[0] == name) return static_cast<gid_t>(std::strtoul(f[2].c_str(), nullptr, 10));
    }
    return std::nullopt;
}

std::vector<gid_t> supplementary_groups(const std::string& user, gid_t primary) {
    std::vector<gid_t> out{primary};
    auto text = fs::read_file("/etc/group");
    if (!text || user.empty()) return out;
    for (const auto& line : split(*text, '\n')) {
        auto f = split(line, ':');
        if (f.size() < 4) continue;
        for (const auto& m : split(f[3], ','))
            if (m == user) out.push_back(static_cast<gid_t>(std::strtoul(f[2].c_str(), nullptr, 10)));
    }
    return out;
}

// Setup failures go back to the CLI (which prints them as its error); exec failures are the
// command's own and print here with the shell's statuses.
int g_err_fd = -1;
const std::vector<sock_filter>* g_filter = nullptr;
std::vector<UniqueFd>* g_desktop_trees = nullptr; // taken on the host before the fork

[[noreturn]] void child_fail(int code, const std::string& msg) {
    if (code == 125 && g_err_fd >= 0) {
        (void)!::write(g_err_fd, msg.data(), msg.size()); // the CLI reports it
        ::_exit(code);
    }
    std::string line = "Error: " + msg + "\n";
    (void)!::write(STDERR_FILENO, line.data(), line.size()); // the only channel left to the user
    ::_exit(code);
}

[[noreturn]] void run_command(const ExecSpec& spec, int err_fd) {
    g_err_fd = err_fd;
    std::optional<PasswdEntry> pw;
    uint32_t uid = 0, gid = 0;
    if (spec.user_name) {
        auto numeric = parse_id(*spec.user_name);
        pw = numeric ? find_passwd(std::nullopt, *numeric) : find_passwd(*spec.user_name, std::nullopt);
        if (!pw && !numeric)
            child_fail(125, fmt::format("user {} not found in the machine", *spec.user_name));
        uid = pw ? pw->uid : *numeric;
        gid = pw ? pw->gid : uid;
    } else {
        uid = spec.uid.value_or(0);
        pw = find_passwd(std::nullopt, uid);
        gid = pw ? pw->gid : uid;
    }
    if (spec.uid && spec.user_name) uid = *spec.uid;
    if (spec.gid) gid = *spec.gid;
    if (spec.group_name) {
        auto g = find_group(*spec.group_name);
        if (!g) child_fail(125, fmt::format("group {} not found in the machine", *spec.group_name));
        gid = *g;
    }
    // Desktop sockets go in while we are still the machine's root, into the user's runtime directory.
    std::vector<std::string> desktop_env;
    if (spec.desktop && g_desktop_trees) desktop_env = attach_desktop(*spec.desktop, *g_desktop_trees, uid, gid);
    std::string home = pw && !pw->home.empty() ? pw->home : (uid == 0 ? "/root" : "/");
    std::string shell = pw && !pw->shell.empty() ? pw->shell : "/bin/sh";
    if (::access(shell.c_str(), X_OK) != 0) shell = "/bin/sh";
    std::string name = pw ? pw->name : std::to_string(uid);

    std::vector<std::string> env = {
        "PATH=" + std::string(uid == 0 ? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                                       : "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"),
        "HOME=" + home,
        "USER=" + name,
        "LOGNAME=" + name,
        "SHELL=" + shell,
        "container=container-machine"};
    for (const auto& e : spec.base_env)
        env.push_back(e);
    for (const auto& e : desktop_env)
        env.push_back(e);
    // The host's agent, bound here at boot when SSH_AUTH_SOCK was set (SPEC §8).
    if (::access("/var/host-services/ssh-auth.sock", F_OK) == 0)
        env.push_back("SSH_AUTH_SOCK=/var/host-services/ssh-auth.sock");
    for (const auto& e : spec.extra_env) {
        std::string key = e.substr(0, e.find('='));
        std::erase_if(env, [&](const std::string& x) { return x.substr(0, x.find('=')) == key; });
        env.push_back(e);
    }
    if (spec.cwd.empty() || ::chdir(spec.cwd.c_str()) != 0) {
        if (!spec.cwd.empty() && spec.argv.size() > 0 && errno == ENOENT && !spec.cwd.empty())
            child_fail(125, fmt::format("working directory {} does not exist in the machine", spec.cwd));
        if (::chdir(home.c_str()) != 0) (void)!::chdir("/");
    }
    auto groups = supplementary_groups(pw ? pw->name : "", gid);
    if (pw && pw->gid != gid) groups.push_back(pw->gid); // --gid changes the primary group, not membership
    if (::setgroups(groups.size(), groups.data()) != 0)
        child_fail(125, fmt::format("setgroups: {}", std::strerror(errno)));
    drop_bounding_capabilities();
    // The filter is installed while we are still root here (it needs CAP_SYS_ADMIN without no_new_privs).
    if (!install_filter(*g_filter)) child_fail(125, fmt::format("install the seccomp filter: {}", std::strerror(errno)));
    if (::setresgid(gid, gid, gid) != 0)
        child_fail(125, fmt::format("setresgid {}: {}", gid, std::strerror(errno)));
    if (::setresuid(uid, uid, uid) != 0)
        child_fail(125, fmt::format("setresuid {}: {}", uid, std::strerror(errno)));

    std::vector<std::string> argv = spec.argv;
    if (argv.empty()) argv = {shell, "-l"};
    std::vector<char*> cargv, cenv;
    for (auto& a : argv)
        cargv.push_back(a.data());
    cargv.push_back(nullptr);
    for (auto& e : env)
        cenv.push_back(e.data());
    cenv.push_back(nullptr);
    environ = cenv.data();
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGQUIT, SIG_DFL);
    ::execvp(cargv[0], cargv.data());
    int err = errno;
    child_fail(err == ENOENT ? 127 : 126, fmt::format("cannot run {}: {}", argv[0], std::strerror(err)));
}

bool write_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return false;
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

// Copies between our descriptors and the machine's pty until the command closes it: our stdin to the
// pty when the command's stdin is on it, the pty's output to our stdout (or stderr, when only that is on
// it). `raw` puts our terminal in raw mode, so Ctrl-C, Ctrl-Z and Ctrl-D reach the machine's line
// discipline; restored on exit. Otherwise our terminal stays cooked and only complete lines go over.
void proxy_pty(int master, unsigned pty_fds, bool raw) {
    struct termios saved {};
    bool restored = true;
    if (raw && ::tcgetattr(STDIN_FILENO, &saved) == 0) {
        struct termios r = saved;
        ::cfmakeraw(&r);
        if (::tcsetattr(STDIN_FILENO, TCSADRAIN, &r) == 0) restored = false;
    }
    ScopeExit restore([&] {
        if (!restored) (void)::tcsetattr(STDIN_FILENO, TCSADRAIN, &saved); // best effort: nothing else to do
    });
    auto sync_size = [&] {
        struct winsize ws {};
        for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO})
            if (::ioctl(fd, TIOCGWINSZ, &ws) == 0) {
                (void)::ioctl(master, TIOCSWINSZ, &ws); // a pipe has no size; the pty keeps its default
                return;
            }
    };
    sync_size();
    sigset_t winch;
    sigemptyset(&winch);
    sigaddset(&winch, SIGWINCH);
    sigset_t old_mask;
    ::sigprocmask(SIG_BLOCK, &winch, &old_mask);
    UniqueFd sfd(::signalfd(-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK));
    bool stdin_open = (pty_fds & 1) != 0;
    int out = (pty_fds & 2) || !(pty_fds & 4) ? STDOUT_FILENO : STDERR_FILENO;
    char buf[16384];
    for (;;) {
        struct pollfd fds[3] = {
            {master, POLLIN, 0}, {stdin_open ? STDIN_FILENO : -1, POLLIN, 0}, {sfd.get(), POLLIN, 0}};
        if (::poll(fds, 3, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = ::read(master, buf, sizeof buf);
            if (n <= 0) break; // EIO: the last holder of the terminal has gone
            if (!write_all(out, buf, static_cast<size_t>(n))) break;
        }
        if (stdin_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
            if (n > 0) {
                (void)write_all(master, buf,
                                static_cast<size_t>(n)); // a closed pty shows up on the read side
            } else {
                stdin_open = false;
                if (!raw) {
                    char eof = 4; // end of our input (a pipe, or Ctrl-D on a cooked terminal): Ctrl-D there
                    (void)write_all(master, &eof, 1);
                }
            }
        }
        if (fds[2].revents & POLLIN) {
            struct signalfd_siginfo si {};
            while (::read(sfd.get(), &si, sizeof si) == sizeof si) {
            }
            sync_size();
        }
    }
    ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
}

// The command's process group, for the signals we pass on (0 until it exists).
volatile pid_t g_command = 0;
void forward_to_command(int sig) {
    if (g_command > 0) (void)::kill(-g_command, sig); // the command leads its own session and group
}
// In the CLI: the joined child, which passes signals on to the command.
volatile pid_t g_joined = 0;
void forward_to_joined(int sig) {
    if (g_joined > 0) (void)::kill(g_joined, sig);
}

int wait_status(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return 125;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 125;
}

} // namespace

std::optional<uint32_t> parse_id(const std::string& s) {
    if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
    if (v >= 0xffffffffULL) return std::nullopt; // (uid_t)-1 is no id
    return static_cast<uint32_t>(v);
}

Result<int> exec_in_machine(pid_t init_pid, const ExecSpec& spec) {
    const char* k_order[] = {"user", "mnt", "uts", "ipc", "cgroup", "pid"};
    std::vector<UniqueFd> ns;
    for (const char* n : k_order) {
        std::string path = fmt::format("/proc/{}/ns/{}", init_pid, n);
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd.valid()) return sys_error(errno, fmt::format("open \"{}\"", path));
        ns.push_back(std::move(fd));
    }
    std::vector<sock_filter> filter = TRY(load_filter(spec.filter_file));
    g_filter = &filter;
    std::vector<UniqueFd> desktop_trees;
    if (spec.desktop && !spec.desktop->sockets.empty()) {
        if (auto t = take_desktop_sockets(*spec.desktop))
            desktop_trees = std::move(t).value();
        else // the command runs, without the desktop
            log::debug("desktop sockets not forwarded: {}", t.error().message);
    }
    g_desktop_trees = &desktop_trees;
    // Ctrl-C belongs to the command: the joined child passes it on, and the CLI waits and reports its
    // status. SIGTERM and SIGHUP sent to the CLI go the same way.
    struct sigaction ign {
    }, fwd{}, old_int{}, old_quit{}, old_term{}, old_hup{};
    ign.sa_handler = SIG_IGN;
    fwd.sa_handler = forward_to_joined;
    fwd.sa_flags = SA_RESTART;
    ::sigaction(SIGINT, &ign, &old_int);
    ::sigaction(SIGQUIT, &ign, &old_quit);
    ::sigaction(SIGTERM, &fwd, &old_term);
    ::sigaction(SIGHUP, &fwd, &old_hup);
    ScopeExit restore_signals([&] {
        g_joined = 0;
        ::sigaction(SIGINT, &old_int, nullptr);
        ::sigaction(SIGQUIT, &old_quit, nullptr);
        ::sigaction(SIGTERM, &old_term, nullptr);
        ::sigaction(SIGHUP, &old_hup, nullptr);
    });
    int err_pipe[2], sock[2];
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) return sys_error(errno, "pipe");
    UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sock) != 0)
        return sys_error(errno, "socketpair");
    UniqueFd sock_parent(sock[0]), sock_child(sock[1]);
    bool use_pty = spec.pty_fds != 0 && !spec.detach;
    // Born in the machine's unified cgroup (clone3 CLONE_INTO_CGROUP): moving a running process there
    // waits for an RCU grace period, which would cost a `run` several milliseconds; v1 ones are joined
    // below by the child moving its single thread, which needs no grace period.
    std::vector<std::string> v1_cgroups = spec.cgroups;
    pid_t pid = -1;
    if (!spec.cgroups.empty()) {
        UniqueFd cg(::open(spec.cgroups[0].c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (cg.valid()) {
            struct clone_args args {};
            args.flags = CLONE_INTO_CGROUP;
            args.exit_signal = SIGCHLD;
            args.cgroup = static_cast<uint64_t>(cg.get());
            pid = static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof args));
            if (pid >= 0) v1_cgroups.erase(v1_cgroups.begin());
        }
    }
    // Not allowed in: the manager moves the child, which waits for that before it goes on.
    UniqueFd hold_r, hold_w;
    if (pid < 0 && !spec.manager_unit.empty()) {
        int hold[2];
        if (::pipe2(hold, O_CLOEXEC) != 0) return sys_error(errno, "pipe");
        hold_r.reset(hold[0]);
        hold_w.reset(hold[1]);
    }
    if (pid < 0) pid = ::fork(); // older kernels, or no unified cgroup: plain fork, join by writing
    if (pid < 0) return sys_error(errno, "fork");
    if (pid > 0 && hold_w.valid()) {
        if (auto a = attach_through_manager(spec.manager_unit, spec.manager_subcgroup, pid); !a)
            log::debug("the command runs outside the machine's cgroup: {}", a.error().message);
        (void)!::write(hold_w.get(), "g", 1);
        hold_w.reset();
        hold_r.reset();
    }
    if (pid == 0) {
        // From here the machine may be able to see this process: nothing of ours may be readable, and
        // nothing we hold may reach the command. No exception leaves this branch (see the catch below).
        try {
            harden_child();
            err_r.reset();
            if (hold_r.valid()) {
                hold_w.reset();
                char go = 0;
                (void)!::read(hold_r.get(), &go, 1); // moved (or not: then outside the limits, as below)
                hold_r.reset();
            }
            auto report = [&](const std::string& what) {
                std::string m = fmt::format("{}: {}", what, std::strerror(errno));
                (void)!::write(err_w.get(), m.data(), m.size()); // parent shows it
                ::_exit(125);
            };
            if (spec.detach) {
                if (::setsid() < 0) report("setsid");
                int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
                for (int fd = 0; fd < 3; ++fd)
                    ::dup2(null, fd);
                if (null > 2) ::close(null);
            }
            for (const auto& cg : v1_cgroups) {
                // Not fatal: the command runs, only outside the machine's limits. This child has one thread.
                (void)move_self_to_cgroup(cg);
            }
            if (!spec.cpus.empty()) {
                cpu_set_t set;
                CPU_ZERO(&set);
                for (int cpu : spec.cpus)
                    CPU_SET(cpu, &set);
                // Joining the cpuset cgroup has usually set this already; setting it again costs a migration.
                cpu_set_t current;
                if (::sched_getaffinity(0, sizeof current, &current) != 0 || !CPU_EQUAL(&current, &set))
                    (void)::sched_setaffinity(0, sizeof set, &set); // as above: runs, only on more CPUs
            }
            for (size_t i = 0; i < ns.size(); ++i)
                if (::setns(ns[i].get(), 0) != 0)
                    report(fmt::format("join the machine's {} namespace", k_order[i]));
            ns.clear();
            // The pseudo-terminal comes from the machine's own devpts, so `tty` inside names a real device.
            UniqueFd master;
            char slave[128] = {};
            if (use_pty) {
                master.reset(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
                if (!master.valid()) report("open the machine's /dev/ptmx");
                if (::unlockpt(master.get()) != 0 || ::ptsname_r(master.get(), slave, sizeof slave) != 0)
                    report("set up the pseudo-terminal");
                if (!send_fd(sock_child.get(), master.get())) report("pass the pseudo-terminal");
            }
            sock_child.reset();
            pid_t inner = ::fork();
            if (inner < 0) report("fork");
            if (inner == 0) {
                // Always a session of its own: no way back to the caller's terminal (TIOCSTI, job control).
                if (::setsid() < 0) report("setsid");
                if (master.valid()) {
                    int s = ::open(slave, O_RDWR | O_CLOEXEC);
                    if (s < 0) report(fmt::format("open {}", slave));
                    if (::ioctl(s, TIOCSCTTY, 0) != 0)
                        report("make the pseudo-terminal the controlling terminal");
                    if (!spec.raw && (spec.pty_fds & 1)) {
                        // Our own terminal echoes and edits the line; the machine's must not echo it again.
                        struct termios t {};
                        if (::tcgetattr(s, &t) == 0) {
                            t.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHOE | ECHOK | ECHONL);
                            (void)::tcsetattr(s, TCSANOW, &t); // cosmetic: input would show twice
                        }
                    }
                    for (int fd = 0; fd < 3; ++fd)
                        if (spec.pty_fds & (1u << fd)) ::dup2(s, fd);
                    uint32_t owner = spec.uid.value_or(::getuid());
                    (void)::fchown(s, owner, static_cast<gid_t>(-1)); // cosmetic: the user owns their terminal
                    ::close(s);
                    master.reset();
                }
                run_command(spec, err_w.get());
            }
            master.reset();
            desktop_trees.clear(); // the command's to attach; this process waits, holding nothing of it
            g_command = inner;
            struct sigaction pass {};
            pass.sa_handler = forward_to_command;
            pass.sa_flags = SA_RESTART;
            for (int sig : {SIGINT, SIGQUIT, SIGTERM, SIGHUP})
                ::sigaction(sig, &pass, nullptr);
            err_w.reset(); // the pipe now closes when the command execs (or fails)
            ::_exit(wait_status(inner));
        } catch (...) {
            ::_exit(125); // never back into the CLI as a second copy of it
        }
    }
    g_joined = pid;
    err_w.reset();
    sock_child.reset();
    UniqueFd master;
    if (use_pty) master.reset(recv_fd(sock_parent.get()));
    std::string failure;
    char buf[512];
    ssize_t n;
    while ((n = ::read(err_r.get(), buf, sizeof buf)) > 0)
        failure.append(buf, static_cast<size_t>(n));
    if (spec.detach && failure.empty()) return 0;
    if (failure.empty() && master.valid()) proxy_pty(master.get(), spec.pty_fds, spec.raw);
    master.reset();
    int status = wait_status(pid);
    if (!failure.empty()) return make_error("{}", failure);
    return status;
}

} // namespace ctr::runtime
