// SPDX-License-Identifier: MIT
// Image references, normalised the way Docker and Podman do: "alpine" is
// "docker.io/library/alpine:latest"; a registry is the first component when it has a '.' or ':' or is
// "localhost".
#pragma once

#include <string>
#include <string_view>

#include "base/result.hpp"

namespace ctr::oci {

struct Reference {
    std::string domain; // "docker.io", "localhost:5000"
    std::string path;   // "library/alpine"
    std::string tag;    // "latest"; empty when only a digest was given
    std::string digest; // "sha256:…" or empty

    std::string repository() const { return domain + "/" + path; }
    // "docker.io/library/alpine:latest", "quay.io/x/y@sha256:…", "host/x:tag@sha256:…"
    std::string str() const;
    // The host to contact: docker.io is served at registry-1.docker.io.
    std::string registry_host() const;
    // Last path component, as `machine create` derives names from.
    std::string base_name() const;
};

// Parses and normalises; the error says what is wrong with the text.
Result<Reference> parse_reference(std::string_view text);

} // namespace ctr::oci
