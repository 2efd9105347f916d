// SPDX-License-Identifier: MIT
// The boot child and the mount helper. Between clone() and execve() the child allocates nothing and
// reports failure as one {step, errno} record (runtime/spawn.hpp); the parent owns all logging.
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
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "base/fd_passing.hpp"
#include "base/fs.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/mount_plan.hpp"
#include "runtime/seccomp.hpp"
#include "runtime/spawn.hpp"
#include "runtime/userns.hpp"

namespace ctr::runtime {

namespace {

// systemd-nspawn's default bounding set; why each is kept: docs/RUNTIME.md, "Capabilities".
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

// argv and envp arrays made before clone, so the child only reads them.
struct CStrings {
    std::vector<std::string> strings;
    std::vector<char*> ptrs;
    explicit CStrings(std::vector<std::string> s) : strings(std::move(s)) {
        for (auto& x : strings)
            ptrs.push_back(x.data());
        ptrs.push_back(nullptr);
    }
    char** get() { return ptrs.data(); }
};

struct Child {
    const BootSpec* spec;
    int go_fd;   // parent writes one byte when the map, cgroup and root are in place
    int err_fd;  // ChildFailure record on failure; closed by exec on success
    int sock_fd; // child sends its new root as an fd
    int machine_dir; // O_PATH fd of the directory holding rootfs/
    CStrings* init_env;
    CStrings* provision_env;
    CStrings* own_script_argv;
    CStrings* builtin_script_argv;
    const std::vector<sock_filter>* filter;
    CStrings* step_argv;       // a build step's command (spec.step), or null
    CStrings* step_env;
    CStrings* step_candidates; // argv[0] joined to each PATH directory, when it has no '/'
};

[[noreturn]] void fail(const Child& c, const char* step, const char* object = nullptr) {
    child_fail2(c.err_fd, step, object, errno, 1);
}

// Runs the provisioning script in the finished root, as root, its output copied to ours (boot.log)
// through a pipe: the script gets no descriptor of a host file.
void provision(const Child& c, const BootSpec& s) {
    struct stat st {};
    const char* own_path = s.image_provision_script.c_str();
    bool own = ::stat(own_path, &st) == 0 && S_ISREG(st.st_mode) && ::access(own_path, X_OK) == 0;
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) fail(c, "pipe for provisioning");
    pid_t pid = ::fork();
    if (pid < 0) fail(c, "fork for provisioning");
    if (pid == 0) {
        harden_child();
        int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null >= 0) ::dup2(null, 0);
        ::dup2(out[1], 1);
        ::dup2(out[1], 2);
        char** argv = own ? c.own_script_argv->get() : c.builtin_script_argv->get();
        ::execve(argv[0], argv, c.provision_env->get());
        ::_exit(127);
    }
    ::close(out[1]);
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        (void)!::write(STDERR_FILENO, buf, static_cast<size_t>(n)); // boot.log; nothing to do if full
    }
    ::close(out[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) fail(c, "wait for provisioning");
    const char* which = own ? own_path : "the built-in provisioning script";
    char msg[200];
    if (WIFSIGNALED(status)) {
        std::snprintf(msg, sizeof msg, "%s was killed by signal %d", which, WTERMSIG(status));
        child_fail(c.err_fd, msg, 0, 1);
    }
    if (WEXITSTATUS(status) != 0) {
        std::snprintf(msg, sizeof msg, "%s failed with exit status %d", which, WEXITSTATUS(status));
        child_fail(c.err_fd, msg, 0, 1);
    }
}

// A build step's USER, resolved in the step's own /etc/passwd and /etc/group after the pivot, without
// allocating: `name` (or a decimal id) is looked up in `file`; its third field is the id, the fourth
// (passwd only) the primary group.
char g_account_buf[1 << 20];

bool parse_id(const char* s, size_t n, unsigned* out) {
    if (n == 0 || n > 9) return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + static_cast<unsigned>(s[i] - '0');
    }
    *out = v;
    return true;
}

bool find_account(const char* file, const char* name, size_t len, unsigned* id, unsigned* gid) {
    int fd = ::open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return false;
    size_t got = 0;
    ssize_t n;
    while (got < sizeof g_account_buf - 1 && (n = ::read(fd, g_account_buf + got, sizeof g_account_buf - 1 - got)) > 0)
        got += static_cast<size_t>(n);
    ::close(fd);
    g_account_buf[got] = 0;
    for (char* line = g_account_buf; line && *line;) {
        char* end = std::strchr(line, '\n');
        if (end) *end = 0;
        const char* f[5] = {};
        size_t fl[5] = {};
        const char* p = line;
        for (int k = 0; k < 5 && p; ++k) {
            const char* colon = std::strchr(p, ':');
            f[k] = p;
            fl[k] = colon ? static_cast<size_t>(colon - p) : std::strlen(p);
            p = colon ? colon + 1 : nullptr;
        }
        if (f[2] && fl[0] == len && std::memcmp(f[0], name, len) == 0 && parse_id(f[2], fl[2], id)) {
            if (gid && !(f[3] && parse_id(f[3], fl[3], gid))) return false;
            return true;
        }
        line = end ? end + 1 : nullptr;
    }
    return false;
}

