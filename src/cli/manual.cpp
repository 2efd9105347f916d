// SPDX-License-Identifier: MIT
// The manual: a hand-written description and examples per command, kept here once. apply_manual() puts
// them under each command's --help (and so `container help VERB`); write_man_pages() renders container(1),
// container-machine(1), container-machine-run(1), … from the same text plus the parser's own usage,
// options and verbs. CMake runs the latter at build time and installs the pages.
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/fs.hpp"
#include "base/text.hpp"
#include "cli/commands.hpp"

#ifndef CONTAINER_VERSION
#define CONTAINER_VERSION "0.0.0"
#endif

namespace ctr::cli {

namespace {

struct Page {
    const char* synopsis;    // after the command's name; empty: "[OPTIONS]" and the positionals
    const char* description; // paragraphs separated by blank lines
    const char* examples;    // "$ command" lines, each with a comment line before it ("# …")
};

// Keyed by the command's path below `container` ("" is container itself).
const std::map<std::string, Page>& pages() {
    static const std::map<std::string, Page> p = {
        {"",
         {"[OPTIONS] COMMAND",
          "container gives you persistent Linux container machines: an environment made from any OCI image "
          "that boots the image's own init (systemd, sysvinit, OpenRC, runit, busybox), in which you are "
          "yourself: same user name, uid and gid, your home directory shared at the same path, your current "
          "directory kept.\n\nMachines run rootless for a regular user, each in its own user, mount, pid, uts, "
          "ipc and cgroup namespaces, sharing the host's network. Images come from OCI registries, image "
          "archives or root filesystem tarballs and are stored once per user.",
          "# Make a Debian machine and get a shell in it\n$ container machine create debian:bookworm --name dev\n"
          "$ container machine run -n dev\n# Run a command in it, booting it first if needed\n"
          "$ container machine run -n dev -- make test"}},
        {"machine",
         {"[OPTIONS] COMMAND",
          "Create, run, configure and delete container machines. A machine keeps its own files (an overlay "
          "on its image) across stops and reboots until it is deleted. The first machine created becomes the "
          "default, used whenever a command is given no name.",
          "# List machines and their state\n$ container machine ls\n# Stop every machine named\n"
          "$ container machine stop dev test"}},
        {"machine create",
         {"",
          "Create a machine from IMAGE and boot it, waiting until its init accepts commands. An image that is "
          "not in the store is pulled first. On its first boot the machine gets your user, uid, gid, home path "
          "and login shell, with passwordless sudo; an image may bring its own /etc/machine/create-user.sh.\n\n"
          "A machine that cannot boot (its provisioning failed, or systemd has no cgroup to delegate on this "
          "host) stays, stopped: the error says why, 'machine logs --boot' shows more, and 'machine start' "
          "tries again.\n\n"
          "-v SRC:DST[:ro] (or --mount type=bind,source=SRC,target=DST[,readonly]) shares another host "
          "directory or file at DST, as the home is shared: your files are yours inside, and a read-only one "
          "stays so even for root in the machine. DST may not be /, over /proc, /sys or /dev, or over the home "
          "mount, and no link inside the machine is followed on the way to it.",
          "# A Debian machine named dev, limited to 2 CPUs and 4 GiB\n"
          "$ container machine create debian:bookworm --name dev --cpus 2 --memory 4G\n"
          "# Created but not booted, with the home shared read-only\n"
          "$ container machine create debian:bookworm --name ro --home-mount ro --no-boot\n"
          "# With a data disk shared and a directory read-only\n"
          "$ container machine create debian:bookworm --name dev -v /mnt/data:/data -v /opt/sdk:/opt/sdk:ro"}},
        {"build",
         {"[OPTIONS] CONTEXT",
          "Build an image from a Containerfile (Docker's Dockerfile syntax) and the files of the directory "
          "CONTEXT, which is read in place; .containerignore or .dockerignore leaves files out (with ! "
          "exceptions). -f names the file (default: CONTEXT/Containerfile, else CONTEXT/Dockerfile).\n\n"
          "RUN steps run rootless in the same sandbox as machines (user namespace with your subordinate ids, "
          "the stage's layers under an overlay, /proc, a minimal /dev, the host's network, /etc/hosts and "
          "/etc/resolv.conf, the machines' seccomp filter and masks), without an init. Each step that changes "
          "files adds one layer; the others only change the config and its history. Steps are cached by their "
          "parent, their instruction after expansion and the contents of the files they copy; --no-cache runs "
          "them all. 'image prune' and 'image rm' drop cache entries whose layers no image keeps.\n\n"
          "Supported: FROM (AS, scratch, ARG before FROM, stages by name or number), RUN (shell and exec form, "
          "heredocs), SHELL, COPY and ADD from the context or --from a stage or image (globs, --chown, "
          "--chmod), ENV, ARG, WORKDIR, USER, LABEL, CMD, ENTRYPOINT, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, "
          "ONBUILD, MAINTAINER; ADD unpacks a local tar (plain, gzip or zstd) and downloads an http(s) URL "
          "(checked against --checksum=sha256:…, mode 0600). Not supported: RUN --mount and --security, "
          "ADD of git repositories, COPY --parents and --exclude, COPY <<heredoc. Without -t the image is named "
          "localhost/<directory of CONTEXT>:latest. The digest of the image is printed on stdout.",
          "# Build a machine image and make a machine from it\n$ container build -t devbox .\n"
          "$ container machine create devbox --name dev\n# Build one stage with a build argument, no cache\n"
          "$ container build --target test --build-arg RELEASE=bookworm --no-cache -f ci/Containerfile ."}},
        {"machine commit",
         {"",
          "Make a new image, IMAGE, from the machine's own files: its overlay layer becomes one more layer on "
          "top of the image it was made from (files added, changed and deleted, directories replaced, owners "
          "and hard links kept). A running machine is frozen while its layer is read and thawed after; "
          "--pause=false commits it as it runs instead.\n\n"
          "What belongs to this machine only is left out unless --keep names it: user (your account, group "
          "and sudoers entry from provisioning, and your home path), machine-id, journal, tmp (/tmp, "
          "/var/tmp), run and ssh-host-keys; the files the runtime writes at each boot (/etc/hosts, "
          "/etc/hostname, /etc/resolv.conf) always are. --change applies Dockerfile instructions to the "
          "image config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR); --message "
          "goes into its history. The new image's digest is printed on stdout.",
          "# Snapshot a machine set up for the team\n$ container machine commit -m 'toolchain installed' dev dev-snapshot:1\n"
          "# With a default command and environment, keeping the journal\n"
          "$ container machine commit --change 'ENV LANG=C.UTF-8' --change 'CMD [\"/bin/bash\"]' --keep journal dev dev:2"}},
        {"machine delete",
         {"",
          "Stop each machine named (cleanly, or at once with -f) and delete it with its files. Every name is "
          "processed; a failure prints one line and the exit status is 1. A machine directory that an "
          "interrupted delete or create left without its config is removed too.",
          "# Delete two machines, killing them if they run\n$ container machine rm -f dev test"}},
        {"machine export-app",
         {"",
          "Put an app of the machine in the host's launcher: writes "
          "~/.local/share/applications/container-MACHINE-APP.desktop (and its icon, when the machine has one, "
          "under ~/.local/share/icons/container), whose Exec runs the app through 'container machine run'. APP "
          "is the name of a desktop entry in the machine's /usr/share/applications (org.gnome.gedit) or a "
          "command (xeyes). The machine's entry is read from inside the machine and only its name, comment, "
          "icon, categories and command are kept. --remove deletes what was exported.",
          "# Launch the machine's gedit from the host's menu\n$ container machine export-app -n dev org.gnome.gedit\n"
          "# And take it out again\n$ container machine export-app -n dev org.gnome.gedit --remove"}},
        {"machine inspect",
         {"",
          "Print the machine's configuration and state as JSON: image, platform, status, limits (and which "
          "are not enforced on this host), home mount, extra mounts, id range of a root-run machine.",
          "$ container machine inspect dev"}},
        {"machine list",
         {"",
          "List machines: name, status, image, CPUs, memory and whether it is the default.",
          "$ container machine ls\n# Names only, for scripts\n$ container machine ls -q"}},
        {"machine logs",
         {"",
          "Print the machine's console (what its init wrote), or with --boot the supervisor's boot log.",
          "# Follow the console\n$ container machine logs -f dev\n# Why the last boot failed\n"
          "$ container machine logs --boot dev"}},
        {"machine run",
         {"[OPTIONS] [--] [CMD [ARG...]]",
          "Run CMD in the machine as you (or as root with --root, or as another user with -u), booting the "
          "machine first if it is stopped. Without CMD you get your login shell on a terminal. The command "
          "starts in your current directory when that is inside your home, else in your home.\n\n"
          "The command gets no descriptor, terminal, keyring or environment of yours except stdio (through a "
          "terminal of the machine's when yours is one), TERM, SSH_AUTH_SOCK, your desktop (below) and what -e "
          "and --env-file pass. The exit status is the command's.\n\n"
          "Graphical apps: when you have them, your Wayland socket (WAYLAND_DISPLAY), X11 display (DISPLAY, "
          "/tmp/.X11-unix and the display's cookie from XAUTHORITY), PulseAudio and PipeWire sockets and D-Bus "
          "session bus are put in the command's XDG_RUNTIME_DIR, /run/user/UID in the machine (yours, mode "
          "0700), at each run. This is on by default for a machine whose home is shared read-write "
          "(desktop=auto), off for ro and none; 'machine set desktop=true|false' decides otherwise, and "
          "--no-desktop turns it off for one command.",
          "# A shell\n$ container machine run -n dev\n# A command, as root\n"
          "$ container machine run -n dev --root -- apt-get install -y build-essential\n"
          "# With an environment variable, from another directory\n"
          "$ container machine run -n dev -e CC=clang -w /src -- make\n"
          "# A graphical app on your display, in the background\n$ container machine run -n dev -d -- gedit"}},
        {"machine set",
         {"[OPTIONS] KEY=VALUE...",
          "Change a machine's settings; they take effect at its next start. Keys: cpus, memory (at least 1G), "
          "home-mount (rw, ro or none), virtualization (true or false, needs /dev/kvm), mounts (extra mounts: "
          "each mounts=SRC:DST[:ro], -v or --mount given replaces the list; mounts= removes them all), "
          "desktop (auto, true or false: whether run forwards your display, sound and session bus; auto: when "
          "the home is shared rw; read by each run, so it needs no restart), gpu (true or false: whether "
          "/dev/dri and NVIDIA devices are passed through).",
          "$ container machine set -n dev cpus=4 memory=8G\n$ container machine stop dev\n"
          "# Share /mnt/data at /data from the next start on; later remove every extra mount\n"
          "$ container machine set -n dev -v /mnt/data:/data\n$ container machine set -n dev mounts="}},
        {"machine set-default",
         {"", "Make NAME the machine that commands use when given no name.", "$ container machine set-default dev"}},
        {"machine start",
         {"",
          "Boot each machine named (or the default one) and wait until its init accepts commands, for up to "
          "CONTAINER_READY_TIMEOUT seconds (120 by default).",
          "$ container machine start dev test"}},
        {"machine stop",
         {"",
          "Ask each machine's init to power off and wait up to --time seconds before killing it. Stopping a "
          "stopped machine succeeds.",
          "$ container machine stop dev\n# Kill it at once\n$ container machine stop -t 0 dev"}},
        {"image",
         {"[OPTIONS] COMMAND",
          "Pull, load, import, list, tag, save and delete images in your store. Layers are unpacked once and "
          "shared by every image and machine that uses them.",
          "$ container image pull debian:bookworm\n$ container image ls"}},
        {"image pull",
         {"",
          "Download an image from an OCI distribution registry: anonymous, Basic or Bearer-token auth, "
          "credentials from 'registry login' or ~/.docker/config.json, OCI and Docker manifests and indexes "
          "(resolved to this host's platform unless --platform). Layers are verified while they stream and "
          "an interrupted pull resumes where it stopped.",
          "$ container image pull debian:bookworm\n$ container image pull --platform linux/arm64 alpine:3.20\n"
          "$ container image pull --scheme http localhost:5000/team/dev:1"}},
        {"image push",
         {"",
          "Upload a stored image to an OCI distribution registry, with the same auth as pull (anonymous, Basic, "
          "Bearer tokens, 'registry login'). The image's name says where, or DESTINATION does; 'image tag' to a "
          "registry name and then push is the usual flow. Blobs the registry has are skipped, blobs of another "
          "repository of the same registry are mounted, the rest go up several at once, retried on 5xx and "
          "resumed after a cut connection. The manifest goes last, unchanged, so the pushed digest (printed "
          "on stdout) is the one 'image inspect' shows.",
          "# Share a committed machine with the team\n$ container image tag dev-snapshot registry.example.com/team/dev:1\n"
          "$ container image push registry.example.com/team/dev:1\n"
          "# Push under another name, over plain HTTP\n$ container image push --scheme http dev-snapshot localhost:5000/dev:1"}},
        {"image load",
         {"", "Load the images of an OCI image layout archive or a docker save archive (plain, gzip or zstd).",
          "$ container image load -i debian.tar"}},
        {"image import",
         {"", "Make a one-layer image named NAME from a root filesystem tarball (plain, gzip or zstd).",
          "$ container image import rootfs.tar.zst localhost/debian:bookworm"}},
        {"image list", {"", "List images: name, tag, digest, size and when each was stored.", "$ container image ls"}},
        {"image inspect", {"", "Print each image's record, manifest and config as JSON.", "$ container image inspect debian:bookworm"}},
        {"image tag", {"", "Give an image another name.", "$ container image tag debian:bookworm localhost/base:1"}},
        {"image delete",
         {"",
          "Remove image names (by reference, or every name of an image by ID), then the blobs and layers no "
          "image and no machine needs. A name a machine was made from stays unless -f. Every name is "
          "processed; a failure prints one line and the exit status is 1.",
          "$ container image rm localhost/base:1 debian:bookworm"}},
        {"image prune",
         {"",
          "Remove what no image name and no machine needs any more: blobs, unpacked layers, and build cache "
          "entries whose layers went. 'image rm' does the same after it removes names.",
          "$ container image prune"}},
        {"image save",
         {"", "Write images to an OCI image layout archive, readable by skopeo, podman and umoci.",
          "$ container image save -o dev.tar localhost/debian:bookworm"}},
        {"registry",
         {"[OPTIONS] COMMAND", "Store and forget registry credentials for pulls.",
          "$ container registry login -u me --password-stdin registry.example.com < token"}},
        {"registry login",
         {"",
          "Check a user name and password with the registry, then store them in "
          "$XDG_RUNTIME_DIR/containers/auth.json (~/.config/containers/auth.json without a runtime directory).",
          "$ container registry login -u me --password-stdin registry.example.com < token"}},
        {"registry logout", {"", "Forget the credentials stored for a registry.", "$ container registry logout registry.example.com"}},
        {"system",
         {"[OPTIONS] COMMAND", "Look after the data directory as a whole.", "$ container system check"}},
        {"system check",
         {"",
          "Verify the data directory: every named image's manifest, config and layer blobs are present and hash "
          "to their names, its layers are unpacked, and every machine's config, boot settings and image are "
          "complete. Each problem is one line starting with 'problem:', and the exit status is 1 if there is "
          "any.\n\nLines starting with 'leftover:' name what killed commands left behind: work files, "
          "interrupted downloads, the directory of a machine whose create or rm was cut short, the run state "
          "of a supervisor that is gone. They do no harm, and the next command that changes the store clears "
          "most of them. --repair clears them all now, unpacks missing layers again from their blobs, and "
          "removes corrupt blobs so that pulling the image again fetches them.",
          "# Is everything in place?\n$ container system check\n# Clear what an interrupted pull left\n"
          "$ container system check --repair"}},
        {"completion",
         {"",
          "Print the completion script for SHELL. It completes verbs and options, machine names, image names, "
          "and the keys and values of 'machine set'. Installed packages put the scripts where each shell "
          "looks, so this is for trying them out or for a user-local install.",
          "$ source <(container completion bash)\n$ container completion fish > ~/.config/fish/completions/container.fish"}},
        {"help", {"[COMMAND...]", "Print the help of a command: the same text as COMMAND --help.", "$ container help machine run"}},
    };
    return p;
}

std::string path_of(const CLI::App* a) {
    std::vector<std::string> parts;
    for (; a && a->get_parent(); a = a->get_parent())
        parts.insert(parts.begin(), a->get_name());
    std::string out;
    for (const auto& p : parts)
        out += (out.empty() ? "" : " ") + p;
    return out;
}

// The page of a command: "container-machine-run".
std::string page_name(const CLI::App* a) {
    std::string name = "container" + (path_of(a).empty() ? "" : "-" + path_of(a));
    std::replace(name.begin(), name.end(), ' ', '-');
    return name;
}

// Text for a man page line: backslashes and hyphens escaped, a leading '.' or '\'' made literal.
std::string roff(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '\\') out += "\\e";
        else if (c == '-') out += "\\-";
        else out += c;
    }
    if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
    return out;
}

