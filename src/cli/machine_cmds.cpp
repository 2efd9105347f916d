// SPDX-License-Identifier: MIT
// `container machine …` (alias `m`): create, delete/rm, inspect, list/ls, logs, run, set-default,
// start, stop. (The hidden `__supervise NAME` the supervisor runs as is taken in app.cpp, before this table.)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "base/fs.hpp"
#include "base/size.hpp"
#include "base/text.hpp"
#include "cli/app.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "machine/commit.hpp"
#include "machine/lifecycle.hpp"
#include "machine/machine.hpp"
#include "machine/settings.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/join.hpp"
#include "runtime/limits.hpp"
#include "store/image_source.hpp"

extern char** environ;

namespace ctr::cli {

using nlohmann::json;

namespace {

struct MachineOptions {
    std::string name, image, format = "table", platform, user, workdir;
    std::vector<std::string> names, env, env_files;
    bool no_boot = false, set_default = false, quiet = false, force = false, root = false, tty = false,
         interactive = false, detach = false, boot_log = false, follow = false, no_desktop = false;
    int time = 10;
    int lines = -1;
    // Values of the settings table's flags (`create` and `set`), by the flag's names.
    std::map<std::string, std::vector<std::string>> setting_flags;
    std::optional<uint32_t> uid, gid;
    PullFlags pull; // create: how to pull an image the store does not have
};

struct Ctx {
    std::unique_ptr<store::Store> store_ptr;
    std::unique_ptr<machine::Machines> machines_ptr;
    machine::Machines& machines;
    explicit Ctx(store::Store s)
        : store_ptr(std::make_unique<store::Store>(std::move(s))),
          machines_ptr(std::make_unique<machine::Machines>(*store_ptr)), machines(*machines_ptr) {}
};

Result<std::unique_ptr<Ctx>> open_ctx(store::Store::Open how = store::Store::Open::full) {
    store::Store s = TRY(store::Store::open(how));
    return std::make_unique<Ctx>(std::move(s));
}

// Reference-style size: whole GiB as "NG", else one decimal "1.5G", below 1 GiB "512M".
std::string memory_text(uint64_t bytes) {
    constexpr uint64_t gib = 1ull << 30, mib = 1ull << 20;
    if (bytes >= gib) {
        if (bytes % gib == 0) return fmt::format("{}G", bytes / gib);
        std::string s = fmt::format("{:.1f}G", static_cast<double>(bytes) / gib);
        if (s.size() > 3 && s.substr(s.size() - 3) == ".0G") s = s.substr(0, s.size() - 3) + "G";
        return s;
    }
    return fmt::format("{}M", bytes / mib);
}

std::string local_time(const std::string& rfc3339) {
    struct tm tmv {};
    if (!::strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tmv)) return "-";
    std::time_t t = ::timegm(&tmv);
    struct tm lt {};
    ::localtime_r(&t, &lt);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &lt);
    return buf;
}

// The settings the table's flags give: `--cpus 2` is cpus=2, each `-v X` one mounts=X.
std::vector<machine::Setting> flag_settings(const MachineOptions& o) {
    std::vector<machine::Setting> out;
    for (const auto& row : machine::settings_table())
        for (const auto& f : row.flags)
            if (auto it = o.setting_flags.find(f.names); it != o.setting_flags.end())
                for (const auto& v : it->second)
                    out.emplace_back(row.key, v);
    return out;
}

// A settings error may name several problems, one per line: each gets its own "Error:" line.
Result<machine::BootConfig> settings_or_print(Result<machine::BootConfig> r, int& status) {
    if (r || r.error().message.find('\n') == std::string::npos) return r;
    for (const auto& line : split(r.error().message, '\n'))
        print_error(Error{line, 0});
    status = k_exit_failure;
    return r;
}