// USER "name|uid[:group|gid]": a numeric id needs no account; a name must exist in the step's files.
void resolve_user(const Child& c, const char* spec, unsigned* uid, unsigned* gid) {
    const char* colon = std::strchr(spec, ':');
    size_t ulen = colon ? static_cast<size_t>(colon - spec) : std::strlen(spec);
    *uid = 0;
    *gid = 0;
    bool known = find_account("/etc/passwd", spec, ulen, uid, gid);
    if (!known) {
        if (!parse_id(spec, ulen, uid)) {
            errno = 0;
            child_fail2(c.err_fd, "unable to find user ", spec, 0, 125);
        }
        *gid = 0;
    }
    if (colon) {
        const char* g = colon + 1;
        if (!find_account("/etc/group", g, std::strlen(g), gid, nullptr) && !parse_id(g, std::strlen(g), gid))
            child_fail2(c.err_fd, "unable to find group ", g, 0, 125);
    }
}

// Makes the directory `path` and its parents inside the (pivoted) root.
void make_path(const Child& c, const char* path) {
    char buf[4096];
    size_t n = std::strlen(path);
    if (n >= sizeof buf) child_fail2(c.err_fd, "working directory too long: ", path, 0, 125);
    std::memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; ++i) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char keep = buf[i];
        buf[i] = 0;
        if (::mkdir(buf, 0755) != 0 && errno != EEXIST) child_fail2(c.err_fd, "mkdir ", buf, errno, 125);
        buf[i] = keep;
    }
}

[[noreturn]] void exec_step(const Child& c, const StepCommand& step) {
    if (::setsid() < 0) fail(c, "setsid");
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || ::dup2(null, 0) < 0) fail(c, "open /dev/null");
    if (::dup2(step.output_fd, 1) < 0 || ::dup2(step.output_fd, 2) < 0) fail(c, "dup2 the step's output");
    make_path(c, step.cwd.c_str());
    if (::chdir(step.cwd.c_str()) != 0) fail(c, "chdir ", step.cwd.c_str());
    if (!step.user.empty()) {
        unsigned uid = 0, gid = 0;
        resolve_user(c, step.user.c_str(), &uid, &gid);
        if (::setgroups(0, nullptr) != 0 && errno != EPERM) fail(c, "setgroups");
        if (::setresgid(gid, gid, gid) != 0) fail(c, "setresgid for USER ", step.user.c_str());
        if (::setresuid(uid, uid, uid) != 0) fail(c, "setresuid for USER ", step.user.c_str());
    }
    char** argv = c.step_argv->get();
    char** env = c.step_env->get();
    if (std::strchr(argv[0], '/')) {
        ::execve(argv[0], argv, env);
        child_fail2(c.err_fd, "execute ", argv[0], errno, 127);
    }
    int err = ENOENT;
    for (char** cand = c.step_candidates->get(); *cand; ++cand) {
        ::execve(*cand, argv, env);
        if (errno != ENOENT && errno != ENOTDIR) err = errno;
    }
    child_fail2(c.err_fd, "execute ", argv[0], err, 127);
}

