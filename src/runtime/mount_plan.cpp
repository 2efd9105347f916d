// SPDX-License-Identifier: MIT
// The boot mount table and its executor. The executor works on fds: a target is resolved once inside
// the machine's root and the mount is attached to that fd, so nothing the image planted (an absolute
// /etc link, /run -> ../../host) can redirect a write or a mount to the host.
#include "runtime/mount_plan.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "base/fs.hpp"
#include "base/text.hpp"
#include "base/unique_fd.hpp"
#include "runtime/boot.hpp"

#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

namespace ctr::runtime {

// Hidden from the machine (runc's and systemd-nspawn's lists): kernel memory, other keyrings, timing
// side channels, firmware tables and power capping controls. Missing ones are skipped.
const char* const k_masked_paths[] = {
    "proc/acpi",           "proc/asound",        "proc/kcore",    "proc/keys", "proc/latency_stats",
    "proc/timer_list",     "proc/timer_stats",   "proc/sched_debug", "proc/scsi", "sys/firmware",
    "sys/devices/virtual/powercap", nullptr};

// Read-only for the machine: global kernel tunables and triggers.
const char* const k_read_only_paths[] = {"proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger",
                                         nullptr};

std::vector<MountStep> plan_boot_mounts(const BootSpec& s) {
    using K = StepKind;
    using T = TargetType;
    constexpr uint64_t k_api = attr::nosuid | attr::nodev | attr::noexec;
    std::vector<MountStep> p;
    // Files first, while nothing but the machine's own root is mounted.
    if (s.step) {
        // A build step: the host's files bound read-only, so the step's upper directory does not get them.
        p.push_back({K::bind, "etc/hosts", "/etc/hosts", "", attr::rdonly, T::file, 0644, Need::optional});
        p.push_back({K::bind, "etc/resolv.conf", "/etc/resolv.conf", "", attr::rdonly, T::file, 0644});
    } else {
        p.push_back({K::file, "etc/hosts", s.hosts, "", 0, T::file, 0644});
        p.push_back({K::file, "etc/hostname", s.hostname + "\n", "", 0, T::file, 0644}); // systemd reads it
        if (!s.resolv_conf.empty())
            p.push_back({K::file, "etc/resolv.conf", s.resolv_conf, "", 0, T::file, 0644});
    }

    // The machine's own /proc (its pid namespace). sysfs cannot be mounted without owning a network
    // namespace (the host network is shared), so the host's /sys is bound, read-only all the way down.
    p.push_back({K::fs, "proc", "proc", "", k_api});
    p.push_back({K::bind, "sys", "/sys", "", attr::rdonly | k_api});
    for (const char* const* m = k_masked_paths; *m; ++m)
        p.push_back({K::mask, *m, "", "", 0, T::dir, 0, Need::optional});
    for (const char* const* r = k_read_only_paths; *r; ++r)
        p.push_back({K::read_only, *r, "", "", attr::rdonly | k_api, T::dir, 0, Need::optional});
    // The machine's own cgroup subtree (its cgroup namespace), over the host's hierarchies in /sys.
    p.push_back({K::fs, "sys/fs/cgroup", "cgroup2", "", k_api});

    // A private /dev: device nodes cannot be created in a user namespace, so the harmless ones are bound.
    p.push_back({K::fs, "dev", "tmpfs", "mode=755,size=65536k", attr::nosuid | attr::strictatime});
    for (const char* node : {"null", "zero", "full", "random", "urandom", "tty"})
        p.push_back({K::bind, std::string("dev/") + node, std::string("/dev/") + node, "", 0, T::file, 0666});
    p.push_back({K::dir, "dev/pts", "", "", 0, T::dir, 0755});
    p.push_back({K::fs, "dev/pts", "devpts", "newinstance,ptmxmode=0666,mode=0620", attr::nosuid | attr::noexec});
    p.push_back({K::symlink, "dev/ptmx", "pts/ptmx"});
    p.push_back({K::dir, "dev/shm", "", "", 0, T::dir, 01777});
    p.push_back({K::fs, "dev/shm", "tmpfs", "mode=1777", attr::nosuid | attr::nodev});
    p.push_back({K::symlink, "dev/fd", "/proc/self/fd"});
    p.push_back({K::symlink, "dev/stdin", "/proc/self/fd/0"});
    p.push_back({K::symlink, "dev/stdout", "/proc/self/fd/1"});
    p.push_back({K::symlink, "dev/stderr", "/proc/self/fd/2"});
    // The console: the supervisor's pty, so init's output reaches stdio.log.
    if (!s.console.empty()) p.push_back({K::bind, "dev/console", s.console, "", 0, T::file, 0600});
    if (s.kvm) p.push_back({K::bind, "dev/kvm", "/dev/kvm", "", 0, T::file, 0600, Need::optional});
    // GPUs, as the host has them: the DRM directory (card and render nodes) and NVIDIA's nodes. Optional:
    // a device that went away since the supervisor looked is skipped.
    for (const auto& d : s.gpu_devices)
        if (d.rfind("/dev/", 0) == 0 && d.find("/..") == std::string::npos)
            p.push_back({K::bind, d.substr(1), d, "", attr::nosuid | attr::noexec,
                         d == "/dev/dri" ? T::dir : T::file, 0600, Need::optional});
    if (!s.step) { // a build step's /run and /tmp are part of its image
        p.push_back({K::fs, "run", "tmpfs", "mode=755", attr::nosuid | attr::nodev});
        p.push_back({K::fs, "tmp", "tmpfs", "mode=1777", attr::nosuid | attr::nodev});
    }

    // The user's home at the same path. Read-only is applied to the whole tree before it is attached,
    // and the machine's mount namespace is made later from this one, so the kernel locks it.
    if (s.home_mount != HomeMount::none && !s.home.empty() && s.home != "/") {
        std::string home = s.home.substr(s.home.find_first_not_of('/'));
        const std::string& source = s.home_source.empty() ? s.home : s.home_source;
        p.push_back({K::bind, home, source, "", s.home_mount == HomeMount::ro ? attr::rdonly : 0});
        // The data directory below a shared home holds every machine's layers and state: never visible.
        const std::string& d = s.data_dir;
        if (!d.empty() && (d == s.home || d.rfind(s.home + "/", 0) == 0))
            p.push_back({K::mask, d.substr(d.find_first_not_of('/')), "", "", 0, T::dir, 0, Need::optional});
    }
    // Extra mounts (`-v`), after the home so that none lands under it unseen; read-only as the home is.
    // Their targets are named by the user: a link the image put on the way is refused, not followed.
    for (const auto& m : s.extra_mounts) {
        p.push_back({K::bind, m.target.substr(m.target.find_first_not_of('/')), m.source, "",
                     m.read_only ? attr::rdonly : 0, m.dir ? T::dir : T::file, m.dir ? 0755u : 0644u, Need::required,
                     Resolve::no_links});
        const std::string& d = s.data_dir;
        if (!d.empty() && (d == m.host_path || d.rfind(m.host_path == "/" ? "/" : m.host_path + "/", 0) == 0)) {
            std::string rest = d.substr(m.host_path == "/" ? 0 : m.host_path.size());
            std::string at = m.target + rest;
            p.push_back({K::mask, at.substr(at.find_first_not_of('/')), "", "", 0, T::dir, 0, Need::optional});
        }
    }
    if (!s.ssh_auth_sock.empty()) // the agent is optional: a machine boots without it
        p.push_back({K::bind, "var/host-services/ssh-auth.sock", s.ssh_auth_sock, "", 0, T::file, 0600,
                     Need::optional});
    return p;
}

namespace {

constexpr uint64_t k_in_root = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

uint64_t mount_id(int fd) {
    struct statx sx {};
    if (::statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &sx) != 0) return 0;
    return sx.stx_mnt_id;
}

std::string parent_of(const std::string& path) {
    auto slash = path.rfind('/');
    return slash == std::string::npos ? "" : path.substr(0, slash);
}

std::string leaf_of(const std::string& path) {
    auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

Result<void> write_all(int fd, const std::string& text, const std::string& what) {
    const char* p = text.data();
    size_t left = text.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return sys_error(errno, "write " + what);
        p += n;
        left -= static_cast<size_t>(n);
    }
    return {};
}

class Executor {
public:
    explicit Executor(int root) : m_root(root) { m_own.push_back(mount_id(root)); }

