// SPDX-License-Identifier: MIT
// `container machine commit`: a machine's own layer becomes a new image (machine/commit.hpp).
#include <chrono>
#include <memory>

#include <fmt/format.h>

#include "base/size.hpp"
#include "cli/commands.hpp"
#include "machine/commit.hpp"

namespace ctr::cli {

namespace {

struct CommitFlags {
    std::string machine, image, message, pause = "true";
    std::vector<std::string> changes, keep;
};

Result<int> do_commit(const CommitFlags& f) {
    machine::CommitOptions o;
    o.machine = f.machine;
    oci::Reference ref = TRY(oci::parse_reference(f.image));
    if (!ref.digest.empty())
        return make_error("invalid image name \"{}\": a digest cannot name a new image", f.image);
    o.image = ref.str();
    if (f.pause != "true" && f.pause != "false")
        return make_error("invalid --pause \"{}\": expected true or false", f.pause);
    o.pause = f.pause == "true";
    o.message = f.message;
    o.changes = f.changes;
    o.keep = f.keep;
    store::Store s = TRY(store::Store::open());
    machine::Machines machines(s);
    auto start = std::chrono::steady_clock::now();
    machine::CommitResult r = TRY(machine::commit(machines, o));
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fmt::print(stderr, "Committed {} entries, layer {} in {:.1f}s\n", r.entries, format_size(r.layer_size),
               secs);
    fmt::print("{}\n", r.manifest.str());
    return 0;
}

} // namespace

void add_commit_command(CLI::App* machine, Action& action) {
    auto f = std::make_shared<CommitFlags>();
    CLI::App* c = machine->add_subcommand("commit", "Make a new image from a container machine's changes");
    c->add_option("name", f->machine, "Container machine ID")->required()->type_name(k_machine_type);
    c->add_option("image", f->image, "Name of the new image, NAME[:TAG]")->required();
    c->add_option("-m,--message", f->message, "Comment recorded in the image's history");
    c->add_option(
         "-c,--change", f->changes,
         "Dockerfile instruction to apply: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, "
         "WORKDIR (repeatable)")
        ->type_name("INSTRUCTION");
    c->add_option("--pause", f->pause, "Freeze a running machine while its layer is read (default: true)")
        ->type_name("true|false");
    c->add_option("--keep", f->keep,
                  "Keep machine-local state left out by default: user, machine-id, journal, tmp, run, "
                  "ssh-host-keys or all (repeatable)")
        ->type_name("user|machine-id|journal|tmp|run|ssh-host-keys|all");
    c->fallthrough();
    c->callback([&action, f] { action = [f] { return do_commit(*f); }; });
}

} // namespace ctr::cli
