// SPDX-License-Identifier: MIT
// `container system check [--repair]`: the data directory's consistency (machine/check.hpp).
#include <memory>

#include <fmt/format.h>

#include "cli/app.hpp"
#include "cli/commands.hpp"
#include "machine/check.hpp"
#include "store/store.hpp"

namespace ctr::cli {

namespace {

Result<int> do_check(bool repair) {
    store::Store s = TRY(store::Store::open());
    machine::Machines machines(s);
    machine::CheckReport report = TRY(machine::check(machines, repair));
    size_t problems = 0;
    for (const auto& f : report.findings) {
        bool problem = f.kind == machine::Finding::Kind::problem;
        if (problem && !f.repaired) ++problems;
        fmt::print("{}: {}{}\n", problem ? "problem" : "leftover", f.what, f.repaired ? " [repaired]" : "");
    }
    fmt::print("{}: {} images, {} machines, {} blobs verified in {}\n", problems ? "inconsistent" : "consistent",
               report.images, report.machines, report.blobs_verified, s.root());
    return problems ? k_exit_failure : 0;
}

} // namespace

void add_system_commands(CLI::App& app, Action& action) {
    CLI::App* system = app.add_subcommand("system", "Check the data directory");
    system->require_subcommand(1);
    auto repair = std::make_shared<bool>(false);
    CLI::App* check = system->add_subcommand("check", "Verify the store and machines; with --repair, clear leftovers");
    check->add_flag("--repair", *repair, "Remove what killed commands left, unpack missing layers again, drop corrupt blobs");
    check->callback([&action, repair] { action = [repair] { return do_check(*repair); }; });
}

} // namespace ctr::cli
