// SPDX-License-Identifier: MIT
// Layer unpacking on tars built in the test, as the current user (no root needed).
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include <cstdlib>
#include <fstream>

#include "base/fs.hpp"
#include "store/unpack.hpp"
#include "temp_dir.hpp"

namespace ctr::store {

namespace {

constexpr uint64_t k_no_limit = UINT64_MAX;

struct Entry {
    std::string name;
    mode_t type = AE_IFREG;
    std::string data;
    std::string link;     // symlink target
    std::string hardlink; // hard link target
    mode_t mode = 0644;
};

class UnpackTest : public test::TempDirTest {
protected:
    void SetUp() override {
        TempDirTest::SetUp();
        if (HasFatalFailure()) return;
        m_dest = m_dir + "/layer";
        ASSERT_EQ(::mkdir(m_dest.c_str(), 0700), 0);
    }

    // `filter`: ARCHIVE_FILTER_GZIP, _ZSTD, _XZ, … (libarchive's codes); none by default.
    std::string make_tar(const std::vector<Entry>& entries, int filter = ARCHIVE_FILTER_NONE) {
        std::string path = m_dir + "/layer.tar";
        struct archive* a = archive_write_new();
        archive_write_set_format_pax_restricted(a);
        if (filter != ARCHIVE_FILTER_NONE) {
            EXPECT_EQ(archive_write_add_filter(a, filter), ARCHIVE_OK);
        }
        archive_write_open_filename(a, path.c_str());
        for (const auto& e : entries) {
            struct archive_entry* ae = archive_entry_new();
            archive_entry_set_pathname(ae, e.name.c_str());
            archive_entry_set_filetype(ae, e.type);
            archive_entry_set_perm(ae, e.mode);
            archive_entry_set_uid(ae, ::getuid());
            archive_entry_set_gid(ae, ::getgid());
            archive_entry_set_mtime(ae, 1700000000, 0);
            if (!e.link.empty()) archive_entry_set_symlink(ae, e.link.c_str());
            if (!e.hardlink.empty()) archive_entry_set_hardlink(ae, e.hardlink.c_str());
            archive_entry_set_size(ae, e.type == AE_IFREG && e.hardlink.empty() ? e.data.size() : 0);
            archive_write_header(a, ae);
            if (!e.data.empty()) archive_write_data(a, e.data.data(), e.data.size());
            archive_entry_free(ae);
        }
        archive_write_close(a);
        archive_write_free(a);
        return path;
    }

    std::string read(const std::string& rel) {
        std::ifstream f(m_dest + "/" + rel);
        return std::string(std::istreambuf_iterator<char>(f), {});
    }

    std::string m_dest;
};

} // namespace

TEST_F(UnpackTest, UnpacksFilesDirsLinksWithModesAndTimes) {
    auto tar = make_tar({{"./", AE_IFDIR, "", "", "", 0755},
                         {"etc/", AE_IFDIR, "", "", "", 0555},
                         {"etc/hostname", AE_IFREG, "box\n", "", "", 0600},
                         {"etc/alias", AE_IFLNK, "", "hostname"},
                         {"etc/hard", AE_IFREG, "", "", "etc/hostname"},
                         {"usr/bin/tool", AE_IFREG, "#!/bin/sh\n", "", "", 04755}},
                        ARCHIVE_FILTER_GZIP);
    auto diff = tar_diff_id(tar, k_no_limit);
    ASSERT_TRUE(diff) << diff.error().message;
    auto r = unpack_layer(tar, m_dest, *diff, k_no_limit);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(read("etc/hostname"), "box\n");
    char buf[64] = {};
    ASSERT_GT(::readlink((m_dest + "/etc/alias").c_str(), buf, sizeof buf), 0);
    EXPECT_STREQ(buf, "hostname");
    struct stat a {
    }, b{}, d{}, t{};
    ASSERT_EQ(::stat((m_dest + "/etc/hostname").c_str(), &a), 0);
    ASSERT_EQ(::stat((m_dest + "/etc/hard").c_str(), &b), 0);
    EXPECT_EQ(a.st_ino, b.st_ino);
    EXPECT_EQ(a.st_mode & 07777, 0600u);
    EXPECT_EQ(a.st_mtime, 1700000000);
    ASSERT_EQ(::stat((m_dest + "/etc").c_str(), &d), 0);
    EXPECT_EQ(d.st_mode & 07777, 0555u);
    EXPECT_EQ(d.st_mtime, 1700000000);
    ASSERT_EQ(::stat((m_dest + "/usr/bin/tool").c_str(), &t), 0);
    EXPECT_EQ(t.st_mode & 07777, 04755u);
}

TEST_F(UnpackTest, RefusesDotDotAndNamesTheEntry) {
    auto tar = make_tar({{"a/../../evil", AE_IFREG, "x"}});
    auto r = unpack_layer(tar, m_dest, std::nullopt, k_no_limit);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "entry \"a/../../evil\": path leaves the layer directory");
    EXPECT_FALSE(fs::exists(m_dir + "/evil"));
}