json machine_json(Ctx& c, const std::string& name, bool full) {
    auto cfg = c.machines.config(name);
    auto boot = c.machines.boot_config(name);
    auto st = c.machines.state(name);
    json j;
    j["id"] = name;
    j["status"] = machine::status_name(c.machines.status(name));
    j["network"] = "host";
    if (boot) j.update(machine::settings_json(*boot, full ? machine::Shown::inspect : machine::Shown::list_and_inspect));
    j["diskSize"] = machine::disk_usage(c.machines, name);
    if (cfg) j["createdDate"] = cfg->created;
    if (st && !st->started.empty()) j["startedDate"] = st->started;
    if (full && cfg) {
        json u = {{"username", cfg->user.username}, {"uid", cfg->user.uid}, {"gid", cfg->user.gid}};
        j["userSetup"] = u;
        j["image"] = {{"reference", cfg->image_reference},
                      {"descriptor", oci::descriptor_to_json(cfg->image)}};
        json p = {{"os", cfg->platform.os}, {"architecture", cfg->platform.architecture}};
        if (!cfg->platform.variant.empty()) p["variant"] = cfg->platform.variant;
        j["platform"] = p;
        // A root-run machine's private ids on the host (its ids 0..size-1).
        if (cfg->ids.count > 0) j["idRange"] = {{"uid", cfg->ids.uid}, {"gid", cfg->ids.gid}, {"size", cfg->ids.count}};
        if (st) {
            j["initPid"] = st->init_pid;
            // What the running machine got, which may differ from the configuration after `set`.
            json limits = {{"cpus", st->cpus},
                           {"cpuList", st->cpu_list},
                           {"cpuTimeLimited", st->cpu_time_limited},
                           {"notEnforced", st->not_enforced}};
            if (st->memory_limited) limits["memory"] = st->memory;
            j["limits"] = limits;
        }
    }
    return j;
}

Result<int> do_create(const MachineOptions& o) {
    if (!o.name.empty()) TRY(machine::validate_name(o.name));
    machine::CreateOptions co;
    co.name = o.name;
    co.image = o.image;
    int status = 0;
    auto boot = settings_or_print(machine::apply_settings(machine::default_boot_config(), flag_settings(o),
                                                          machine::host_facts(machine::host_user().home)),
                                  status);
    if (status != 0) return status;
    co.boot = TRY(std::move(boot));
    co.set_default = o.set_default;
    if (!o.platform.empty()) {
        oci::Platform want = TRY(oci::parse_platform(o.platform));
        if (!oci::platform_matches(want, oci::host_platform()))
            return make_error("platform {} cannot run on this {} host", want.str(),
                              oci::host_platform().str());
    }
    auto c = TRY(open_ctx());
    // An image the store has is used as it is (no network); any other reference is pulled first.
    auto pull = [&](const std::string& text) -> Result<std::string> {
        // A name that is taken fails now, not after a download.
        std::string name = o.name.empty() ? machine::derive_name(TRY(oci::parse_reference(text))) : o.name;
        if (c->machines.exists(name))
            return make_error("container machine with ID {} already exists", name);
        PullFlags pf = o.pull;
        pf.platform = o.platform;
        return TRY(pull_image(c->machines.store(), text, pf)).name;
    };
    auto rec = store::find_or_pull(c->machines.store(), o.image, pull);
    if (!rec) return wrap(std::move(rec).error(), "failed to create container machine");
    co.image = rec->name;
    auto cfg = machine::create(c->machines, co);
    if (!cfg) return wrap(std::move(cfg).error(), "failed to create container machine");
    if (!o.no_boot) {
        auto r = machine::start(c->machines, cfg->id, self_exe());
        if (!r) return std::move(r).error(); // the machine stays, stopped, with its boot log
        print_warning(*r);
    }
    fmt::print("{}\n", cfg->id);
    return 0;
}

// The names a verb over several machines works on: those given, else the default machine.
Result<std::vector<std::string>> names_or_default(const Ctx& c, const std::vector<std::string>& names) {
    if (!names.empty()) return names;
    return std::vector<std::string>{TRY(c.machines.resolve(""))};
}

