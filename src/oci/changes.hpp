// SPDX-License-Identifier: MIT
// Dockerfile-style changes to an image config, as `commit --change` (and later `build`) gives them:
// CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL. Pure data: each change edits
// the "config" object of an OCI image config.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace ctr::oci {

// Applies one change ("CMD [\"/bin/bash\"]", "ENV K=V", "EXPOSE 8080/tcp", …) to `config` (the image
// config's "config" object, created when null). Fails naming the change when it is malformed or not
// one of the instructions above.
Result<void> apply_change(nlohmann::json& config, const std::string& change);

} // namespace ctr::oci