int child_main(void* arg) {
    const Child& c = *static_cast<Child*>(arg);
    const BootSpec& s = *c.spec;
    // The supervisor blocks the signals it reads through signalfd; init must start with none blocked.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Until 'g' this child stays dumpable, so the supervisor can write its id map and open its
    // namespaces; nothing of the machine runs yet.
    char b = 0;
    if (::read(c.go_fd, &b, 1) != 1 || b != 'g') ::_exit(1);
    harden_child();
    if (::setresgid(0, 0, 0) != 0) fail(c, "setresgid 0");
    (void)::setgroups(0, nullptr); // refused when setgroups is denied; no supplementary groups is the goal
    if (::setresuid(0, 0, 0) != 0) fail(c, "setresuid 0");
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(c, "set parent death signal");
    if (::sethostname(s.hostname.data(), s.hostname.size()) != 0) fail(c, "sethostname");
    // The machine's mount namespace is made now, from the supervisor's, where the root is finished: the
    // kernel locks every mount copied into a namespace of a less privileged user namespace, so root in
    // here can neither unmount a mask or the cgroup mount nor make a read-only mount writable.
    if (::fchdir(c.machine_dir) != 0) fail(c, "enter the machine's directory");
    if (::unshare(CLONE_NEWNS) != 0) fail(c, "unshare the mount namespace");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) fail(c, "make / private");
    // The root mount itself is locked too, and pivot_root refuses a locked new root: bind it over
    // itself (recursively, which keeps the mounts below it locked). By name relative to the machine's
    // directory, our working directory since before the unshare: a root-run machine's root may not
    // enter the data directory above it.
    if (::mount("rootfs", "rootfs", nullptr, MS_BIND | MS_REC, nullptr) != 0) fail(c, "bind the root over itself");
    if (::chdir("rootfs") != 0) fail(c, "chdir rootfs");
    if (::syscall(SYS_pivot_root, ".", ".") != 0) fail(c, "pivot_root");
    if (::umount2(".", MNT_DETACH) != 0) fail(c, "detach the old root");
    if (::chdir("/") != 0) fail(c, "chdir /");
    int rootfd = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) fail(c, "open /");
    if (!send_fd(c.sock_fd, rootfd)) fail(c, "send root fd");
    ::close(rootfd);
    if (!s.cpus.empty()) {
        cpu_set_t set;
        CPU_ZERO(&set);
        for (int cpu : s.cpus)
            CPU_SET(cpu, &set);
        if (::sched_setaffinity(0, sizeof set, &set) != 0) fail(c, "set CPU affinity");
    }
    drop_bounding_capabilities();
    // Everything from here on, the image's provisioning script included, runs under the filter.
    if (!install_filter(*c.filter)) fail(c, "install the seccomp filter");
    if (s.step) exec_step(c, *s.step);
    if (s.provision) provision(c, s);
    if (::setsid() < 0) fail(c, "setsid");
    int con = ::open("/dev/console", O_RDWR);
    if (con < 0) fail(c, "open /dev/console");
    if (::ioctl(con, TIOCSCTTY, 0) != 0) fail(c, "make /dev/console the controlling terminal");
    for (int fd = 0; fd < 3; ++fd)
        if (::dup2(con, fd) < 0) fail(c, "dup2 console");
    if (con > 2) ::close(con);
    char init_path[] = "/sbin/init";
    char* argv[] = {init_path, nullptr};
    ::execve(init_path, argv, c.init_env->get());
    fail(c, "execute /sbin/init");
}