Result<int> do_start(const MachineOptions& o) {
    auto c = TRY(open_ctx());
    return for_each_name(TRY(names_or_default(*c, o.names)), [&](const std::string& n) -> Result<void> {
        std::string name = TRY(c->machines.resolve(n));
        print_warning(TRY(machine::start(c->machines, name, self_exe())));
        fmt::print("{}\n", name);
        return {};
    });
}

Result<int> do_stop(const MachineOptions& o) {
    if (o.time < 0) return make_error("invalid --time {}: expected seconds >= 0", o.time);
    auto c = TRY(open_ctx());
    return for_each_name(TRY(names_or_default(*c, o.names)), [&](const std::string& n) -> Result<void> {
        std::string name = TRY(c->machines.resolve(n));
        auto r = machine::stop(c->machines, name, o.time);
        if (!r) return wrap(std::move(r).error(), "failed to stop container machine");
        fmt::print("{}\n", name);
        return {};
    });
}

Result<int> do_remove(const MachineOptions& o) {
    auto c = TRY(open_ctx());
    return for_each_name(o.names, [&](const std::string& n) -> Result<void> {
        if (!c->machines.exists(n)) {
            // A directory left by an rm or create that was cut short: finishing it is what rm is for.
            auto left = machine::remove_leftover(c->machines, n);
            if (!left || !*left) return machine::not_found(n);
            fmt::print("{}\n", n);
            return {};
        }
        // Like the reference, rm stops a running machine first; -f only skips the wait for a clean stop.
        bool was_default = c->machines.default_name() == n;
        if (o.force) TRY(machine::stop(c->machines, n, 0));
        auto r = machine::remove(c->machines, n);
        if (!r) return wrap(std::move(r).error(), "failed to delete container machine");
        fmt::print("{}\n", n);
        if (was_default)
            fmt::print(stderr,
                       "Deleted default container machine '{}'. Set a new default with 'container machine "
                       "set-default <id>'.\n",
                       n);
        return {};
    });
}

Result<int> do_list(const MachineOptions& o) {
    auto c = TRY(open_ctx());
    auto names = TRY(c->machines.names());
    if (o.quiet) {
        for (const auto& n : names)
            fmt::print("{}\n", n);
        return 0;
    }
    std::string def = c->machines.default_name();
    if (o.format == "json") {
        json out = json::array();
        for (const auto& n : names) {
            json j = machine_json(*c, n, false);
            j["default"] = n == def;
            out.push_back(j);
        }
        fmt::print("{}\n", out.dump());
        return 0;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& n : names) {
        json j = machine_json(*c, n, false);
        rows.push_back({n, j.contains("createdDate") ? local_time(j["createdDate"]) : "-", "host",
                        j.contains("cpus") ? std::to_string(j["cpus"].get<int>()) : "-",
                        j.contains("memory") ? memory_text(j["memory"].get<uint64_t>()) : "-",
                        memory_text(j["diskSize"].get<uint64_t>()), j["status"].get<std::string>(),
                        n == def ? "*" : ""});
    }
    print_table({"NAME", "CREATED", "NETWORK", "CPUS", "MEMORY", "DISK", "STATE", "DEFAULT"}, rows);
    return 0;
}

Result<int> do_inspect(const MachineOptions& o) {
    auto c = TRY(open_ctx());
    std::string name = TRY(c->machines.resolve(o.name));
    json out = json::array({machine_json(*c, name, true)});
    print_json(out);
    return 0;
}

Result<int> do_set_default(const MachineOptions& o) {
    auto c = TRY(open_ctx());
    auto r = c->machines.set_default(o.name);
    if (!r) return wrap(std::move(r).error(), "failed to set a default container machine");
    fmt::print("{}\n", o.name);
    return 0;
}

