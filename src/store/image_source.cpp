// SPDX-License-Identifier: MIT
#include "store/image_source.hpp"

#include <cerrno>

namespace ctr::store {

Result<ImageRecord> find_or_pull(const Store& store, const std::string& text, const PullFn& pull,
                                 bool always_pull) {
    auto rec = store.find(text);
    if (rec && !always_pull) return rec;
    if (!rec && rec.error().errnum != ENOENT) return rec; // not a reference, or an ambiguous ID
    if (!pull) return rec;
    std::string name = TRY(pull(text));
    return store.find(name);
}

} // namespace ctr::store
