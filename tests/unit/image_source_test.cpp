// SPDX-License-Identifier: MIT
// store::find_or_pull, the one rule `machine create` and build's FROM use: the store's copy when it has
// one, else a pull, and never a pull for text that cannot name a registry image.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "store/image_source.hpp"
#include "temp_dir.hpp"

namespace ctr::store {

namespace {

class ImageSourceTest : public test::StoreTest {
protected:
    // Names an image in the store's records (find() reads only those).
    void name(const std::string& ref, const std::string& hex) {
        ASSERT_TRUE(m_store->tag({"", {"sha256", hex}, ""}, ref));
    }
    // A pull that records what it was asked for and "stores" it under `as`.
    PullFn pull_as(const std::string& as, const std::string& hex) {
        return [this, as, hex](const std::string& text) -> Result<std::string> {
            m_pulled.push_back(text);
            name(as, hex);
            return as;
        };
    }

    std::vector<std::string> m_pulled;
};

const std::string k_hex_a = std::string(64, 'a');
const std::string k_hex_b = std::string(63, 'a') + "b";
const std::string k_hex_c = std::string(64, 'c');

TEST_F(ImageSourceTest, StoredImageIsUsedWithoutPull) {
    name("docker.io/library/debian:bookworm", k_hex_a);
    auto r = find_or_pull(*m_store, "debian:bookworm", pull_as("unused", k_hex_c));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->name, "docker.io/library/debian:bookworm");
    EXPECT_TRUE(m_pulled.empty());
}

TEST_F(ImageSourceTest, MissingImageIsPulledAndFoundUnderTheNameThePullGave) {
    auto r = find_or_pull(*m_store, "debian:trixie", pull_as("docker.io/library/debian:trixie", k_hex_c));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->name, "docker.io/library/debian:trixie");
    EXPECT_EQ(r->digest.hex, k_hex_c);
    EXPECT_EQ(m_pulled, std::vector<std::string>{"debian:trixie"});
}

TEST_F(ImageSourceTest, AlwaysPullPullsAStoredImage) {
    name("docker.io/library/debian:bookworm", k_hex_a);
    auto r = find_or_pull(*m_store, "debian:bookworm", pull_as("docker.io/library/debian:bookworm", k_hex_c),
                          true);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->digest.hex, k_hex_c); // the pulled one, not the one stored before
    EXPECT_EQ(m_pulled.size(), 1u);
}

TEST_F(ImageSourceTest, TextThatIsNoReferenceIsNeverPulled) {
    auto r = find_or_pull(*m_store, "Not:A:Ref", pull_as("unused", k_hex_c));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("invalid reference"), std::string::npos) << r.error().message;
    EXPECT_TRUE(m_pulled.empty());
}

TEST_F(ImageSourceTest, AmbiguousImageIdIsNeverPulled) {
    name("localhost/one:1", k_hex_a);
    name("localhost/two:1", k_hex_b);
    auto r = find_or_pull(*m_store, std::string(12, 'a'), pull_as("unused", k_hex_c));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("ambiguous"), std::string::npos) << r.error().message;
    EXPECT_TRUE(m_pulled.empty());
}

TEST_F(ImageSourceTest, WithoutAPullTheStoresAnswerStands) {
    auto r = find_or_pull(*m_store, "debian:trixie", nullptr);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().errnum, ENOENT);
}

TEST_F(ImageSourceTest, AFailedPullIsTheAnswer) {
    PullFn fail = [](const std::string&) -> Result<std::string> { return make_error("cannot reach registry"); };
    auto r = find_or_pull(*m_store, "debian:trixie", fail);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "cannot reach registry");
}

} // namespace

} // namespace ctr::store
