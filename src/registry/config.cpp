// SPDX-License-Identifier: MIT
#include "registry/config.hpp"

#include "oci/libcrypto.hpp"
#include <unistd.h>

#include <cctype>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "base/fs.hpp"

namespace ctr::registry {

using nlohmann::json;

namespace {

std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : fallback;
}

std::string home() {
    return env_or("HOME", "/");
}

std::string config_home() {
    return env_or("XDG_CONFIG_HOME", home() + "/.config");
}

// Reads a JSON object from `path`; a missing file is an empty object.
Result<json> read_json_file(const std::string& path) {
    if (!fs::exists(path)) return json::object();
    std::string text = TRY(fs::read_file(path));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return make_error("\"{}\" is not a JSON object", path);
    return j;
}

std::vector<std::string> auth_files() {
    std::vector<std::string> files;
    if (const char* rt = std::getenv("XDG_RUNTIME_DIR"); rt && *rt)
        files.push_back(std::string(rt) + "/containers/auth.json");
    files.push_back(config_home() + "/containers/auth.json");
    files.push_back(env_or("DOCKER_CONFIG", home() + "/.docker") + "/config.json");
    return files;
}

} // namespace

Result<RegistrySettings> registry_settings(const std::string& host) {
    for (const std::string& path : {config_home() + "/container/registries.json",
                                    std::string("/etc/container/registries.json")}) {
        json j = TRY(read_json_file(path));
        if (!j.contains("registries")) continue;
        const json& regs = j["registries"];
        if (!regs.is_object()) return make_error("\"{}\": \"registries\" must be an object", path);
        auto it = regs.find(host);
        if (it == regs.end()) it = regs.find(credential_key(host)); // "docker.io" for registry-1.docker.io
        if (it == regs.end()) continue;
        if (!it->is_object()) return make_error("\"{}\": the entry for {} must be an object", path, host);
        RegistrySettings s;
        if (it->contains("ca")) {
            if (!(*it)["ca"].is_string()) return make_error("\"{}\": {}.ca must be a path", path, host);
            s.ca_file = (*it)["ca"].get<std::string>();
            if (!fs::exists(s.ca_file))
                return make_error("\"{}\": the CA file \"{}\" for {} does not exist", path, s.ca_file, host);
        }
        if (it->contains("insecure")) {
            if (!(*it)["insecure"].is_boolean())
                return make_error("\"{}\": {}.insecure must be true or false", path, host);
            s.insecure = (*it)["insecure"].get<bool>();
        }
        return s;
    }
    return RegistrySettings{};
}

std::string credential_key(const std::string& host_or_url) {
    std::string k = host_or_url;
    if (auto p = k.find("://"); p != std::string::npos) k = k.substr(p + 3);
    if (auto p = k.find('/'); p != std::string::npos) k = k.substr(0, p);
    for (auto& ch : k)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (k == "index.docker.io" || k == "registry-1.docker.io" || k == "registry.hub.docker.com") k = "docker.io";
    return k;
}

Result<std::optional<Credentials>> find_credentials(const std::string& host) {
    std::string want = credential_key(host);
    for (const auto& path : auth_files()) {
        json j = TRY(read_json_file(path));
        if (!j.contains("auths") || !j["auths"].is_object()) continue;
        for (const auto& [key, entry] : j["auths"].items()) {
            if (credential_key(key) != want || !entry.is_object()) continue;
            if (!entry.contains("auth") || !entry["auth"].is_string()) continue; // credential helpers: not ours
            auto decoded = base64_decode(entry["auth"].get<std::string>());
            auto colon = decoded ? decoded->find(':') : std::string::npos;
            if (colon == std::string::npos)
                return make_error("\"{}\": the auth entry for {} is not base64 of user:password", path, key);
            return std::optional<Credentials>(Credentials{decoded->substr(0, colon), decoded->substr(colon + 1)});
        }
    }
    return std::optional<Credentials>();
}

std::string auth_file_for_login() {
    if (const char* rt = std::getenv("XDG_RUNTIME_DIR"); rt && *rt && fs::exists(rt))
        return std::string(rt) + "/containers/auth.json";
    return config_home() + "/containers/auth.json";
}

Result<void> store_credentials(const std::string& host, const Credentials& c) {
    std::string path = auth_file_for_login();
    json j = TRY(read_json_file(path));
    if (!j.contains("auths") || !j["auths"].is_object()) j["auths"] = json::object();
    j["auths"][credential_key(host)] = {{"auth", base64_encode(c.username + ":" + c.password)}};
    TRY(fs::make_dirs(path.substr(0, path.rfind('/')), 0700));
    return fs::write_file_atomic(path, j.dump(1, '\t') + "\n", 0600);
}

Result<bool> erase_credentials(const std::string& host) {
    std::string path = auth_file_for_login();
    json j = TRY(read_json_file(path));
    if (!j.contains("auths") || !j["auths"].is_object()) return false;
    std::string want = credential_key(host);
    bool found = false;
    for (auto it = j["auths"].begin(); it != j["auths"].end();) {
        if (credential_key(it.key()) == want) {
            it = j["auths"].erase(it);
            found = true;
        } else {
            ++it;
        }
    }
    if (found) TRY(fs::write_file_atomic(path, j.dump(1, '\t') + "\n", 0600));
    return found;
}

std::string base64_encode(std::string_view in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
    std::string s(in);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.pop_back();
    if (s.empty() || s.size() % 4 != 0) return std::nullopt;
    std::string out(s.size() / 4 * 3, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
    if (n < 0) return std::nullopt;
    size_t pad = (s.back() == '=') + (s.size() > 1 && s[s.size() - 2] == '=');
    out.resize(static_cast<size_t>(n) - pad); // DecodeBlock counts the padding as output bytes
    return out;
}

std::optional<Challenge> parse_challenge(const std::string& header) {
    size_t i = 0;
    while (i < header.size() && header[i] == ' ')
        ++i;
    size_t start = i;
    while (i < header.size() && header[i] != ' ')
        ++i;
    if (i == start) return std::nullopt;
    Challenge c;
    c.scheme = header.substr(start, i - start);
    for (auto& ch : c.scheme)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    // auth-param = token "=" ( token / quoted-string ), separated by commas.
    while (i < header.size()) {
        while (i < header.size() && (header[i] == ' ' || header[i] == ','))
            ++i;
        size_t k = i;
        while (i < header.size() && header[i] != '=' && header[i] != ',')
            ++i;
        if (i >= header.size() || header[i] != '=') break;
        std::string key = header.substr(k, i - k);
        for (auto& ch : key)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        ++i;
        std::string value;
        if (i < header.size() && header[i] == '"') {
            ++i;
            while (i < header.size() && header[i] != '"') {
                if (header[i] == '\\' && i + 1 < header.size()) ++i;
                value += header[i++];
            }
            ++i; // closing quote
        } else {
            while (i < header.size() && header[i] != ',')
                value += header[i++];
        }
        c.params[key] = value;
    }
    return c;
}

} // namespace ctr::registry
