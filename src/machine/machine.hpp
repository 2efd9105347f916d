// SPDX-License-Identifier: MIT
// Machines on disk (SPEC §3): $DATA/machines/<name>/ holds config.json (identity, image, user),
// boot-config.json (applied at next start), state.json (pids and start times while running), the
// overlay upper/work directories, stdio.log and boot.log. $DATA/machines/default names the default.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/lock.hpp"
#include "base/result.hpp"
#include "oci/image.hpp"
#include "oci/reference.hpp"
#include "store/store.hpp"

namespace ctr::machine {

struct UserSetup {
    std::string username;
    uint32_t uid = 0;
    uint32_t gid = 0;
    std::string home;
    std::string shell;
};

// A root-run machine's private ids (docs/RUNTIME.md, "Root-run machines"): host ids uid..uid+count-1 and
// gid..gid+count-1 are its ids 0..count-1. Absent (count 0) for a regular user's machine, whose ids are
// that user's subordinate range.
struct IdRangeConfig {
    uint32_t uid = 0, gid = 0, count = 0;
};

struct MachineConfig {
    std::string id;
    std::string image_reference;
    oci::Descriptor image; // the manifest
    oci::Platform platform;
    UserSetup user;
    std::string created;
    IdRangeConfig ids;
};

// A host directory or file shared with the machine at `target` (`-v SRC:DST[:ro]`).
struct ExtraMount {
    std::string source, target; // absolute, normalized
    bool read_only = false;
    bool operator==(const ExtraMount&) const = default;
};

// What boot applies; every field is a row of the settings table (machine/settings.hpp).
struct BootConfig {
    int cpus = 1;
    uint64_t memory = 1ull << 30;
    std::string home_mount = "rw";
    bool virtualization = false;
    std::vector<ExtraMount> mounts;
    // Whether `run` forwards the caller's display, sound and session bus: "true", "false", or "auto" (when
    // home-mount is rw, that is when the machine already acts as the user on the host).
    std::string desktop = "auto";
    bool gpu = true;     // /dev/dri and NVIDIA nodes are passed through when the host has them
};

// Present only while a supervisor runs; pids are checked against their start times.
struct RunState {
    pid_t supervisor_pid = 0;
    uint64_t supervisor_start = 0;
    pid_t init_pid = 0;
    uint64_t init_start = 0;
    std::string started;
    bool ready = false;
    bool stopping = false;
    std::string cgroup;
    // Limits as applied at boot.
    std::vector<std::string> cgroups_v1; // v1 machine cgroups `run` joins too
    std::string cpu_list;                // the machine's CPUs (affinity)
    int cpus = 0;
    uint64_t memory = 0;
    bool cpu_time_limited = false;
    bool memory_limited = false;
    std::vector<std::string> not_enforced;
};

enum class Status { stopped, starting, running, stopping };
const char* status_name(Status s);

// Name rules: 1–57 characters, lowercase letters, digits and inner hyphens.
Result<void> validate_name(const std::string& name);
// "alpine:latest" -> "alpine-latest", dots becoming hyphens.
std::string derive_name(const oci::Reference& ref);
// Field 22 of /proc/<pid>/stat; 0 when the process is gone.
uint64_t process_start_time(pid_t pid);
// Machine defaults: every CPU; half the host memory in whole GiB, at least 1 GiB.
BootConfig default_boot_config();

nlohmann::json config_to_json(const MachineConfig& c);
Result<MachineConfig> config_from_json(const nlohmann::json& j);

class Machines {
public:
    explicit Machines(store::Store& store);

    std::string dir(const std::string& name) const { return m_root + "/" + name; }
    bool exists(const std::string& name) const;
    Result<std::vector<std::string>> names() const;
    // The manifest digests of the images machines were made from: GC's roots besides image names.
    // A machine whose config cannot be read is left out (it cannot boot either).
    Result<std::vector<oci::Digest>> images_in_use() const;

    Result<MachineConfig> config(const std::string& name) const;
    Result<void> write_config(const MachineConfig& c);
    Result<BootConfig> boot_config(const std::string& name) const;
    Result<void> write_boot_config(const std::string& name, const BootConfig& b);

    // The live state, or nullopt when stopped (no state file, or its supervisor is gone).
    std::optional<RunState> state(const std::string& name) const;
    Status status(const std::string& name) const;
    Result<void> write_state(const std::string& name, const RunState& s);
    void clear_state(const std::string& name);

    std::string default_name() const;
    Result<void> set_default(const std::string& name);
    void clear_default();
    // The given name (which must exist) or the default; errors as the reference words them.
    Result<std::string> resolve(const std::string& name_or_empty) const;

    // Held for a machine's lifecycle changes (create, start, stop, rm).
    Result<FileLock> lock(const std::string& name);
    store::Store& store() { return m_store; }

private:
    store::Store& m_store;
    std::string m_root;
};

Error not_found(const std::string& name);

} // namespace ctr::machine
