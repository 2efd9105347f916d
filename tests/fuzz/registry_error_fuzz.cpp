// SPDX-License-Identifier: MIT
// The body of a failed registry request (a distribution error document, or anything else) becomes part
// of the error message. It must never throw: blob downloads run on worker threads.
#include <cstdint>
#include <string>

#include "registry/client.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    (void)ctr::registry::registry_error_text(std::string(reinterpret_cast<const char*>(data), size));
    return 0;
}
