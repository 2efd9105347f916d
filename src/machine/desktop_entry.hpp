// SPDX-License-Identifier: MIT
// A machine app's desktop entry as `machine export-app` reads it (freedesktop.org Desktop Entry spec),
// and the host entry it writes. The machine's file is hostile input: only the [Desktop Entry] group and
// an allow-list of keys are kept, a value with a control character is dropped, and the host entry's Exec
// always starts the fixed `container machine run -n NAME --` (so the machine chooses only what runs inside).
#pragma once

#include <string>

#include "base/result.hpp"

namespace ctr::machine {

struct DesktopEntry {
    std::string name, generic_name, comment, icon, categories, exec, startup_wm_class;
    bool terminal = false;
};

// Parses the machine's entry; fails unless it is an Application with a Name and an Exec.
Result<DesktopEntry> parse_desktop_entry(const std::string& text);

// The host's entry: Name gets " (on MACHINE)", Exec becomes `CONTAINER machine run -n MACHINE -- EXEC`
// (EXEC as the machine wrote it, its field codes left to the launcher), Icon is `icon_path` when given.
std::string host_desktop_entry(const DesktopEntry& e, const std::string& container,
                               const std::string& machine, const std::string& icon_path);

// An app or icon name usable in a file name: letters, digits, '.', '_', '-', '+'; not "." or "..".
bool safe_name(const std::string& s);

} // namespace ctr::machine