    Result<void> apply(const MountStep& s) {
        m_resolve = k_in_root | (s.resolve == Resolve::no_links ? RESOLVE_NO_SYMLINKS : 0);
        switch (s.kind) {
        case StepKind::file: return write_file(s);
        case StepKind::fs: return mount_fs(s);
        case StepKind::bind: return bind(s);
        case StepKind::read_only: return read_only(s);
        case StepKind::mask: return mask(s);
        case StepKind::dir: return make_dir(s);
        case StepKind::symlink: return make_symlink(s);
        }
        return {};
    }

private:
    // The machine's own file systems, the only places where files and directories are created.
    Result<void> require_own(int dirfd, const std::string& path) const {
        if (std::find(m_own.begin(), m_own.end(), mount_id(dirfd)) != m_own.end()) return {};
        return make_error("create /{}: its directory is not on the machine's own file system (a link in the "
                          "image leads onto a host mount)",
                          path);
    }

    // An O_PATH fd of the directory `path`, resolved inside the root; missing directories are made
    // when `create`.
    Result<UniqueFd> open_dir(const std::string& path, bool create) {
        UniqueFd fd(fs::openat2_raw(m_root, path.empty() ? "." : path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC,
                                    0, m_resolve));
        if (fd.valid()) return fd;
        if (errno != ENOENT || !create) return sys_error(errno, fmt::format("resolve /{} in the machine", path));
        UniqueFd parent = TRY(open_dir(parent_of(path), create));
        TRY(require_own(parent.get(), path));
        if (::mkdirat(parent.get(), leaf_of(path).c_str(), 0755) != 0 && errno != EEXIST)
            return sys_error(errno, fmt::format("mkdir /{}", path));
        fd.reset(fs::openat2_raw(m_root, path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC, 0, m_resolve));
        if (!fd.valid())
            return sys_error(errno, fmt::format("resolve /{} in the machine (a dangling link?)", path));
        return fd;
    }

