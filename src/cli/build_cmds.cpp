// SPDX-License-Identifier: MIT
// `container build`: flags, the step display, and FROM's pull through the CLI's pull (build/builder.hpp).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "build/builder.hpp"
#include "cli/commands.hpp"

namespace ctr::cli {

namespace {

struct BuildFlags {
    std::vector<std::string> tags, build_args, labels;
    std::string file, target, progress = "auto", context;
    bool no_cache = false, pull = false;
};

Result<std::pair<std::string, std::string>> key_value(const std::string& flag, const std::string& kv) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return make_error("invalid {} \"{}\": expected KEY=VALUE", flag, kv);
    return std::make_pair(kv.substr(0, eq), kv.substr(eq + 1));
}

Result<int> do_build(const BuildFlags& f) {
    build::BuildOptions o;
    o.context = f.context;
    o.file = f.file;
    o.tags = f.tags;
    o.target = f.target;
    o.no_cache = f.no_cache;
    o.pull = f.pull;
    for (const auto& a : f.build_args) {
        auto eq = a.find('=');
        if (eq == std::string::npos) { // --build-arg NAME: the value from our environment, as Docker does
            if (const char* v = std::getenv(a.c_str())) o.build_args[a] = v;
            continue;
        }
        auto kv = TRY(key_value("--build-arg", a));
        o.build_args[kv.first] = kv.second;
    }
    for (const auto& l : f.labels)
        o.labels.push_back(TRY(key_value("--label", l)));
    for (const auto& t : o.tags) {
        oci::Reference ref = TRY(oci::parse_reference(t));
        if (!ref.digest.empty()) return make_error("invalid tag \"{}\": a digest cannot name a new image", t);
    }
    bool quiet = f.progress == "none";
    bool tty = ::isatty(STDERR_FILENO) && f.progress == "auto";
    store::Store s = TRY(store::Store::open());
    o.pull_image = [&s, &f](const std::string& ref) -> Result<std::string> {
        PullFlags pf;
        pf.progress = f.progress == "none" ? "none" : f.progress == "plain" ? "plain" : "auto";
        auto r = TRY(pull_image(s, ref, pf));
        return r.name;
    };
    bool at_line_start = true;
    o.progress = [quiet, tty, &at_line_start](const build::StepEvent& e) {
        if (quiet) return;
        switch (e.kind) {
        case build::StepEvent::start:
        case build::StepEvent::cached:
            if (!at_line_start) fmt::print(stderr, "\n");
            fmt::print(stderr, "{}STEP {}/{}: {}{}{}\n", tty ? "\033[1m" : "", e.number, e.total, e.text,
                       e.kind == build::StepEvent::cached ? " (cached)" : "", tty ? "\033[0m" : "");
            at_line_start = true;
            break;
        case build::StepEvent::output:
            std::fwrite(e.text.data(), 1, e.text.size(), stderr);
            at_line_start = !e.text.empty() && e.text.back() == '\n';
            break;
        }
        std::fflush(stderr);
    };
    auto start = std::chrono::steady_clock::now();
    build::BuildResult r = TRY(build::build(s, o));
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!quiet)
        fmt::print(stderr, "Built {} in {:.1f}s: {} steps, {} cached, {} new layers\n", fmt::join(r.names, ", "), secs,
                   r.steps, r.cached, r.layers);
    fmt::print("{}\n", r.manifest.str());
    return 0;
}

} // namespace

void add_build_command(CLI::App& app, Action& action) {
    auto f = std::make_shared<BuildFlags>();
    CLI::App* b = app.add_subcommand("build", "Build an image from a Containerfile");
    b->add_option("context", f->context, "Build context directory")->required()->type_name("DIR");
    b->add_option("-t,--tag", f->tags, "Name of the image, NAME[:TAG] (repeatable)")->type_name("NAME");
    b->add_option("-f,--file", f->file, "Containerfile (default: CONTEXT/Containerfile, else CONTEXT/Dockerfile)")
        ->type_name(k_file_type);
    b->add_option("--build-arg", f->build_args, "Value of an ARG, KEY=VALUE (repeatable)")->type_name("KEY=VALUE");
    b->add_option("--target", f->target, "Stage to build (default: the last)")->type_name("STAGE");
    b->add_flag("--no-cache", f->no_cache, "Run every step, ignoring the build cache");
    b->add_flag("--pull", f->pull, "Pull FROM images even when they are stored");
    b->add_option("--progress", f->progress, "Step display: auto, plain or none")
        ->check(CLI::IsMember({"auto", "plain", "none"}))
        ->type_name("auto|plain|none");
    b->add_option("--label", f->labels, "Label of the image, KEY=VALUE (repeatable)")->type_name("KEY=VALUE");
    b->fallthrough();
    b->callback([&action, f] { action = [f] { return do_build(*f); }; });
}

} // namespace ctr::cli
