// SPDX-License-Identifier: MIT
// `container image push`: a stored image to a registry (registry/push.hpp), with pull's auth and display.
#include <memory>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/progress.hpp"
#include "registry/push.hpp"

namespace ctr::cli {

namespace {

struct PushFlags {
    std::string image, dest, scheme = "auto", progress = "auto";
    int max_concurrent = 3;
};

Result<int> do_push(const PushFlags& f) {
    store::Store s = TRY(store::Store::open());
    store::ImageRecord rec = TRY(s.find(f.image));
    store::Image img = TRY(s.get(rec));
    oci::Reference dest = TRY(oci::parse_reference(f.dest.empty() ? rec.name : f.dest));
    if (dest.domain == "localhost" && dest.registry_host() == "localhost")
        return make_error(
            "{} names no registry: tag it with one first ('container image tag {} REGISTRY/NAME:TAG')",
            dest.str(), rec.name);
    registry::PushOptions po;
    po.client.scheme = TRY(registry::parse_scheme(f.scheme));
    po.max_concurrent_uploads = f.max_concurrent;
    PullProgress progress(TRY(PullProgress::parse_mode(f.progress)), PullProgress::Direction::push);
    po.observer = &progress;
    auto r = registry::push(s, img, dest, po);
    progress.finish(r.has_value());
    if (!r) return wrap(std::move(r).error(), fmt::format("push {}", dest.str()));
    fmt::print(stderr, "Pushed {}: {} uploaded, {} already there, {} mounted\n", dest.str(), r->uploaded,
               r->present, r->mounted);
    fmt::print("{}\n", r->manifest.str());
    return 0;
}

} // namespace

void add_push_command(CLI::App* image, Action& action) {
    auto f = std::make_shared<PushFlags>();
    CLI::App* push = image->add_subcommand("push", "Push an image to a registry");
    push->add_option("image", f->image, "Image to push (its name says where, unless DESTINATION is given)")
        ->required()
        ->type_name(k_image_type);
    push->add_option("destination", f->dest,
                     "Where to push it, REGISTRY/NAME[:TAG] (default: the image's name)");
    push->add_option("--scheme", f->scheme, "Registry scheme: auto, http or https")
        ->check(CLI::IsMember({"auto", "http", "https"}));
    push->add_option("--progress", f->progress, "Progress display: auto, plain, ansi or none")
        ->check(CLI::IsMember({"auto", "plain", "ansi", "color", "tty", "none"}));
    push->add_option("--max-concurrent-uploads", f->max_concurrent, "Blobs uploaded at once")
        ->check(CLI::Range(1, 32));
    push->fallthrough();
    push->callback([&action, f] { action = [f] { return do_push(*f); }; });
}

} // namespace ctr::cli