    // The target of a mount, resolved inside the root (links followed there), created when missing
    // unless optional. Returns an invalid fd for a missing optional target.
    Result<UniqueFd> open_target(const MountStep& s) {
        const std::string& t = s.target;
        UniqueFd fd(fs::openat2_raw(m_root, t.c_str(), O_PATH | O_CLOEXEC, 0, m_resolve));
        if (!fd.valid() && errno == ENOENT && s.need == Need::optional && s.kind != StepKind::bind)
            return UniqueFd();
        if (!fd.valid() && errno == ENOENT) {
            UniqueFd parent = TRY(open_dir(parent_of(t), true));
            TRY(require_own(parent.get(), t));
            std::string leaf = leaf_of(t);
            if (s.type == TargetType::dir) {
                if (::mkdirat(parent.get(), leaf.c_str(), s.mode) != 0 && errno != EEXIST)
                    return sys_error(errno, fmt::format("mkdir /{}", t));
            } else {
                UniqueFd f(::openat(parent.get(), leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                    s.mode));
                if (!f.valid() && errno != EEXIST) return sys_error(errno, fmt::format("create /{}", t));
            }
            fd.reset(fs::openat2_raw(m_root, t.c_str(), O_PATH | O_CLOEXEC, 0, m_resolve));
        }
        if (!fd.valid()) return sys_error(errno, fmt::format("resolve /{} in the machine", t));
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) return sys_error(errno, fmt::format("stat /{}", t));
        bool want_dir = s.kind == StepKind::fs || (s.kind == StepKind::bind && s.type == TargetType::dir);
        if (want_dir && !S_ISDIR(st.st_mode))
            return make_error("mount on /{}: not a directory in the machine's image", t);
        if (s.kind == StepKind::bind && s.type == TargetType::file && S_ISDIR(st.st_mode))
            return make_error("mount on /{}: a directory in the machine's image", t);
        return fd;
    }

