// SPDX-License-Identifier: MIT
// User namespace entry for file work (unpacking and removing image layers).
#include "runtime/userns.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "base/fs.hpp"
#include "base/log.hpp"
#include "base/unique_fd.hpp"
#include "runtime/spawn.hpp"

extern char** environ;

namespace ctr::runtime {

namespace {

Result<void> write_all(int fd, const void* data, size_t size) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        ssize_t n = ::write(fd, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return sys_error(errno, "write pipe");
        p += n;
        size -= static_cast<size_t>(n);
    }
    return {};
}

std::string read_all(int fd) {
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

Result<void> run_tool(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    int rc = ::posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ);
    if (rc != 0) return sys_error(rc, fmt::format("run {} (install the uidmap package)", argv[0]));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return sys_error(errno, fmt::format("wait for {}", argv[0]));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::string cmd;
        for (const auto& a : argv)
            cmd += (cmd.empty() ? "" : " ") + a;
        return make_error("{} failed (exit status {})", cmd, WIFEXITED(status) ? WEXITSTATUS(status) : 128);
    }
    return {};
}

Result<void> write_map(pid_t pid, const char* tool, const char* file, const std::vector<IdRange>& ranges) {
    if (::geteuid() == 0) {
        std::string text;
        for (const auto& r : ranges)
            text += fmt::format("{} {} {}\n", r.inside, r.outside, r.count);
        std::string path = fmt::format("/proc/{}/{}", pid, file);
        UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
        if (!fd.valid()) return sys_error(errno, fmt::format("open \"{}\"", path));
        if (::write(fd.get(), text.data(), text.size()) < 0)
            return sys_error(errno, fmt::format("write \"{}\"", path));
        return {};
    }
    std::vector<std::string> argv = {tool, std::to_string(pid)};
    for (const auto& r : ranges) {
        argv.push_back(std::to_string(r.inside));
        argv.push_back(std::to_string(r.outside));
        argv.push_back(std::to_string(r.count));
    }
    return run_tool(argv);
}

[[noreturn]] void child_main(int go_fd, int ready_fd, int result_fd,
                             const std::function<Result<void>()>& work) {
    auto fail = [&](int err, const std::string& msg) {
        std::string out = fmt::format("{}\n{}", err, msg);
        (void)write_all(result_fd, out.data(), out.size()); // the parent reports a silent child anyway
        ::_exit(1);
    };
    // Dumpable only until the map is written: newuidmap checks who owns this process's /proc entry.
    harden_child();
    (void)::prctl(PR_SET_DUMPABLE, 1);
    if (::unshare(CLONE_NEWUSER) != 0)
        fail(errno, fmt::format("unshare user namespace: {}", std::strerror(errno)));
    char c = 'u';
    if (::write(ready_fd, &c, 1) != 1) ::_exit(1);
    if (::read(go_fd, &c, 1) != 1 || c != 'g') ::_exit(1);
    (void)::prctl(PR_SET_DUMPABLE, 0);
    if (::setresgid(0, 0, 0) != 0) fail(errno, fmt::format("setresgid 0: {}", std::strerror(errno)));
    (void)::setgroups(
        0, nullptr); // denied when the gid map came without setgroups; supplementary groups are harmless
    if (::setresuid(0, 0, 0) != 0) fail(errno, fmt::format("setresuid 0: {}", std::strerror(errno)));
    ::umask(0);
    try {
        auto r = work();
        if (!r) fail(r.error().errnum, r.error().message);
    } catch (const std::exception& e) {
        fail(0, e.what()); // never unwinds into the caller's code, in this copy of it
    } catch (...) {
        fail(0, "the work in the user namespace failed");
    }
    ::_exit(0);
}

} // namespace

Result<void> run_in_userns(const IdMap& map, const std::function<Result<void>()>& work) {
    int go[2], ready[2], result[2];
    if (::pipe2(go, O_CLOEXEC) != 0 || ::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(result, O_CLOEXEC) != 0)
        return sys_error(errno, "pipe");
    UniqueFd go_r(go[0]), go_w(go[1]), ready_r(ready[0]), ready_w(ready[1]), res_r(result[0]),
        res_w(result[1]);
    pid_t pid = ::fork();
    if (pid < 0) return sys_error(errno, "fork");
    if (pid == 0) child_main(go_r.get(), ready_w.get(), res_w.get(), work);
    go_r.reset();
    ready_w.reset();
    res_w.reset();
    auto reap = [&]() -> int {
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0)
            if (errno != EINTR) return -1;
        return status;
    };
    char c = 0;
    if (::read(ready_r.get(), &c, 1) != 1) {
        std::string msg = read_all(res_r.get());
        reap();
        auto nl = msg.find('\n');
        if (nl != std::string::npos) return Error{msg.substr(nl + 1), std::atoi(msg.c_str())};
        return make_error("user namespace helper died before it was ready");
    }
    auto mapped = write_map(pid, "newuidmap", "uid_map", map.uids);
    if (mapped) mapped = write_map(pid, "newgidmap", "gid_map", map.gids);
    if (!mapped) {
        go_w.reset();
        reap();
        return wrap(std::move(mapped).error(), "set up user namespace id map");
    }
    c = 'g';
    (void)!::write(go_w.get(), &c, 1); // a dead child shows up in its exit status below
    std::string msg = read_all(res_r.get());
    int status = reap();
    if (!msg.empty()) {
        auto nl = msg.find('\n');
        return Error{nl == std::string::npos ? msg : msg.substr(nl + 1), std::atoi(msg.c_str())};
    }
    if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return make_error("user namespace helper failed (status {})", status);
    return {};
}

