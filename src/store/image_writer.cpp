// SPDX-License-Identifier: MIT
#include "store/image_writer.hpp"

#include <nlohmann/json.hpp>

#include "oci/changes.hpp"

namespace ctr::store {

using nlohmann::json;

Result<oci::Descriptor> store_layer(Store& store, const std::string& blob_path, const WrittenLayer& written,
                                    const std::string& tree) {
    oci::Descriptor layer;
    layer.media_type = oci::media::k_oci_layer_gzip;
    layer.digest = written.digest;
    layer.size = static_cast<int64_t>(written.size);
    // write_layer hashed the blob as it wrote it, into a work file of the store that no machine reaches:
    // not read again.
    if (!store.has_blob(layer.digest)) TRY(store.put_verified_blob(blob_path, layer.digest));
    if (tree.empty())
        TRY(store.add_layer(layer, written.diff_id));
    else
        TRY(store.adopt_layer(tree, written.diff_id));
    return layer;
}

Result<oci::Digest> add_layer_image(Store& store, const Image& base, const NewLayer& nl,
                                    const std::string& name) {
    json config = base.config.raw;
    if (!config.is_object()) return make_error("the config of {} is not a JSON object", base.record.name);
    json& inner = config["config"];
    for (const auto& c : nl.changes)
        TRY(oci::apply_change(inner, c));

    oci::Descriptor layer = TRY(store_layer(store, nl.blob_path, nl.layer));

    std::string created = now_rfc3339();
    config["created"] = created;
    json& diff_ids = config["rootfs"]["diff_ids"];
    config["rootfs"]["type"] = "layers";
    if (!diff_ids.is_array()) diff_ids = json::array();
    diff_ids.push_back(nl.layer.diff_id.str());
    json& history = config["history"];
    if (!history.is_array()) {
        // Tools pair history entries with layers: an image without history gets one entry per layer.
        history = json::array();
        for (size_t i = 0; i + 1 < diff_ids.size(); ++i)
            history.push_back({{"created_by", "(layer of " + base.record.name + ")"}});
    }
    json entry = {{"created", created}, {"created_by", nl.created_by}};
    if (!nl.comment.empty()) entry["comment"] = nl.comment;
    history.push_back(entry);
    std::vector<oci::Descriptor> layers;
    for (oci::Descriptor l : base.manifest.layers) {
        // The same bytes under their OCI names: a manifest mixing the two families confuses readers.
        if (l.media_type == oci::media::k_docker_layer) l.media_type = oci::media::k_oci_layer_gzip;
        layers.push_back(l);
    }
    layers.push_back(layer);
    return name_image(store, name, config.dump(), std::move(layers));
}

Result<oci::Digest> name_image(Store& store, const std::string& name, const std::string& config_text,
                               std::vector<oci::Descriptor> layers) {
    oci::Manifest m;
    m.media_type = oci::media::k_oci_manifest;
    m.config.media_type = oci::media::k_oci_config;
    m.config.digest = TRY(store.put_blob_data(config_text));
    m.config.size = static_cast<int64_t>(config_text.size());
    m.layers = std::move(layers);
    oci::Digest md = TRY(store.put_blob_data(oci::manifest_to_json(m)));
    TRY(store.add_image(name, md));
    return md;
}

} // namespace ctr::store