Result<int> do_logs(const MachineOptions& o) {
    auto c = TRY(open_ctx());
    std::string name = TRY(c->machines.resolve(o.name));
    std::string path = c->machines.dir(name) + (o.boot_log ? "/boot.log" : "/stdio.log");
    auto text = fs::read_file(path);
    if (!text) return wrap(std::move(text).error(), fmt::format("failed to open container machine logs"));
    std::string t = *text;
    if (o.lines >= 0) {
        std::vector<std::string> keep;
        size_t end = t.size();
        while (end > 0 && static_cast<int>(keep.size()) < o.lines) {
            size_t start = t.rfind('\n', end - 1);
            size_t from = start == std::string::npos ? 0 : start + 1;
            std::string line = t.substr(from, end - from);
            while (!line.empty() && (line.back() == '\r' || line.back() == '\n'))
                line.pop_back();
            if (!line.empty()) keep.insert(keep.begin(), line);
            if (start == std::string::npos) break;
            end = start;
        }
        for (const auto& l : keep)
            fmt::print("{}\n", l);
    } else {
        size_t a = t.find_first_not_of("\r\n"), b = t.find_last_not_of("\r\n");
        if (a != std::string::npos) fmt::print("{}\n", t.substr(a, b - a + 1));
    }
    if (o.follow) {
        std::fflush(stdout);
        size_t offset = t.size();
        for (;;) {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            auto now = fs::read_file(path);
            if (!now || now->size() <= offset) continue;
            fmt::print("{}", now->substr(offset));
            std::fflush(stdout);
            offset = now->size();
        }
    }
    return 0;
}

Result<int> do_set(const MachineOptions& o) {
    std::vector<machine::Setting> settings = flag_settings(o);
    if (o.names.empty() && settings.empty())
        return make_error("expected at least one configuration value (e.g., machine set cpus=4)");
    for (const auto& a : o.names)
        settings.push_back(TRY(machine::parse_setting(a)));
    auto c = TRY(open_ctx());
    std::string name = TRY(c->machines.resolve(o.name));
    auto lock = TRY(c->machines.lock(name));
    machine::BootConfig current = TRY(c->machines.boot_config(name));
    machine::MachineConfig cfg = TRY(c->machines.config(name));
    int status = 0;
    auto applied = settings_or_print(machine::apply_settings(current, settings, machine::host_facts(cfg.user.home)),
                                     status);
    if (status != 0) return status;
    machine::BootConfig next = TRY(std::move(applied));
    auto w = c->machines.write_boot_config(name, next);
    if (!w) return wrap(std::move(w).error(), "failed to set container machine config");
    // The note is for settings boot applies; `desktop` is read by each `run`.
    bool at_boot = std::any_of(settings.begin(), settings.end(), [](const machine::Setting& st) {
        for (const auto& row : machine::settings_table())
            if (st.first == row.key) return row.when == machine::When::next_boot;
        return true;
    });
    if (at_boot && c->machines.status(name) != machine::Status::stopped)
        fmt::print(stderr, "Note: Changes will take effect after stopping and restarting '{}'.\n", name);
    fmt::print("{}\n", name);
    return 0;
}

Result<std::vector<std::string>> read_env_file(const std::string& path) {
    std::ifstream f(path);
    if (!f) return make_error("failed to read envfile at {}", path);
    std::vector<std::string> out;
    std::string line;
    while (std::getline(f, line)) {
        std::string trimmed = line;
        trimmed.erase(0, trimmed.find_first_not_of(" \t"));
        if (trimmed.empty() || trimmed[0] == '#') continue;
        auto eq = trimmed.find('=');
        std::string key = trimmed.substr(0, eq);
        if (key.empty()) return make_error("no variable name on line '{}'", line);
        if (eq == std::string::npos) {
            if (const char* v = std::getenv(key.c_str())) out.push_back(key + "=" + v);
        } else {
            out.push_back(trimmed);
        }
    }
    return out;
}

