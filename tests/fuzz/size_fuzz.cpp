// SPDX-License-Identifier: MIT
// Sizes given on the command line and in machine settings ("512M", "1.5GiB"). A parsed size must also
// print without trouble, and the parser must accept its own decimal form back.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "base/size.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    auto bytes = ctr::parse_size(text);
    if (!bytes) return 0;
    (void)ctr::format_size(*bytes);
    auto again = ctr::parse_size(std::to_string(*bytes));
    if (!again || *again != *bytes) {
        std::fprintf(stderr, "\"%s\" is %llu bytes, which does not parse back\n", text.c_str(),
                     static_cast<unsigned long long>(*bytes));
        std::abort();
    }
    return 0;
}
