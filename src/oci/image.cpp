// SPDX-License-Identifier: MIT
// Parsing of manifests, indexes and image configs; JSON exceptions stop here.
#include "oci/image.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <array>
#include <string_view>

namespace ctr::oci {

using nlohmann::json;

namespace {

constexpr std::array<std::string_view, 2> k_manifest_types = {media::k_oci_manifest,
                                                              media::k_docker_manifest};
constexpr std::array<std::string_view, 2> k_index_types = {media::k_oci_index, media::k_docker_list};
constexpr std::array<std::string_view, 2> k_config_types = {media::k_oci_config, media::k_docker_config};
constexpr std::array<std::string_view, 8> k_layer_types = {
    media::k_oci_layer,
    media::k_oci_layer_gzip,
    media::k_oci_layer_zstd,
    media::k_docker_layer,
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
};

template <size_t N> bool contains(const std::array<std::string_view, N>& a, const std::string& s) {
    return std::find(a.begin(), a.end(), s) != a.end();
}

std::string str_field(const json& j, const char* key, const char* fallback = "") {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string(fallback);
}

// Image documents nest a few levels. nlohmann parses and frees without recursion, but copies, compares
// and prints with one stack frame per level: a config of 200 000 nested arrays overflowed the stack.
constexpr int k_max_json_depth = 256;

Result<json> parse_json(const std::string& text, const char* what) {
    bool too_deep = false;
    auto check_depth = [&](int depth, json::parse_event_t, json&) {
        too_deep = too_deep || depth > k_max_json_depth;
        return true;
    };
    json j = json::parse(text, check_depth, /*allow_exceptions=*/false);
    if (j.is_discarded()) return make_error("{} is not valid JSON", what);
    if (too_deep) return make_error("{} nests deeper than {} levels", what, k_max_json_depth);
    if (!j.is_object()) return make_error("{} is not a JSON object", what);
    return j;
}

Result<Descriptor> parse_descriptor(const json& j, const char* where) {
    if (!j.is_object()) return make_error("{}: descriptor is not an object", where);
    Descriptor d;
    auto mt = j.find("mediaType");
    auto dg = j.find("digest");
    auto sz = j.find("size");
    if (mt == j.end() || !mt->is_string()) return make_error("{}: descriptor without mediaType", where);
    if (dg == j.end() || !dg->is_string()) return make_error("{}: descriptor without digest", where);
    if (sz == j.end() || !sz->is_number_integer() || sz->get<int64_t>() < 0)
        return make_error("{}: descriptor without a valid size", where);
    d.media_type = mt->get<std::string>();
    d.digest = TRY(parse_digest(dg->get<std::string>()));
    d.size = sz->get<int64_t>();
    if (auto a = j.find("annotations"); a != j.end() && a->is_object())
        for (auto& [k, v] : a->items())
            if (v.is_string()) d.annotations[k] = v.get<std::string>();
    if (auto p = j.find("platform"); p != j.end() && p->is_object()) {
        Platform pl;
        pl.os = str_field(*p, "os", "");
        pl.architecture = str_field(*p, "architecture", "");
        pl.variant = str_field(*p, "variant", "");
        d.platform = pl;
    }
    return d;
}

} // namespace

bool is_manifest_type(const std::string& t) {
    return contains(k_manifest_types, t);
}
bool is_index_type(const std::string& t) {
    return contains(k_index_types, t);
}
bool is_layer_type(const std::string& t) {
    return contains(k_layer_types, t);
}
bool is_config_type(const std::string& t) {
    return contains(k_config_types, t);
}

Platform host_platform() {
    struct utsname u {};
    ::uname(&u);
    std::string m = u.machine;
    Platform p;
    if (m == "x86_64")
        p.architecture = "amd64";
    else if (m == "aarch64")
        p.architecture = "arm64", p.variant = "v8";
    else if (m == "i686" || m == "i386")
        p.architecture = "386";
    else if (m == "armv7l")
        p.architecture = "arm", p.variant = "v7";
    else
        p.architecture = m;
    return p;
}

Result<Platform> parse_platform(const std::string& text) {
    Platform p;
    auto a = text.find('/');
    if (a == std::string::npos || a == 0)
        return make_error("invalid platform \"{}\": expected os/arch[/variant]", text);
    p.os = text.substr(0, a);
    auto b = text.find('/', a + 1);
    p.architecture = text.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
    if (b != std::string::npos) p.variant = text.substr(b + 1);
    if (p.architecture.empty())
        return make_error("invalid platform \"{}\": expected os/arch[/variant]", text);
    return p;
}

bool platform_matches(const Platform& want, const Platform& have) {
    if (want.os != have.os || want.architecture != have.architecture) return false;
    if (want.variant.empty() || have.variant.empty()) return true;
    return want.variant == have.variant;
}

Result<DocumentKind> document_kind(const std::string& text) {
    json j = TRY(parse_json(text, "image document"));
    std::string mt = str_field(j, "mediaType", "");
    if (is_manifest_type(mt)) return DocumentKind::manifest;
    if (is_index_type(mt)) return DocumentKind::index;
    if (!mt.empty()) return make_error("unsupported media type \"{}\"", mt);
    if (j.contains("manifests")) return DocumentKind::index;
    if (j.contains("config") && j.contains("layers")) return DocumentKind::manifest;
    return make_error("JSON document is neither an image manifest nor an index");
}

Result<Manifest> parse_manifest(const std::string& text) {
    json j = TRY(parse_json(text, "manifest"));
    Manifest m;
    m.media_type = str_field(j, "mediaType", media::k_oci_manifest);
    if (!is_manifest_type(m.media_type))
        return make_error("unsupported manifest media type \"{}\"", m.media_type);
    if (!j.contains("schemaVersion") || j["schemaVersion"] != 2)
        return make_error("manifest: schemaVersion is not 2");
    auto c = j.find("config");
    auto l = j.find("layers");
    if (c == j.end()) return make_error("manifest: no config descriptor");
    if (l == j.end() || !l->is_array()) return make_error("manifest: no layers array");
    m.config = TRY(parse_descriptor(*c, "manifest config"));
    if (!is_config_type(m.config.media_type))
        return make_error("unsupported config media type \"{}\"", m.config.media_type);
    for (const auto& e : *l) {
        Descriptor d = TRY(parse_descriptor(e, "manifest layer"));
        if (!is_layer_type(d.media_type))
            return make_error("unsupported layer media type \"{}\"", d.media_type);
        m.layers.push_back(std::move(d));
    }
    return m;
}

Result<Index> parse_index(const std::string& text) {
    json j = TRY(parse_json(text, "index"));
    Index x;
    x.media_type = str_field(j, "mediaType", media::k_oci_index);
    if (!is_index_type(x.media_type)) return make_error("unsupported index media type \"{}\"", x.media_type);
    auto ms = j.find("manifests");
    if (ms == j.end() || !ms->is_array()) return make_error("index: no manifests array");
    for (const auto& e : *ms)
        x.manifests.push_back(TRY(parse_descriptor(e, "index entry")));
    return x;
}

Result<ImageConfig> parse_config(const std::string& text) {
    json j = TRY(parse_json(text, "image config"));
    ImageConfig c;
    c.raw = j;
    c.platform.os = str_field(j, "os", "");
    c.platform.architecture = str_field(j, "architecture", "");
    c.platform.variant = str_field(j, "variant", "");
    c.created = j.contains("created") && j["created"].is_string() ? j["created"].get<std::string>() : "";
    if (auto cfg = j.find("config"); cfg != j.end() && cfg->is_object())
        if (auto s = cfg->find("StopSignal"); s != cfg->end() && s->is_string())
            c.stop_signal = s->get<std::string>();
    auto rootfs = j.find("rootfs");
    if (rootfs == j.end() || !rootfs->is_object()) return make_error("image config: no rootfs");
    auto ids = rootfs->find("diff_ids");
    if (ids == rootfs->end() || !ids->is_array()) return make_error("image config: no rootfs.diff_ids");
    for (const auto& d : *ids) {
        if (!d.is_string()) return make_error("image config: diff_id is not a string");
        c.diff_ids.push_back(TRY(parse_digest(d.get<std::string>())));
    }
    return c;
}

json descriptor_to_json(const Descriptor& d) {
    json j = {{"mediaType", d.media_type}, {"digest", d.digest.str()}, {"size", d.size}};
    if (!d.annotations.empty()) j["annotations"] = d.annotations;
    if (d.platform) {
        json p = {{"os", d.platform->os}, {"architecture", d.platform->architecture}};
        if (!d.platform->variant.empty()) p["variant"] = d.platform->variant;
        j["platform"] = p;
    }
    return j;
}

std::string manifest_to_json(const Manifest& m) {
    json layers = json::array();
    for (const auto& l : m.layers)
        layers.push_back(descriptor_to_json(l));
    json j = {{"schemaVersion", 2},
              {"mediaType", m.media_type},
              {"config", descriptor_to_json(m.config)},
              {"layers", layers}};
    return j.dump();
}

} // namespace ctr::oci