Result<int> do_run(MachineOptions& o) {
    std::vector<std::string> argv = run_command_args();
    auto c = TRY(open_ctx(store::Store::Open::light)); // a stopped machine is booted by its supervisor
    std::string name = TRY(c->machines.resolve(o.name));
    machine::MachineConfig cfg = TRY(c->machines.config(name));
    machine::BootConfig boot = TRY(c->machines.boot_config(name));
    runtime::ExecSpec spec;
    spec.argv = argv;
    for (const auto& f : o.env_files)
        for (auto& e : TRY(read_env_file(f)))
            spec.extra_env.push_back(e);
    for (const auto& e : o.env) {
        auto eq = e.find('=');
        if (eq == 0) return make_error("invalid environment variable \"{}\"", e);
        if (eq != std::string::npos)
            spec.extra_env.push_back(e);
        else if (const char* v = std::getenv(e.c_str()))
            spec.extra_env.push_back(e + "=" + v);
    }
    for (char** p = environ; *p; ++p) {
        std::string e = *p;
        if (e.rfind("LANG=", 0) == 0 || e.rfind("LC_", 0) == 0) spec.base_env.push_back(e);
    }
    if (const char* term = std::getenv("TERM"); term && ::isatty(STDIN_FILENO))
        spec.base_env.push_back(std::string("TERM=") + term);
    if (o.root)
        spec.uid = 0, spec.gid = 0;
    else if (!o.user.empty()) {
        // USER[:GROUP], each a name (looked up in the machine) or a number; checked here, before any fork.
        auto colon = o.user.find(':');
        std::string user = o.user.substr(0, colon);
        if (user.empty()) return make_error("invalid user \"{}\": expected USER[:GROUP]", o.user);
        spec.user_name = user;
        if (colon != std::string::npos) {
            std::string group = o.user.substr(colon + 1);
            if (group.empty()) return make_error("invalid user \"{}\": expected USER[:GROUP]", o.user);
            if (group.find_first_not_of("0123456789") != std::string::npos)
                spec.group_name = group;
            else if (auto g = runtime::parse_id(group))
                spec.gid = *g;
            else
                return make_error("invalid group id \"{}\"", group);
        }
        if (user.find_first_not_of("0123456789") == std::string::npos && !runtime::parse_id(user))
            return make_error("invalid user id \"{}\"", user);
    } else {
        spec.uid = o.uid.value_or(::getuid());
        spec.gid = o.gid;
    }
    if (o.uid && spec.user_name) spec.uid = o.uid;
    if (o.gid) spec.gid = o.gid;
    if (!o.workdir.empty()) {
        spec.cwd = o.workdir;
    } else if (boot.home_mount != "none") {
        char buf[4096];
        if (::getcwd(buf, sizeof buf)) {
            std::string cwd = buf;
            const std::string& home = cfg.user.home;
            if (!home.empty() && (cwd == home || cwd.rfind(home + "/", 0) == 0)) spec.cwd = cwd;
        }
    }
    spec.detach = o.detach;
    // A terminal session for the login shell, for -t, or when both ends are terminals (SPEC §5). Any other
    // of our descriptors that is a terminal is proxied through a pty of the machine too, so nothing in
    // the machine ever holds the caller's terminal.
    bool in = ::isatty(STDIN_FILENO), out = ::isatty(STDOUT_FILENO), err = ::isatty(STDERR_FILENO);
    bool session = o.tty || (argv.empty() && in) || (!argv.empty() && in && out);
    if (session)
        spec.pty_fds = 1u | 2u | ((err || !out) ? 4u : 0u);
    else
        spec.pty_fds = (in ? 1u : 0u) | (out ? 2u : 0u) | (err ? 4u : 0u);
    spec.raw = session && in;
    if (spec.pty_fds != 0 && std::none_of(spec.base_env.begin(), spec.base_env.end(),
                                 [](const std::string& e) { return e.rfind("TERM=", 0) == 0; }))
        spec.base_env.push_back(std::string("TERM=") + (std::getenv("TERM") ? std::getenv("TERM") : "xterm"));
    // One read of state.json on the hot path; a second only after booting.
    auto st = c->machines.state(name);
    if (!st || !st->ready) {
        print_warning(TRY(machine::start(c->machines, name, self_exe())));
        st = c->machines.state(name);
    }
    if (!st) return make_error("container machine {} stopped before the command could run", name);
    TRY(machine::thaw_if_left_frozen(c->machines, name, *st, machine::LockHeld::no));
    // The machine's run leaf; the machine's cgroup itself for one booted by an older supervisor.
    if (!st->cgroup.empty()) {
        std::string leaf = st->cgroup + "/" + runtime::k_run_cgroup;
        spec.cgroups.push_back(fs::exists(leaf) ? leaf : st->cgroup);
        // In a scope of the user's manager: the manager can move the command in where we may not.
        std::string unit = "container-machine-" + name + ".scope";
        if (auto at = spec.cgroups.back().find("/" + unit + "/"); at != std::string::npos && ::getuid() != 0) {
            spec.manager_unit = unit;
            spec.manager_subcgroup = spec.cgroups.back().substr(at + unit.size() + 1);
        }
    }
    for (const auto& cg : st->cgroups_v1)
        spec.cgroups.push_back(cg);
    spec.cpus = runtime::parse_cpu_list(st->cpu_list);
    spec.filter_file = c->machines.dir(name) + "/seccomp.bpf";
    // The caller's display, sound and session bus, from the named variables only (runtime/desktop.hpp).
    runtime::DesktopPlan desktop;
    if (!o.no_desktop && machine::desktop_on(boot)) {
        desktop = runtime::plan_desktop([](const char* n) { return std::getenv(n); });
        spec.desktop = &desktop;
    }
    std::fflush(stdout);
    int status = TRY(runtime::exec_in_machine(st->init_pid, spec));
    if (o.detach) fmt::print("{}\n", name);
    return status;
}

} // namespace

