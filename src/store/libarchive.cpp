// SPDX-License-Identifier: MIT
// The compressions the store reads, and the names of those it refuses.
#include "store/libarchive.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <string_view>

#include "base/unique_fd.hpp"

namespace ctr::store {

namespace {

struct Filter {
    const char* name;
    int (*enable)(struct archive*);
};

// Magic numbers of compressions seen on tarballs that the store does not read, so a refusal can say
// what the file is instead of "not a tar archive".
struct Magic {
    std::string_view bytes;
    const char* name;
};
using namespace std::string_view_literals;
constexpr Magic k_refused[] = {
    {"\xfd"
     "7zXZ\0"sv,
     "xz"},
    {"BZh"sv, "bzip2"},
    {"\x04\x22\x4d\x18"sv, "lz4"},
    {"LZIP"sv, "lzip"},
    {"\x89LZO\0\r\n\x1a\n"sv, "lzop"},
    {"\x1f\x9d"sv, "compress (.Z)"},
    {"\x5d\0\0"sv, "lzma"},
};

} // namespace

Result<void> support_store_filters(struct archive* a) {
    // Lambdas, not the forwarders themselves: those are generic, so they have no address to take.
    const Filter filters[] = {
        {"gzip", [](struct archive* x) { return archive_read_support_filter_gzip(x); }},
        {"zstd", [](struct archive* x) { return archive_read_support_filter_zstd(x); }},
    };
    for (const auto& f : filters) {
        int r = f.enable(a);
        if (r == ARCHIVE_WARN)
            return make_error("libarchive.so.13 was built without {} and would run an external program to "
                              "decompress; the store only decompresses in-process",
                              f.name);
        if (r != ARCHIVE_OK)
            return make_error("enable {} decompression: {}", f.name,
                              archive_error_string(a) ? archive_error_string(a) : "libarchive error");
    }
    return {};
}

const char* unsupported_compression(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    return fd.valid() ? unsupported_compression(fd.get()) : nullptr;
}

const char* unsupported_compression(int fd) {
    char head[16];
    ssize_t n = ::pread(fd, head, sizeof head, 0);
    if (n <= 0) return nullptr;
    std::string_view got(head, static_cast<size_t>(n));
    for (const auto& m : k_refused)
        if (got.substr(0, m.bytes.size()) == m.bytes) return m.name;
    return nullptr;
}

} // namespace ctr::store