// Words of `text` in lines of at most `width` columns; blank lines between paragraphs kept.
std::string wrap(const std::string& text, size_t width) {
    std::string out, line;
    size_t i = 0;
    while (i <= text.size()) {
        size_t j = text.find_first_of(" \n", i);
        if (j == std::string::npos) j = text.size();
        std::string word = text.substr(i, j - i);
        if (!line.empty() && line.size() + 1 + word.size() > width) {
            out += line + "\n";
            line.clear();
        }
        if (!word.empty()) line += (line.empty() ? "" : " ") + word;
        if (j < text.size() && text[j] == '\n') { // a paragraph break
            out += line + "\n";
            line.clear();
            if (j + 1 < text.size() && text[j + 1] == '\n') {
                out += "\n";
                ++j;
            }
        }
        i = j + 1;
    }
    return out + line;
}

std::string footer_of(const Page& p) {
    std::string f = wrap(p.description, 100);
    if (*p.examples) {
        f += "\n\nExamples:\n";
        for (const auto& line : split(p.examples, '\n'))
            f += "  " + line + "\n";
    }
    return f;
}

std::string synopsis_of(const CLI::App* a, const Page* p) {
    if (p && *p->synopsis) return p->synopsis;
    std::string s = "[OPTIONS]";
    for (const CLI::Option* o : a->get_options([](const CLI::Option* x) { return x->get_positional(); })) {
        std::string n = o->get_name(true);
        bool many = o->get_items_expected_max() > 1;
        std::string w = n + (many ? "..." : "");
        for (char& c : w)
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        s += " " + (o->get_required() ? w : "[" + w + "]");
    }
    return s;
}

