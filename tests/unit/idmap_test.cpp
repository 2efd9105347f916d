// SPDX-License-Identifier: MIT
// keep-id maps and /etc/subuid parsing.
#include <gtest/gtest.h>

#include "runtime/idmap.hpp"

namespace ctr::runtime {

TEST(IdMap, KeepIdPutsTheUserInItsOwnPlace) {
    auto r = keep_id_ranges(1000, SubIdRange{100000, 65536}, "/etc/subuid");
    ASSERT_TRUE(r);
    std::vector<IdRange> want = {{0, 100000, 1000}, {1000, 1000, 1}, {1001, 101000, 64535}};
    EXPECT_EQ(*r, want);
    EXPECT_EQ(IdMap::to_host(*r, 0), 100000u);
    EXPECT_EQ(IdMap::to_host(*r, 1000), 1000u);
    EXPECT_EQ(IdMap::to_host(*r, 65535), 165534u);
    EXPECT_EQ(IdMap::to_host(*r, 65536), std::nullopt);
}

TEST(IdMap, EdgeUsers) {
    auto big = keep_id_ranges(70000, SubIdRange{100000, 65536}, "/etc/subuid");
    ASSERT_TRUE(big);
    EXPECT_EQ(IdMap::to_host(*big, 0), 100000u);
    EXPECT_EQ(IdMap::to_host(*big, 70000), 70000u);
    auto root_sub = keep_id_ranges(0, SubIdRange{100000, 65536}, "/etc/subuid");
    ASSERT_TRUE(root_sub);
    EXPECT_EQ(IdMap::to_host(*root_sub, 0), 0u);
    EXPECT_EQ(IdMap::to_host(*root_sub, 1), 100000u);
    auto root = keep_id_ranges(0, std::nullopt, "/etc/subuid");
    ASSERT_TRUE(root);
    IdMap m{*root, *root};
    EXPECT_TRUE(m.identity());
    auto none = keep_id_ranges(1000, std::nullopt, "/etc/subuid");
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message.find("no subordinate id range"), std::string::npos);
    EXPECT_FALSE(keep_id_ranges(1000, SubIdRange{100000, 1000}, "/etc/subuid"));
}

TEST(IdMap, FindsRangesByNameOrUid) {
    std::string text = "alice:100000:65536\n# comment\nbroken line\n1001:200000:65536\nbob:300000:70000";
    EXPECT_EQ(find_subid_range(text, "alice", 1000)->start, 100000u);
    EXPECT_EQ(find_subid_range(text, "carol", 1001)->start, 200000u);
    EXPECT_EQ(find_subid_range(text, "bob", 5)->count, 70000u);
    EXPECT_FALSE(find_subid_range(text, "dave", 7));
}

TEST(RootPool, RootsOwnRangeElseTheDefaultBlock) {
    auto own = root_id_pool("ann:100000:65536\nroot:1000000:655360\n", "root:2000000:655360\n");
    ASSERT_TRUE(own) << own.error().message;
    EXPECT_EQ(own->uids.start, 1000000u);
    EXPECT_EQ(own->gids.start, 2000000u);
    EXPECT_EQ(own->slices(), 10u);
    IdMap store = slice_map(*own, 0), machine = slice_map(*own, 3);
    EXPECT_EQ(store.uids, (std::vector<IdRange>{{0, 1000000, 65536}}));
    EXPECT_EQ(machine.uids, (std::vector<IdRange>{{0, 1000000 + 3 * 65536, 65536}}));
    EXPECT_EQ(machine.gids, (std::vector<IdRange>{{0, 2000000 + 3 * 65536, 65536}}));
    EXPECT_FALSE(IdMap::to_host(machine.uids, 0) == 0u); // root inside is never the host's root

    auto fallback = root_id_pool("ann:100000:65536\n", "");
    ASSERT_TRUE(fallback);
    EXPECT_EQ(fallback->uids.start, k_root_default_pool.start);
    EXPECT_EQ(fallback->slices(), 16384u);
}

TEST(RootPool, RefusesOverlapsAndPoolsWithoutRoomForAMachine) {
    auto overlap = root_id_pool("ann:2147500000:65536\n", "");
    ASSERT_FALSE(overlap);
    EXPECT_NE(overlap.error().message.find("overlap the range of ann in /etc/subuid"), std::string::npos)
        << overlap.error().message;
    auto small = root_id_pool("root:100000:65536\n", "root:100000:65536\n");
    ASSERT_FALSE(small);
    EXPECT_NE(small.error().message.find("room for 1 blocks"), std::string::npos) << small.error().message;
}

} // namespace ctr::runtime
