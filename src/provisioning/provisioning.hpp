// SPDX-License-Identifier: MIT
// The built-in first-boot provisioning script (create-user.sh beside this file, embedded at build time).
#pragma once

namespace ctr::provisioning {

// The POSIX sh script run as root inside a machine on its first boot, unless the image has an
// executable /etc/machine/create-user.sh.
const char* builtin_script();
inline constexpr const char* k_image_script = "/etc/machine/create-user.sh";

} // namespace ctr::provisioning
