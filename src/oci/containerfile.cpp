// SPDX-License-Identifier: MIT
// Containerfile parsing and Docker's word processing. Follows the Dockerfile reference
// (docs.docker.com/reference/dockerfile) and BuildKit's behaviour where the reference is silent.
#include "oci/containerfile.hpp"

#include <algorithm>
#include <cctype>
#include <set>

#include <nlohmann/json.hpp>

namespace ctr::oci {

namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

bool is_name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

std::string trim(const std::string& s) {
    size_t b = 0, e = s.size();
    while (b < e && is_space(s[b]))
        ++b;
    while (e > b && is_space(s[e - 1]))
        --e;
    return s.substr(b, e - b);
}

std::string upper(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
    return s;
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

// Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF): what JSON, and so
// the image config, can carry.
bool valid_utf8(const std::string& s) {
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        size_t n;
        uint32_t cp;
        if ((c >> 5) == 0x6) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c >> 4) == 0xE) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c >> 3) == 0x1E) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= s.size()) return false;
        for (size_t k = 1; k <= n; ++k) {
            auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

// Deeply nested ${…} would recurse without bound on hostile input.
constexpr int k_max_nesting = 64;

// Docker's shell lexer, over one piece of text.
class Lexer {
public:
    Lexer(const std::string& s, char esc, const VarLookup& vars, bool split)
        : m_s(s), m_esc(esc), m_vars(vars), m_split(split) {}

    Result<std::vector<std::string>> words() {
        while (m_i < m_s.size()) {
            char c = m_s[m_i];
            if (is_space(c) && m_split) {
                end_word();
                ++m_i;
            } else if (c == m_esc) {
                if (m_i + 1 < m_s.size()) {
                    add(std::string(1, m_s[m_i + 1]));
                    m_i += 2;
                } else {
                    add(std::string(1, c));
                    ++m_i;
                }
            } else if (c == '\'') {
                add(TRY(single_quoted()));
            } else if (c == '"') {
                add(TRY(double_quoted(0)));
            } else if (c == '$') {
                add_unquoted(TRY(dollar(0)));
            } else {
                add(std::string(1, c));
                ++m_i;
            }
        }
        end_word();
        return m_words;
    }

private:
    void add(const std::string& t) {
        m_cur += t;
        m_have = true;
    }
    // An unquoted expansion is split into words as the shell would.
    void add_unquoted(const std::string& v) {
        if (!m_split) return add(v);
        for (char c : v) {
            if (is_space(c))
                end_word();
            else
                add(std::string(1, c));
        }
    }
    void end_word() {
        if (m_have) m_words.push_back(m_cur);
        m_cur.clear();
        m_have = false;
    }

    Result<std::string> single_quoted() {
        size_t end = m_s.find('\'', m_i + 1);
        if (end == std::string::npos) return make_error("unterminated single quote");
        std::string out = m_s.substr(m_i + 1, end - m_i - 1);
        m_i = end + 1;
        return out;
    }

    Result<std::string> double_quoted(int depth) {
        std::string out;
        ++m_i;
        for (;;) {
            if (m_i >= m_s.size()) return make_error("unterminated double quote");
            char c = m_s[m_i];
            if (c == '"') {
                ++m_i;
                return out;
            }
            if (c == m_esc && m_i + 1 < m_s.size() &&
                (m_s[m_i + 1] == '"' || m_s[m_i + 1] == '$' || m_s[m_i + 1] == m_esc)) {
                out += m_s[m_i + 1];
                m_i += 2;
            } else if (c == '$') {
                out += TRY(dollar(depth));
            } else {
                out += c;
                ++m_i;
            }
        }
    }

    // The word of ${VAR:-word}: up to the matching '}', with escapes, quotes and nested expansions.
    Result<std::string> braced_word(int depth) {
        std::string out;
        for (;;) {
            if (m_i >= m_s.size()) return make_error("missing '}}' in a variable substitution");
            char c = m_s[m_i];
            if (c == '}') {
                ++m_i;
                return out;
            }
            if (c == m_esc && m_i + 1 < m_s.size()) {
                out += m_s[m_i + 1];
                m_i += 2;
            } else if (c == '$') {
                out += TRY(dollar(depth));
            } else if (c == '\'') {
                out += TRY(single_quoted());
            } else if (c == '"') {
                out += TRY(double_quoted(depth));
            } else {
                out += c;
                ++m_i;
            }
        }
    }

    Result<std::string> dollar(int depth) {
        if (depth > k_max_nesting) return make_error("variable substitutions nested too deeply");
        ++m_i; // the '$'
        if (m_i >= m_s.size()) return std::string("$");
        if (m_s[m_i] != '{') {
            size_t b = m_i;
            while (m_i < m_s.size() && is_name_char(m_s[m_i]))
                ++m_i;
            if (b == m_i) return std::string("$");
            return m_vars(m_s.substr(b, m_i - b)).value_or("");
        }
        ++m_i; // '{'
        size_t b = m_i;
        while (m_i < m_s.size() && is_name_char(m_s[m_i]))
            ++m_i;
        std::string name = m_s.substr(b, m_i - b);
        if (name.empty()) return make_error("bad variable substitution (a name must follow \"${{\")");
        if (m_i >= m_s.size()) return make_error("missing '}}' in ${{{}", name);
        char c = m_s[m_i];
        std::optional<std::string> value = m_vars(name);
        if (c == '}') {
            ++m_i;
            return value.value_or("");
        }
        bool colon = c == ':';
        if (colon) ++m_i;
        char op = m_i < m_s.size() ? m_s[m_i] : 0;
        if (op != '-' && op != '+' && op != '?')
            return make_error("unsupported variable substitution ${{{}{}…}}: expected ${{{}}}, ${{{}:-word}} or "
                              "${{{}:+word}}",
                              name, colon ? ":" : std::string(1, op), name, name, name);
        ++m_i;
        std::string word = TRY(braced_word(depth + 1));
        bool set = value.has_value() && (!colon || !value->empty());
        switch (op) {
        case '-': return set ? *value : word;
        case '+': return set ? word : std::string();
        default:
            if (!set) return make_error("{}: {}", name, word.empty() ? "parameter not set" : word);
            return *value;
        }
    }

    const std::string& m_s;
    char m_esc;
    const VarLookup& m_vars;
    bool m_split;
    size_t m_i = 0;
    std::vector<std::string> m_words;
    std::string m_cur;
    bool m_have = false;
};

// Splits at unquoted white space keeping quotes and escapes as written (ENV/LABEL before expansion).
Result<std::vector<std::string>> raw_words(const std::string& s, char esc) {
    std::vector<std::string> out;
    std::string cur;
    bool have = false;
    char quote = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (quote == 0 && is_space(c)) {
            if (have) out.push_back(cur);
            cur.clear();
            have = false;
            continue;
        }
        have = true;
        cur += c;
        if (c == esc && quote != '\'' && i + 1 < s.size()) {
            cur += s[++i];
        } else if (quote == 0 && (c == '\'' || c == '"')) {
            quote = c;
        } else if (c == quote) {
            quote = 0;
        }
    }
    if (quote) return make_error("unterminated {} quote", quote == '"' ? "double" : "single");
    if (have) out.push_back(cur);
    return out;
}

