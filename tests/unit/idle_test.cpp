// SPDX-License-Identifier: MIT
// release_idle_memory(): the pages it drops are this process's mappings of clean file pages and dead
// stack; what was written stays.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "base/fs.hpp"
#include "base/idle.hpp"

namespace ctr {

namespace {

// Resident kB of the mapping that starts at `addr`, from /proc/self/smaps.
long resident_kb(const void* addr) {
    auto text = fs::read_file("/proc/self/smaps");
    if (!text) return -1;
    char head[32];
    std::snprintf(head, sizeof head, "%lx-", reinterpret_cast<unsigned long>(addr));
    size_t at = text->find(std::string("\n") + head);
    if (at == std::string::npos) return -1;
    size_t rss = text->find("\nRss:", at + 1);
    return std::strtol(text->c_str() + rss + 5, nullptr, 10);
}

struct TempFile {
    std::string path;
    int fd = -1;
    explicit TempFile(size_t size) {
        char tmpl[] = "/tmp/idle-test-XXXXXX";
        fd = ::mkstemp(tmpl);
        path = tmpl;
        std::string data(size, 'x');
        EXPECT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    }
    ~TempFile() {
        ::close(fd);
        ::unlink(path.c_str());
    }
};

} // namespace

TEST(Idle, DropsCleanFilePagesAndKeepsWrittenOnes) {
    constexpr size_t k_size = 1 << 20;
    TempFile file(k_size);
    // Read-only: every page touched, then dropped from this process (the file's contents stay).
    auto* ro = static_cast<const char*>(::mmap(nullptr, k_size, PROT_READ, MAP_PRIVATE, file.fd, 0));
    ASSERT_NE(ro, MAP_FAILED);
    long sum = 0;
    for (size_t i = 0; i < k_size; i += 4096)
        sum += ro[i];
    EXPECT_EQ(sum, 'x' * static_cast<long>(k_size / 4096));
    // Private and written: the written copy must survive, so the mapping is left alone.
    auto* rw = static_cast<char*>(::mmap(nullptr, k_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, file.fd, 0));
    ASSERT_NE(rw, MAP_FAILED);
    rw[0] = 'y';
    ASSERT_EQ(::mprotect(rw, k_size, PROT_READ), 0); // as relocated data is, once relocated
    EXPECT_GE(resident_kb(ro), 1024);

    release_idle_memory();

    EXPECT_LE(resident_kb(ro), 8);
    EXPECT_EQ(ro[4096], 'x'); // comes back from the page cache
    EXPECT_EQ(rw[0], 'y');
    EXPECT_EQ(rw[1], 'x');
    ::munmap(const_cast<char*>(ro), k_size);
    ::munmap(rw, k_size);
}

} // namespace ctr