std::string man_page(const CLI::App* a) {
    std::string path = path_of(a);
    std::string name = page_name(a);
    auto it = pages().find(path);
    const Page* p = it == pages().end() ? nullptr : &it->second;
    std::string upper = name;
    for (char& c : upper)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::string m = fmt::format(".TH {} 1 \"\" \"container {}\" \"User Commands\"\n", roff(upper), CONTAINER_VERSION);
    m += ".SH NAME\n" + roff(name) + " \\- " + roff(a->get_description()) + "\n";
    m += ".SH SYNOPSIS\n.B container" + (path.empty() ? "" : " " + roff(path)) + "\n" + roff(synopsis_of(a, p)) + "\n";
    if (p) {
        m += ".SH DESCRIPTION\n";
        std::string d = p->description;
        for (size_t i = 0; i < d.size();) {
            size_t j = d.find("\n\n", i);
            if (j == std::string::npos) j = d.size();
            m += roff(d.substr(i, j - i)) + "\n.PP\n";
            i = j + 2;
        }
    }
    auto subs = a->get_subcommands([](const CLI::App* s) { return visible(s); });
    if (!subs.empty()) {
        m += ".SH COMMANDS\n";
        for (const CLI::App* s : subs) {
            std::string sub_name = name + "-" + s->get_name();
            m += ".TP\n.B " + roff(s->get_name());
            for (const auto& al : s->get_aliases())
                m += ", " + roff(al);
            m += "\n" + roff(s->get_description()) + ". See \\fB" + roff(sub_name) + "\\fR(1).\n";
        }
    }
    auto opts = a->get_options([](const CLI::Option* o) { return !o->get_positional() && !o->get_group().empty(); });
    if (!opts.empty()) {
        m += ".SH OPTIONS\n";
        for (const CLI::Option* o : opts) {
            std::string names;
            for (const auto& s : o->get_snames())
                names += (names.empty() ? "" : ", ") + ("\\fB\\-" + roff(s) + "\\fR");
            for (const auto& l : o->get_lnames())
                names += (names.empty() ? "" : ", ") + ("\\fB\\-\\-" + roff(l) + "\\fR");
            if (o->get_type_size_max() > 0) names += " \\fI" + roff(o->get_type_name()) + "\\fR";
            m += ".TP\n" + names + "\n" + roff(o->get_description()) + "\n";
        }
    }
    if (p && *p->examples) {
        m += ".SH EXAMPLES\n.nf\n";
        for (const auto& line : split(p->examples, '\n'))
            m += roff(line) + "\n";
        m += ".fi\n";
    }
    std::string see;
    if (a->get_parent()) see = "\\fB" + roff(page_name(a->get_parent())) + "\\fR(1)";
    if (!see.empty()) m += ".SH SEE ALSO\n" + see + "\n";
    return m;
}

