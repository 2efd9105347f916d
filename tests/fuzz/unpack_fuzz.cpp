// SPDX-License-Identifier: MIT
// Layer blobs come from registries and image archives. Each input is unpacked as a layer into a fresh
// directory, which is then removed. Besides not crashing, nothing may appear beside that directory:
// the unpacker promises to create nothing outside it, whatever names and links the tar holds.
//
// Run as an ordinary user, the target first enters a user namespace where that user is root, so that
// layers owned by uid 0 unpack as they do in a real pull; as root it runs as root.
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "base/fs.hpp"
#include "store/unpack.hpp"

using namespace ctr;

namespace {

std::string g_dir; // holds only "layer" (the input) and, while unpacking, "dest"

void write_proc(const char* file, const std::string& text) {
    int fd = ::open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return;
    (void)!::write(fd, text.data(), text.size());
    ::close(fd);
}

void become_namespace_root() {
    uid_t uid = ::getuid();
    gid_t gid = ::getgid();
    if (uid == 0) return;
    // Without user namespaces the target still runs; layers owned by others then fail at chown.
    if (::unshare(CLONE_NEWUSER) != 0) return;
    write_proc("/proc/self/setgroups", "deny");
    write_proc("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1");
    write_proc("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1");
}

void write_file(const std::string& path, const std::string& data) {
    // Not fs::write_file_atomic: its fsync would cost more than the parsing under test.
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) std::abort();
    ::close(fd);
}

std::set<std::string> entries_of(const std::string& dir) {
    std::set<std::string> names;
    DIR* d = ::opendir(dir.c_str());
    if (!d) std::abort();
    while (struct dirent* e = ::readdir(d))
        if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") names.insert(e->d_name);
    ::closedir(d);
    return names;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    become_namespace_root();
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/unpack-fuzz.XXXXXX";
    if (!::mkdtemp(tmpl.data())) std::abort();
    g_dir = tmpl;
    std::atexit([] { (void)fs::remove_tree(g_dir); });
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string blob = g_dir + "/layer", dest = g_dir + "/dest";
    write_file(blob, std::string(reinterpret_cast<const char*>(data), size));
    if (::mkdir(dest.c_str(), 0700) != 0) std::abort();
    (void)store::unpack_layer(blob, dest, std::nullopt, uint64_t{1} << 30);
    if (entries_of(g_dir) != std::set<std::string>{"layer", "dest"}) {
        std::fprintf(stderr, "unpacking created something outside the layer directory\n");
        std::abort();
    }
    if (auto r = fs::remove_tree(dest); !r) {
        std::fprintf(stderr, "cannot remove the unpacked layer: %s\n", r.error().message.c_str());
        std::abort();
    }
    (void)store::tar_diff_id(blob, uint64_t{1} << 30);
    return 0;
}