TEST_F(UnpackTest, NeverWritesThroughASymlink) {
    auto tar = make_tar({{"out", AE_IFLNK, "", m_dir}, {"out/escaped", AE_IFREG, "x"}});
    auto r = unpack_layer(tar, m_dest, std::nullopt, k_no_limit);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("entry \"out/escaped\""), std::string::npos) << r.error().message;
    EXPECT_FALSE(fs::exists(m_dir + "/escaped"));
}

TEST_F(UnpackTest, AbsoluteNamesStayInside) {
    auto tar = make_tar({{m_dir + "/abs", AE_IFREG, "x"}});
    ASSERT_TRUE(unpack_layer(tar, m_dest, std::nullopt, k_no_limit));
    EXPECT_FALSE(fs::exists(m_dir + "/abs"));
    EXPECT_TRUE(fs::exists(m_dest + m_dir + "/abs"));
}

TEST_F(UnpackTest, HardLinksResolveInsideTheLayer) {
    auto tar = make_tar({{"victim", AE_IFREG, "", "", "/etc/passwd"}});
    auto r = unpack_layer(tar, m_dest, std::nullopt, k_no_limit);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "entry \"victim\": hard link target \"/etc/passwd\" is not in the layer");
}

TEST_F(UnpackTest, LaterEntriesReplaceEarlierOnes) {
    auto tar = make_tar({{"d/", AE_IFDIR, "", "", "", 0755},
                         {"d/child", AE_IFREG, "c"},
                         {"d", AE_IFREG, "now a file"},
                         {"f", AE_IFREG, "a file"},
                         {"f/", AE_IFDIR, "", "", "", 0700}});
    auto r = unpack_layer(tar, m_dest, std::nullopt, k_no_limit);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(read("d"), "now a file");
    struct stat st {};
    ASSERT_EQ(::lstat((m_dest + "/f").c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
}

TEST_F(UnpackTest, WhiteoutsBecomeOverlayWhiteouts) {
    auto tar = make_tar({{"dir/.wh.gone", AE_IFREG, ""}, {"opq/.wh..wh..opq", AE_IFREG, ""}});
    auto r = unpack_layer(tar, m_dest, std::nullopt, k_no_limit);
    if (!r && r.error().errnum == EPERM) GTEST_SKIP() << "this kernel refuses whiteout devices to this user";
    ASSERT_TRUE(r) << r.error().message;
    struct stat st {};
    ASSERT_EQ(::lstat((m_dest + "/dir/gone").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    EXPECT_EQ(st.st_rdev, ::makedev(0, 0));
    char v[4] = {};
    ASSERT_EQ(::getxattr((m_dest + "/opq").c_str(), "user.overlay.opaque", v, sizeof v), 1);
    EXPECT_EQ(v[0], 'y');
    EXPECT_FALSE(fs::exists(m_dest + "/opq/.wh..wh..opq"));
}

TEST_F(UnpackTest, RejectsBadWhiteoutsAndWrongDiffIds) {
    auto dotdot = unpack_layer(make_tar({{"a/.wh...", AE_IFREG, ""}}), m_dest, std::nullopt, k_no_limit);
    ASSERT_FALSE(dotdot);
    EXPECT_EQ(dotdot.error().message, "entry \"a/.wh...\": invalid whiteout");
    auto tar = make_tar({{"x", AE_IFREG, "x"}});
    auto wrong = unpack_layer(tar, m_dest, oci::sha256_of("something else"), k_no_limit);
    ASSERT_FALSE(wrong);
    EXPECT_NE(wrong.error().message.find("uncompressed content hashes to"), std::string::npos);
}

TEST_F(UnpackTest, NotATar) {
    std::string path = m_dir + "/noise";
    std::ofstream(path) << std::string(3000, 'z');
    EXPECT_FALSE(tar_diff_id(path, k_no_limit));
    auto r = unpack_layer(path, m_dest, std::nullopt, k_no_limit);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("not a tar archive"), std::string::npos) << r.error().message;
}

TEST_F(UnpackTest, ZstdLayersUnpack) {
    auto tar = make_tar({{"z", AE_IFREG, "zstd"}}, ARCHIVE_FILTER_ZSTD);
    ASSERT_TRUE(unpack_layer(tar, m_dest, std::nullopt, k_no_limit));
    EXPECT_EQ(read("z"), "zstd");
}

// Only gzip and zstd are decompressed; anything else is named, never handed to a program or decoded.
TEST_F(UnpackTest, OtherCompressionsAreRefusedByName) {
    for (auto [filter, name] : {std::pair{ARCHIVE_FILTER_XZ, "xz"}, std::pair{ARCHIVE_FILTER_BZIP2, "bzip2"},
                                std::pair{ARCHIVE_FILTER_LZ4, "lz4"}, std::pair{ARCHIVE_FILTER_LZMA, "lzma"}}) {
        auto tar = make_tar({{"x", AE_IFREG, "x"}}, filter);
        auto r = unpack_layer(tar, m_dest, std::nullopt, k_no_limit);
        ASSERT_FALSE(r) << name;
        EXPECT_EQ(r.error().message.find(fmt::format("compressed with {}, which the store does not read", name)),
                  0u)
            << r.error().message;
        EXPECT_FALSE(tar_diff_id(tar, k_no_limit)) << name;
        ASSERT_TRUE(fs::remove_tree(m_dest));
        ASSERT_EQ(::mkdir(m_dest.c_str(), 0700), 0);
    }
}

// A gzip bomb: 8 MiB of zeros in about 8 KiB. The limit counts uncompressed bytes, the tar's own
// headers and padding included, so exactly the stream's size passes and one byte less does not.
TEST_F(UnpackTest, UncompressedSizeIsCapped) {
    std::vector<Entry> bomb = {{"zeros", AE_IFREG, std::string(8 << 20, '\0')}};
    struct stat st {};
    ASSERT_EQ(::stat(make_tar(bomb).c_str(), &st), 0);
    const auto plain_size = static_cast<uint64_t>(st.st_size);
    auto tar = make_tar(bomb, ARCHIVE_FILTER_GZIP);

    auto r = unpack_layer(tar, m_dest, std::nullopt, 1 << 20);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().errnum, EFBIG);
    EXPECT_EQ(r.error().message, "expands beyond 1 MiB (set CONTAINER_MAX_LAYER_SIZE to raise the limit)");
    auto d = tar_diff_id(tar, 1 << 20);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().message, r.error().message);
    EXPECT_FALSE(tar_diff_id(tar, plain_size - 1));

    ASSERT_TRUE(fs::remove_tree(m_dest));
    ASSERT_EQ(::mkdir(m_dest.c_str(), 0700), 0);
    EXPECT_TRUE(tar_diff_id(tar, plain_size));
    EXPECT_TRUE(unpack_layer(tar, m_dest, std::nullopt, plain_size));
}

TEST(MaxLayerSize, DefaultAndEnvironment) {
    ::unsetenv("CONTAINER_MAX_LAYER_SIZE");
    EXPECT_EQ(*max_layer_size(), 64ull << 30);
    ::setenv("CONTAINER_MAX_LAYER_SIZE", "16M", 1);
    EXPECT_EQ(*max_layer_size(), 16ull << 20);
    ::setenv("CONTAINER_MAX_LAYER_SIZE", "lots", 1);
    auto bad = max_layer_size();
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message.find("CONTAINER_MAX_LAYER_SIZE: invalid size \"lots\""), 0u)
        << bad.error().message;
    ::setenv("CONTAINER_MAX_LAYER_SIZE", "0", 1);
    EXPECT_FALSE(max_layer_size());
    ::unsetenv("CONTAINER_MAX_LAYER_SIZE");
}

TEST(ReadFile, BoundedReadStopsPastTheLimit) {
    char tmpl[] = "/tmp/read-test.XXXXXX";
    int fd = ::mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "0123456789", 10), 10);
    ::close(fd);
    EXPECT_EQ(*fs::read_file(tmpl, 10), "0123456789");
    auto big = fs::read_file(tmpl, 9);
    ASSERT_FALSE(big);
    EXPECT_EQ(big.error().errnum, EFBIG);
    EXPECT_EQ(big.error().message, fmt::format("\"{}\" is larger than 9 bytes", tmpl));
    ::unlink(tmpl);
}

} // namespace ctr::store
