// SPDX-License-Identifier: MIT
#include "store/gzip.hpp"

#include <sched.h>

#include <algorithm>
#include <system_error>

#include "store/zlib.hpp"

namespace ctr::store {

namespace {

constexpr size_t k_window = 32 << 10; // deflate's window: the dictionary a block gets from the one before

unsigned usable_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    return static_cast<unsigned>(std::max(1, CPU_COUNT(&set)));
}

} // namespace

// One block as raw deflate data: ended by a sync flush (byte-aligned, the stream goes on) or, for the
// last, by the final block.
ParallelGzip::Block ParallelGzip::deflate_block(const std::string& in, const std::string& dict, int level, bool last) {
    ParallelGzip::Block b;
    b.size = in.size();
    b.crc = static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(in.data()), static_cast<uInt>(in.size())));
    z_stream z{};
    if (deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        b.error = "zlib: cannot start deflate";
        return b;
    }
    if (!dict.empty() &&
        deflateSetDictionary(&z, reinterpret_cast<const Bytef*>(dict.data()), static_cast<uInt>(dict.size())) != Z_OK) {
        deflateEnd(&z);
        b.error = "zlib: cannot set the dictionary";
        return b;
    }
    // deflateBound covers the data; the flush adds at most a few bytes, and the loop grows it anyway.
    b.out.resize(deflateBound(&z, static_cast<uLong>(in.size())) + 64);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    for (;;) {
        z.next_out = reinterpret_cast<Bytef*>(b.out.data() + z.total_out);
        z.avail_out = static_cast<uInt>(b.out.size() - z.total_out);
        int rc = deflate(&z, last ? Z_FINISH : Z_SYNC_FLUSH);
        if (rc == Z_STREAM_ERROR) {
            b.error = "zlib: deflate failed";
            break;
        }
        bool done = last ? rc == Z_STREAM_END : z.avail_in == 0 && z.avail_out > 0;
        if (done) break;
        b.out.resize(b.out.size() * 2);
    }
    b.out.resize(z.total_out);
    deflateEnd(&z);
    return b;
}

ParallelGzip::ParallelGzip(int level, Sink sink, unsigned threads)
    : m_level(level <= 0 ? 6 : std::min(level, 9)), m_sink(std::move(sink)),
      m_threads(threads ? threads : usable_cpus()) {
    m_in.reserve(k_block);
    m_crc = static_cast<uint32_t>(crc32(0L, nullptr, 0));
}

ParallelGzip::~ParallelGzip() {
    for (auto& j : m_jobs)
        if (j.valid()) j.wait();
}

void ParallelGzip::dispatch(bool last) {
    std::string dict = m_dict;
    if (m_in.size() >= k_window) {
        m_dict.assign(m_in, m_in.size() - k_window, k_window);
    } else { // only the last block is short
        m_dict += m_in;
        if (m_dict.size() > k_window) m_dict.erase(0, m_dict.size() - k_window);
    }
    std::string in = std::move(m_in);
    m_in.clear();
    m_in.reserve(k_block);
    int level = m_level;
    if (m_threads > 1) {
        try {
            m_jobs.push_back(std::async(std::launch::async, [in, dict, level, last] {
                return deflate_block(in, dict, level, last);
            }));
            return;
        } catch (const std::system_error&) { // no thread to be had (a process limit): the same bytes, made here
        }
    }
    std::promise<Block> p;
    p.set_value(deflate_block(in, dict, level, last));
    m_jobs.push_back(p.get_future());
}

Result<void> ParallelGzip::emit(Block b) {
    if (!b.error.empty()) return make_error("{}", b.error);
    if (std::string e = m_sink(b.out.data(), b.out.size()); !e.empty()) return make_error("{}", e);
    m_crc = static_cast<uint32_t>(crc32_combine(m_crc, b.crc, static_cast<z_off_t>(b.size)));
    m_total += b.size;
    return {};
}

Result<void> ParallelGzip::drain(size_t keep) {
    while (m_jobs.size() > keep) {
        Block b = m_jobs.front().get();
        m_jobs.pop_front();
        TRY(emit(std::move(b)));
    }
    return {};
}

Result<void> ParallelGzip::write(const void* data, size_t size) {
    if (!m_started) {
        // No name, no time, no flags: the same input gives the same bytes. XFL 0, OS 3 (Unix).
        static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
        if (std::string e = m_sink(header, sizeof header); !e.empty()) return make_error("{}", e);
        m_started = true;
    }
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        size_t n = std::min(size, k_block - m_in.size());
        m_in.append(p, n);
        p += n;
        size -= n;
        if (m_in.size() == k_block) {
            dispatch(false);
            TRY(drain(m_threads)); // as many blocks in flight as there are CPUs to deflate them
        }
    }
    return {};
}

Result<void> ParallelGzip::finish() {
    if (m_finished) return make_error("gzip stream finished twice");
    TRY(write(nullptr, 0)); // the header, for an empty input
    dispatch(true);
    TRY(drain(0));
    m_finished = true;
    unsigned char trailer[8];
    uint64_t isize = m_total & 0xffffffffu;
    for (int i = 0; i < 4; ++i) {
        trailer[i] = static_cast<unsigned char>(m_crc >> (8 * i));
        trailer[4 + i] = static_cast<unsigned char>(isize >> (8 * i));
    }
    if (std::string e = m_sink(trailer, sizeof trailer); !e.empty()) return make_error("{}", e);
    return {};
}

} // namespace ctr::store
