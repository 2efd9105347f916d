// SPDX-License-Identifier: MIT
#include "oci/changes.hpp"

#include <algorithm>
#include <cctype>

namespace ctr::oci {

using nlohmann::json;

namespace {

std::string trim(const std::string& s) {
    size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b])))
        ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])))
        --e;
    return s.substr(b, e - b);
}

// The exec form (a JSON array of strings) or the shell form, which runs under /bin/sh -c.
Result<json> command(const std::string& arg, const std::string& change) {
    if (!arg.empty() && arg[0] == '[') {
        json j = json::parse(arg, nullptr, false);
        if (j.is_discarded() || !j.is_array() ||
            !std::all_of(j.begin(), j.end(), [](const json& x) { return x.is_string(); }))
            return make_error("invalid change \"{}\": not a JSON array of strings", change);
        return j;
    }
    return json::array({"/bin/sh", "-c", arg});
}

// "K=V K2=\"V 2\"" or the old "K V" form, into pairs.
Result<std::vector<std::pair<std::string, std::string>>> pairs(const std::string& arg,
                                                               const std::string& change) {
    std::vector<std::pair<std::string, std::string>> out;
    auto eq = arg.find('=');
    auto sp = arg.find_first_of(" \t");
    if (eq == std::string::npos || (sp != std::string::npos && sp < eq)) {
        if (sp == std::string::npos) return make_error("invalid change \"{}\": expected KEY=VALUE", change);
        out.emplace_back(arg.substr(0, sp), trim(arg.substr(sp)));
        return out;
    }
    size_t i = 0;
    while (i < arg.size()) {
        while (i < arg.size() && std::isspace(static_cast<unsigned char>(arg[i])))
            ++i;
        if (i == arg.size()) break;
        size_t k = arg.find('=', i);
        if (k == std::string::npos || k == i)
            return make_error("invalid change \"{}\": expected KEY=VALUE", change);
        std::string key = arg.substr(i, k - i);
        if (key.find_first_of(" \t\"") != std::string::npos)
            return make_error("invalid change \"{}\": expected KEY=VALUE", change);
        std::string value;
        i = k + 1;
        if (i < arg.size() && arg[i] == '"') {
            size_t end = i + 1;
            for (; end < arg.size() && arg[end] != '"'; ++end) {
                if (arg[end] == '\\' && end + 1 < arg.size()) ++end;
                value += arg[end];
            }
            if (end >= arg.size()) return make_error("invalid change \"{}\": unterminated quote", change);
            i = end + 1;
        } else {
            size_t end = arg.find_first_of(" \t", i);
            value = arg.substr(i, end == std::string::npos ? std::string::npos : end - i);
            i = end == std::string::npos ? arg.size() : end;
        }
        out.emplace_back(key, value);
    }
    return out;
}

void set_env(json& config, const std::string& key, const std::string& value) {
    json& env = config["Env"];
    if (!env.is_array()) env = json::array();
    for (auto& e : env)
        if (e.is_string() && e.get<std::string>().rfind(key + "=", 0) == 0) {
            e = key + "=" + value;
            return;
        }
    env.push_back(key + "=" + value);
}

} // namespace

Result<void> apply_change(json& config, const std::string& change) {
    if (!config.is_object()) config = json::object();
    std::string text = trim(change);
    size_t sp = text.find_first_of(" \t");
    std::string word = text.substr(0, sp);
    std::transform(word.begin(), word.end(), word.begin(), [](unsigned char c) { return std::toupper(c); });
    std::string arg = sp == std::string::npos ? "" : trim(text.substr(sp));
    if (arg.empty()) return make_error("invalid change \"{}\": {} needs a value", change, word);
    if (word == "CMD") {
        config["Cmd"] = TRY(command(arg, change));
    } else if (word == "ENTRYPOINT") {
        config["Entrypoint"] = TRY(command(arg, change));
    } else if (word == "ENV") {
        for (const auto& [k, v] : TRY(pairs(arg, change)))
            set_env(config, k, v);
    } else if (word == "LABEL") {
        for (const auto& [k, v] : TRY(pairs(arg, change)))
            config["Labels"][k] = v;
    } else if (word == "WORKDIR") {
        if (arg[0] != '/') return make_error("invalid change \"{}\": WORKDIR must be absolute", change);
        config["WorkingDir"] = arg;
    } else if (word == "USER") {
        config["User"] = arg;
    } else if (word == "STOPSIGNAL") {
        config["StopSignal"] = arg;
    } else if (word == "EXPOSE") {
        size_t i = 0;
        while (i < arg.size()) {
            size_t end = arg.find_first_of(" \t", i);
            std::string port = arg.substr(i, end == std::string::npos ? std::string::npos : end - i);
            i = end == std::string::npos ? arg.size() : arg.find_first_not_of(" \t", end);
            if (port.find('/') == std::string::npos) port += "/tcp";
            std::string num = port.substr(0, port.find('/'));
            std::string proto = port.substr(port.find('/') + 1);
            if (num.empty() || !std::all_of(num.begin(), num.end(), ::isdigit) || std::stoul(num) > 65535 ||
                (proto != "tcp" && proto != "udp" && proto != "sctp"))
                return make_error("invalid change \"{}\": \"{}\" is not PORT[/tcp|udp|sctp]", change, port);
            config["ExposedPorts"][port] = json::object();
        }
    } else if (word == "VOLUME") {
        json list = json::array();
        if (arg[0] == '[') {
            list = TRY(command(arg, change));
        } else {
            list.push_back(arg);
        }
        for (const auto& v : list)
            config["Volumes"][v.get<std::string>()] = json::object();
    } else {
        return make_error("invalid change \"{}\": expected CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, "
                          "USER, VOLUME or WORKDIR",
                          change);
    }
    return {};
}

} // namespace ctr::oci
