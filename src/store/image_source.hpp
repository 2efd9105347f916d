// SPDX-License-Identifier: MIT
// Where the image a command names comes from: the store when it has it, else a registry. `machine
// create` and `build`'s FROM share this rule; how a pull is done and shown stays with the caller.
#pragma once

#include <functional>
#include <string>

#include "base/result.hpp"
#include "store/store.hpp"

namespace ctr::store {

// Pulls the reference `text` into the store and returns the name it was stored under.
using PullFn = std::function<Result<std::string>(const std::string& text)>;

// The stored image `text` names. When the store has none (or with `always_pull`), `pull` fetches it
// first; text that is not a reference, or an ambiguous image ID, fails with the store's message and
// pulls nothing. Without `pull`, the store's answer stands.
Result<ImageRecord> find_or_pull(const Store& store, const std::string& text, const PullFn& pull,
                                 bool always_pull = false);

} // namespace ctr::store
