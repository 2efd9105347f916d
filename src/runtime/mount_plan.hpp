// SPDX-License-Identifier: MIT
// The machine's file system as data: what boot mounts, masks and writes inside the machine's root,
// in order (plan_boot_mounts), and the executor that applies such a plan with every path resolved
// inside that root (apply_mount_plan). The plan is plain data so it is unit-tested without root.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace ctr::runtime {

struct BootSpec;

enum class StepKind {
    file,         // write `source` as the contents of `target` (a fresh regular file, never through a link)
    fs,           // mount a new file system of type `source` with `options` at `target`
    bind,         // bind the host path `source` (recursively) at `target`
    read_only,    // make the mount tree at `target` read-only, over itself
    mask,         // hide `target`: /dev/null over a file, an empty read-only tmpfs over a directory
    dir,          // make the directory `target` (mode)
    symlink,      // `target` becomes a symbolic link to `source`
};

enum class TargetType { dir, file };
enum class Need { required, optional }; // optional: skipped when the source or the target is missing
// How the target is found inside the root: links the image has followed (inside the root), or none at all
// (a path the user named, which the image must not be able to steer onto /proc or /dev).
enum class Resolve { in_root, no_links };

// MOUNT_ATTR_* bits, spelled out so the plan does not need kernel headers.
namespace attr {
constexpr uint64_t rdonly = 0x1, nosuid = 0x2, nodev = 0x4, noexec = 0x8, strictatime = 0x20;
}

struct MountStep {
    StepKind kind;
    std::string target;  // inside the machine's root, relative ("proc/sys")
    std::string source;  // fs type, host path, link target or file contents (see StepKind)
    std::string options; // fs options, comma-separated ("mode=755,size=65536k"; a bare word is a flag)
    uint64_t attrs = 0;  // attr:: bits for fs, bind and mask
    TargetType type = TargetType::dir; // what the target is, and what to create when it is missing
    mode_t mode = 0755;
    Need need = Need::required;
    Resolve resolve = Resolve::in_root;
};

// Everything a machine boot mounts and writes, in order. Pure: computed from `spec` alone.
std::vector<MountStep> plan_boot_mounts(const BootSpec& spec);

// Applies `plan` below `root` (an O_PATH fd of the machine's root directory, which must be the root of
// a mount). Every target is resolved inside that root (openat2 RESOLVE_IN_ROOT, no magic links), so
// links planted in the image never lead out of it; files and directories are only ever created on the
// machine's own file systems (its root and the file systems the plan mounts), never on a bound host
// path; mounts are attached to the resolved fd (move_mount). Call in a process that may mount (root of
// the supervisor's user namespace, in the machine's pid and cgroup namespaces for proc and cgroup2).
// Errors name the step and its target.
Result<void> apply_mount_plan(int root, const std::vector<MountStep>& plan);

// The paths /proc and /sys masks and read-only locks cover (runc's and systemd-nspawn's lists).
extern const char* const k_masked_paths[];
extern const char* const k_read_only_paths[];

} // namespace ctr::runtime
