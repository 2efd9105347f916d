// SPDX-License-Identifier: MIT
// ADD's http(s) sources: one download into a file of the builder's work directory, hashed as it arrives.
#pragma once

#include <optional>
#include <string>

#include "base/result.hpp"

namespace ctr::build {

// Downloads `url` into the new file `path` (mode 0600), at most the store's layer size limit, and returns
// "sha256:…" of what arrived; fails when `checksum` ("sha256:…") is given and differs.
Result<std::string> fetch_url(const std::string& url, const std::string& path,
                              const std::optional<std::string>& checksum);

} // namespace ctr::build
