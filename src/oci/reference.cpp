// SPDX-License-Identifier: MIT
// Reference grammar from the distribution project's reference package, re-expressed by hand.
#include "oci/reference.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

#include "oci/digest.hpp"

namespace ctr::oci {

namespace {

bool is_lower_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// path-component := alnum (separator alnum)*, separator := [_.] | "__" | "-"+
bool valid_component(std::string_view s) {
    if (s.empty() || !is_lower_alnum(s.front()) || !is_lower_alnum(s.back())) return false;
    for (size_t i = 0; i < s.size();) {
        if (is_lower_alnum(s[i])) {
            ++i;
            continue;
        }
        size_t j = i;
        while (j < s.size() && !is_lower_alnum(s[j]))
            ++j;
        std::string_view sep = s.substr(i, j - i);
        bool ok =
            sep == "." || sep == "_" || sep == "__" || sep.find_first_not_of('-') == std::string_view::npos;
        if (!ok) return false;
        i = j;
    }
    return true;
}

bool valid_domain(std::string_view d) {
    std::string_view host = d, port;
    if (auto c = d.rfind(':'); c != std::string_view::npos) {
        host = d.substr(0, c);
        port = d.substr(c + 1);
        if (port.empty() || port.find_first_not_of("0123456789") != std::string_view::npos) return false;
    }
    if (host.empty()) return false;
    for (char c : host)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-')) return false;
    return host.front() != '.' && host.back() != '.' && host.front() != '-';
}

bool valid_tag(std::string_view t) {
    if (t.empty() || t.size() > 128) return false;
    if (!(std::isalnum(static_cast<unsigned char>(t[0])) || t[0] == '_')) return false;
    for (char c : t)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) return false;
    return true;
}

} // namespace

std::string Reference::str() const {
    std::string s = repository();
    if (!tag.empty()) s += ":" + tag;
    if (!digest.empty()) s += "@" + digest;
    return s;
}

std::string Reference::registry_host() const {
    return domain == "docker.io" ? "registry-1.docker.io" : domain;
}

std::string Reference::base_name() const {
    auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

Result<Reference> parse_reference(std::string_view text) {
    auto bad = [&](std::string_view why) { return make_error("invalid reference \"{}\": {}", text, why); };
    if (text.empty()) return bad("empty");
    Reference ref;
    std::string_view rest = text;
    if (auto at = rest.find('@'); at != std::string_view::npos) {
        auto d = parse_digest(rest.substr(at + 1));
        if (!d) return bad("bad digest");
        ref.digest = d->str();
        rest = rest.substr(0, at);
    }
    // A tag follows the last ':' that comes after the last '/'; an earlier ':' is a registry port.
    auto last_slash = rest.rfind('/');
    auto colon = rest.rfind(':');
    if (colon != std::string_view::npos && (last_slash == std::string_view::npos || colon > last_slash)) {
        std::string_view tag = rest.substr(colon + 1);
        if (!valid_tag(tag)) return bad("invalid tag");
        ref.tag = std::string(tag);
        rest = rest.substr(0, colon);
    }
    std::string_view name = rest;
    if (name.empty()) return bad("missing repository name");
    auto first_slash = name.find('/');
    std::string_view first = name.substr(0, first_slash);
    if (first_slash != std::string_view::npos &&
        (first.find_first_of(".:") != std::string_view::npos || first == "localhost" ||
         std::any_of(first.begin(), first.end(),
                     [](char c) { return std::isupper(static_cast<unsigned char>(c)); }))) {
        if (!valid_domain(first)) return bad("invalid registry host");
        ref.domain = std::string(first);
        name = name.substr(first_slash + 1);
    } else {
        ref.domain = "docker.io";
    }
    if (name.empty()) return bad("missing repository name");
    std::vector<std::string_view> parts;
    for (size_t start = 0;;) {
        auto slash = name.find('/', start);
        parts.push_back(
            name.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    for (auto p : parts) {
        for (char c : p)
            if (std::isupper(static_cast<unsigned char>(c))) return bad("repository name must be lowercase");
        if (!valid_component(p)) return bad(fmt::format("invalid path component \"{}\"", p));
    }
    ref.path = std::string(name);
    if (ref.domain == "docker.io" && parts.size() == 1) ref.path = "library/" + ref.path;
    if (ref.repository().size() > 255) return bad("repository name longer than 255 characters");
    if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
    return ref;
}

} // namespace ctr::oci