struct Rule {
    const char* keyword;
    std::vector<const char*> flags;       // accepted --flags
    std::vector<const char*> unsupported; // recognised, refused in one line
    bool json;                            // may take the exec (JSON array) form
    bool heredoc;                         // may carry heredocs
    bool needs_args;
};

// Every instruction of the reference and what it accepts.
const Rule k_rules[] = {
    {"FROM", {"platform"}, {}, false, false, true},
    {"RUN", {"network"}, {"mount", "security"}, true, true, true},
    {"CMD", {}, {}, true, false, true},
    {"LABEL", {}, {}, false, false, true},
    {"MAINTAINER", {}, {}, false, false, true},
    {"EXPOSE", {}, {}, false, false, true},
    {"ENV", {}, {}, false, false, true},
    {"ADD", {"chown", "chmod", "checksum", "link"}, {"keep-git-dir", "exclude", "parents"}, true, true, true},
    {"COPY", {"from", "chown", "chmod", "link"}, {"exclude", "parents"}, true, true, true},
    {"ENTRYPOINT", {}, {}, true, false, true},
    {"VOLUME", {}, {}, true, false, true},
    {"USER", {}, {}, false, false, true},
    {"WORKDIR", {}, {}, false, false, true},
    {"ARG", {}, {}, false, false, true},
    {"ONBUILD", {}, {}, false, false, true},
    {"STOPSIGNAL", {}, {}, false, false, true},
    {"HEALTHCHECK", {"interval", "timeout", "start-period", "start-interval", "retries"}, {}, true, false, true},
    {"SHELL", {}, {}, true, false, true},
};

