// SPDX-License-Identifier: MIT
// Starting a machine's init: clone into new user/mount/pid/uts/ipc namespaces, wait for the id map
// and cgroup, build the root (overlay + the mount table of SPEC §6), pivot into it, trim capabilities
// and exec /sbin/init as PID 1 on the console pseudo-terminal.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "runtime/idmap.hpp"

namespace ctr::runtime {

enum class HomeMount { rw, ro, none };

// Everything the child needs, computed by the parent before clone.
struct BootSpec {
    std::string hostname;
    std::string rootfs;    // an empty directory used as the overlay mount point
    std::string lowerdirs; // "top:…:bottom"
    std::string upper, work;
    std::string home;        // host home directory, mounted at the same path unless home_mount is none
    std::string home_source; // what to bind there: `home`, or an already read-only (locked) bind of it
    HomeMount home_mount = HomeMount::rw;
    uid_t home_uid = 0; // the user's id inside, for the directories made to hold the home mount
    gid_t home_gid = 0;
    std::string console;       // path of the pty slave
    std::string ssh_auth_sock; // host socket to expose at /var/host-services/ssh-auth.sock, or empty
    bool kvm = false;
    std::vector<int> cpus;   // affinity of init and so of the whole machine (empty: unchanged)
    std::string hosts;       // /etc/hosts content
    std::string resolv_conf; // /etc/resolv.conf content (empty: leave the image's)
    std::vector<std::string> env;
    // First-boot provisioning: run before init as root inside the machine, output on the caller's stderr.
    bool provision = false;
    std::string provision_script;           // the built-in script, used unless the image has its own
    std::string image_provision_script;     // path of the image's own script, used when executable
    std::vector<std::string> provision_env; // CONTAINER_* variables
};

// The running child: its pid, and the fd over which it sends the machine's root directory.
struct BootedInit {
    pid_t pid = -1;
    UniqueFd root; // O_PATH fd of the machine's "/", valid once the child reached exec
};

// Clones the child, writes `map` (newuidmap/newgidmap or directly as root), moves it into `cgroup`
// (if not empty), and waits until it has exec'd init or failed. Errors name the failing step.
Result<BootedInit> boot_init(const BootSpec& spec, const IdMap& map, const std::string& cgroup);

// Remounts the bind mount at `path` read-only, repeating the flags the kernel locked.
bool remount_read_only(const std::string& path);

// Capabilities kept in the bounding set of machine processes: systemd-nspawn's default set.
bool kept_capability(int cap);
void drop_bounding_capabilities();

} // namespace ctr::runtime
