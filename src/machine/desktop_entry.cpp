// SPDX-License-Identifier: MIT
// Desktop entry parsing and writing for `machine export-app`.
#include "machine/desktop_entry.hpp"

#include <fmt/format.h>

#include "base/text.hpp"

namespace ctr::machine {

namespace {

constexpr size_t k_max_value = 4096;

bool clean(const std::string& v) {
    if (v.size() > k_max_value) return false;
    for (unsigned char c : v)
        if (c < 0x20 || c == 0x7f) return false;
    return true;
}

// A word of an Exec line quoted as the spec wants when it holds anything but safe characters.
std::string exec_arg(const std::string& s) {
    if (!s.empty() &&
        s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-+=:,@") ==
            std::string::npos)
        return s;
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '`' || c == '$' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
    // The file format escapes backslashes once more (spec: "Exec" is a string value).
    std::string escaped;
    for (char c : out)
        escaped += c == '\\' ? std::string("\\\\") : std::string(1, c);
    return escaped;
}

} // namespace

bool safe_name(const std::string& s) {
    return !s.empty() && s.size() <= 200 && s != "." && s != ".." &&
           s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-+") ==
               std::string::npos;
}

Result<DesktopEntry> parse_desktop_entry(const std::string& text) {
    DesktopEntry e;
    bool in_entry = false, application = false;
    for (std::string line : split(text, '\n')) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        if (line[0] == '[') {
            in_entry = line == "[Desktop Entry]";
            continue;
        }
        auto eq = line.find('=');
        if (!in_entry || eq == std::string::npos) continue;
        std::string key = line.substr(0, eq), value = line.substr(eq + 1);
        while (!key.empty() && key.back() == ' ')
            key.pop_back();
        value.erase(0, value.find_first_not_of(' '));
        if (!clean(value)) continue; // not ours to repair: the key is left out
        if (key == "Type")
            application = value == "Application";
        else if (key == "Name")
            e.name = value;
        else if (key == "GenericName")
            e.generic_name = value;
        else if (key == "Comment")
            e.comment = value;
        else if (key == "Icon")
            e.icon = value;
        else if (key == "Categories")
            e.categories = value;
        else if (key == "Exec")
            e.exec = value;
        else if (key == "StartupWMClass")
            e.startup_wm_class = value;
        else if (key == "Terminal")
            e.terminal = value == "true";
        // Everything else (TryExec, DBusActivatable, X-*, localized keys, actions) is not carried over.
    }
    if (!application) return make_error("the machine's desktop entry is not of Type=Application");
    if (e.name.empty() || e.exec.empty())
        return make_error("the machine's desktop entry has no Name or no Exec");
    return e;
}

std::string host_desktop_entry(const DesktopEntry& e, const std::string& container,
                               const std::string& machine, const std::string& icon_path) {
    std::string out = "[Desktop Entry]\nType=Application\n";
    out += fmt::format("Name={} (on {})\n", e.name, machine);
    if (!e.generic_name.empty()) out += "GenericName=" + e.generic_name + "\n";
    if (!e.comment.empty()) out += "Comment=" + e.comment + "\n";
    if (!icon_path.empty()) out += "Icon=" + icon_path + "\n";
    if (!e.categories.empty()) out += "Categories=" + e.categories + "\n";
    if (!e.startup_wm_class.empty()) out += "StartupWMClass=" + e.startup_wm_class + "\n";
    out += fmt::format("Terminal={}\n", e.terminal ? "true" : "false");
    out += fmt::format("Exec={} machine run -n {} -- {}\n", exec_arg(container), exec_arg(machine), e.exec);
    out += fmt::format("X-Container-Machine={}\n", machine);
    return out;
}

} // namespace ctr::machine