const Rule* find_rule(const std::string& keyword) {
    for (const auto& r : k_rules)
        if (keyword == r.keyword) return &r;
    return nullptr;
}

bool listed(const std::vector<const char*>& l, const std::string& s) {
    return std::any_of(l.begin(), l.end(), [&](const char* x) { return s == x; });
}

// Heredoc markers in `args` outside quotes: <<EOF, <<-EOF, <<"EOF", <<'EOF'.
std::vector<Heredoc> find_heredocs(const std::string& args, char esc) {
    std::vector<Heredoc> out;
    char quote = 0;
    for (size_t i = 0; i < args.size(); ++i) {
        char c = args[i];
        if (c == esc && quote != '\'') {
            ++i;
            continue;
        }
        if (quote) {
            if (c == quote) quote = 0;
            continue;
        }
        if (c == '\'' || c == '"') {
            quote = c;
            continue;
        }
        if (c != '<' || i + 1 >= args.size() || args[i + 1] != '<') continue;
        if (i + 2 < args.size() && args[i + 2] == '<') { // a here-string (<<<): not ours
            i += 2;
            continue;
        }
        size_t j = i + 2;
        Heredoc h;
        if (j < args.size() && args[j] == '-') {
            h.strip_tabs = true;
            ++j;
        }
        char q = 0;
        if (j < args.size() && (args[j] == '"' || args[j] == '\'')) q = args[j++];
        size_t b = j;
        while (j < args.size() && (is_name_char(args[j]) || args[j] == '.' || args[j] == '-'))
            ++j;
        if (j == b) continue;
        h.name = args.substr(b, j - b);
        if (q) {
            if (j >= args.size() || args[j] != q) continue;
            ++j;
            h.expand = false;
        }
        out.push_back(h);
        i = j - 1;
    }
    return out;
}

Result<void> check_flag_value(const Instruction& in, const std::string& name, const std::string& value) {
    if (name == "network" && value != "host" && value != "default")
        return make_error("line {}: RUN --network={} is not supported (RUN uses the host's network)", in.line,
                          value);
    return {};
}

} // namespace

std::optional<std::string> Instruction::flag(const std::string& name) const {
    std::optional<std::string> v;
    for (const auto& [k, val] : flags)
        if (k == name) v = val;
    return v;
}

Result<std::vector<std::string>> process_words(const std::string& text, char escape, const VarLookup& vars) {
    return Lexer(text, escape, vars, true).words();
}

Result<std::string> process_word(const std::string& text, char escape, const VarLookup& vars) {
    auto w = TRY(Lexer(text, escape, vars, false).words());
    return w.empty() ? std::string() : w[0];
}

