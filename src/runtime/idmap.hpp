// SPDX-License-Identifier: MIT
// User-namespace id maps as plain data: the "keep-id" map of SPEC §2 (the host user's id maps to
// itself, every other id 0..65535 into the user's subordinate range) and /etc/subuid parsing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace ctr::runtime {

struct IdRange {
    uint32_t inside = 0;
    uint32_t outside = 0;
    uint32_t count = 0;
    bool operator==(const IdRange&) const = default;
};

struct IdMap {
    std::vector<IdRange> uids;
    std::vector<IdRange> gids;

    // True when every id maps to itself (root without subordinate ids): no namespace needed for files.
    bool identity() const;
    // The host id of an id inside, if mapped.
    static std::optional<uint32_t> to_host(const std::vector<IdRange>& ranges, uint32_t inside);
};

struct SubIdRange {
    uint32_t start = 0;
    uint32_t count = 0;
};

// The first range for `user` (by name or decimal uid) in /etc/subuid-format text.
std::optional<SubIdRange> find_subid_range(const std::string& text, const std::string& user, uint32_t id);

// keep-id ranges: `host_id` -> itself, the other ids 0..65535 -> `sub` in order. Without `sub`, only
// root is allowed and gets the identity map.
Result<std::vector<IdRange>> keep_id_ranges(uint32_t host_id, std::optional<SubIdRange> sub,
                                            const char* file);

// The map for the user running this process, from the password database, /etc/subuid and /etc/subgid.
// For root: slice 0 of root's pool (the store's ids), never the identity.
Result<IdMap> current_user_idmap();

// Root-run machines never map host uid 0 (SPEC §2, docs/SECURITY.md). Root's ids for them come from its
// own ranges in /etc/subuid and /etc/subgid ("root:" or "0:" lines), else from k_root_default_pool, in
// slices of 65536: slice 0 owns the store's unpacked layers, slice k >= 1 belongs to one machine.
constexpr uint32_t k_slice_ids = 65536;
constexpr SubIdRange k_root_default_pool{2147483648u, 1073741824u}; // 2^31 upwards: 16384 slices
struct RootPool {
    SubIdRange uids, gids;
    uint32_t slices() const;
};
// Root's pool from the texts of /etc/subuid and /etc/subgid. The default pool is refused when another
// user's range overlaps it; a pool needs room for the store and one machine.
Result<RootPool> root_id_pool(const std::string& subuid, const std::string& subgid);
Result<RootPool> root_id_pool();
// The map of slice `slice`: ids 0..65535 to that slice of the pool.
IdMap slice_map(const RootPool& pool, uint32_t slice);

} // namespace ctr::runtime
