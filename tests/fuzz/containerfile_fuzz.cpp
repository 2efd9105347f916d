// SPDX-License-Identifier: MIT
// A Containerfile comes with the build context, which is untrusted: the parser and the word processing
// of every instruction's arguments must survive any text.
#include <cstdint>
#include <string>

#include "oci/containerfile.hpp"

using namespace ctr::oci;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    VarLookup vars = [](const std::string& k) -> std::optional<std::string> {
        if (k.size() % 2) return std::nullopt;
        return "v " + k;
    };
    auto cf = parse_containerfile(text);
    if (!cf) {
        (void)process_words(text, '\\', vars);
        (void)parse_key_values(text, '`', vars, true, true);
        return 0;
    }
    for (const auto& st : cf->stages) {
        (void)process_word(st.base, cf->escape, vars);
        for (const auto& in : st.steps) {
            (void)process_words(in.args, cf->escape, vars);
            (void)parse_key_values(in.args, cf->escape, vars, in.keyword == "ENV", in.keyword == "ARG");
            if (in.keyword == "HEALTHCHECK")
                if (auto hc = healthcheck(in)) (void)hc->dump();
        }
    }
    return 0;
}
