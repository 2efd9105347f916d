// SPDX-License-Identifier: MIT
// Layer writing, checked by unpacking what was written with the store's own unpacker (the inverse) and
// by reading the tar's entries back: whiteouts, opaque directories, hard links, exclusions, rewrites,
// and the same digest for the same tree. As the current user: whiteouts (char 0/0) need root to make.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include <fstream>
#include <map>

#include "base/fs.hpp"
#include "store/layer_writer.hpp"
#include "store/unpack.hpp"
#include "temp_dir.hpp"

namespace ctr::store {

namespace {

class LayerWriterTest : public test::TempDirTest {
protected:
    void SetUp() override {
        TempDirTest::SetUp();
        if (HasFatalFailure()) return;
        m_tree = m_dir + "/tree";
        ASSERT_EQ(::mkdir(m_tree.c_str(), 0755), 0);
    }

    void file(const std::string& rel, const std::string& data, mode_t mode = 0644) {
        std::ofstream(m_tree + "/" + rel) << data;
        ASSERT_EQ(::chmod((m_tree + "/" + rel).c_str(), mode), 0);
    }
    WrittenLayer write(const std::string& out, const LayerWriteOptions& o = {}) {
        UniqueFd root(::open(m_tree.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        UniqueFd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        auto r = write_layer(root.get(), fd.get(), o);
        EXPECT_TRUE(r) << (r ? "" : r.error().message);
        return r ? *r : WrittenLayer{};
    }
    // Entry name -> (type, size, hard link target or symlink target).
    std::map<std::string, std::string> entries(const std::string& blob) {
        std::map<std::string, std::string> out;
        struct archive* a = archive_read_new();
        archive_read_support_filter_gzip(a);
        archive_read_support_format_tar(a);
        EXPECT_EQ(archive_read_open_filename(a, blob.c_str(), 1 << 16), ARCHIVE_OK);
        struct archive_entry* e;
        while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
            std::string v =
                std::to_string(archive_entry_filetype(e)) + ":" + std::to_string(archive_entry_size(e));
            if (archive_entry_hardlink(e)) v += ":hard=" + std::string(archive_entry_hardlink(e));
            if (archive_entry_symlink(e)) v += ":sym=" + std::string(archive_entry_symlink(e));
            out[archive_entry_pathname(e)] = v;
        }
        archive_read_free(a);
        return out;
    }

    std::string m_tree;
};

TEST_F(LayerWriterTest, RoundTripsThroughTheUnpacker) {
    ASSERT_EQ(::mkdir((m_tree + "/etc").c_str(), 0755), 0);
    file("etc/motd", "hello\n");
    file("etc/secret", "x", 0600);
    ASSERT_EQ(::symlink("motd", (m_tree + "/etc/link").c_str()), 0);
    ASSERT_EQ(::link((m_tree + "/etc/motd").c_str(), (m_tree + "/etc/motd2").c_str()), 0);
    ASSERT_EQ(::mkdir((m_tree + "/opaque").c_str(), 0700), 0);
    bool xattrs = ::setxattr((m_tree + "/opaque").c_str(), "user.overlay.opaque", "y", 1, 0) == 0;
    struct timespec t[2] = {{1000000000, 123456789}, {1000000000, 123456789}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (m_tree + "/etc/motd").c_str(), t, AT_SYMLINK_NOFOLLOW), 0);

    std::string blob = m_dir + "/layer.tar.gz";
    WrittenLayer l = write(blob);
    uint64_t size = 0;
    EXPECT_EQ(*oci::sha256_file(blob, &size), l.digest);
    EXPECT_EQ(size, l.size);
    EXPECT_EQ(*tar_diff_id(blob, UINT64_MAX), l.diff_id);

    auto names = entries(blob);
    EXPECT_TRUE(names.count("./"));
    EXPECT_TRUE(names.count("etc/"));
    EXPECT_NE(names["etc/motd2"].find("hard=etc/motd"), std::string::npos) << names["etc/motd2"];
    EXPECT_NE(names["etc/link"].find("sym=motd"), std::string::npos);
    if (xattrs) {
        EXPECT_TRUE(names.count("opaque/.wh..wh..opq"));
    }