void for_each_command(CLI::App* a, const std::function<void(CLI::App*)>& fn) {
    fn(a);
    for (CLI::App* s : a->get_subcommands([](CLI::App* x) { return visible(x); }))
        for_each_command(s, fn);
}

} // namespace

void apply_manual(CLI::App& app) {
    for_each_command(&app, [](CLI::App* a) {
        auto it = pages().find(path_of(a));
        if (it != pages().end()) a->footer(footer_of(it->second));
    });
}

void add_manual_commands(CLI::App& app, Action& action) {
    auto words = std::make_shared<std::vector<std::string>>();
    CLI::App* help = app.add_subcommand("help", "Print the help of a command");
    help->add_option("command", *words, "The command, e.g. machine run");
    help->callback([&action, &app, words] {
        action = [&app, words]() -> Result<int> {
            CLI::App* a = &app;
            for (const auto& w : *words) {
                CLI::App* next = nullptr;
                for (CLI::App* s : a->get_subcommands([](CLI::App* x) { return visible(x); }))
                    if (s->check_name(w)) next = s;
                if (!next) return make_error("no command '{}' (see 'container --help')", w);
                a = next;
            }
            // The formatter itself: App::help() would describe the `help` command, the one selected.
            std::string name = "container" + (path_of(a).empty() ? "" : " " + path_of(a));
            fmt::print("{}", a->get_formatter()->make_help(a, name, CLI::AppFormatMode::Normal));
            return 0;
        };
    });

    auto dir = std::make_shared<std::string>();
    CLI::App* man = app.add_subcommand("__man", "");
    man->group("");
    man->add_option("dir", *dir)->required();
    man->callback([&action, &app, dir] {
        action = [&app, dir]() -> Result<int> {
            TRY(fs::make_dirs(*dir, 0755));
            Result<void> status;
            for_each_command(&app, [&](CLI::App* a) {
                if (auto w = fs::write_file_atomic(*dir + "/" + page_name(a) + ".1", man_page(a)); !w && status)
                    status = w;
            });
            TRY(std::move(status));
            return 0;
        };
    });
}

} // namespace ctr::cli