// Builds the machine's root in the caller's mount namespace: the overlay at spec.rootfs, then the
// mount plan, applied by a helper that has joined the child's pid and cgroup namespaces (so /proc
// and /sys/fs/cgroup are the machine's own). The caller detaches spec.rootfs afterwards.
Result<void> build_root(const BootSpec& s, int pidns, int cgroupns) {
    if (::mkdir(s.upper.c_str(), 0755) != 0 && errno != EEXIST) return sys_error(errno, "mkdir " + s.upper);
    if (::mkdir(s.work.c_str(), 0700) != 0 && errno != EEXIST) return sys_error(errno, "mkdir " + s.work);
    std::string opts = fmt::format("lowerdir={},upperdir={},workdir={},userxattr", s.lowerdirs, s.upper, s.work);
    if (::mount("overlay", s.rootfs.c_str(), "overlay", 0, opts.c_str()) != 0)
        return sys_error(errno, fmt::format("mount overlay on \"{}\"", s.rootfs));
    UniqueFd root(::open(s.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root.valid()) return sys_error(errno, fmt::format("open \"{}\"", s.rootfs));
    std::vector<MountStep> plan = plan_boot_mounts(s);
    ChildStatus status = TRY(ChildStatus::make());
    pid_t helper = ::fork();
    if (helper < 0) return sys_error(errno, "fork the mount helper");
    if (helper == 0) {
        int out = status.write_fd();
        harden_child();
        if (::setns(pidns, CLONE_NEWPID) != 0) child_fail(out, "join the machine's pid namespace", errno);
        if (::setns(cgroupns, CLONE_NEWCGROUP) != 0) child_fail(out, "join the machine's cgroup namespace", errno);
        // setns(CLONE_NEWPID) only applies to children: the plan runs in one, which sees the machine's pids.
        pid_t worker = ::fork();
        if (worker < 0) child_fail(out, "fork", errno);
        if (worker == 0) {
            ::umask(0); // modes in the plan are meant as written
            // A fork of the single-threaded supervisor: allocating here takes no lock another thread holds.
            auto applied = apply_mount_plan(root.get(), plan);
            if (!applied) child_fail(out, applied.error().message.c_str(), 0);
            ::_exit(0);
        }
        int st = 0;
        while (::waitpid(worker, &st, 0) < 0)
            if (errno != EINTR) ::_exit(1);
        ::_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
    }
    status.parent_side();
    auto result = status.wait();
    int st = 0;
    while (::waitpid(helper, &st, 0) < 0 && errno == EINTR) {
    }
    if (!result) return result;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return make_error("the mount helper died");
    return {};
}

} // namespace

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
    // Everything the child needs, made before it exists.
    std::vector<sock_filter> filter = TRY(machine_filter());
    CStrings init_env(spec.env);
    std::vector<std::string> penv = spec.provision_env;
    penv.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    CStrings provision_env(penv);
    CStrings own_argv({spec.image_provision_script});
    CStrings builtin_argv({"/bin/sh", "-c", spec.provision_script, "create-user.sh"});
    CStrings step_argv(spec.step ? spec.step->argv : std::vector<std::string>{});
    CStrings step_env(spec.step ? spec.step->env : std::vector<std::string>{});
    std::vector<std::string> candidates;
    if (spec.step) {
        if (spec.step->argv.empty()) return make_error("a build step needs a command");
        for (const auto& d : spec.step->path)
            candidates.push_back(d + "/" + spec.step->argv[0]);
    }
    CStrings step_candidates(candidates);

    int go[2], sock[2];
    if (::pipe2(go, O_CLOEXEC) != 0) return sys_error(errno, "pipe");
    UniqueFd go_r(go[0]), go_w(go[1]);
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sock) != 0) return sys_error(errno, "socketpair");
    UniqueFd sock_p(sock[0]), sock_c(sock[1]);
    ChildStatus status = TRY(ChildStatus::make());
    std::string machine_dir = spec.rootfs.substr(0, spec.rootfs.rfind('/'));
    UniqueFd dir_fd(::open(machine_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd.valid()) return sys_error(errno, fmt::format("open \"{}\"", machine_dir));
    Child child{&spec,         go_r.get(), status.write_fd(), sock_c.get(), dir_fd.get(), &init_env,
                &provision_env, &own_argv, &builtin_argv,     &filter,       &step_argv, &step_env,
                &step_candidates};
    constexpr size_t k_stack = 1 << 20;
    std::vector<char> stack(k_stack);
    // The child's /proc files belong to whoever may write its id map only while it is dumpable, which it
    // inherits from us: dumpable for the clone and the map, and never while anything of the machine runs.
    (void)::prctl(PR_SET_DUMPABLE, 1);
    pid_t pid = ::clone(child_main, stack.data() + k_stack,
                        CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP | SIGCHLD, &child);
    int clone_err = errno;
    if (pid < 0) {
        (void)::prctl(PR_SET_DUMPABLE, 0);
        return sys_error(clone_err, "clone the machine's init");
    }
    go_r.reset();
    status.parent_side();
    sock_c.reset();
    auto abort_child = [&](Error e) -> Result<BootedInit> {
        (void)::prctl(PR_SET_DUMPABLE, 0);
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        return e;
    };
    auto mapped = write_id_maps(pid, map);
    if (!mapped) return abort_child(wrap(std::move(mapped).error(), "set up the user namespace id map"));
    UniqueFd pidns(::open(fmt::format("/proc/{}/ns/pid", pid).c_str(), O_RDONLY | O_CLOEXEC));
    UniqueFd cgroupns(::open(fmt::format("/proc/{}/ns/cgroup", pid).c_str(), O_RDONLY | O_CLOEXEC));
    if (!pidns.valid() || !cgroupns.valid()) return abort_child(sys_error(errno, "open the machine's namespaces"));
    (void)::prctl(PR_SET_DUMPABLE, 0);
    if (!cgroup.empty()) {
        auto moved = move_to_cgroup(cgroup, pid);
        if (!moved) return abort_child(std::move(moved).error());
    }
    // From here the root is mounted in our namespace; it leaves again whatever happens.
    ScopeExit detach([&] { (void)::umount2(spec.rootfs.c_str(), MNT_DETACH); }); // not mounted: nothing to do
    if (auto built = build_root(spec, pidns.get(), cgroupns.get()); !built)
        return abort_child(wrap(std::move(built).error(), "boot"));
    if (spec.check_root) {
        UniqueFd root(::open(spec.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!root.valid()) return abort_child(sys_error(errno, fmt::format("open \"{}\"", spec.rootfs)));
        if (auto ok = spec.check_root(root.get()); !ok) return abort_child(std::move(ok).error());
    }
    char g = 'g';
    if (::write(go_w.get(), &g, 1) != 1) return abort_child(sys_error(errno, "start the machine's init"));
    BootedInit out;
    out.pid = pid;
    // The root fd arrives just before exec; then the status pipe closes on exec (or carries the failure).
    out.root.reset(recv_fd(sock_p.get()));
    ChildFailure f{};
    if (status.read_failure(f)) {
        ::waitpid(pid, nullptr, 0);
        return wrap(failure_error(f), "boot");
    }
    if (!out.root.valid()) {
        ::waitpid(pid, nullptr, 0);
        return make_error("boot: the machine's init died during setup");
    }
    return out;
}

} // namespace ctr::runtime
