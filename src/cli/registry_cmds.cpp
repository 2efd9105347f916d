// SPDX-License-Identifier: MIT
// `container image pull` and `container registry login|logout`, and the pull that `machine create` does
// for an image the store does not have.
#include <termios.h>
#include <unistd.h>

#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/progress.hpp"
#include "registry/config.hpp"
#include "registry/pull.hpp"
#include "store/store.hpp"

namespace ctr::cli {

namespace {

struct LoginOptions {
    std::string server, username, password, scheme = "auto";
    bool password_stdin = false;
};

// Reads one line from the terminal, without echo when `secret`.
std::string prompt_line(const char* prompt, bool secret) {
    fmt::print(stderr, "{}", prompt);
    std::fflush(stderr);
    struct termios old {};
    bool restore = secret && ::tcgetattr(STDIN_FILENO, &old) == 0;
    if (restore) {
        struct termios quiet = old;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    std::string line;
    std::getline(std::cin, line);
    if (restore) {
        ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
        fmt::print(stderr, "\n");
    }
    return line;
}

Result<int> do_pull(const PullFlags& f, const std::string& ref) {
    store::Store s = TRY(store::Store::open());
    auto r = TRY(pull_image(s, ref, f));
    fmt::print("{}\n", r.name);
    return 0;
}

Result<int> do_login(const LoginOptions& o) {
    std::string host = registry::credential_key(o.server);
    registry::Credentials c{o.username, o.password};
    if (o.password_stdin) {
        if (!o.password.empty()) return make_error("--password and --password-stdin are mutually exclusive");
        if (c.username.empty()) return make_error("--password-stdin needs --username");
        std::getline(std::cin, c.password);
        while (!c.password.empty() && (c.password.back() == '\n' || c.password.back() == '\r'))
            c.password.pop_back();
    }
    bool tty = ::isatty(STDIN_FILENO);
    if (c.username.empty()) {
        if (!tty) return make_error("no user name: pass --username, or run on a terminal to be asked");
        c.username = prompt_line("Username: ", false);
    }
    if (c.password.empty()) {
        if (!tty) return make_error("no password: pass --password-stdin, or run on a terminal to be asked");
        c.password = prompt_line("Password: ", true);
    }
    if (c.username.empty() || c.password.empty())
        return make_error("user name and password must not be empty");
    registry::ClientOptions co;
    co.scheme = TRY(registry::parse_scheme(o.scheme));
    co.credentials = c;
    std::string endpoint = host == "docker.io" ? "registry-1.docker.io" : host;
    auto client = TRY(registry::Client::open(endpoint, "", co));
    auto ok = client.check_login();
    if (!ok) return wrap(std::move(ok).error(), fmt::format("login to {}", host));
    TRY(registry::store_credentials(host, c));
    fmt::print("Login Succeeded\n");
    return 0;
}

Result<int> do_logout(const LoginOptions& o) {
    std::string host = registry::credential_key(o.server);
    if (!TRY(registry::erase_credentials(host))) return make_error("not logged in to {}", host);
    fmt::print("Removed login credentials for {}\n", host);
    return 0;
}

} // namespace

void add_pull_flags(CLI::App* sub, PullFlags& f, bool with_platform) {
    if (with_platform) {
        sub->add_option("--platform", f.platform, "Platform os/arch[/variant] (default: this host's)");
        sub->add_option("-a,--arch", f.arch, "Architecture, when --platform is not given");
        sub->add_option("--os", f.os, "Operating system, when --platform is not given");
    }
    sub->add_option("--scheme", f.scheme, "Registry scheme: auto, http or https")
        ->check(CLI::IsMember({"auto", "http", "https"}));
    sub->add_option("--progress", f.progress, "Progress display: auto, plain, ansi or none")
        ->check(CLI::IsMember({"auto", "plain", "ansi", "color", "tty", "none"}));
    sub->add_option("--max-concurrent-downloads", f.max_concurrent, "Layers downloaded at once")
        ->check(CLI::Range(1, 32));
}

Result<registry::PullResult> pull_image(store::Store& s, const std::string& text, const PullFlags& f) {
    oci::Reference ref = TRY(oci::parse_reference(text));
    registry::PullOptions po;
    if (!f.platform.empty()) {
        po.platform = TRY(oci::parse_platform(f.platform));
    } else if (!f.arch.empty() || !f.os.empty()) {
        oci::Platform p = oci::host_platform();
        if (!f.os.empty()) p.os = f.os;
        if (!f.arch.empty()) {
            p.architecture = f.arch;
            p.variant.clear();
        }
        po.platform = TRY(oci::parse_platform(p.str()));
    }
    po.client.scheme = TRY(registry::parse_scheme(f.scheme));
    po.max_concurrent_downloads = f.max_concurrent;
    PullProgress progress(TRY(PullProgress::parse_mode(f.progress)));
    po.observer = &progress;
    auto r = registry::pull(s, ref, po); // locks the store itself, only to name the image
    progress.finish(r.has_value());
    return r;
}

void add_registry_commands(CLI::App& app, Action& action) {
    auto o = std::make_shared<LoginOptions>();
    CLI::App* reg = app.add_subcommand("registry", "Log in to and out of registries");
    reg->require_subcommand(1);
    reg->fallthrough();
    CLI::App* login = reg->add_subcommand("login", "Check credentials with a registry and store them");
    login->add_option("server", o->server, "Registry host[:port]")->required();
    login->add_option("-u,--username", o->username, "User name");
    login->add_option("-p,--password", o->password,
                      "Password (visible to other users; prefer --password-stdin)");
    login->add_flag("--password-stdin", o->password_stdin, "Read the password from standard input");
    login->add_option("--scheme", o->scheme, "Registry scheme: auto, http or https")
        ->check(CLI::IsMember({"auto", "http", "https"}));
    login->callback([&action, o] { action = [o] { return do_login(*o); }; });
    CLI::App* logout = reg->add_subcommand("logout", "Forget the stored credentials of a registry");
    logout->add_option("server", o->server, "Registry host[:port]")->required();
    logout->callback([&action, o] { action = [o] { return do_logout(*o); }; });
}

void add_pull_command(CLI::App* image, Action& action) {
    auto f = std::make_shared<PullFlags>();
    auto ref = std::make_shared<std::string>();
    CLI::App* pull = image->add_subcommand("pull", "Pull an image from a registry");
    pull->add_option("reference", *ref, "Image reference (e.g. debian:bookworm, host:5000/x@sha256:…)")
        ->required();
    add_pull_flags(pull, *f, true);
    pull->fallthrough();
    pull->callback([&action, f, ref] { action = [f, ref] { return do_pull(*f, *ref); }; });
}

} // namespace ctr::cli
