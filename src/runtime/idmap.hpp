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
Result<IdMap> current_user_idmap();

} // namespace ctr::runtime
