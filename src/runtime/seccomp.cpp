// SPDX-License-Identifier: MIT
// The seccomp deny list. Why each entry: docs/RUNTIME.md, "System calls".
#include "runtime/seccomp.hpp"

#include <sys/ioctl.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "base/fs.hpp"
#include "base/lazy_lib.hpp"
#include "base/unique_fd.hpp"

namespace ctr {

inline constexpr LazyLibrary k_libseccomp{"libseccomp.so.2", "libseccomp2"};

CTR_LAZY_FUNCTION(k_libseccomp, seccomp_init)
CTR_LAZY_FUNCTION(k_libseccomp, seccomp_release)
CTR_LAZY_FUNCTION(k_libseccomp, seccomp_arch_add)
CTR_LAZY_FUNCTION(k_libseccomp, seccomp_rule_add)
CTR_LAZY_FUNCTION(k_libseccomp, seccomp_rule_add_array)
CTR_LAZY_FUNCTION(k_libseccomp, seccomp_syscall_resolve_name)
CTR_LAZY_FUNCTION(k_libseccomp, seccomp_export_bpf)

namespace runtime {

const DeniedCall k_denied_calls[] = {
    // Loading or replacing kernel code.
    {"kexec_load", EPERM},
    {"kexec_file_load", EPERM},
    {"init_module", EPERM},
    {"finit_module", EPERM},
    {"delete_module", EPERM},
    // Opening any file of a file system by handle, bypassing the mount namespace.
    {"open_by_handle_at", EPERM},
    // Host-wide state: swap, I/O ports, the clock, process accounting, the kernel log.
    {"swapon", EPERM},
    {"swapoff", EPERM},
    {"iopl", EPERM},
    {"ioperm", EPERM},
    {"settimeofday", EPERM},
    {"clock_settime", EPERM},
    {"clock_adjtime", EPERM},
    {"adjtimex", EPERM},
    {"acct", EPERM},
    {"syslog", EPERM},
    {"bpf", EPERM},
    {"lookup_dcookie", EPERM},
    {"quotactl", EPERM},
    {"uselib", EPERM},
    {"_sysctl", EPERM},
    {"ustat", EPERM},
    {"nfsservctl", EPERM},
    // Keyrings are not namespaced: the machine gets none (programs treat ENOSYS as "no keyring").
    {"keyctl", ENOSYS},
    {"add_key", ENOSYS},
    {"request_key", ENOSYS},
    {nullptr, 0},
};

Result<std::vector<sock_filter>> machine_filter() {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) return make_error("seccomp: cannot create a filter");
    ScopeExit release([&] { seccomp_release(ctx); });
    for (uint32_t arch : {SCMP_ARCH_X86, SCMP_ARCH_X32}) {
        int rc = seccomp_arch_add(ctx, arch);
        if (rc != 0 && rc != -EEXIST) return sys_error(-rc, "seccomp: add an architecture");
    }
    for (const DeniedCall* d = k_denied_calls; d->name; ++d) {
        int nr = seccomp_syscall_resolve_name(d->name);
        if (nr == __NR_SCMP_ERROR) continue; // unknown to this libseccomp: no architecture has it
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(static_cast<uint32_t>(d->err)), nr, 0);
        if (rc != 0) return sys_error(-rc, fmt::format("seccomp: deny {}", d->name));
    }
    // Typing into a terminal (TIOCSTI) or poking the console (TIOCLINUX) from inside is refused.
    for (unsigned long req : {static_cast<unsigned long>(TIOCSTI), static_cast<unsigned long>(TIOCLINUX)}) {
        struct scmp_arg_cmp cmp = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, req);
        int rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EPERM), seccomp_syscall_resolve_name("ioctl"), 1, &cmp);
        if (rc != 0) return sys_error(-rc, "seccomp: deny ioctl");
    }
    UniqueFd mem(::memfd_create("seccomp", MFD_CLOEXEC));
    if (!mem.valid()) return sys_error(errno, "memfd_create");
    if (int rc = seccomp_export_bpf(ctx, mem.get()); rc != 0) return sys_error(-rc, "seccomp: export the filter");
    off_t size = ::lseek(mem.get(), 0, SEEK_CUR);
    if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0)
        return make_error("seccomp: exported filter has {} bytes", size);
    std::vector<sock_filter> prog(static_cast<size_t>(size) / sizeof(sock_filter));
    if (::pread(mem.get(), prog.data(), static_cast<size_t>(size), 0) != size)
        return sys_error(errno, "seccomp: read the filter");
    return prog;
}

Result<void> save_filter(const std::string& path, const std::vector<sock_filter>& prog) {
    return fs::write_file_atomic(
        path, std::string_view(reinterpret_cast<const char*>(prog.data()), prog.size() * sizeof(sock_filter)), 0644);
}

Result<std::vector<sock_filter>> load_filter(const std::string& path) {
    constexpr size_t k_max = BPF_MAXINSNS * sizeof(sock_filter);
    auto data = fs::read_file(path, k_max);
    if (!data || data->empty() || data->size() % sizeof(sock_filter) != 0) return machine_filter();
    std::vector<sock_filter> prog(data->size() / sizeof(sock_filter));
    std::memcpy(prog.data(), data->data(), data->size());
    return prog;
}

bool install_filter(const std::vector<sock_filter>& prog) {
    struct sock_fprog fp {};
    fp.len = static_cast<unsigned short>(prog.size());
    fp.filter = const_cast<sock_filter*>(prog.data());
    // SPEC_ALLOW: a filter alone does not also switch on the speculative store bypass mitigation for the
    // whole machine (the kernel's default for seccomp'd tasks), which slows every process in it; the
    // machine's isolation from the host does not rest on it, as with runc's and nspawn's filters.
    return ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW, &fp) == 0;
}

} // namespace runtime
} // namespace ctr
