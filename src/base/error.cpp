// SPDX-License-Identifier: MIT
// Construction of Error values.
#include "base/result.hpp"

#include <cstring>

namespace ctr {

Error sys_error(int errnum, std::string what) {
    return Error{fmt::format("{}: {}", what, std::strerror(errnum)), errnum};
}

Error wrap(Error e, const std::string& context) {
    e.message = context + ": " + e.message;
    return e;
}

} // namespace ctr
