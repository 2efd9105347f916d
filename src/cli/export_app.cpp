// SPDX-License-Identifier: MIT
// `container machine export-app -n NAME APP [--remove]`: a host launcher entry (and icon) for an app of
// the machine, like distrobox-export. The machine's files are read from inside it (`machine run cat`),
// so nothing on the host follows a link the machine planted; what comes back is parsed as hostile input
// (machine/desktop_entry.hpp).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>

#include <fmt/format.h>

#include "base/fs.hpp"
#include "cli/commands.hpp"
#include "machine/desktop_entry.hpp"
#include "machine/machine.hpp"
#include "runtime/spawn.hpp"

namespace ctr::cli {

namespace {

constexpr size_t k_max_entry = 256 * 1024, k_max_icon = 2 * 1024 * 1024;

struct ExportFlags {
    std::string machine, app;
    bool remove = false;
};

// `container machine run -n NAME --no-desktop -- sh -c SCRIPT sh ARG` with our stdin and stderr on
// /dev/null and stdout read (at most `max` bytes; more is an error). Returns the status and the output.
Result<std::pair<int, std::string>> run_in_machine(const std::string& name, const std::string& script,
                                                   const std::string& arg, size_t max) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return sys_error(errno, "pipe");
    UniqueFd r(out[0]), w(out[1]);
    std::string exe = self_exe();
    std::vector<std::string> args = {exe,  "machine", "run", "-n",   name, "--no-desktop",
                                     "--", "sh",      "-c",  script, "sh", arg};
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) return sys_error(errno, "fork");
    if (pid == 0) {
        runtime::harden_child(); // like every child of ours: no caller's fd, keyring or dumpable state
        int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        ::dup2(null, 0);
        ::dup2(w.get(), 1);
        ::dup2(null, 2);
        ::execv(exe.c_str(), argv.data());
        ::_exit(127);
    }
    w.reset();
    std::string data;
    char buf[65536];
    bool too_big = false;
    for (;;) {
        ssize_t n = ::read(r.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (data.size() + static_cast<size_t>(n) > max) too_big = true;
        if (!too_big) data.append(buf, static_cast<size_t>(n));
    }
    r.reset();
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (too_big) return make_error("what the machine sent for {} is larger than {} bytes", arg, max);
    return std::pair<int, std::string>{WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), data};
}

std::string data_home() {
    if (const char* x = std::getenv("XDG_DATA_HOME"); x && x[0] == '/') return x;
    const char* home = std::getenv("HOME");
    return std::string(home ? home : "") + "/.local/share";
}

constexpr const char* k_find_entry =
    "for d in /usr/local/share/applications /usr/share/applications; do "
    "if [ -f \"$d/$1.desktop\" ]; then exec cat \"$d/$1.desktop\"; fi; done; "
    "command -v \"$1\" >/dev/null 2>&1 && exit 4; exit 3";

// The first line names the extension, the rest is the icon.
constexpr const char* k_find_icon =
    "case $1 in /*) for e in png svg xpm; do case $1 in *.$e) [ -f \"$1\" ] && { echo $e; exec cat \"$1\"; "
    "};; "
    "esac; done; exit 3;; esac; "
    "for f in /usr/share/icons/hicolor/scalable/apps/$1.svg /usr/share/icons/hicolor/256x256/apps/$1.png "
    "/usr/share/icons/hicolor/128x128/apps/$1.png /usr/share/icons/hicolor/64x64/apps/$1.png "
    "/usr/share/icons/hicolor/48x48/apps/$1.png /usr/share/pixmaps/$1.svg /usr/share/pixmaps/$1.png "
    "/usr/share/pixmaps/$1.xpm; do [ -f \"$f\" ] && { echo \"${f##*.}\"; exec cat \"$f\"; }; done; exit 3";

Result<int> do_export(const ExportFlags& f) {
    std::string app = f.app;
    if (app.size() > 8 && app.substr(app.size() - 8) == ".desktop") app.resize(app.size() - 8);
    if (!machine::safe_name(app))
        return make_error("invalid app name \"{}\": expected letters, digits, '.', '_', '-' or '+'", f.app);
    store::Store s = TRY(store::Store::open(store::Store::Open::light));
    machine::Machines machines(s);
    std::string name = TRY(machines.resolve(f.machine));
    std::string base = fmt::format("container-{}-{}", name, app);
    std::string apps = data_home() + "/applications", icons = data_home() + "/icons/container";
    std::string entry_path = apps + "/" + base + ".desktop";
    if (f.remove) {
        bool any = false;
        if (::unlink(entry_path.c_str()) == 0) any = true;
        for (const char* ext : {".png", ".svg", ".xpm"})
            if (::unlink((icons + "/" + base + ext).c_str()) == 0) any = true;
        if (!any) return make_error("{} of container machine {} is not exported", app, name);
        fmt::print("{}\n", entry_path);
        return 0;
    }
    auto [status, text] = TRY(run_in_machine(name, k_find_entry, app, k_max_entry));
    machine::DesktopEntry e;
    if (status == 0) {
        auto parsed = machine::parse_desktop_entry(text);
        if (!parsed) return wrap(std::move(parsed).error(), fmt::format("export {}", app));
        e = *parsed;
    } else if (status == 4) {
        e.name = app; // a command without an entry of its own (xeyes): launched by its name
        e.exec = app;
    } else {
        return make_error("{} has no desktop entry and is no command in container machine {}", app, name);
    }
    std::string icon_path;
    if (!e.icon.empty() && (e.icon[0] == '/' || machine::safe_name(e.icon))) {
        auto icon = run_in_machine(name, k_find_icon, e.icon, k_max_icon);
        if (icon && icon->first == 0) {
            auto nl = icon->second.find('\n');
            std::string ext = icon->second.substr(0, nl);
            if (nl != std::string::npos && (ext == "png" || ext == "svg" || ext == "xpm")) {
                TRY(fs::make_dirs(icons, 0755));
                icon_path = icons + "/" + base + "." + ext;
                TRY(fs::write_file_atomic(icon_path, std::string_view(icon->second).substr(nl + 1), 0644));
            }
        }
    }
    TRY(fs::make_dirs(apps, 0755));
    // Replaced by rename, never written through: a link put there is replaced, not followed.
    TRY(fs::write_file_atomic(entry_path, machine::host_desktop_entry(e, self_exe(), name, icon_path),
                              0644));
    fmt::print("{}\n", entry_path);
    return 0;
}

} // namespace

void add_export_app_command(CLI::App* machine, Action& action) {
    auto f = std::make_shared<ExportFlags>();
    CLI::App* sub = machine->add_subcommand(
        "export-app",
        "Add a machine's app to the host's launcher (a .desktop entry that runs it in the machine)");
    sub->add_option("-n,--name", f->machine, "Container machine ID (uses default if not specified)")
        ->type_name(k_machine_type);
    sub->add_option("app", f->app, "The app: its desktop entry's name (org.gnome.gedit) or a command")
        ->required();
    sub->add_flag("--remove", f->remove, "Remove the entry (and icon) exported before");
    sub->fallthrough();
    sub->callback([&action, f] { action = [f] { return do_export(*f); }; });
}

} // namespace ctr::cli