Result<void> write_id_maps(pid_t pid, const IdMap& map) {
    TRY(write_map(pid, "newuidmap", "uid_map", map.uids));
    return write_map(pid, "newgidmap", "gid_map", map.gids);
}

Result<void> enter_userns(const IdMap& map) {
    int go[2], done[2];
    if (::pipe2(go, O_CLOEXEC) != 0 || ::pipe2(done, O_CLOEXEC) != 0) return sys_error(errno, "pipe");
    UniqueFd go_r(go[0]), go_w(go[1]), done_r(done[0]), done_w(done[1]);
    pid_t self = ::getpid();
    pid_t helper = ::fork();
    if (helper < 0) return sys_error(errno, "fork");
    if (helper == 0) {
        harden_child();
        go_w.reset();
        done_r.reset();
        char c = 0;
        if (::read(go_r.get(), &c, 1) != 1) ::_exit(1);
        auto r = write_id_maps(self, map);
        std::string msg = r ? "" : r.error().message;
        (void)!::write(done_w.get(), msg.data(), msg.size()); // empty means success
        ::_exit(r ? 0 : 1);
    }
    go_r.reset();
    done_w.reset();
    int unshare_err = ::unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0 ? 0 : errno;
    char c = unshare_err ? 'x' : 'g';
    (void)!::write(go_w.get(), &c, 1); // a dead helper shows in its status below
    go_w.reset();
    std::string msg = read_all(done_r.get());
    int status = 0;
    while (::waitpid(helper, &status, 0) < 0 && errno == EINTR) {
    }
    if (unshare_err) return sys_error(unshare_err, "unshare user and mount namespaces");
    if (!msg.empty()) return make_error("set up the user namespace id map: {}", msg);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return make_error("user namespace helper failed");
    if (::setresgid(0, 0, 0) != 0) return sys_error(errno, "setresgid 0");
    (void)::setgroups(0, nullptr); // denied when setgroups is; no supplementary groups is the goal
    if (::setresuid(0, 0, 0) != 0) return sys_error(errno, "setresuid 0");
    return {};
}

IdMap nested_identity(const IdMap& map) {
    IdMap out;
    for (const auto& r : map.uids)
        out.uids.push_back({r.inside, r.inside, r.count});
    for (const auto& r : map.gids)
        out.gids.push_back({r.inside, r.inside, r.count});
    return out;
}

Result<UniqueFd> make_userns_fd(const IdMap& map) {
    int go[2];
    if (::pipe2(go, O_CLOEXEC) != 0) return sys_error(errno, "pipe");
    UniqueFd go_r(go[0]), go_w(go[1]), ready_r, ready_w;
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) return sys_error(errno, "pipe");
    ready_r.reset(ready[0]);
    ready_w.reset(ready[1]);
    pid_t pid = ::fork();
    if (pid < 0) return sys_error(errno, "fork");
    if (pid == 0) {
        harden_child();
        go_w.reset(); // else our own copy would keep the read below from ever seeing the end
        ready_r.reset();
        char c = ::unshare(CLONE_NEWUSER) == 0 ? 'u' : 'x';
        (void)!::write(ready_w.get(), &c, 1); // the parent reads silence as failure
        (void)!::read(go_r.get(), &c, 1);     // held until the parent has the namespace
        ::_exit(0);
    }
    ready_w.reset();
    go_r.reset();
    ScopeExit reap([&] {
        go_w.reset();
        while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
        }
    });
    char c = 0;
    if (::read(ready_r.get(), &c, 1) != 1 || c != 'u') return make_error("create a user namespace for an id mapping");
    TRY(write_id_maps(pid, map));
    UniqueFd fd(::open(fmt::format("/proc/{}/ns/user", pid).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return sys_error(errno, "open the id-mapping user namespace");
    return fd;
}

Result<UniqueFd> idmapped_tree(const std::string& path, int userns) {
    UniqueFd tree(::open_tree(AT_FDCWD, path.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    if (!tree.valid()) return sys_error(errno, fmt::format("clone the mount at \"{}\"", path));
    struct mount_attr a {};
    a.attr_set = MOUNT_ATTR_IDMAP;
    a.userns_fd = static_cast<uint64_t>(userns);
    if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH, &a, sizeof a) != 0)
        return sys_error(errno, fmt::format("idmapped mount of \"{}\"", path));
    return tree;
}

Result<void> run_as_mapped_root(const IdMap& map, const std::function<Result<void>()>& work) {
    if (map.identity()) return work();
    log::debug("running in a user namespace with the keep-id map");
    return run_in_userns(map, work);
}

} // namespace ctr::runtime
