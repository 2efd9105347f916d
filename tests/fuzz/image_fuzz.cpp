// SPDX-License-Identifier: MIT
// Manifests, indexes and image configs come from registries and image archives. Every parser sees
// every input; a manifest that parses must survive being written out (as `image save` and the store
// do) and parsed again.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "oci/image.hpp"

using namespace ctr::oci;

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
    std::fprintf(stderr, "%s: %s\n", what, detail.c_str());
    std::abort();
}

void check_manifest_round_trip(const Manifest& m) {
    std::string text = manifest_to_json(m);
    auto again = parse_manifest(text);
    if (!again) fail("a written manifest does not parse", again.error().message + "\n" + text);
    if (again->media_type != m.media_type || again->config.digest != m.config.digest ||
        again->layers.size() != m.layers.size())
        fail("a written manifest parses differently", text);
    for (size_t i = 0; i < m.layers.size(); ++i)
        if (again->layers[i].digest != m.layers[i].digest || again->layers[i].size != m.layers[i].size ||
            again->layers[i].annotations != m.layers[i].annotations)
            fail("a written manifest layer parses differently", text);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    (void)document_kind(text);
    if (auto m = parse_manifest(text)) check_manifest_round_trip(*m);
    if (auto x = parse_index(text)) {
        for (const auto& d : x->manifests) {
            (void)descriptor_to_json(d).dump();
            if (d.platform) (void)platform_matches(host_platform(), *d.platform);
        }
    }
    if (auto c = parse_config(text)) (void)c->raw.dump();
    (void)parse_platform(text);
    return 0;
}