Result<std::vector<KeyValue>> parse_key_values(const std::string& text, char escape, const VarLookup& vars,
                                               bool legacy, bool allow_bare) {
    std::vector<std::string> raw = TRY(raw_words(text, escape));
    std::vector<KeyValue> out;
    if (raw.empty()) return make_error("expected KEY=VALUE");
    if (legacy && raw[0].find('=') == std::string::npos) {
        // ENV KEY VALUE…: one pair, the rest of the line is the value.
        std::string t = trim(text);
        size_t sp = 0;
        while (sp < t.size() && !is_space(t[sp]))
            ++sp;
        std::string rest = trim(t.substr(sp));
        if (rest.empty() && !allow_bare) return make_error("{} needs a value", raw[0]);
        // Each TRY on its own line: returning from inside an initializer list would skip the destructors
        // of the members already made (a leak the fuzzer found).
        std::string key = TRY(process_word(raw[0], escape, vars));
        std::string value = TRY(process_word(rest, escape, vars));
        out.push_back({key, value});
        return out;
    }
    for (const auto& w : raw) {
        size_t eq = w.find('=');
        if (eq == std::string::npos) {
            if (!allow_bare) return make_error("expected KEY=VALUE, got \"{}\"", w);
            std::string key = TRY(process_word(w, escape, vars));
            out.push_back({key, std::nullopt});
            continue;
        }
        if (eq == 0) return make_error("expected KEY=VALUE, got \"{}\" (no key)", w);
        std::string key = TRY(process_word(w.substr(0, eq), escape, vars));
        std::string value = TRY(process_word(w.substr(eq + 1), escape, vars));
        out.push_back({key, value});
    }
    return out;
}

namespace {

// Go-style durations ("30s", "1m30s", "500ms") in nanoseconds.
Result<int64_t> duration(const std::string& s) {
    int64_t total = 0;
    size_t i = 0;
    if (s.empty()) return make_error("empty duration");
    while (i < s.size()) {
        size_t b = i;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
            ++i;
        if (b == i || i - b > 9) return make_error("invalid duration \"{}\"", s);
        int64_t n = std::stoll(s.substr(b, i - b));
        size_t u = i;
        while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i])))
            ++i;
        std::string unit = s.substr(u, i - u);
        int64_t mul = unit == "ns" ? 1 : unit == "us" ? 1000 : unit == "ms" ? 1000000 : unit == "s" ? 1000000000LL
                      : unit == "m" ? 60000000000LL : unit == "h" ? 3600000000000LL : 0;
        if (mul == 0) return make_error("invalid duration \"{}\"", s);
        total += n * mul;
    }
    return total;
}

} // namespace

Result<nlohmann::json> healthcheck(const Instruction& in) {
    using nlohmann::json;
    json hc;
    std::string word = upper(in.args.substr(0, in.args.find_first_of(" \t")));
    if (word == "NONE") {
        hc["Test"] = json::array({"NONE"});
        return hc;
    }
    if (word != "CMD") return make_error("HEALTHCHECK expects NONE or CMD");
    std::string rest = trim(in.args.substr(3));
    if (rest.empty()) return make_error("HEALTHCHECK CMD needs a command");
    json j = json::parse(rest, nullptr, false);
    if (!j.is_discarded() && j.is_array() && std::all_of(j.begin(), j.end(), [](const json& x) { return x.is_string(); })) {
        hc["Test"] = json::array({"CMD"});
        for (const auto& x : j)
            hc["Test"].push_back(x);
    } else {
        hc["Test"] = json::array({"CMD-SHELL", rest});
    }
    for (const auto& [name, key] : {std::pair{"interval", "Interval"}, {"timeout", "Timeout"},
                                    {"start-period", "StartPeriod"}, {"start-interval", "StartInterval"}}) {
        if (auto v = in.flag(name)) {
            auto d = duration(*v);
            if (!d) return make_error("HEALTHCHECK --{}: {}", name, d.error().message);
            hc[key] = *d;
        }
    }
    if (auto r = in.flag("retries")) {
        if (r->empty() || r->size() > 6 || !std::all_of(r->begin(), r->end(), ::isdigit))
            return make_error("HEALTHCHECK --retries={}: not a number", *r);
        hc["Retries"] = std::stoi(*r);
    }
    return hc;
}

