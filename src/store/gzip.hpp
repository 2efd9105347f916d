// SPDX-License-Identifier: MIT
// A gzip stream deflated on every CPU, as pigz does. The input is cut into blocks of a fixed size; each
// is deflated on its own thread with the last 32 KiB of the block before as its dictionary (so the ratio
// is gzip's) and ends on a byte boundary (a sync flush), and the blocks follow one another as one
// deflate stream in one gzip member whose CRC is combined from theirs. Every gzip reader reads it; the
// bytes depend only on the input and the level, never on the number of threads or their timing, so the
// same layer gives the same digest anywhere.
//
// Layers are written while the user waits: gzip of the 108 MiB apt layer of a machine image took 2.4 s
// of one core on this project's test host, and a build's other work has ended by then.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <string>

#include "base/result.hpp"

namespace ctr::store {

class ParallelGzip {
public:
    // `sink` gets the compressed bytes in order; on failure it returns an error message, which write()
    // and finish() then return. `level` is zlib's, 1 to 9; 0 means 6, gzip's default.
    using Sink = std::function<std::string(const void* data, size_t size)>;
    ParallelGzip(int level, Sink sink, unsigned threads = 0); // 0: one per CPU this process may use
    ~ParallelGzip();                                          // waits for blocks still being deflated
    ParallelGzip(const ParallelGzip&) = delete;
    ParallelGzip& operator=(const ParallelGzip&) = delete;

    Result<void> write(const void* data, size_t size);
    // Deflates what is left, then writes the trailer. Nothing may be written after.
    Result<void> finish();

    static constexpr size_t k_block = 1 << 20;

private:
    struct Block {
        std::string out;
        uint32_t crc = 0;
        size_t size = 0;
        std::string error;
    };
    static Block deflate_block(const std::string& in, const std::string& dict, int level, bool last);
    void dispatch(bool last);
    Result<void> emit(Block b);
    Result<void> drain(size_t keep); // emits finished blocks, in order, until `keep` are in flight

    int m_level;
    Sink m_sink;
    unsigned m_threads;
    std::string m_in;   // the block being filled
    std::string m_dict; // the last 32 KiB of the block before
    std::deque<std::future<Block>> m_jobs;
    uint32_t m_crc = 0;
    uint64_t m_total = 0;
    bool m_started = false, m_finished = false;
};

} // namespace ctr::store