    std::string out = m_dir + "/out";
    ASSERT_EQ(::mkdir(out.c_str(), 0755), 0);
    auto r = unpack_layer(blob, out, l.diff_id, UINT64_MAX);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*fs::read_file(out + "/etc/motd"), "hello\n");
    struct stat a {
    }, b{};
    ASSERT_EQ(::stat((out + "/etc/motd").c_str(), &a), 0);
    ASSERT_EQ(::stat((out + "/etc/motd2").c_str(), &b), 0);
    EXPECT_EQ(a.st_ino, b.st_ino);
    EXPECT_EQ(a.st_mtim.tv_sec, 1000000000);
    ASSERT_EQ(::stat((out + "/etc/secret").c_str(), &a), 0);
    EXPECT_EQ(a.st_mode & 07777, 0600u);
    ASSERT_EQ(::stat((out + "/opaque").c_str(), &a), 0);
    EXPECT_EQ(a.st_mode & 07777, 0700u);
}

TEST_F(LayerWriterTest, SameTreeSameDigest) {
    file("a", "1");
    file("b", "2");
    WrittenLayer x = write(m_dir + "/x");
    WrittenLayer y = write(m_dir + "/y");
    EXPECT_EQ(x.digest, y.digest);
    EXPECT_EQ(x.diff_id, y.diff_id);
}

TEST_F(LayerWriterTest, EmptyTreeIsAValidLayer) {
    std::string blob = m_dir + "/empty";
    WrittenLayer l = write(blob);
    EXPECT_EQ(l.entries, 1u);
    std::string out = m_dir + "/out";
    ASSERT_EQ(::mkdir(out.c_str(), 0755), 0);
    EXPECT_TRUE(unpack_layer(blob, out, l.diff_id, UINT64_MAX));
}

TEST_F(LayerWriterTest, ExcludesAndRewrites) {
    ASSERT_EQ(::mkdir((m_tree + "/etc").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((m_tree + "/etc/ssh").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((m_tree + "/tmp").c_str(), 01777), 0);
    file("etc/machine-id", "abc\n");
    file("etc/ssh/ssh_host_ed25519_key", "k");
    file("etc/ssh/sshd_config", "c");
    file("tmp/junk", "j");
    file("etc/passwd", "root:x:0:0::/root:/bin/sh\nme:x:1000:1000::/home/me:/bin/sh\n");
    LayerWriteOptions o;
    o.exclude = {"etc/machine-id", "etc/ssh/ssh_host_*", "tmp/*"};
    o.rewrite["etc/passwd"] = [](const std::string& s) { return s.substr(0, s.find("me:")); };
    std::string blob = m_dir + "/l";
    write(blob, o);
    auto names = entries(blob);
    EXPECT_FALSE(names.count("etc/machine-id"));
    EXPECT_FALSE(names.count("etc/ssh/ssh_host_ed25519_key"));
    EXPECT_TRUE(names.count("etc/ssh/sshd_config"));
    EXPECT_TRUE(names.count("tmp/"));
    EXPECT_FALSE(names.count("tmp/junk"));
    std::string out = m_dir + "/out";
    ASSERT_EQ(::mkdir(out.c_str(), 0755), 0);
    ASSERT_TRUE(unpack_layer(blob, out, std::nullopt, UINT64_MAX));
    EXPECT_EQ(*fs::read_file(out + "/etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
}

TEST_F(LayerWriterTest, WhiteoutsWhenRootMayMakeThem) {
    if (::mknod((m_tree + "/gone").c_str(), S_IFCHR | 0, ::makedev(0, 0)) != 0)
        GTEST_SKIP() << "mknod needs root";
    std::string blob = m_dir + "/l";
    write(blob);
    auto names = entries(blob);
    EXPECT_TRUE(names.count(".wh.gone"));
    EXPECT_FALSE(names.count("gone"));
}

TEST_F(LayerWriterTest, DepthLimit) {
    UniqueFd cur(::open(m_tree.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    for (int i = 0; i < 1100; ++i) {
        ASSERT_EQ(::mkdirat(cur.get(), "d", 0755), 0);
        cur.reset(::openat(cur.get(), "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        ASSERT_TRUE(cur.valid());
    }
    UniqueFd root(::open(m_tree.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    UniqueFd fd(::open((m_dir + "/l").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    auto r = write_layer(root.get(), fd.get(), {});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("nested more than"), std::string::npos) << r.error().message;
}

TEST_F(LayerWriterTest, SizeLimit) {
    file("big", std::string(100000, 'x'));
    UniqueFd root(::open(m_tree.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    UniqueFd fd(::open((m_dir + "/l").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    LayerWriteOptions o;
    o.max_size = 50000;
    auto r = write_layer(root.get(), fd.get(), o);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("beyond"), std::string::npos) << r.error().message;
}

} // namespace

} // namespace ctr::store
