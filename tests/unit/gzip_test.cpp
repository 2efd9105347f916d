// SPDX-License-Identifier: MIT
// The parallel gzip stream: zlib's own inflate (in gzip mode, which checks the CRC and the length) reads
// back exactly the input, and the bytes are the same whatever the number of threads, for inputs of no
// block, a part of one, exactly one, and several blocks of data both random and repetitive.
#include <gtest/gtest.h>

#include <random>

#include "store/gzip.hpp"
#include "store/zlib.hpp"

namespace ctr::store {

namespace {

std::string compress(const std::string& in, unsigned threads, size_t piece = 4093) {
    std::string out;
    ParallelGzip gz(1, [&](const void* p, size_t n) {
        out.append(static_cast<const char*>(p), n);
        return std::string();
    }, threads);
    for (size_t off = 0; off < in.size(); off += piece) // pieces that do not line up with blocks
        EXPECT_TRUE(gz.write(in.data() + off, std::min(piece, in.size() - off)));
    EXPECT_TRUE(gz.finish());
    return out;
}

std::string inflate_gzip(const std::string& gz) {
    z_stream z{};
    EXPECT_EQ(inflateInit2(&z, 16 + 15), Z_OK);
    std::string out;
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
    z.avail_in = static_cast<uInt>(gz.size());
    int rc = Z_OK;
    while (rc == Z_OK) {
        char buf[1 << 16];
        z.next_out = reinterpret_cast<Bytef*>(buf);
        z.avail_out = sizeof buf;
        rc = inflate(&z, Z_NO_FLUSH);
        out.append(buf, sizeof buf - z.avail_out);
        if (rc == Z_BUF_ERROR) break;
    }
    EXPECT_EQ(rc, Z_STREAM_END) << "the stream does not end as gzip";
    EXPECT_EQ(z.avail_in, 0u) << "bytes after the gzip member";
    inflateEnd(&z);
    return out;
}

std::string sample(size_t size) {
    std::mt19937 rng(42);
    std::string s;
    s.reserve(size);
    while (s.size() < size) {
        if (rng() % 2) { // random bytes
            for (int i = 0; i < 5000 && s.size() < size; ++i) s.push_back(static_cast<char>(rng()));
        } else { // text that repeats, also across block boundaries (the dictionary's part)
            for (int i = 0; i < 300 && s.size() < size; ++i) s += "usr/share/doc/package/changelog.Debian.gz\n";
            s.resize(std::min(s.size(), size));
        }
    }
    return s;
}

TEST(ParallelGzip, RoundTripsAndIsTheSameForAnyNumberOfThreads) {
    for (size_t size : {size_t(0), size_t(1), size_t(70000), ParallelGzip::k_block, 3 * ParallelGzip::k_block + 12345}) {
        std::string in = sample(size);
        std::string one = compress(in, 1);
        EXPECT_EQ(inflate_gzip(one), in) << "size " << size;
        EXPECT_EQ(compress(in, 2), one) << "size " << size;
        EXPECT_EQ(compress(in, 5), one) << "size " << size;
    }
}

TEST(ParallelGzip, RepetitiveInputCompressesAcrossBlocks) {
    std::string in;
    while (in.size() < 4 * ParallelGzip::k_block) in += "the same line, again and again, in every block\n";
    std::string out = compress(in, 2);
    EXPECT_EQ(inflate_gzip(out), in);
    EXPECT_LT(out.size(), in.size() / 50) << "blocks were not deflated with their dictionary";
}

TEST(ParallelGzip, ASinkErrorIsReturned) {
    int calls = 0;
    ParallelGzip gz(1, [&](const void*, size_t) { return ++calls > 1 ? std::string("disk full") : std::string(); }, 2);
    std::string in = sample(3 * ParallelGzip::k_block);
    Result<void> r = gz.write(in.data(), in.size());
    if (r) r = gz.finish();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "disk full");
}

} // namespace

} // namespace ctr::store
