// SPDX-License-Identifier: MIT
// Image references as users and image archives spell them. Besides not crashing, a parsed reference
// must print as text that parses back to the same reference: names are stored in that printed form.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "oci/reference.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto ref = ctr::oci::parse_reference(text);
    if (!ref) return 0;
    std::string printed = ref->str();
    (void)ref->registry_host();
    (void)ref->base_name();
    auto again = ctr::oci::parse_reference(printed);
    if (!again || again->str() != printed) {
        std::fprintf(stderr, "reference \"%s\" prints as \"%s\", which parses as %s\n",
                     std::string(text).c_str(), printed.c_str(),
                     again ? again->str().c_str() : again.error().message.c_str());
        std::abort();
    }
    return 0;
}
