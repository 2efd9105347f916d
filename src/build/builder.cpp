// SPDX-License-Identifier: MIT
// The build: stages, steps, the cache, and the hand-off of each step's upper directory to the layer
// writer. Work files live in one store work directory ($DATA/tmp/<pid>-build-…), removed at the end.
#include "build/builder.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include <nlohmann/json.hpp>

#include "base/fault.hpp"
#include "base/fs.hpp"
#include "base/unique_fd.hpp"
#include "build/cache.hpp"
#include "build/context.hpp"
#include "build/fetch.hpp"
#include "oci/changes.hpp"
#include "oci/containerfile.hpp"
#include "registry/http.hpp"
#include "runtime/boot.hpp"
#include "runtime/userns.hpp"
#include "store/image_source.hpp"
#include "store/image_writer.hpp"
#include "store/layer_writer.hpp"
#include "store/unpack.hpp"

namespace ctr::build {

using nlohmann::json;

namespace {

constexpr const char* k_default_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr size_t k_tail_lines = 15;
// The runtime's per-step files: bound from the host, never part of a layer.
const std::vector<std::string> k_runtime_files = {"etc/hosts", "etc/resolv.conf"};

struct StageState {
    json config;
    std::vector<oci::Descriptor> layers;
    std::string key; // the cache chain so far
    std::map<std::string, std::string> args;
    std::vector<std::string> shell = {"/bin/sh", "-c"};
    bool cmd_set = false;
};

std::string sha(const std::string& s) {
    oci::Sha256 h;
    h.update(s);
    return h.finish().hex;
}

std::string quoted(const std::string& v) {
    std::string out = "\"";
    for (char c : v) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::optional<std::string> env_value(const json& config, const std::string& key) {
    const json& env = config["config"]["Env"];
    if (!env.is_array()) return std::nullopt;
    for (const auto& e : env)
        if (e.is_string() && e.get<std::string>().rfind(key + "=", 0) == 0) return e.get<std::string>().substr(key.size() + 1);
    return std::nullopt;
}

class Builder {
public:
    Builder(store::Store& s, const BuildOptions& o) : m_store(s), m_o(o), m_pin(s), m_cache(s) {}

    Result<BuildResult> run() {
        std::string file = m_o.file;
        if (file.empty())
            file = fs::exists(m_o.context + "/Containerfile") ? m_o.context + "/Containerfile" : m_o.context + "/Dockerfile";
        std::string text = TRY(fs::read_file(file, 1 << 20));
        auto parsed = oci::parse_containerfile(text);
        if (!parsed) return make_error("{}: {}", file, parsed.error().message);
        m_cf = std::move(parsed).value();
        m_context = TRY(fs::open_dir(m_o.context));
        m_ignore = TRY(IgnoreRules::for_context(m_context.get()));
        m_map = TRY(m_store.id_map());
        if (::getuid() == 0) {
            // As the supervisor of a root-run machine: the host's root at 65536, so the runner reaches the
            // data directory; the step itself sees only the store's block.
            m_outer = m_map;
            m_outer.uids.push_back({65536, 0, 1});
            m_outer.gids.push_back({65536, 0, 1});
            m_inner.uids = m_inner.gids = {{0, 0, 65536}};
        } else {
            m_outer = m_map;
            m_inner = runtime::nested_identity(m_map);
        }
        for (const auto& a : m_cf.global_args) {
            auto kvs = parse_kv(a, [&](const std::string& k) { return lookup_global(k); }, false, true);
            if (!kvs) return kvs.error();
            for (const auto& kv : *kvs) {
                auto given = m_o.build_args.find(kv.key);
                if (given != m_o.build_args.end())
                    m_global[kv.key] = given->second;
                else if (kv.value)
                    m_global[kv.key] = *kv.value;
                else
                    m_global.erase(kv.key);
            }
        }
        size_t target = m_cf.stages.size() - 1;
        if (!m_o.target.empty()) {
            auto it = std::find_if(m_cf.stages.begin(), m_cf.stages.end(),
                                   [&](const oci::Stage& s) { return s.name == m_o.target; });
            if (it == m_cf.stages.end()) return make_error("--target {}: no stage of that name", m_o.target);
            target = static_cast<size_t>(it - m_cf.stages.begin());
        }
        std::vector<bool> needed = TRY(needed_stages(target));
        for (size_t i = 0; i <= target; ++i)
            if (needed[i]) m_total += 1 + static_cast<int>(m_cf.stages[i].steps.size());
        m_work = TRY(m_store.make_work_dir("build"));
        ScopeExit cleanup([&] { remove_work(); });
        m_states.resize(m_cf.stages.size());
        for (size_t i = 0; i <= target; ++i)
            if (needed[i]) TRY(build_stage(i));
        StageState& final = m_states[target];
        for (const auto& [k, v] : m_o.labels)
            TRY(oci::apply_change(final.config["config"], "LABEL " + k + "=" + quoted(v)));
        // The last step's time: an unchanged rebuild is the same image.
        const json& hist = final.config["history"];
        final.config["created"] = hist.is_array() && !hist.empty() && hist.back().contains("created")
                                      ? hist.back()["created"]
                                      : json(store::now_rfc3339());
        BuildResult r;
        std::vector<std::string> tags = m_o.tags;
        if (tags.empty()) {
            std::string base = m_o.context;
            while (base.size() > 1 && base.back() == '/')
                base.pop_back();
            base = base.substr(base.rfind('/') + 1);
            std::transform(base.begin(), base.end(), base.begin(), ::tolower);
            tags.push_back("localhost/" + (base.empty() || base == "." ? std::string("build") : base) + ":latest");
        }
        auto lock = TRY(m_store.lock());
        fault_point("build: naming");
        for (const auto& t : tags) {
            oci::Reference ref = TRY(oci::parse_reference(t));
            r.manifest = TRY(store::name_image(m_store, ref.str(), final.config.dump(), final.layers));
            r.names.push_back(ref.str());
        }
        r.steps = m_steps;
        r.cached = m_cached;
        r.layers = m_new_layers;
        return r;
    }

private:
    Result<std::vector<oci::KeyValue>> parse_kv(const oci::Instruction& in, const oci::VarLookup& vars, bool legacy,
                                                bool bare) {
        auto r = oci::parse_key_values(in.args, m_cf.escape, vars, legacy, bare);
        if (!r) return make_error("line {}: {}: {}", in.line, in.keyword, r.error().message);
        return r;
    }

    std::optional<std::string> lookup_global(const std::string& k) {
        auto it = m_global.find(k);
        if (it != m_global.end()) return it->second;
        return std::nullopt;
    }

    // The target and every stage it reaches through FROM or COPY --from.
    Result<std::vector<bool>> needed_stages(size_t target) {
        std::vector<bool> needed(m_cf.stages.size(), false);
        needed[target] = true;
        for (size_t i = target + 1; i-- > 0;) {
            if (!needed[i]) continue;
            std::vector<std::string> refs = {m_cf.stages[i].base};
            for (const auto& in : m_cf.stages[i].steps)
                if (auto f = in.flag("from")) refs.push_back(*f);
            for (auto r : refs) {
                r = TRY(expand_global(r));
                if (auto j = stage_index(r, i)) needed[*j] = true;
            }
        }
        return needed;
    }

    Result<std::string> expand_global(const std::string& s) {
        return oci::process_word(s, m_cf.escape, [&](const std::string& k) { return lookup_global(k); });
    }

    // A stage named `ref` (or numbered) before stage `before`.
    std::optional<size_t> stage_index(const std::string& ref, size_t before) {
        std::string low = ref;
        std::transform(low.begin(), low.end(), low.begin(), ::tolower);
        for (size_t j = 0; j < before && j < m_cf.stages.size(); ++j)
            if (!m_cf.stages[j].name.empty() && m_cf.stages[j].name == low) return j;
        if (!ref.empty() && ref.size() < 4 && std::all_of(ref.begin(), ref.end(), ::isdigit)) {
            size_t j = std::stoul(ref);
            if (j < before) return j;
        }
        return std::nullopt;
    }

    void event(StepEvent::Kind k, const std::string& text) {
        if (m_o.progress) m_o.progress({k, m_step, m_total, text});
    }

    Result<store::Image> image_for(const std::string& ref) {
        return m_store.get(TRY(store::find_or_pull(m_store, ref, m_o.pull_image, m_o.pull)));
    }

    Result<void> build_stage(size_t i) {
        const oci::Stage& st = m_cf.stages[i];
        StageState& s = m_states[i];
        std::string base = TRY(expand_global(st.base));
        ++m_step;
        event(StepEvent::start, fmt::format("FROM {}{}", base, st.name.empty() ? "" : " AS " + st.name));
        if (st.platform) {
            // RUN executes on this host, so another platform's image cannot be built (no emulation).
            std::string p = TRY(expand_global(*st.platform));
            auto want = oci::parse_platform(p);
            if (!want) return make_error("line {}: FROM --platform={}: {}", st.line, p, want.error().message);
            if (!oci::platform_matches(*want, oci::host_platform()))
                return make_error("line {}: FROM --platform={}: this host is {} and RUN steps run on it", st.line, p,
                                  oci::host_platform().str());
        }
        if (auto j = stage_index(base, i)) {
            s = m_states[*j];
            s.args.clear();
            s.cmd_set = false;
        } else if (base == "scratch") {
            s.config = {{"architecture", oci::host_platform().architecture},
                        {"os", "linux"},
                        {"config", json::object()},
                        {"rootfs", {{"type", "layers"}, {"diff_ids", json::array()}}},
                        {"history", json::array()}};
            s.key = sha("scratch");
        } else {
            auto img = image_for(base);
            if (!img) return make_error("line {}: FROM {}: {}", st.line, base, img.error().message);
            s.config = img->config.raw;
            if (!s.config["config"].is_object()) s.config["config"] = json::object();
            for (oci::Descriptor l : img->manifest.layers) {
                if (l.media_type == oci::media::k_docker_layer) l.media_type = oci::media::k_oci_layer_gzip;
                s.layers.push_back(l);
            }
            json& h = s.config["history"];
            if (!h.is_array()) {
                h = json::array();
                for (size_t k = 0; k < s.layers.size(); ++k)
                    h.push_back({{"created_by", "(layer of " + base + ")"}});
            }
            s.key = sha(img->record.digest.str());
        }
        // ONBUILD triggers of the base run first, as Docker does; then they are not inherited.
        std::vector<oci::Instruction> steps;
        if (s.config["config"]["OnBuild"].is_array()) {
            std::string text = "FROM scratch\n";
            for (const auto& t : s.config["config"]["OnBuild"])
                if (t.is_string()) text += t.get<std::string>() + "\n";
            auto trig = oci::parse_containerfile(text);
            if (!trig) return make_error("line {}: the ONBUILD triggers of {}: {}", st.line, base, trig.error().message);
            for (auto& in : trig->stages[0].steps) {
                in.line = st.line;
                steps.push_back(in);
            }
            s.config["config"].erase("OnBuild");
        }
        m_total += static_cast<int>(steps.size());
        steps.insert(steps.end(), st.steps.begin(), st.steps.end());
        for (const auto& in : steps) {
            ++m_step;
            ++m_steps;
            TRY(step(i, s, in));
        }
        return {};
    }

    oci::VarLookup vars(const StageState& s) {
        return [&s](const std::string& k) -> std::optional<std::string> {
            if (auto v = env_value(s.config, k)) return v;
            auto it = s.args.find(k);
            if (it != s.args.end()) return it->second;
            return std::nullopt;
        };
    }

    void history(StageState& s, const std::string& created_by, bool empty) {
        json e = {{"created", store::now_rfc3339()}, {"created_by", created_by}, {"comment", "container build"}};
        if (empty) e["empty_layer"] = true;
        s.config["history"].push_back(e);
    }

    Result<void> change(StageState& s, const oci::Instruction& in, const std::string& text) {
        auto r = oci::apply_change(s.config["config"], text);
        if (!r) return make_error("line {}: {}", in.line, r.error().message);
        return {};
    }

    Result<std::vector<std::string>> words(const StageState& s, const oci::Instruction& in) {
        auto w = oci::process_words(in.args, m_cf.escape, vars(s));
        if (!w) return make_error("line {}: {}: {}", in.line, in.keyword, w.error().message);
        return w;
    }

    Result<std::string> word(const StageState& s, const oci::Instruction& in, const std::string& text) {
        auto w = oci::process_word(text, m_cf.escape, vars(s));
        if (!w) return make_error("line {}: {}: {}", in.line, in.keyword, w.error().message);
        return w;
    }

    json command(const StageState& s, const oci::Instruction& in) {
        if (in.exec_form) return in.json;
        json c = s.shell;
        c.push_back(in.args);
        return c;
    }

    Result<void> step(size_t stage, StageState& s, const oci::Instruction& in) {
        const std::string& k = in.keyword;
        json& c = s.config["config"];
        std::string detail; // what the instruction did, for the cache chain
        if (k == "ARG") {
            for (const auto& kv : TRY(parse_kv(in, vars(s), false, true))) {
                std::optional<std::string> v = kv.value;
                if (auto g = m_o.build_args.find(kv.key); g != m_o.build_args.end())
                    v = g->second;
                else if (!v && m_global.count(kv.key))
                    v = m_global[kv.key];
                if (v) s.args[kv.key] = *v;
                detail += kv.key + "=" + v.value_or("") + "\n";
            }
        } else if (k == "ENV" || k == "LABEL") {
            for (const auto& kv : TRY(parse_kv(in, vars(s), k == "ENV", false))) {
                TRY(change(s, in, k + " " + kv.key + "=" + quoted(*kv.value)));
                detail += kv.key + "=" + *kv.value + "\n";
            }
        } else if (k == "WORKDIR") {
            std::string dir = TRY(word(s, in, in.args));
            if (dir.empty() || dir[0] != '/') {
                std::string cur = c.value("WorkingDir", std::string("/"));
                dir = (cur.empty() ? "/" : cur) + (cur.empty() || cur.back() != '/' ? "/" : "") + dir;
            }
            TRY(change(s, in, "WORKDIR " + dir));
            detail = dir;
        } else if (k == "USER") {
            std::string u = TRY(word(s, in, in.args));
            c["User"] = u;
            detail = u;
        } else if (k == "STOPSIGNAL" || k == "EXPOSE" || k == "VOLUME") {
            std::string text = in.exec_form ? in.args : TRY(word(s, in, in.args));
            if (k == "VOLUME" && !in.exec_form) {
                for (const auto& v : TRY(words(s, in)))
                    TRY(change(s, in, "VOLUME " + v));
            } else {
                TRY(change(s, in, k + " " + text));
            }
            detail = text;
        } else if (k == "CMD" || k == "ENTRYPOINT") {
            json cmd = command(s, in);
            if (k == "CMD") {
                c["Cmd"] = cmd;
                s.cmd_set = true;
            } else {
                c["Entrypoint"] = cmd;
                if (!s.cmd_set) c.erase("Cmd"); // an inherited CMD does not go with a new ENTRYPOINT
            }
            detail = cmd.dump();
        } else if (k == "SHELL") {
            s.shell = in.json;
            c["Shell"] = in.json;
            detail = json(in.json).dump();
        } else if (k == "ONBUILD") {
            if (!c["OnBuild"].is_array()) c["OnBuild"] = json::array();
            c["OnBuild"].push_back(in.args);
            detail = in.args;
        } else if (k == "MAINTAINER") {
            s.config["author"] = in.args;
            detail = in.args;
        } else if (k == "HEALTHCHECK") {
            auto hc = oci::healthcheck(in);
            if (!hc) return make_error("line {}: {}", in.line, hc.error().message);
            c["Healthcheck"] = *hc;
            detail = hc->dump();
        } else if (k == "RUN") {
            return run_step(s, in);
        } else if (k == "COPY" || k == "ADD") {
            return copy_step(stage, s, in);
        } else {
            return make_error("line {}: unsupported instruction {}", in.line, k);
        }
        // Cached too, so that an unchanged rebuild gives the same config (history times included).
        std::string key = sha(s.key + "\n" + k + "\n" + detail);
        if (cache_hit(s, key)) {
            event(StepEvent::cached, in.original);
            return {};
        }
        event(StepEvent::start, in.original);
        s.key = key;
        history(s, in.original, true);
        cache_store(s);
        return {};
    }

    bool cache_hit(StageState& s, const std::string& key) {
        if (m_o.no_cache) return false;
        auto hit = m_cache.find(key);
        if (!hit) return false;
        s.config = std::move(hit->config);
        s.layers = std::move(hit->layers);
        s.key = key;
        ++m_cached;
        pin(s);
        return true;
    }

    void pin(const StageState& s) {
        for (const auto& l : s.layers)
            m_pinned.push_back(l.digest);
        for (const auto& d : s.config["rootfs"]["diff_ids"])
            if (auto dd = oci::parse_digest(d.get<std::string>())) m_pinned.push_back(*dd);
        (void)m_pin.set(m_pinned); // without the pin a concurrent GC may take a step's layer: the naming fails then
    }

    void cache_store(const StageState& s) { m_cache.put(s.key, {s.config, s.layers}); }

    Result<std::string> step_dir() {
        std::string d = fmt::format("{}/step-{}", m_work, m_step);
        // upper/ and work/ are made inside the step's namespace (boot.cpp's build_root, the COPY child):
        // the overlay's root directory is upper/ itself, which must belong to the image's root.
        TRY(fs::make_dirs(d + "/rootfs", 0755));
        // The step's root enters its directory by name (boot.cpp), without access to the data directory.
        if (::chmod(d.c_str(), 0711) != 0) return sys_error(errno, fmt::format("chmod \"{}\"", d));
        return d;
    }

    std::string lowerdirs(const StageState& s) {
        std::string out;
        const json& ids = s.config["rootfs"]["diff_ids"];
        for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
            auto d = oci::parse_digest(it->get<std::string>());
            if (d) out += (out.empty() ? "" : ":") + m_store.layer_path(*d);
        }
        if (out.empty()) { // overlayfs needs a lower layer: an empty one
            std::string empty = m_work + "/empty";
            (void)fs::make_dirs(empty, 0755); // failing, the mount below names it
            out = empty;
        }
        return out;
    }

    // The step's upper directory becomes a layer (none when the step changed nothing).
    Result<void> commit_layer(StageState& s, const std::string& dir, const std::string& created_by) {
        store::LayerWriteOptions w;
        w.max_size = TRY(store::max_layer_size());
        w.exclude = k_runtime_files;
        w.compression_level = 1;
        w.trim_tree = true; // the upper directory is then the unpacked layer: no unpack of what was just packed
        // An image without /etc/hosts or /etc/resolv.conf got them made as mount points, and /etc copied
        // up for that: when that is all the step did to /etc, /etc stays out of the layer too.
        if (UniqueFd up(::open((dir + "/upper").c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)); up.valid()) {
            UniqueFd etc(::openat(up.get(), "etc", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (etc.valid()) {
                bool only_runtime = true;
                if (DIR* d = ::fdopendir(::dup(etc.get()))) {
                    while (struct dirent* e = ::readdir(d)) {
                        std::string n = e->d_name;
                        if (n != "." && n != ".." && n != "hosts" && n != "resolv.conf") only_runtime = false;
                    }
                    ::closedir(d);
                } else {
                    only_runtime = false;
                }
                if (only_runtime) w.exclude.push_back("etc");
            }
        }
        std::string blob = dir + ".layer";
        store::WrittenLayer l = TRY(store::write_layer_as(m_map, dir + "/upper", blob, w));
        fault_point("build: layer written");
        if (l.entries <= 1) { // only the root directory, which every layer has: nothing changed
            (void)::unlink(blob.c_str()); // removed with the work directory anyway
            history(s, created_by, true);
            return {};
        }
        {
            auto lock = TRY(m_store.lock());
            oci::Descriptor d = TRY(store::store_layer(m_store, blob, l, dir + "/upper"));
            s.layers.push_back(d);
        }
        s.config["rootfs"]["diff_ids"].push_back(l.diff_id.str());
        history(s, created_by, false);
        ++m_new_layers;
        pin(s);
        return {};
    }

    Result<void> run_step(StageState& s, const oci::Instruction& in) {
        json& c = s.config["config"];
        runtime::StepCommand cmd;
        if (in.exec_form) {
            cmd.argv = in.json;
        } else if (in.heredocs.size() == 1 && [&] {
                       std::string a = in.args;
                       a.erase(0, a.find_first_not_of(" \t"));
                       a.erase(a.find_last_not_of(" \t") + 1);
                       return a.rfind("<<", 0) == 0 && a.find_first_of(" \t") == std::string::npos;
                   }()) {
            // RUN <<EOF alone: the heredoc is the script.
            std::string body = in.heredocs[0].body;
            if (in.heredocs[0].strip_tabs) {
                std::string out;
                size_t b = 0;
                while (b < body.size()) {
                    size_t e = body.find('\n', b);
                    std::string line = body.substr(b, e - b);
                    line.erase(0, line.find_first_not_of('\t') == std::string::npos ? line.size() : line.find_first_not_of('\t'));
                    out += line + "\n";
                    b = e + 1;
                }
                body = out;
            }
            cmd.argv = s.shell;
            cmd.argv.push_back(body);
        } else {
            std::string script = in.args;
            for (const auto& h : in.heredocs)
                script += "\n" + h.body + h.name;
            cmd.argv = s.shell;
            cmd.argv.push_back(script);
        }
        if (cmd.argv.empty()) return make_error("line {}: RUN with an empty command", in.line);
        std::map<std::string, std::string> env;
        for (const auto& [k, v] : s.args)
            env[k] = v;
        if (c["Env"].is_array())
            for (const auto& e : c["Env"])
                if (e.is_string()) {
                    std::string x = e.get<std::string>();
                    env[x.substr(0, x.find('='))] = x.find('=') == std::string::npos ? "" : x.substr(x.find('=') + 1);
                }
        if (!env.count("PATH")) env["PATH"] = k_default_path;
        if (!env.count("HOME")) env["HOME"] = "/root";
        for (const auto& [k, v] : env)
            cmd.env.push_back(k + "=" + v);
        for (size_t b = 0; b <= env["PATH"].size();) {
            size_t e = env["PATH"].find(':', b);
            if (e == std::string::npos) e = env["PATH"].size();
            std::string d = env["PATH"].substr(b, e - b);
            if (!d.empty() && d[0] == '/') cmd.path.push_back(d);
            b = e + 1;
        }
        cmd.cwd = c.value("WorkingDir", std::string("/"));
        if (cmd.cwd.empty()) cmd.cwd = "/";
        cmd.user = c.value("User", std::string());
        json keyed = {{"argv", cmd.argv}, {"env", cmd.env}, {"cwd", cmd.cwd}, {"user", cmd.user}};
        // The predefined proxy ARGs reach RUN without an ARG line, and stay out of the cache key and the
        // history, as Docker does: a proxy is the builder's business, not the image's.
        for (const auto& [k, v] : m_o.build_args)
            if (oci::predefined_arg(k) && !env.count(k)) cmd.env.push_back(k + "=" + v);
        std::string key = sha(s.key + "\nRUN\n" + keyed.dump());
        std::string shown = in.original.substr(0, 200);
        if (cache_hit(s, key)) {
            event(StepEvent::cached, shown);
            return {};
        }
        event(StepEvent::start, shown);
        std::string dir = TRY(step_dir());
        runtime::BootSpec spec;
        spec.hostname = "build";
        spec.rootfs = dir + "/rootfs";
        spec.lowerdirs = lowerdirs(s);
        spec.upper = dir + "/upper";
        spec.work = dir + "/work";
        spec.home_mount = runtime::HomeMount::none;
        spec.data_dir = store::data_dir();
        spec.step = cmd;
        std::deque<std::string> tail;
        std::string partial;
        auto on_output = [&](std::string_view chunk) {
            event(StepEvent::output, std::string(chunk));
            partial.append(chunk);
            size_t nl;
            while ((nl = partial.find('\n')) != std::string::npos) {
                tail.push_back(partial.substr(0, nl));
                partial.erase(0, nl + 1);
                if (tail.size() > k_tail_lines) tail.pop_front();
            }
            if (partial.size() > 4096) partial.erase(0, partial.size() - 4096);
        };
        auto st = runtime::run_step(spec, m_outer, m_inner, on_output);
        if (!partial.empty()) tail.push_back(partial);
        if (!st) return make_error("line {}: {}: {}", in.line, shown, st.error().message);
        if (*st != 0) {
            std::string why = WIFEXITED(*st) ? fmt::format("exit status {}", WEXITSTATUS(*st))
                                             : fmt::format("killed by signal {}", WTERMSIG(*st));
            std::string out;
            for (const auto& l : tail)
                out += "\n  " + l;
            return make_error("line {}: {}: {}{}", in.line, shown, why,
                              tail.empty() ? "" : "; its last lines of output:" + out);
        }
        if (auto done = commit_layer(s, dir, "RUN " + (in.exec_form ? json(cmd.argv).dump() : in.args)); !done)
            return wrap(std::move(done).error(), fmt::format("line {}: {}", in.line, shown));
        s.key = key;
        cache_store(s);
        return {};
    }

    // Downloads `in`'s URL into DIR/NAME (build/fetch.hpp); returns "sha256:…" of what arrived.
    Result<std::string> download(const oci::Instruction& in, const std::string& url, const std::string& dir,
                                 const std::string& name, const std::optional<std::string>& checksum) {
        TRY(fs::make_dirs(dir, 0700));
        auto sum = fetch_url(url, dir + "/" + name, checksum);
        if (!sum) return wrap(std::move(sum).error(), fmt::format("line {}: ADD {}", in.line, url));
        return sum;
    }

    Result<void> copy_step(size_t stage, StageState& s, const oci::Instruction& in) {
        std::vector<std::string> w;
        if (in.exec_form) {
            for (const auto& x : in.json)
                w.push_back(TRY(word(s, in, x)));
        } else {
            w = TRY(words(s, in));
        }
        if (!in.heredocs.empty()) return make_error("line {}: {} with a heredoc is not supported", in.line, in.keyword);
        if (w.size() < 2) return make_error("line {}: {} needs a source and a destination", in.line, in.keyword);
        std::string dest = w.back();
        w.pop_back();
        bool url = in.keyword == "ADD" && w.size() == 1 && (w[0].rfind("http://", 0) == 0 || w[0].rfind("https://", 0) == 0);
        for (const auto& src : w)
            if (src.find("://") != std::string::npos && !url)
                return make_error("line {}: {} {}: only ADD takes a URL, and only as its one source", in.line, in.keyword,
                                  src);
        const json& c = s.config["config"];
        bool dest_dir = dest.back() == '/' || dest == "." || dest == ".." || dest.ends_with("/.") || w.size() > 1 ||
                        std::any_of(w.begin(), w.end(), [](const std::string& x) { return x.find_first_of("*?[") != std::string::npos; });
        if (dest[0] != '/') {
            std::string cur = c.value("WorkingDir", std::string("/"));
            dest = (cur.empty() ? "/" : cur) + "/" + dest;
        }
        std::optional<mode_t> mode;
        if (auto m = in.flag("chmod")) {
            if (m->empty() || m->size() > 4 || m->find_first_not_of("01234567") != std::string::npos)
                return make_error("line {}: --chmod={}: expected an octal mode", in.line, *m);
            mode = static_cast<mode_t>(std::stoul(*m, nullptr, 8));
        }
        std::string chown;
        if (auto o = in.flag("chown")) chown = TRY(word(s, in, *o));
        // Where the sources come from: the context, an earlier stage or an image.
        std::optional<std::string> from = in.flag("from");
        std::string from_lower, content, url_dir, url_name, url_src;
        if (from) {
            std::string f = TRY(word(s, in, *from));
            if (auto j = stage_index(f, stage)) {
                from_lower = lowerdirs(m_states[*j]);
                content = m_states[*j].key;
            } else {
                auto img = image_for(f);
                if (!img) return make_error("line {}: COPY --from={}: {}", in.line, f, img.error().message);
                StageState tmp;
                tmp.config = img->config.raw;
                from_lower = lowerdirs(tmp);
                content = img->record.digest.str();
            }
        } else if (url) {
            // ADD URL: the download is the source, mode 0600 unless --chmod (Docker's rule); keyed on
            // --checksum when given (no download on a cache hit), else on the downloaded bytes.
            if (!mode) mode = 0600;
            std::string path = w[0].substr(0, w[0].find_first_of("?#"));
            std::string name = path.substr(path.rfind('/') + 1);
            if (name.empty() || name == "." || name == "..") name = "download";
            url_dir = fmt::format("{}/url-{}", m_work, m_step);
            url_name = name;
            url_src = w[0];
            w = {name};
            if (auto sum = in.flag("checksum")) {
                if (sum->rfind("sha256:", 0) != 0 || sum->size() != 71)
                    return make_error("line {}: ADD --checksum={}: expected sha256:<64 hex digits>", in.line, *sum);
                content = *sum;
            } else {
                content = TRY(download(in, url_src, url_dir, name, std::nullopt));
            }
        } else {
            auto sources = select_sources(m_context.get(), w, m_ignore);
            if (!sources) return make_error("line {}: {}: {}", in.line, in.keyword, sources.error().message);
            auto h = hash_sources(m_context.get(), *sources, m_ignore);
            if (!h) return make_error("line {}: {}: {}", in.line, in.keyword, h.error().message);
            content = *h;
        }
        json keyed = {{"src", w}, {"dest", dest}, {"dir", dest_dir}, {"chown", chown}, {"chmod", in.flag("chmod").value_or("")},
                      {"from", content}};
        std::string key = sha(s.key + "\n" + in.keyword + "\n" + keyed.dump());
        std::string shown = in.original.substr(0, 200);
        if (cache_hit(s, key)) {
            event(StepEvent::cached, shown);
            return {};
        }
        event(StepEvent::start, shown);
        if (url && !fs::exists(url_dir + "/" + url_name))
            TRY(download(in, url_src, url_dir, url_name, content));
        UniqueFd url_fd;
        if (url) url_fd = TRY(fs::open_dir(url_dir));
        std::string dir = TRY(step_dir());
        std::string lower = lowerdirs(s);
        int ctx = url ? url_fd.get() : m_context.get();
        const IgnoreRules* ignore = from || url ? nullptr : &m_ignore;
        auto r = runtime::run_in_userns(m_outer, [&]() -> Result<void> {
            if (::unshare(CLONE_NEWNS) != 0) return sys_error(errno, "unshare the mount namespace");
            if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return sys_error(errno, "make / private");
            for (const auto& [sub, perm] : {std::pair{"/upper", 0755}, {"/work", 0700}})
                if (::mkdir((dir + sub).c_str(), static_cast<mode_t>(perm)) != 0)
                    return sys_error(errno, fmt::format("mkdir \"{}{}\"", dir, sub));
            std::string opts = fmt::format("lowerdir={},upperdir={}/upper,workdir={}/work,userxattr", lower, dir, dir);
            if (::mount("overlay", (dir + "/rootfs").c_str(), "overlay", 0, opts.c_str()) != 0)
                return sys_error(errno, "mount the step's overlay");
            UniqueFd root(::open((dir + "/rootfs").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
            if (!root.valid()) return sys_error(errno, "open the step's root");
            UniqueFd src;
            if (from) {
                std::string at = dir + "/from";
                TRY(fs::make_dirs(at, 0755));
                int rc = from_lower.find(':') == std::string::npos
                             ? ::mount(from_lower.c_str(), at.c_str(), nullptr, MS_BIND | MS_REC, nullptr)
                             : ::mount("overlay", at.c_str(), "overlay", MS_RDONLY, ("lowerdir=" + from_lower + ",userxattr").c_str());
                if (rc != 0) return sys_error(errno, "mount the --from stage");
                src.reset(::open(at.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
            } else {
                src.reset(::fcntl(ctx, F_DUPFD_CLOEXEC, 3));
            }
            if (!src.valid()) return sys_error(errno, "open the sources");
            IgnoreRules none;
            std::vector<std::string> sources = TRY(select_sources(src.get(), w, ignore ? *ignore : none));
            CopyOptions o;
            o.dest = dest;
            o.dest_is_dir = dest_dir;
            o.mode = mode;
            o.ignore = ignore;
            if (!chown.empty()) std::tie(o.uid, o.gid) = TRY(resolve_owner(root.get(), chown));
            o.chowned = !chown.empty();
            o.extract = in.keyword == "ADD" && !url; // a downloaded archive is not unpacked (Docker's rule)
            return copy_sources(src.get(), sources, root.get(), o);
        });
        if (!r) return make_error("line {}: {}: {}", in.line, shown, r.error().message);
        if (auto done = commit_layer(s, dir, in.keyword + " " + in.args); !done)
            return wrap(std::move(done).error(), fmt::format("line {}: {}", in.line, shown));
        s.key = key;
        cache_store(s);
        return {};
    }

    // Step directories hold files of the image's ids: removed from inside the namespace.
    void remove_work() {
        if (m_work.empty()) return;
        auto r = runtime::run_as_mapped_root(m_outer, [&]() -> Result<void> { return fs::remove_tree(m_work); });
        if (!r) (void)fs::remove_tree(m_work); // what is left goes with the next store lock
    }

    store::Store& m_store;
    const BuildOptions& m_o;
    oci::Containerfile m_cf;
    UniqueFd m_context;
    IgnoreRules m_ignore;
    runtime::IdMap m_map, m_outer, m_inner;
    std::map<std::string, std::string> m_global;
    std::vector<StageState> m_states;
    std::string m_work;
    store::Store::Pin m_pin;
    BuildCache m_cache;
    std::vector<oci::Digest> m_pinned;
    int m_step = 0, m_total = 0, m_steps = 0, m_cached = 0, m_new_layers = 0;
};

} // namespace

Result<BuildResult> build(store::Store& store, const BuildOptions& o) {
    Builder b(store, o);
    return b.run();
}

} // namespace ctr::build