    static Result<void> attach(int mnt, int target, const std::string& what) {
        if (::move_mount(mnt, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0)
            return sys_error(errno, what);
        return {};
    }

    static Result<void> set_attrs(int mnt, uint64_t attrs, const std::string& what) {
        if (attrs == 0) return {};
        struct mount_attr a {};
        a.attr_set = attrs;
        if (::mount_setattr(mnt, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) != 0)
            return sys_error(errno, "set attributes of " + what);
        return {};
    }

    // A new file system instance, configured and not yet attached.
    static Result<UniqueFd> new_fs(const std::string& type, const std::string& options, uint64_t attrs,
                                   const std::string& what) {
        UniqueFd fsfd(::fsopen(type.c_str(), FSOPEN_CLOEXEC));
        if (!fsfd.valid()) return sys_error(errno, what);
        for (const auto& opt : options.empty() ? std::vector<std::string>{} : split(options, ',')) {
            auto eq = opt.find('=');
            int rc = eq == std::string::npos
                         ? ::fsconfig(fsfd.get(), FSCONFIG_SET_FLAG, opt.c_str(), nullptr, 0)
                         : ::fsconfig(fsfd.get(), FSCONFIG_SET_STRING, opt.substr(0, eq).c_str(),
                                      opt.c_str() + eq + 1, 0);
            if (rc != 0) return sys_error(errno, fmt::format("{} (option {})", what, opt));
        }
        if (::fsconfig(fsfd.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) return sys_error(errno, what);
        UniqueFd mnt(::fsmount(fsfd.get(), FSMOUNT_CLOEXEC, static_cast<unsigned int>(attrs)));
        if (!mnt.valid()) return sys_error(errno, what);
        return mnt;
    }

    Result<void> mount_fs(const MountStep& s) {
        std::string what = fmt::format("mount {} on /{}", s.source, s.target);
        UniqueFd target = TRY(open_target(s));
        UniqueFd mnt = TRY(new_fs(s.source, s.options, s.attrs, what));
        if (s.source == "tmpfs") m_own.push_back(mount_id(mnt.get()));
        return attach(mnt.get(), target.get(), what);
    }

    Result<void> bind(const MountStep& s) {
        std::string what = fmt::format("bind \"{}\" on /{}", s.source, s.target);
        UniqueFd tree(::open_tree(AT_FDCWD, s.source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
        if (!tree.valid() && errno == ENOENT && s.need == Need::optional) return {};
        if (!tree.valid()) return sys_error(errno, what);
        TRY(set_attrs(tree.get(), s.attrs, what));
        auto target = open_target(s);
        if (!target && s.need == Need::optional) return {};
        if (!target) return std::move(target).error();
        return attach(tree.get(), target->get(), what);
    }

    Result<void> read_only(const MountStep& s) {
        std::string what = fmt::format("make /{} read-only", s.target);
        UniqueFd target = TRY(open_target(s));
        if (!target.valid()) return {};
        UniqueFd tree(::open_tree(target.get(), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE));
        if (!tree.valid()) return sys_error(errno, what);
        TRY(set_attrs(tree.get(), s.attrs, what));
        return attach(tree.get(), target.get(), what);
    }

    Result<void> mask(const MountStep& s) {
        std::string what = fmt::format("mask /{}", s.target);
        UniqueFd target = TRY(open_target(s));
        if (!target.valid()) return {};
        struct stat st {};
        if (::fstat(target.get(), &st) != 0) return sys_error(errno, what);
        UniqueFd cover;
        if (S_ISDIR(st.st_mode)) {
            cover = TRY(new_fs("tmpfs", "size=4k,mode=555", attr::rdonly | attr::nosuid | attr::nodev | attr::noexec,
                               what));
        } else {
            cover.reset(::open_tree(AT_FDCWD, "/dev/null", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
            if (!cover.valid()) return sys_error(errno, what);
        }
        return attach(cover.get(), target.get(), what);
    }

    Result<void> write_file(const MountStep& s) {
        UniqueFd parent = TRY(open_dir(parent_of(s.target), true));
        TRY(require_own(parent.get(), s.target));
        std::string leaf = leaf_of(s.target);
        struct stat st {};
        if (::fstatat(parent.get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISDIR(st.st_mode)) return make_error("write /{}: a directory in the machine's image", s.target);
            // Replaced, never written through: a link (resolv.conf -> ../run/…) is not followed.
            if (::unlinkat(parent.get(), leaf.c_str(), 0) != 0) return sys_error(errno, "replace /" + s.target);
        }
        UniqueFd fd(::openat(parent.get(), leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, s.mode));
        if (!fd.valid()) return sys_error(errno, "create /" + s.target);
        return write_all(fd.get(), s.source, "/" + s.target);
    }

    Result<void> make_dir(const MountStep& s) {
        UniqueFd parent = TRY(open_dir(parent_of(s.target), true));
        TRY(require_own(parent.get(), s.target));
        if (::mkdirat(parent.get(), leaf_of(s.target).c_str(), s.mode) != 0 && errno != EEXIST)
            return sys_error(errno, "mkdir /" + s.target);
        return {};
    }

    Result<void> make_symlink(const MountStep& s) {
        UniqueFd parent = TRY(open_dir(parent_of(s.target), true));
        TRY(require_own(parent.get(), s.target));
        std::string leaf = leaf_of(s.target);
        (void)::unlinkat(parent.get(), leaf.c_str(), 0); // replaced each boot; absence is fine
        if (::symlinkat(s.source.c_str(), parent.get(), leaf.c_str()) != 0)
            return sys_error(errno, "symlink /" + s.target);
        return {};
    }

    int m_root;
    uint64_t m_resolve = k_in_root; // the current step's
    std::vector<uint64_t> m_own;
};

} // namespace

Result<void> apply_mount_plan(int root, const std::vector<MountStep>& plan) {
    Executor ex(root);
    for (const auto& s : plan)
        TRY(ex.apply(s));
    return {};
}

} // namespace ctr::runtime
