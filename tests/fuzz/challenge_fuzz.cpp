// SPDX-License-Identifier: MIT
// WWW-Authenticate headers come from any registry a user pulls from. The parsed challenge must have a
// lower-case scheme and lower-case parameter names, which the client looks up as "bearer", "realm", ….
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "registry/config.hpp"

namespace {

bool lower_case(const std::string& s) {
    for (char c : s)
        if (std::isupper(static_cast<unsigned char>(c))) return false;
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string header(reinterpret_cast<const char*>(data), size);
    auto c = ctr::registry::parse_challenge(header);
    if (!c) return 0;
    bool ok = !c->scheme.empty() && lower_case(c->scheme);
    for (const auto& [key, value] : c->params)
        ok = ok && lower_case(key);
    if (!ok) {
        std::fprintf(stderr, "challenge \"%s\": scheme or parameter names not lower-case and non-empty\n",
                     header.c_str());
        std::abort();
    }
    return 0;
}
