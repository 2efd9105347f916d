// SPDX-License-Identifier: MIT
// `container image …`: load, import, list, inspect, tag, rm, save.
#include <cerrno>
#include <memory>

#include <fmt/format.h>

#include "base/size.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "machine/machine.hpp"
#include "store/archive.hpp"
#include "store/store.hpp"

#include <algorithm>

namespace ctr::cli {

using nlohmann::json;

namespace {

struct ImageOptions {
    std::string input, output, format = "table";
    std::vector<std::string> refs;
    std::string source, target;
    bool quiet = false, force = false;
};

// A name given by the user for a new image: a reference without a digest.
Result<std::string> new_image_name(const std::string& text) {
    oci::Reference ref = TRY(oci::parse_reference(text));
    if (!ref.digest.empty())
        return make_error("invalid image name \"{}\": a digest cannot name a new image", text);
    return ref.str();
}

std::string short_created(const std::string& rfc3339) {
    // "2024-01-02T03:04:05.123456Z" -> "2024-01-02T03:04:05Z"
    if (rfc3339.size() >= 19) return rfc3339.substr(0, 19) + "Z";
    return rfc3339;
}

json image_json(const store::Image& img) {
    oci::Reference ref = *oci::parse_reference(img.record.name);
    json layers = json::array();
    for (size_t i = 0; i < img.manifest.layers.size(); ++i) {
        const auto& l = img.manifest.layers[i];
        layers.push_back({{"digest", l.digest.str()},
                          {"mediaType", l.media_type},
                          {"size", l.size},
                          {"diffID", i < img.config.diff_ids.size() ? img.config.diff_ids[i].str() : ""}});
    }
    json platform = {{"os", img.config.platform.os}, {"architecture", img.config.platform.architecture}};
    if (!img.config.platform.variant.empty()) platform["variant"] = img.config.platform.variant;
    return {{"reference", img.record.name},
            {"name", ref.repository()},
            {"tag", ref.tag},
            {"descriptor",
             {{"mediaType", img.manifest.media_type},
              {"digest", img.record.digest.str()},
              {"size", img.manifest_json.size()}}},
            {"configDigest", img.manifest.config.digest.str()},
            {"size", img.size},
            {"created", img.config.created},
            {"stored", img.record.stored},
            {"platform", platform},
            {"layers", layers},
            {"config", img.config.raw}};
}

Result<int> do_load(const ImageOptions& o) {
    store::Store s = TRY(store::Store::open());
    auto lock = TRY(s.lock());
    auto names = store::load_archive(s, o.input);
    if (!names) {
        // Blobs verified before the failure belong to no image: drop them (keeping what machines use).
        machine::Machines machines(s);
        if (auto in_use = machines.images_in_use())
            (void)s.collect_garbage(*in_use); // best effort: the load's own error is what the user needs
        return wrap(std::move(names).error(), fmt::format("load \"{}\"", o.input));
    }
    for (const auto& n : *names)
        fmt::print("Loaded image: {}\n", n);
    return 0;
}

Result<int> do_import(const ImageOptions& o) {
    std::string name = TRY(new_image_name(o.target));
    store::Store s = TRY(store::Store::open());
    auto lock = TRY(s.lock());
    auto d = store::import_rootfs(s, o.input, name);
    if (!d) return wrap(std::move(d).error(), fmt::format("import \"{}\"", o.input));
    fmt::print("Imported image: {}\n", name);
    return 0;
}

Result<int> do_list(const ImageOptions& o) {
    store::Store s = TRY(store::Store::open());
    auto recs = TRY(s.list());
    if (o.quiet) {
        for (const auto& r : recs)
            fmt::print("{}\n", r.name);
        return 0;
    }
    std::vector<store::Image> images;
    for (const auto& r : recs)
        images.push_back(TRY(s.get(r)));
    if (o.format == "json") {
        json out = json::array();
        for (const auto& img : images) {
            json j = image_json(img);
            j.erase("config");
            j.erase("layers");
            out.push_back(j);
        }
        print_json(out);
        return 0;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& img : images) {
        oci::Reference ref = *oci::parse_reference(img.record.name);
        rows.push_back({ref.repository(), ref.tag.empty() ? "<none>" : ref.tag, img.record.digest.short_hex(),
                        format_size(img.size), short_created(img.config.created)});
    }
    print_table({"NAME", "TAG", "DIGEST", "SIZE", "CREATED"}, rows);
    return 0;
}

Result<int> do_inspect(const ImageOptions& o) {
    store::Store s = TRY(store::Store::open());
    json out = json::array();
    for (const auto& ref : o.refs) {
        store::ImageRecord rec = TRY(s.find(ref));
        out.push_back(image_json(TRY(s.get(rec))));
    }
    print_json(out);
    return 0;
}

Result<int> do_tag(const ImageOptions& o) {
    std::string dst = TRY(new_image_name(o.target));
    store::Store s = TRY(store::Store::open());
    auto lock = TRY(s.lock());
    store::ImageRecord src = TRY(s.find(o.source));
    TRY(s.tag(src, dst));
    return 0;
}

// `image prune`: no names change; blobs, layers and build cache entries no image or machine needs go.
Result<int> do_prune(const ImageOptions&) {
    store::Store s = TRY(store::Store::open());
    auto lock = TRY(s.lock());
    machine::Machines machines(s);
    TRY(s.collect_garbage(TRY(machines.images_in_use())));
    return 0;
}

Result<int> do_remove(const ImageOptions& o) {
    store::Store s = TRY(store::Store::open());
    auto lock = TRY(s.lock());
    // Machines keep using their image's layers: a name they were made from is not dropped unless forced,
    // and GC never collects what they need.
    machine::Machines machines(s);
    std::vector<oci::Digest> in_use;
    std::vector<std::pair<std::string, oci::Digest>> users;
    for (const auto& m : TRY(machines.names())) {
        auto cfg = machines.config(m);
        if (!cfg) continue;
        in_use.push_back(cfg->image.digest);
        users.emplace_back(m, cfg->image.digest);
    }
    // Each reference on its own: a missing or busy one gets its line, the others still go.
    auto status = for_each_name(o.refs, [&](const std::string& ref) -> Result<void> {
        auto found = s.find(ref);
        if (!found && o.force && found.error().errnum == ENOENT) return {}; // -f: already gone is fine
        store::ImageRecord rec = TRY(std::move(found));
        auto recs = TRY(s.list());
        std::vector<std::string> names;
        bool by_name = oci::parse_reference(ref) && oci::parse_reference(ref)->str() == rec.name;
        if (by_name) {
            names.push_back(rec.name);
        } else { // by ID: every name of that image goes
            for (const auto& r : recs)
                if (r.digest == rec.digest) names.push_back(r.name);
        }
        // Like `docker rmi` of one tag: the image stays while another of its names does.
        bool named_still = std::any_of(recs.begin(), recs.end(), [&](const store::ImageRecord& r) {
            return r.digest == rec.digest && std::find(names.begin(), names.end(), r.name) == names.end();
        });
        if (!o.force && !named_still)
            for (const auto& [m, d] : users)
                if (d == rec.digest)
                    return make_error(
                        "image {} is used by container machine {} (delete the machine first, or use -f)", rec.name,
                        m);
        for (const auto& n : names) {
            TRY(s.remove_name(n));
            fmt::print("{}\n", n);
        }
        return {};
    });
    TRY(s.collect_garbage(in_use));
    return status;
}

Result<int> do_save(const ImageOptions& o) {
    store::Store s = TRY(store::Store::open());
    std::vector<store::ImageRecord> recs;
    for (const auto& ref : o.refs)
        recs.push_back(TRY(s.find(ref)));
    auto r = store::save_archive(s, recs, o.output);
    if (!r) return wrap(std::move(r).error(), fmt::format("save \"{}\"", o.output));
    return 0;
}

} // namespace

void add_image_commands(CLI::App& app, Action& action) {
    auto o = std::make_shared<ImageOptions>();
    CLI::App* image = app.add_subcommand("image", "Manage images in the local store");
    image->alias("images");
    image->require_subcommand(1);
    image->fallthrough();
    auto bind = [&action, o](CLI::App* sub, Result<int> (*fn)(const ImageOptions&)) {
        sub->fallthrough();
        sub->callback([&action, o, fn] { action = [o, fn] { return fn(*o); }; });
    };

    CLI::App* load =
        image->add_subcommand("load", "Load images from an OCI image layout or docker save archive");
    load->add_option("-i,--input", o->input, "Archive to read (tar, tar.gz or tar.zst)")
        ->required()
        ->type_name(k_file_type);
    bind(load, do_load);

    CLI::App* import =
        image->add_subcommand("import", "Make a one-layer image from a root filesystem tarball");
    import->add_option("file", o->input, "Root filesystem tarball (tar, tar.gz or tar.zst)")
        ->required()
        ->type_name(k_file_type);
    import->add_option("name", o->target, "Name of the new image, NAME[:TAG]")->required();
    bind(import, do_import);

    CLI::App* list = image->add_subcommand("list", "List images");
    list->alias("ls");
    list->add_flag("-q,--quiet", o->quiet, "Print only image references");
    list->add_option("--format", o->format, "Output format")->check(CLI::IsMember({"table", "json"}));
    bind(list, do_list);

    CLI::App* inspect = image->add_subcommand("inspect", "Show images as JSON");
    inspect->add_option("images", o->refs, "Image references or IDs")->required()->type_name(k_image_type);
    bind(inspect, do_inspect);

    CLI::App* tag = image->add_subcommand("tag", "Give an image another name");
    tag->add_option("source", o->source, "Existing image")->required()->type_name(k_image_type);
    tag->add_option("target", o->target, "New name, NAME[:TAG]")->required();
    bind(tag, do_tag);

    CLI::App* rm = image->add_subcommand("delete", "Remove image names and the data no image needs any more");
    rm->alias("rm");
    rm->add_flag("-f,--force", o->force, "Remove even if in use; ignore names already gone");
    rm->add_option("images", o->refs, "Image references or IDs")->required()->type_name(k_image_type);
    bind(rm, do_remove);

    CLI::App* prune = image->add_subcommand(
        "prune", "Remove the data no image or machine needs: layers, blobs and build cache entries");
    bind(prune, do_prune);

    CLI::App* save = image->add_subcommand("save", "Write images to an OCI image layout archive");
    save->add_option("-o,--output", o->output, "Archive to write")->required()->type_name(k_file_type);
    save->add_option("images", o->refs, "Image references or IDs")->required()->type_name(k_image_type);
    bind(save, do_save);

    add_pull_command(image, action);
    add_push_command(image, action);
}

} // namespace ctr::cli
