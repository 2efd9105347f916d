// SPDX-License-Identifier: MIT
#include "machine/check.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <set>

#include <fmt/format.h>

#include "base/fs.hpp"
#include "machine/lifecycle.hpp"

namespace ctr::machine {

bool CheckReport::consistent() const {
    for (const auto& f : findings)
        if (f.kind == Finding::Kind::problem && !f.repaired) return false;
    return true;
}

namespace {

std::vector<std::string> entries(const std::string& dir) {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return out;
    while (struct dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") out.push_back(n);
    }
    ::closedir(d);
    return out;
}

bool pid_alive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

// "<pid>-…" after `prefix`, the names commands give their work files; 0 for other names.
pid_t owner_pid(const std::string& name, const std::string& prefix) {
    if (name.rfind(prefix, 0) != 0) return 0;
    std::string rest = name.substr(prefix.size());
    if (rest.empty() || !std::isdigit(static_cast<unsigned char>(rest[0])) || rest.find('-') == std::string::npos)
        return 0;
    return static_cast<pid_t>(std::atol(rest.c_str()));
}

// Files fs::write_file_atomic() had not renamed yet when its command died ("<name>.tmp-XXXXXX").
bool is_atomic_temp(const std::string& name) {
    auto at = name.rfind(".tmp-");
    return at != std::string::npos && name.size() - at == 11;
}

class Checker {
public:
    Checker(Machines& machines, bool repair) : m_machines(machines), m_store(machines.store()), m_repair(repair) {}

    Result<CheckReport> run() {
        std::optional<FileLock> lock;
        if (m_repair) lock = TRY(m_store.lock()); // which also clears dead commands' work files
        check_images();
        check_machines();
        check_work_files();
        return std::move(m_report);
    }

private:
    void problem(std::string what, bool repaired = false) {
        m_report.findings.push_back({Finding::Kind::problem, std::move(what), repaired});
    }
    void leftover(std::string what, bool repaired) {
        m_report.findings.push_back({Finding::Kind::leftover, std::move(what), repaired});
    }

    // A blob that is present but does not hash to its name is moved aside (repair), so a pull fetches it again.
    bool blob_ok(const std::string& owner, const oci::Digest& d) {
        if (m_verified.count(d.hex)) return true;
        std::string path = m_store.blob_path(d);
        if (!fs::exists(path)) {
            problem(fmt::format("{}: blob {} is missing (pull the image again, or remove it)", owner, d.str()));
            return false;
        }
        auto got = oci::sha256_file(path);
        if (!got || *got != d) {
            bool moved = m_repair && ::unlink(path.c_str()) == 0;
            problem(fmt::format("{}: blob {} is corrupt{}", owner, d.str(),
                                moved ? " (removed: pull the image again)" : ""), false);
            return false;
        }
        m_verified.insert(d.hex);
        ++m_report.blobs_verified;
        return true;
    }

    // The manifest, config and layers of one image; `owner` names who needs it.
    void check_image(const std::string& owner, const store::ImageRecord& rec) {
        if (m_checked.count(rec.digest.hex + owner)) return;
        m_checked.insert(rec.digest.hex + owner);
        if (!blob_ok(owner, rec.digest)) return;
        auto img = m_store.get(rec);
        if (!img) {
            problem(fmt::format("{}: {}", owner, img.error().message));
            return;
        }
        if (!blob_ok(owner, img->manifest.config.digest)) return;
        if (img->config.diff_ids.size() != img->manifest.layers.size()) {
            problem(fmt::format("{}: config lists {} layers, manifest {}", owner, img->config.diff_ids.size(),
                                img->manifest.layers.size()));
            return;
        }
        for (size_t i = 0; i < img->manifest.layers.size(); ++i) {
            const auto& layer = img->manifest.layers[i];
            const auto& diff_id = img->config.diff_ids[i];
            bool blob = blob_ok(owner, layer.digest);
            if (m_store.has_layer(diff_id)) continue;
            bool fixed = false;
            if (m_repair && blob) {
                if (!m_helper_started) m_helper_started = static_cast<bool>(m_store.start_layer_helper());
                fixed = static_cast<bool>(m_store.add_layer(layer, diff_id));
            }
            problem(fmt::format("{}: layer {} is not unpacked{}", owner, diff_id.str(), fixed ? " (unpacked again)" : ""),
                    fixed);
        }
    }

    void check_images() {
        auto recs = m_store.list();
        if (!recs) {
            problem("images.json: " + recs.error().message);
            return;
        }
        m_report.images = recs->size();
        for (const auto& r : *recs)
            check_image("image " + r.name, r);
    }

    void check_machines() {
        std::string root = m_store.root() + "/machines";
        for (const auto& n : entries(root)) {
            std::string dir = root + "/" + n;
            struct stat st {};
            if (n[0] == '.' || ::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue; // .locks, "default"
            if (!m_machines.exists(n)) {
                bool removed = false;
                if (m_repair) {
                    auto lock = m_machines.lock(n);
                    removed = lock && !m_machines.exists(n) && remove_tree(m_machines, n);
                }
                leftover(fmt::format("machine directory {} without a config (a create or rm was cut short)", n),
                         removed);
                continue;
            }
            ++m_report.machines;
            auto cfg = m_machines.config(n);
            if (!cfg) {
                problem(fmt::format("machine {}: {}", n, cfg.error().message));
                continue;
            }
            if (auto b = m_machines.boot_config(n); !b) problem(fmt::format("machine {}: {}", n, b.error().message));
            check_image("machine " + n, store::ImageRecord{cfg->image_reference, cfg->image.digest, ""});
            if (fs::exists(dir + "/state.json") && !m_machines.state(n)) {
                if (m_repair) m_machines.clear_state(n);
                leftover(fmt::format("machine {}: run state of a supervisor that is gone", n), m_repair);
            }
            for (const auto& f : entries(dir))
                if (is_atomic_temp(f)) {
                    bool removed = m_repair && ::unlink((dir + "/" + f).c_str()) == 0;
                    leftover(fmt::format("machine {}: unfinished write {}", n, f), removed);
                }
        }
    }

    void check_work_files() {
        const std::string& root = m_store.root();
        for (const auto& [dir, prefix] : {std::pair{root + "/tmp", std::string()},
                                          std::pair{root + "/layers/sha256", std::string("tmp-")}})
            for (const auto& n : entries(dir)) {
                pid_t pid = owner_pid(n, prefix);
                if (pid == 0 || pid_alive(pid)) continue;
                // lock() (taken above when repairing) removed them; whatever is still here is reported.
                leftover(fmt::format("work files of a killed command: {}", dir.substr(root.size() + 1) + "/" + n),
                         false);
            }
        for (const auto& n : entries(root + "/partial")) {
            bool removed = m_repair && ::unlink((root + "/partial/" + n).c_str()) == 0;
            leftover(fmt::format("interrupted download partial/{} (the next pull of it resumes it)", n), removed);
        }
        for (const auto& n : entries(root))
            if (is_atomic_temp(n)) {
                bool removed = m_repair && ::unlink((root + "/" + n).c_str()) == 0;
                leftover(fmt::format("unfinished write {}", n), removed);
            }
    }

    Machines& m_machines;
    store::Store& m_store;
    bool m_repair;
    bool m_helper_started = false;
    CheckReport m_report;
    std::set<std::string> m_verified, m_checked;
};

} // namespace

Result<CheckReport> check(Machines& machines, bool repair) { return Checker(machines, repair).run(); }

} // namespace ctr::machine
