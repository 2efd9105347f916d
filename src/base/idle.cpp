// SPDX-License-Identifier: MIT
#include "base/idle.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "base/fs.hpp"

namespace ctr {

namespace {

struct Mapping {
    uintptr_t start = 0;
    uintptr_t end = 0;
    bool droppable = false; // private, never writable, backed by a file, and no private page in it
    bool stack = false;
};

// /proc/self/smaps: a header line per mapping ("start-end perms offset dev inode path"), then its
// counters; "Anonymous:" counts the private copies a write made.
std::vector<Mapping> mappings() {
    std::vector<Mapping> out;
    auto text = fs::read_file("/proc/self/smaps");
    if (!text) return out;
    size_t pos = 0;
    while (pos < text->size()) {
        size_t eol = text->find('\n', pos);
        if (eol == std::string::npos) eol = text->size();
        std::string line = text->substr(pos, eol - pos);
        pos = eol + 1;
        unsigned long start = 0, end = 0, inode = 0;
        char perms[5] = {};
        char path[256] = {};
        if (std::sscanf(line.c_str(), "%lx-%lx %4s %*s %*s %lu %255s", &start, &end, perms, &inode, path) >= 4 &&
            line.find(':') > line.find(' ')) { // a header, not "Name:  value"
            Mapping m;
            m.start = start;
            m.end = end;
            m.stack = std::strcmp(path, "[stack]") == 0;
            m.droppable = inode != 0 && perms[1] != 'w' && perms[3] == 'p';
            out.push_back(m);
            continue;
        }
        unsigned long kb = 0;
        if (!out.empty() && std::sscanf(line.c_str(), "Anonymous: %lu kB", &kb) == 1 && kb != 0)
            out.back().droppable = false;
    }
    return out;
}

} // namespace

void release_idle_memory() {
    const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    uintptr_t here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
    {
        std::vector<Mapping> maps = mappings();
        for (const Mapping& m : maps) {
            if (m.droppable) (void)::madvise(reinterpret_cast<void*>(m.start), m.end - m.start, MADV_DONTNEED);
            // The stack below this frame is dead; keep a margin for the calls made from here on.
            constexpr uintptr_t k_margin = 16 * 1024;
            if (m.stack && here > m.start + k_margin) {
                uintptr_t top = (here - k_margin) & ~(page - 1);
                (void)::madvise(reinterpret_cast<void*>(m.start), top - m.start, MADV_DONTNEED);
            }
        }
    }
    ::malloc_trim(0);
}

} // namespace ctr
