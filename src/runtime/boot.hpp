// SPDX-License-Identifier: MIT
// Starting a machine's init: clone into new user/pid/uts/ipc/cgroup namespaces, build the machine's root
// in the caller's mount namespace (overlay + the mount plan of mount_plan.hpp), then let the child make
// its own mount namespace from it (so every mount is locked for the machine), pivot into it, trim
// capabilities, load the seccomp filter and exec /sbin/init as PID 1 on the console pseudo-terminal.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "runtime/idmap.hpp"

namespace ctr::runtime {

enum class HomeMount { rw, ro, none };

// A host path shared at `target` (an extra mount, `-v`): `source` is what to bind there (the tree the
// supervisor took of `host_path`, as it does for the home).
struct ExtraBind {
    std::string source, host_path, target;
    bool read_only = false;
    bool dir = true; // else a file
};

// A build step's command, run instead of init (`container build`'s RUN): no console, no init, the same
// namespaces, mount plan (without the /run and /tmp tmpfs, whose contents a step keeps), capabilities
// and seccomp filter as a machine.
struct StepCommand {
    std::vector<std::string> argv;  // argv[0] absolute, or searched in `path`
    std::vector<std::string> path;  // directories of the step's PATH, for an argv[0] without '/'
    std::vector<std::string> env;   // the whole environment
    std::string cwd = "/";          // made (mode 0755) when missing, resolved inside the root
    std::string user;               // USER: "name", "uid", "name:group", "uid:gid"; empty is root
    int output_fd = -1;             // the command's stdout and stderr; stdin is /dev/null
};

// Everything the child needs, computed by the parent before clone.
struct BootSpec {
    std::string hostname;
    std::string rootfs;    // "<machine dir>/rootfs": an empty directory used as the overlay mount point
    std::string lowerdirs; // "top:…:bottom"
    std::string upper, work;
    std::string home;        // host home directory, mounted at the same path unless home_mount is none
    std::string home_source; // what to bind there when not `home` itself (root's idmapped home)
    HomeMount home_mount = HomeMount::rw;
    std::vector<ExtraBind> extra_mounts;
    std::string data_dir; // the store; masked inside the machine when it lies below the shared home
    std::string console;       // path of the pty slave
    std::string ssh_auth_sock; // host socket to expose at /var/host-services/ssh-auth.sock, or empty
    bool kvm = false;
    // GPU device nodes to pass through at the same path: /dev/dri (the directory) and /dev/nvidia* nodes
    // the host has (the supervisor lists them; empty with gpu=false).
    std::vector<std::string> gpu_devices;
    std::vector<int> cpus;   // affinity of init and so of the whole machine (empty: unchanged)
    std::string hosts;       // /etc/hosts content
    std::string resolv_conf; // /etc/resolv.conf content (empty: leave the image's)
    std::vector<std::string> env;
    // First-boot provisioning: run before init as root inside the machine, output on the caller's stderr.
    bool provision = false;
    std::string provision_script;           // the built-in script, used unless the image has its own
    std::string image_provision_script;     // path of the image's own script, used when executable
    std::vector<std::string> provision_env; // CONTAINER_* variables
    // Called with an O_PATH fd of the built root (mounted, not yet entered) before the child may go on:
    // an error ends the boot there, before provisioning or init run. Empty: no check.
    std::function<Result<void>(int root)> check_root;
    // Set: run this command instead of provisioning and init (console, home and provisioning unused).
    std::optional<StepCommand> step;
};

// The running child: its pid, and the fd over which it sends the machine's root directory.
struct BootedInit {
    pid_t pid = -1;
    UniqueFd root; // O_PATH fd of the machine's "/", valid once the child reached exec
};

// Clones the child, writes `map` (newuidmap/newgidmap or directly as root), moves it into `cgroup`
// (if not empty), mounts the machine's root at spec.rootfs in the caller's mount namespace (the caller
// must own it: the supervisor's user and mount namespace) and applies the mount plan there, lets the
// child go (after spec.check_root, if any, accepted the root) and waits until it has exec'd init or failed. The root is detached from the caller's mount
// namespace again before returning. Errors name the failing step.
Result<BootedInit> boot_init(const BootSpec& spec, const IdMap& map, const std::string& cgroup);

// Runs spec.step to its end in a throwaway machine: a forked runner enters a user and mount namespace
// with `outer` (as the supervisor does), boots the step with `inner` (the ids one level down) and waits.
// Returns the command's wait status. The caller's process must be single-threaded.
// The command's output (stdout and stderr together) goes to `on_output` as it comes.
Result<int> run_step(const BootSpec& spec, const IdMap& outer, const IdMap& inner,
                     const std::function<void(std::string_view)>& on_output);

// Capabilities kept in the bounding set of machine processes: systemd-nspawn's default set.
bool kept_capability(int cap);
void drop_bounding_capabilities();

} // namespace ctr::runtime
