// SPDX-License-Identifier: MIT
// Machine commit: which paths are machine-local, the freezer, and the hand-off to the image writer.
#include "machine/commit.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/fault.hpp"
#include "base/fs.hpp"
#include "base/log.hpp"
#include "oci/changes.hpp"
#include "store/image_writer.hpp"
#include "store/layer_writer.hpp"
#include "store/unpack.hpp"

namespace ctr::machine {

namespace {

// Paths left out of the layer for each kind of machine-local state (docs/COMMIT.md).
struct LocalState {
    const char* name;
    std::vector<std::string> patterns;
};
const LocalState k_local_paths[] = {
    {"machine-id", {"etc/machine-id", "var/lib/dbus/machine-id"}},
    {"journal", {"var/log/journal/*"}},
    {"tmp", {"tmp/*", "var/tmp/*"}},
    {"run", {"run/*"}},
    {"ssh-host-keys", {"etc/ssh/ssh_host_*"}},
};
// Written by the runtime at every boot (mount_plan.cpp) or mount points it made: never the image's.
const std::vector<std::string> k_runtime_paths = {"etc/hosts", "etc/hostname", "etc/resolv.conf",
                                                  "var/host-services"};

bool keeps(const CommitOptions& o, const std::string& what) {
    return std::find(o.keep.begin(), o.keep.end(), what) != o.keep.end() ||
           std::find(o.keep.begin(), o.keep.end(), "all") != o.keep.end();
}

// The lines of a colon-separated account file without those `drop` selects.
std::string without_lines(const std::string& text,
                          const std::function<bool(const std::vector<std::string>&)>& drop) {
    std::string out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        std::vector<std::string> f;
        std::string field;
        std::istringstream ls(line);
        while (std::getline(ls, field, ':'))
            f.push_back(field);
        if (!f.empty() && drop(f)) continue;
        out += line + "\n";
    }
    if (!text.empty() && text.back() != '\n' && !out.empty()) out.pop_back();
    return out;
}

// The provisioned user (SPEC §7): its account lines, its own group, its sudoers file and its home.
void leave_out_user(const UserSetup& u, store::LayerWriteOptions& w) {
    std::string sudoers = u.username;
    std::replace(sudoers.begin(), sudoers.end(), '.', '_');
    w.exclude.push_back("etc/sudoers.d/" + sudoers);
    if (auto p = u.home.find_first_not_of('/'); p != std::string::npos) w.exclude.push_back(u.home.substr(p));
    if (u.uid == 0) return; // root's machine keeps the image's root account, which provisioning reused
    std::string name = u.username, gid = std::to_string(u.gid);
    auto by_name = [name](const std::vector<std::string>& f) { return f[0] == name; };
    auto own_group = [name, gid](const std::vector<std::string>& f) {
        return f[0] == name && f.size() > 2 && f[2] == gid;
    };
    w.rewrite["etc/passwd"] = [=](const std::string& t) { return without_lines(t, by_name); };
    w.rewrite["etc/shadow"] = [=](const std::string& t) { return without_lines(t, by_name); };
    w.rewrite["etc/group"] = [=](const std::string& t) { return without_lines(t, own_group); };
    w.rewrite["etc/gshadow"] = [=](const std::string& t) { return without_lines(t, by_name); };
}

// The machine's cgroup freezer (cgroup v2's cgroup.freeze), set for the life of the object.
class Freeze {
public:
    static Result<Freeze> apply(const std::string& name, const std::string& cgroup) {
        if (cgroup.empty()) return make_error("it has no cgroup of its own");
        Freeze f;
        f.m_dir = cgroup;
        TRY(f.write("1"));
        f.m_on = true;
        // The freeze is asynchronous: cgroup.events says when every task has stopped.
        for (int i = 0; i < 500; ++i) {
            auto events = fs::read_file(cgroup + "/cgroup.events", 4096);
            if (events && events->find("frozen 1") != std::string::npos) return f;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return make_error("machine {} did not freeze within 5 s", name);
    }
    Freeze(Freeze&& o) noexcept : m_dir(std::move(o.m_dir)), m_on(o.m_on) { o.m_on = false; }
    ~Freeze() {
        if (m_on) (void)write("0"); // nothing better to do: the machine stays frozen, `stop` still works
    }

private:
    Freeze() = default;
    Result<void> write(const char* v) const {
        std::string f = m_dir + "/cgroup.freeze";
        UniqueFd fd(::open(f.c_str(), O_WRONLY | O_CLOEXEC));
        if (!fd.valid() || ::write(fd.get(), v, 1) != 1)
            return sys_error(errno, fmt::format("write \"{}\"", f));
        return {};
    }
    std::string m_dir;
    bool m_on = false;
};

// The ids the machine's files carry on disk, and which ids they are inside: the user's keep-id map, or a
// root-run machine's own block.
Result<runtime::IdMap> machine_map(Machines& machines, const MachineConfig& c) {
    if (c.ids.count == 0) return machines.store().id_map();
    runtime::IdMap m;
    m.uids = {{0, c.ids.uid, c.ids.count}};
    m.gids = {{0, c.ids.gid, c.ids.count}};
    return m;
}

bool is_frozen(const std::string& cgroup) {
    auto v = fs::read_file(cgroup + "/cgroup.freeze", 16);
    return v && !v->empty() && (*v)[0] == '1';
}

} // namespace

Result<void> thaw_if_left_frozen(Machines& machines, const std::string& name, const RunState& st,
                                 LockHeld held) {
    if (st.cgroup.empty() || !is_frozen(st.cgroup)) return {};
    std::optional<FileLock> lock;
    if (held == LockHeld::no) lock = TRY(machines.lock(name));
    if (!is_frozen(st.cgroup)) return {};
    log::debug("thawing {}: frozen by a commit that did not finish", name);
    std::string f = st.cgroup + "/cgroup.freeze";
    UniqueFd fd(::open(f.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid() || ::write(fd.get(), "0", 1) != 1)
        return sys_error(errno, fmt::format("thaw machine {} (write \"{}\")", name, f));
    return {};
}

Result<CommitResult> commit(Machines& machines, const CommitOptions& o) {
    for (const auto& k : o.keep)
        if (k != "all" &&
            std::find(std::begin(k_local_state), std::end(k_local_state), k) == std::end(k_local_state))
            return make_error(
                "invalid --keep \"{}\": expected user, machine-id, journal, tmp, run, ssh-host-keys or all",
                k);
    nlohmann::json probe;
    for (const auto& c : o.changes)
        TRY(oci::apply_change(probe, c));
    store::Store& store = machines.store();
    std::string name = TRY(machines.resolve(o.machine));
    // No start, stop or rm while the layer is read. Released before the store lock is taken: `rm`
    // takes the two in the other order.
    std::optional<FileLock> mlock = TRY(machines.lock(name));
    MachineConfig cfg = TRY(machines.config(name));
    auto rec = store.find(cfg.image.digest.str());
    if (!rec)
        return make_error("the image of machine {} ({}) is no longer in the store", name,
                          cfg.image_reference);
    store::Image base = TRY(store.get(*rec));
    base.record.name = cfg.image_reference;

    store::LayerWriteOptions w;
    w.max_size = TRY(store::max_layer_size());
    w.exclude = k_runtime_paths;
    for (const auto& l : k_local_paths)
        if (!keeps(o, l.name)) w.exclude.insert(w.exclude.end(), l.patterns.begin(), l.patterns.end());
    if (!keeps(o, "user")) leave_out_user(cfg.user, w);

    std::string work = TRY(store.make_work_dir("commit"));
    ScopeExit cleanup([&] { (void)fs::remove_tree(work); }); // a later lock() removes leftovers
    std::string upper = machines.dir(name) + "/upper";
    if (!fs::exists(upper)) { // never booted: an empty layer
        upper = work + "/empty";
        TRY(fs::make_dirs(upper, 0755));
    }
    runtime::IdMap map = TRY(machine_map(machines, cfg));
    store::WrittenLayer layer;
    {
        std::optional<Freeze> frozen;
        if (auto st = machines.state(name)) {
            if (o.pause) {
                auto f = Freeze::apply(name, st->cgroup);
                if (!f)
                    return make_error(
                        "cannot pause machine {} ({}): stop it first, or commit it running with "
                        "--pause=false",
                        name, f.error().message);
                frozen.emplace(std::move(f).value());
                fault_point("commit: machine frozen");
            } else {
                log::debug("committing {} while it runs", name);
            }
        }
        auto l = store::write_layer_as(map, upper, work + "/layer", w);
        if (!l) return wrap(std::move(l).error(), fmt::format("write the layer of machine {}", name));
        layer = *l;
    }
    mlock.reset();
    auto slock = TRY(store.lock());
    store::NewLayer nl;
    nl.blob_path = work + "/layer";
    nl.layer = layer;
    nl.changes = o.changes;
    nl.comment = o.message;
    nl.created_by = fmt::format("container machine commit {}", name);
    for (const auto& c : o.changes)
        nl.created_by += fmt::format(" --change '{}'", c);
    CommitResult r;
    r.manifest = TRY(store::add_layer_image(store, base, nl, o.image));
    r.layer_size = layer.size;
    r.entries = layer.entries;
    return r;
}

} // namespace ctr::machine