void add_machine_commands(CLI::App& app, Action& action) {
    auto o = std::make_shared<MachineOptions>();
    CLI::App* m = app.add_subcommand("machine", "Manage container machines");
    m->alias("m");
    m->require_subcommand(1);
    m->fallthrough();
    auto bind = [&action, o](CLI::App* sub, Result<int> (*fn)(MachineOptions&)) {
        sub->fallthrough();
        sub->callback([&action, o, fn] { action = [o, fn] { return fn(*o); }; });
    };
    // The settings table's flags, on `create` and `set` alike.
    auto add_setting_flags = [o](CLI::App* sub) {
        for (const auto& row : machine::settings_table())
            for (const auto& f : row.flags) {
                auto* opt = sub->add_option(f.names, o->setting_flags[f.names], f.help)->type_name(f.type_name);
                if (row.arity == machine::Arity::one) opt->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
                if (f.value == machine::FlagValue::positive_integer) opt->check(CLI::PositiveNumber);
            }
    };
    auto opt_name = [o](CLI::App* sub) {
        sub->add_option("name", o->name, "Container machine ID (uses default if not specified)")
            ->type_name(k_machine_type);
    };

    CLI::App* create = m->add_subcommand("create", "Create a container machine from an image and boot it");
    create->add_option("image", o->image, "Image reference (e.g. debian:bookworm)")
        ->required()
        ->type_name(k_image_type);
    create->add_option("--name", o->name, "Machine name (default: derived from the image)");
    add_setting_flags(create);
    create->add_flag("--set-default", o->set_default, "Make it the default machine");
    create->add_flag("--no-boot", o->no_boot, "Create without booting");
    create->add_option("--platform", o->platform, "Platform os/arch[/variant] (must match the host)");
    add_pull_flags(create, o->pull, false);
    bind(create, [](MachineOptions& x) { return do_create(x); });

    add_commit_command(m, action);
    add_export_app_command(m, action);

    CLI::App* del = m->add_subcommand("delete", "Delete container machines (stopping them first)");
    del->alias("rm");
    del->add_option("names", o->names, "Container machine IDs")->required()->type_name(k_machine_type);
    del->add_flag("-f,--force", o->force, "Kill a running machine instead of stopping it cleanly");
    bind(del, [](MachineOptions& x) { return do_remove(x); });

    CLI::App* inspect =
        m->add_subcommand("inspect", "Display detailed information about a container machine");
    opt_name(inspect);
    bind(inspect, [](MachineOptions& x) { return do_inspect(x); });

    CLI::App* list = m->add_subcommand("list", "List container machines");
    list->alias("ls");
    list->add_option("--format", o->format, "Output format")->check(CLI::IsMember({"table", "json"}));
    list->add_flag("-q,--quiet", o->quiet, "Only output the container machine ID");
    bind(list, [](MachineOptions& x) { return do_list(x); });

    CLI::App* logs = m->add_subcommand("logs", "Fetch container machine logs");
    logs->add_flag("--boot", o->boot_log, "Show the supervisor's boot log instead of the console");
    logs->add_flag("-f,--follow", o->follow, "Keep printing new lines");
    logs->add_option("-n", o->lines, "Number of lines to show from the end");
    opt_name(logs);
    bind(logs, [](MachineOptions& x) { return do_logs(x); });

    CLI::App* run =
        m->add_subcommand("run", "Run a command or login shell in a container machine, booting it if needed");
    run->add_option("-n,--name", o->name, "Container machine ID (uses default if not specified)")
        ->type_name(k_machine_type);
    run->add_flag("--root", o->root, "Run as root instead of the host user");
    run->add_option("-u,--user", o->user, "User for the process (name|uid[:gid])");
    run->add_option("--uid", o->uid, "User ID for the process");
    run->add_option("--gid", o->gid, "Group ID for the process");
    run->add_option("-e,--env", o->env, "key=value, or key to inherit from the host")
        ->take_all()
        ->allow_extra_args(false);
    run->add_option("--env-file", o->env_files, "Read environment variables from a file")
        ->allow_extra_args(false)
        ->type_name(k_file_type);
    run->add_option("-w,--workdir,--cwd", o->workdir, "Working directory inside the machine");
    run->add_flag("-t,--tty", o->tty, "Allocate a pseudo-terminal");
    run->add_flag("-i,--interactive", o->interactive, "Keep stdin open");
    run->add_flag("-d,--detach", o->detach, "Run in the background and print the machine ID");
    run->add_flag("--no-desktop", o->no_desktop,
                  "Do not forward your display, sound and session bus (Wayland, X11, PulseAudio, PipeWire, D-Bus)");
    bind(run, [](MachineOptions& x) { return do_run(x); });

    CLI::App* set =
        m->add_subcommand("set", "Set container machine configuration values (applied at next start)");
    set->add_option("-n,--name", o->name, "Container machine ID (uses default if not specified)")
        ->type_name(k_machine_type);
    std::string keys;
    for (const auto& row : machine::settings_table())
        keys += (keys.empty() ? "" : ", ") + std::string(row.help);
    set->add_option("settings", o->names, keys)->type_name(k_setting_type);
    add_setting_flags(set);
    bind(set, [](MachineOptions& x) { return do_set(x); });

    CLI::App* set_default = m->add_subcommand("set-default", "Set the default container machine");
    set_default->add_option("name", o->name, "Container machine ID")->required()->type_name(k_machine_type);
    bind(set_default, [](MachineOptions& x) { return do_set_default(x); });

    auto opt_names = [o](CLI::App* sub) {
        sub->add_option("names", o->names, "Container machine IDs (uses default if none is given)")
            ->type_name(k_machine_type);
    };
    CLI::App* start = m->add_subcommand("start", "Boot container machines and wait until they are ready");
    opt_names(start);
    bind(start, [](MachineOptions& x) { return do_start(x); });

    CLI::App* stop = m->add_subcommand("stop", "Stop running container machines");
    stop->add_option("-t,--time", o->time, "Seconds to wait for a clean stop before killing (default 10)");
    opt_names(stop);
    bind(stop, [](MachineOptions& x) { return do_stop(x); });
}

} // namespace ctr::cli