bool predefined_arg(const std::string& name) {
    static const std::set<std::string> k_proxy = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
                                                  "FTP_PROXY",  "ftp_proxy",  "NO_PROXY",    "no_proxy",
                                                  "ALL_PROXY",  "all_proxy"};
    return k_proxy.count(name) != 0;
}

Result<Containerfile> parse_containerfile(const std::string& text) {
    Containerfile cf;
    std::vector<std::string> lines;
    {
        size_t b = 0;
        while (b <= text.size()) {
            size_t e = text.find('\n', b);
            if (e == std::string::npos) e = text.size();
            std::string l = text.substr(b, e - b);
            if (!l.empty() && l.back() == '\r') l.pop_back();
            lines.push_back(std::move(l));
            b = e + 1;
        }
    }
    for (size_t n = 0; n < lines.size(); ++n)
        if (!valid_utf8(lines[n])) return make_error("line {}: not valid UTF-8", n + 1);
    // Parser directives: "# name=value" lines at the very top, before anything else (even a blank line).
    size_t i = 0;
    std::set<std::string> seen;
    for (; i < lines.size(); ++i) {
        const std::string& l = lines[i];
        std::string t = trim(l);
        if (t.empty() || t[0] != '#') break;
        std::string body = trim(t.substr(1));
        size_t eq = body.find('=');
        if (eq == std::string::npos) break;
        std::string name = lower(trim(body.substr(0, eq)));
        std::string value = trim(body.substr(eq + 1));
        if (name.empty() || !std::all_of(name.begin(), name.end(), is_name_char)) break;
        if (!seen.insert(name).second) return make_error("line {}: the {} directive is given twice", i + 1, name);
        if (name == "escape") {
            if (value != "\\" && value != "`")
                return make_error("line {}: invalid escape directive \"{}\": expected \\ or `", i + 1, value);
            cf.escape = value[0];
        }
        // "syntax" and "check" name BuildKit front ends and checks: comments to us.
    }
    const char esc = cf.escape;
    auto is_comment = [](const std::string& l) {
        std::string t = trim(l);
        return !t.empty() && t[0] == '#';
    };
    // A line continues when its last non-blank character is the escape character.
    auto continues = [esc](std::string& l) {
        size_t e = l.size();
        while (e > 0 && is_space(l[e - 1]))
            --e;
        if (e == 0 || l[e - 1] != esc) return false;
        l.resize(e - 1);
        return true;
    };

    for (; i < lines.size(); ++i) {
        if (trim(lines[i]).empty() || is_comment(lines[i])) continue;
        Instruction in;
        in.line = static_cast<int>(i + 1);
        std::string joined = lines[i];
        while (continues(joined)) {
            ++i;
            // Comment lines inside a continued instruction are dropped; blank ones too (BuildKit warns).
            while (i < lines.size() && (is_comment(lines[i]) || trim(lines[i]).empty()))
                ++i;
            if (i >= lines.size()) break;
            joined += lines[i];
        }
        std::string t = trim(joined);
        size_t sp = 0;
        while (sp < t.size() && !is_space(t[sp]))
            ++sp;
        in.keyword = upper(t.substr(0, sp));
        std::string rest = trim(t.substr(sp));
        const Rule* rule = find_rule(in.keyword);
        if (!rule) return make_error("line {}: unknown instruction {}", in.line, t.substr(0, std::min<size_t>(sp, 64)));
        // Flags: --name=value (or a bare --name) before the arguments.
        while (rest.size() > 2 && rest.compare(0, 2, "--") == 0) {
            size_t e = 0;
            while (e < rest.size() && !is_space(rest[e]))
                ++e;
            std::string word = rest.substr(2, e - 2);
            rest = trim(rest.substr(e));
            size_t eq = word.find('=');
            std::string name = word.substr(0, eq);
            std::string value = eq == std::string::npos ? "" : word.substr(eq + 1);
            if (listed(rule->unsupported, name))
                return make_error("line {}: {} --{} is not supported", in.line, in.keyword, name);
            if (!listed(rule->flags, name))
                return make_error("line {}: unknown flag --{} for {}", in.line, name.substr(0, 64), in.keyword);
            TRY(check_flag_value(in, name, value));
            in.flags.emplace_back(name, value);
        }
        if (rule->needs_args && rest.empty()) return make_error("line {}: {} needs an argument", in.line, in.keyword);
        in.args = rest;
        in.original = in.keyword;
        for (const auto& [name, value] : in.flags)
            in.original += " --" + name + (value.empty() ? "" : "=" + value);
        if (!rest.empty()) in.original += " " + rest;
        if (rule->json && !rest.empty() && rest[0] == '[') {
            // Not valid JSON: the shell form after all, as Docker does.
            nlohmann::json j = nlohmann::json::parse(rest, nullptr, false);
            if (!j.is_discarded() && j.is_array() &&
                std::all_of(j.begin(), j.end(), [](const nlohmann::json& x) { return x.is_string(); })) {
                in.exec_form = true;
                for (const auto& x : j)
                    in.json.push_back(x.get<std::string>());
            }
        }
        if (in.keyword == "SHELL" && !in.exec_form)
            return make_error("line {}: SHELL needs the JSON form, e.g. SHELL [\"/bin/bash\", \"-c\"]", in.line);
        if (rule->heredoc && !in.exec_form) {
            in.heredocs = find_heredocs(rest, esc);
            for (auto& h : in.heredocs) {
                for (;;) {
                    ++i;
                    if (i >= lines.size())
                        return make_error("line {}: heredoc <<{} has no terminating line \"{}\"", in.line, h.name,
                                          h.name);
                    std::string l = lines[i];
                    std::string cmp = l;
                    if (h.strip_tabs) cmp.erase(0, cmp.find_first_not_of('\t') == std::string::npos
                                                        ? cmp.size()
                                                        : cmp.find_first_not_of('\t'));
                    if (cmp == h.name) break;
                    h.body += l + "\n";
                }
            }
        }
        if (in.keyword == "ONBUILD") {
            std::string inner = upper(rest.substr(0, rest.find_first_of(" \t")));
            if (inner == "ONBUILD" || inner == "FROM" || inner == "MAINTAINER")
                return make_error("line {}: ONBUILD {} is not allowed", in.line, inner);
            if (!find_rule(inner))
                return make_error("line {}: unknown instruction {} after ONBUILD", in.line, inner.substr(0, 64));
        }
        if (in.keyword == "FROM") {
            std::vector<std::string> w = TRY(raw_words(rest, esc));
            Stage st;
            st.line = in.line;
            st.platform = in.flag("platform");
            if (w.size() == 3 && upper(w[1]) == "AS") {
                st.name = lower(w[2]);
                if (!std::all_of(st.name.begin(), st.name.end(),
                                 [](char c) { return is_name_char(c) || c == '-' || c == '.'; }) ||
                    !std::isalpha(static_cast<unsigned char>(st.name[0])))
                    return make_error("line {}: invalid stage name \"{}\"", in.line, w[2].substr(0, 64));
                for (const auto& other : cf.stages)
                    if (other.name == st.name)
                        return make_error("line {}: stage name \"{}\" is used twice", in.line, st.name);
            } else if (w.size() != 1) {
                return make_error("line {}: expected FROM IMAGE [AS NAME]", in.line);
            }
            st.base = w[0];
            cf.stages.push_back(std::move(st));
            continue;
        }
        if (cf.stages.empty()) {
            if (in.keyword != "ARG")
                return make_error("line {}: {} before the first FROM (only ARG may come first)", in.line,
                                  in.keyword);
            cf.global_args.push_back(std::move(in));
            continue;
        }
        cf.stages.back().steps.push_back(std::move(in));
    }
    if (cf.stages.empty()) return make_error("no FROM instruction: a Containerfile starts with FROM IMAGE");
    return cf;
}

} // namespace ctr::oci
