// SPDX-License-Identifier: MIT
// Id map construction.
#include "runtime/idmap.hpp"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>

#include "base/fs.hpp"
#include "base/text.hpp"

namespace ctr::runtime {

namespace {
constexpr uint32_t k_ids = 65536;
}

bool IdMap::identity() const {
    auto ident = [](const std::vector<IdRange>& r) {
        return r.size() == 1 && r[0].inside == 0 && r[0].outside == 0 && r[0].count == 4294967295u;
    };
    return ident(uids) && ident(gids);
}

std::optional<uint32_t> IdMap::to_host(const std::vector<IdRange>& ranges, uint32_t inside) {
    for (const auto& r : ranges)
        if (inside >= r.inside && inside - r.inside < r.count) return r.outside + (inside - r.inside);
    return std::nullopt;
}

namespace {

// One line of /etc/subuid or /etc/subgid: "who:start:count"; malformed lines are skipped.
struct SubIdLine {
    std::string who;
    uint64_t start = 0, count = 0;
};

std::vector<SubIdLine> subid_lines(const std::string& text) {
    std::vector<SubIdLine> out;
    for (const auto& line : split(text, '\n')) {
        auto f = split(line, ':');
        if (f.size() < 3) continue;
        SubIdLine l{f[0]};
        if (std::from_chars(f[1].data(), f[1].data() + f[1].size(), l.start).ec != std::errc() ||
            std::from_chars(f[2].data(), f[2].data() + f[2].size(), l.count).ec != std::errc())
            continue;
        out.push_back(std::move(l));
    }
    return out;
}

} // namespace

std::optional<SubIdRange> find_subid_range(const std::string& text, const std::string& user, uint32_t id) {
    std::string id_text = std::to_string(id);
    for (const auto& l : subid_lines(text)) {
        if (l.who != user && l.who != id_text) continue;
        if (l.start > UINT32_MAX || l.count > UINT32_MAX) continue; // ids are 32 bits
        return SubIdRange{static_cast<uint32_t>(l.start), static_cast<uint32_t>(l.count)};
    }
    return std::nullopt;
}

Result<std::vector<IdRange>> keep_id_ranges(uint32_t host_id, std::optional<SubIdRange> sub,
                                            const char* file) {
    if (!sub) {
        if (host_id == 0) return std::vector<IdRange>{{0, 0, 4294967295u}};
        return make_error("no subordinate id range for this user in {} (add one with usermod --add-subuids/"
                          "--add-subgids; at least 65536 ids are needed)",
                          file);
    }
    if (sub->count < k_ids - 1)
        return make_error("the subordinate id range in {} has {} ids; at least 65536 are needed", file,
                          sub->count);
    std::vector<IdRange> out;
    if (host_id >= k_ids) {
        out.push_back({0, sub->start, k_ids});
        out.push_back({host_id, host_id, 1});
        return out;
    }
    if (host_id > 0) out.push_back({0, sub->start, host_id});
    out.push_back({host_id, host_id, 1});
    if (host_id + 1 < k_ids) out.push_back({host_id + 1, sub->start + host_id, k_ids - 1 - host_id});
    return out;
}

uint32_t RootPool::slices() const {
    return std::min(uids.count, gids.count) / k_ids;
}

namespace {

// The pool in one file: root's own line, else the default block if no other user's range overlaps it.
Result<SubIdRange> pool_in(const std::string& text, const char* file) {
    if (auto own = find_subid_range(text, "root", 0)) return *own;
    SubIdRange d = k_root_default_pool;
    for (const auto& l : subid_lines(text))
        if (l.start < uint64_t{d.start} + d.count && uint64_t{d.start} < l.start + l.count)
            return make_error("the default ids for root-run machines ({}-{}) overlap the range of {} in {}; give root "
                              "a range of its own there (usermod --add-subuids/--add-subgids FIRST-LAST root)",
                              d.start, uint64_t{d.start} + d.count - 1, l.who, file);
    return d;
}

} // namespace

Result<RootPool> root_id_pool(const std::string& subuid, const std::string& subgid) {
    RootPool p{TRY(pool_in(subuid, "/etc/subuid")), TRY(pool_in(subgid, "/etc/subgid"))};
    if (p.slices() < 2)
        return make_error("root's subordinate id range has room for {} blocks of 65536 ids; root-run machines "
                          "need one for the store and one per machine",
                          p.slices());
    return p;
}

Result<RootPool> root_id_pool() {
    auto subuid = fs::read_file("/etc/subuid");
    auto subgid = fs::read_file("/etc/subgid");
    return root_id_pool(subuid ? *subuid : "", subgid ? *subgid : "");
}

IdMap slice_map(const RootPool& pool, uint32_t slice) {
    IdMap m;
    m.uids = {{0, pool.uids.start + slice * k_ids, k_ids}};
    m.gids = {{0, pool.gids.start + slice * k_ids, k_ids}};
    return m;
}

Result<IdMap> current_user_idmap() {
    uid_t uid = ::getuid();
    gid_t gid = ::getgid();
    if (uid == 0) return slice_map(TRY(root_id_pool()), 0);
    struct passwd* pw = ::getpwuid(uid);
    std::string name = pw ? pw->pw_name : std::to_string(uid);
    auto subuid = fs::read_file("/etc/subuid");
    auto subgid = fs::read_file("/etc/subgid");
    std::optional<SubIdRange> ru = subuid ? find_subid_range(*subuid, name, uid) : std::nullopt;
    std::optional<SubIdRange> rg = subgid ? find_subid_range(*subgid, name, uid) : std::nullopt;
    IdMap m;
    m.uids = TRY(keep_id_ranges(uid, ru, "/etc/subuid"));
    m.gids = TRY(keep_id_ranges(gid, rg, "/etc/subgid"));
    return m;
}

} // namespace ctr::runtime
