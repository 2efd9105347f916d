// SPDX-License-Identifier: MIT
// registries.json and the credential files (auth.json, ~/.docker/config.json) are read on every pull.
// The input is written as each of those files under a private HOME, then settings and credentials are
// looked up for hosts the seeds name, and a stored credential is erased (which rewrites the file).
// Base64 of any bytes must also decode back to them, as credentials are stored that way.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "base/fs.hpp"
#include "registry/config.hpp"

using namespace ctr;

namespace {

std::string g_home;
const char* const k_hosts[] = {"registry.example:5000", "docker.io", "registry-1.docker.io", "localhost:5000",
                               "https://index.docker.io/v1/"};

void write_file(const std::string& path, const std::string& data) {
    // Not fs::write_file_atomic: its fsync would cost more than the parsing under test.
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) std::abort();
    ::close(fd);
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/registry-config-fuzz.XXXXXX";
    if (!::mkdtemp(tmpl.data())) std::abort();
    g_home = tmpl;
    for (const char* dir : {"/.config", "/.config/container", "/.config/containers", "/.docker"})
        ::mkdir((g_home + dir).c_str(), 0700);
    ::setenv("HOME", g_home.c_str(), 1);
    ::setenv("XDG_CONFIG_HOME", (g_home + "/.config").c_str(), 1);
    ::unsetenv("XDG_RUNTIME_DIR");
    ::unsetenv("DOCKER_CONFIG");
    // Removed when the run ends normally; after a crash the directory is left for inspection.
    std::atexit([] { (void)fs::remove_tree(g_home); });
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    write_file(g_home + "/.config/container/registries.json", text);
    write_file(g_home + "/.config/containers/auth.json", text);
    write_file(g_home + "/.docker/config.json", text);
    for (const char* host : k_hosts) {
        (void)registry::registry_settings(host);
        (void)registry::find_credentials(host);
    }
    (void)registry::erase_credentials("docker.io");

    (void)registry::base64_decode(text);
    if (!text.empty()) {
        auto back = registry::base64_decode(registry::base64_encode(text));
        if (!back || *back != text) {
            std::fprintf(stderr, "base64 of %zu bytes does not decode back to them\n", size);
            std::abort();
        }
    }
    return 0;
}
