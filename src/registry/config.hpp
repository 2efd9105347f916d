// SPDX-License-Identifier: MIT
// What the user tells us about registries: credentials (the Docker and Podman files) and per-registry
// transport settings (registries.json). Only reading and writing files; no network.
//
// registries.json, read from $XDG_CONFIG_HOME/container/registries.json (default ~/.config/…), then
// /etc/container/registries.json; the first file that names the registry wins:
//   {"registries": {"registry.example:5000": {"ca": "/path/ca.pem"},
//                   "10.0.0.5:5000": {"insecure": true}}}
// "insecure" allows plain HTTP and unverified TLS. Loopback registries may use HTTP without an entry.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "base/result.hpp"

namespace ctr::registry {

struct RegistrySettings {
    std::string ca_file;
    bool insecure = false;
};

Result<RegistrySettings> registry_settings(const std::string& host);

struct Credentials {
    std::string username, password;
};

// The key a registry is known by in credential files: "docker.io" for Docker Hub (whatever alias the
// file used), else host[:port] without scheme or path.
std::string credential_key(const std::string& host_or_url);

// Looks in $XDG_RUNTIME_DIR/containers/auth.json, ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json,
// then ~/.docker/config.json ("auths" entries with a base64 "auth" of user:password).
Result<std::optional<Credentials>> find_credentials(const std::string& host);

// The auth.json that `registry login` writes: $XDG_RUNTIME_DIR/containers/auth.json, or the one under
// XDG_CONFIG_HOME when there is no runtime directory.
std::string auth_file_for_login();
Result<void> store_credentials(const std::string& host, const Credentials& c);
// Returns false when there was nothing stored for the host.
Result<bool> erase_credentials(const std::string& host);

std::string base64_encode(std::string_view in);
std::optional<std::string> base64_decode(std::string_view in);

// A WWW-Authenticate challenge: `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
struct Challenge {
    std::string scheme; // lower-cased: "bearer", "basic"
    std::map<std::string, std::string> params;
};
std::optional<Challenge> parse_challenge(const std::string& header);

} // namespace ctr::registry
