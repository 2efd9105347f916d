// SPDX-License-Identifier: MIT
// Store::lookup on layer trees built in the test: overlayfs's merge rules (whiteouts, opaque
// directories, lower directories showing through) and symbolic links resolved inside the image.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fstream>

#include "base/fs.hpp"
#include "oci/digest.hpp"
#include "store/store.hpp"
#include "temp_dir.hpp"

namespace ctr::store {

namespace {

class LookupTest : public test::StoreTest {
protected:
    // Adds an empty layer on top of the image and returns its directory.
    std::string layer() {
        oci::Digest d = oci::sha256_of("layer " + std::to_string(m_img.config.diff_ids.size()));
        m_img.config.diff_ids.push_back(d);
        std::string path = m_store->layer_path(d);
        EXPECT_TRUE(fs::make_dirs(path, 0755));
        return path;
    }
    static void dir(const std::string& p) { ASSERT_TRUE(fs::make_dirs(p, 0755)); }
    static void file(const std::string& p) { std::ofstream(p) << "x"; }
    static void link(const std::string& target, const std::string& p) {
        ASSERT_EQ(::symlink(target.c_str(), p.c_str()), 0);
    }
    static bool whiteout(const std::string& p) {
        return ::mknod(p.c_str(), S_IFCHR | 0000, ::makedev(0, 0)) == 0;
    }
    static bool opaque(const std::string& p) {
        return ::setxattr(p.c_str(), "user.overlay.opaque", "y", 1, 0) == 0;
    }

    // "file", "dir", "link" or "none".
    std::string kind(const std::string& path) {
        auto r = m_store->lookup(m_img, path);
        EXPECT_TRUE(r) << r.error().message;
        if (!r || !*r) return "none";
        if (S_ISREG((*r)->st_mode)) return "file";
        if (S_ISDIR((*r)->st_mode)) return "dir";
        return "other";
    }

    Image m_img;
};

TEST_F(LookupTest, MergedUsrWithInitInALaterLayer) {
    std::string l1 = layer();
    dir(l1 + "/usr/sbin");
    link("/usr/sbin", l1 + "/sbin"); // absolute: resolved from the image's root, not the host's
    std::string l2 = layer();
    dir(l2 + "/usr/sbin");
    file(l2 + "/usr/sbin/systemd-real");
    link("systemd-real", l2 + "/usr/sbin/init");
    EXPECT_EQ(kind("sbin/init"), "file");
    EXPECT_EQ(kind("/sbin/init"), "file");
    EXPECT_EQ(kind("sbin"), "dir");
    EXPECT_EQ(kind("usr/sbin/missing"), "none");
}

TEST_F(LookupTest, WhiteoutInAnUpperLayerHidesTheFile) {
    std::string l1 = layer();
    dir(l1 + "/sbin");
    file(l1 + "/sbin/init");
    std::string l2 = layer();
    dir(l2 + "/sbin");
    if (!whiteout(l2 + "/sbin/init")) GTEST_SKIP() << "this kernel refuses whiteout devices to this user";
    EXPECT_EQ(kind("sbin/init"), "none");
    // A new file over the whiteout, one layer up, is there again.
    std::string l3 = layer();
    dir(l3 + "/sbin");
    file(l3 + "/sbin/init");
    EXPECT_EQ(kind("sbin/init"), "file");
}

TEST_F(LookupTest, OpaqueDirectoryHidesLowerContents) {
    std::string l1 = layer();
    dir(l1 + "/etc/deep");
    file(l1 + "/etc/deep/old");
    file(l1 + "/etc/kept");
    std::string l2 = layer();
    dir(l2 + "/etc/deep");
    if (!opaque(l2 + "/etc/deep")) GTEST_SKIP() << "no user.* extended attributes on this file system";
    file(l2 + "/etc/deep/new");
    EXPECT_EQ(kind("etc/deep/new"), "file");
    EXPECT_EQ(kind("etc/deep/old"), "none");
    EXPECT_EQ(kind("etc/kept"), "file"); // only the opaque directory's own contents are hidden
    // Below an opaque directory, lower layers do not show through deeper either.
    dir(l1 + "/etc/deep/sub");
    file(l1 + "/etc/deep/sub/f");
    dir(l2 + "/etc/deep/sub");
    EXPECT_EQ(kind("etc/deep/sub/f"), "none");
}

TEST_F(LookupTest, UpperFileReplacesLowerDirectory) {
    std::string l1 = layer();
    dir(l1 + "/opt/tool");
    file(l1 + "/opt/tool/bin");
    std::string l2 = layer();
    dir(l2 + "/opt");
    file(l2 + "/opt/tool");
    EXPECT_EQ(kind("opt/tool"), "file");
    EXPECT_EQ(kind("opt/tool/bin"), "none"); // a file where a directory should be
}

TEST_F(LookupTest, LinksStayInsideTheImage) {
    std::string l1 = layer();
    dir(l1 + "/a");
    file(l1 + "/target");
    link("../../../../target", l1 + "/a/up"); // ".." stops at the image's root
    link("/a/loop2", l1 + "/a/loop1");
    link("/a/loop1", l1 + "/a/loop2");
    link("/etc/passwd", l1 + "/a/host"); // the host has it; the image does not
    EXPECT_EQ(kind("a/up"), "file");
    EXPECT_EQ(kind("a/loop1"), "none");
    EXPECT_EQ(kind("a/host"), "none");
    EXPECT_EQ(kind("../../target"), "file");
}

TEST_F(LookupTest, NoLayersNothingFound) {
    EXPECT_EQ(kind("sbin/init"), "none");
}

} // namespace

} // namespace ctr::store
