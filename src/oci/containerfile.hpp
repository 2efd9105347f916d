// SPDX-License-Identifier: MIT
// The Containerfile (Dockerfile) language as pure data: parser directives (`# escape=`), comments, line
// continuations, heredocs, stages (FROM … AS name, ARGs before the first FROM), instructions with their
// `--flag=value` options and JSON (exec) or shell form, and the word processing of Docker's reference
// (quotes, the escape character, $VAR, ${VAR}, ${VAR:-default}, ${VAR:+alt}). The text is untrusted:
// every error is one line naming the line number.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace ctr::oci {

struct Heredoc {
    std::string name;    // the delimiter word ("EOF")
    std::string body;    // the lines between, each ending in '\n'
    bool expand = true;  // false when the delimiter was quoted (<<"EOF", <<'EOF')
    bool strip_tabs = false; // <<-EOF: leading tabs removed from the body and the delimiter line
};

struct Instruction {
    std::string keyword; // upper case: "RUN", "COPY", …
    int line = 0;        // where it starts, from 1
    std::vector<std::pair<std::string, std::string>> flags; // --name=value, in order ("--link": "")
    std::string args;      // the text after the flags, continuations joined, heredoc bodies not included
    bool exec_form = false; // args was a JSON array of strings
    std::vector<std::string> json; // its strings, when exec_form
    std::vector<Heredoc> heredocs;
    std::string original; // "RUN apt-get update" as written (joined): history and the step display

    // The value of --name, if given (the last one wins).
    std::optional<std::string> flag(const std::string& name) const;
};

struct Stage {
    std::string base; // FROM's image, unexpanded ("debian:${RELEASE}", "scratch", another stage's name)
    std::string name; // AS name, lower case; may be empty
    std::optional<std::string> platform; // FROM --platform
    int line = 0;
    std::vector<Instruction> steps;
};

struct Containerfile {
    char escape = '\\';
    std::vector<Instruction> global_args; // ARG instructions before the first FROM
    std::vector<Stage> stages;
};

// Parses a whole Containerfile. Fails with "line N: …" for an unknown or unsupported instruction, a
// missing FROM, an instruction before FROM (other than ARG), an unterminated heredoc, a bad flag.
Result<Containerfile> parse_containerfile(const std::string& text);

// Looks a variable up for expansion; nullopt when unset (an empty value is set).
using VarLookup = std::function<std::optional<std::string>(const std::string&)>;

// Word processing as Docker's shell lexer does it for COPY, ENV, WORKDIR…: splits `text` at unquoted
// white space, removes quotes and escape characters, and expands variables (not inside single quotes).
// ${VAR:-word}, ${VAR-word}, ${VAR:+word}, ${VAR+word}; a malformed ${…} is an error.
Result<std::vector<std::string>> process_words(const std::string& text, char escape, const VarLookup& vars);
// The same on `text` as one word: white space kept.
Result<std::string> process_word(const std::string& text, char escape, const VarLookup& vars);

// KEY=VALUE words (ENV, LABEL, ARG's KEY[=default]), processed as above. `ENV K V` (the old form, one
// pair, the rest of the line is the value) is accepted when `legacy` is set. A word without '=' gives
// a pair with nullopt value when `allow_bare` (ARG), else is an error.
struct KeyValue {
    std::string key;
    std::optional<std::string> value;
};
Result<std::vector<KeyValue>> parse_key_values(const std::string& text, char escape, const VarLookup& vars,
                                               bool legacy, bool allow_bare);

// The config's "Healthcheck" object for a HEALTHCHECK instruction: {"Test": ["NONE"]}, or
// {"Test": ["CMD", …]} (exec form) / ["CMD-SHELL", "…"], with Interval, Timeout, StartPeriod and
// StartInterval in nanoseconds (Go durations such as "1m30s") and Retries from its flags.
Result<nlohmann::json> healthcheck(const Instruction& in);

// The ARGs every build knows without declaring them (proxy settings), which are left out of history.
bool predefined_arg(const std::string& name);

} // namespace ctr::oci
