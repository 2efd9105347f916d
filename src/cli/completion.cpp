// SPDX-License-Identifier: MIT
// Shell completion from the parser's own definitions. `container completion bash|zsh|fish` prints a small
// script for that shell; the script hands the words typed so far to the hidden `container __complete`,
// which walks the same CLI11 tree the parser uses (verbs, aliases, options and the placeholders of their
// values, see commands.hpp) and prints the candidates for the last word, one per line. Machine and image
// names come from the caller's store; `set` keys and their values from the settings table.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "machine/machine.hpp"
#include "machine/settings.hpp"
#include "store/store.hpp"

namespace ctr::cli {

namespace {

constexpr const char* k_files = ":files"; // tells the script to complete file names itself

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.compare(0, prefix.size(), prefix) == 0;
}

// The option `word` names in `app` or, as the parser falls through to them, its parents.
const CLI::Option* find_option(const CLI::App* app, const std::string& word) {
    for (const CLI::App* a = app; a; a = a->get_parent())
        if (const CLI::Option* o = a->get_option_no_throw(word)) return o;
    return nullptr;
}

const CLI::App* find_subcommand(const CLI::App* app, const std::string& word) {
    for (const CLI::App* s : app->get_subcommands([](const CLI::App*) { return true; }))
        if (s->check_name(word)) return s;
    return nullptr;
}

bool takes_value(const CLI::Option* o) {
    return !o->get_positional() && o->get_type_size_max() > 0;
}

// The words a placeholder offers: "a|b|c", or a validator's "{a,b,c}" (CLI::IsMember).
std::vector<std::string> choices(const std::string& type) {
    std::string list;
    if (auto open = type.find('{'); open != std::string::npos && type.back() == '}') {
        list = type.substr(open + 1, type.size() - open - 2);
        std::replace(list.begin(), list.end(), ',', '|');
    } else if (type.find('|') != std::string::npos) {
        list = type;
    }
    std::vector<std::string> out;
    for (size_t i = 0; !list.empty() && i <= list.size();) {
        size_t j = list.find('|', i);
        if (j == std::string::npos) j = list.size();
        out.push_back(list.substr(i, j - i));
        i = j + 1;
    }
    return out;
}

std::vector<std::string> machine_names() {
    auto s = store::Store::open(store::Store::Open::light);
    if (!s) return {};
    machine::Machines machines(*s);
    auto names = machines.names();
    return names ? *names : std::vector<std::string>{};
}

std::vector<std::string> image_names() {
    auto s = store::Store::open(store::Store::Open::light);
    if (!s) return {};
    auto recs = s->list();
    std::vector<std::string> out;
    if (recs)
        for (const auto& r : *recs)
            out.push_back(r.name);
    return out;
}

std::vector<std::string> setting_words(const std::string& word) {
    std::vector<std::string> out;
    auto eq = word.find('=');
    for (const auto& s : machine::settings_table()) {
        if (eq == std::string::npos) {
            out.push_back(std::string(s.key) + "=");
        } else if (word.compare(0, eq, s.key) == 0) {
            for (const auto& v : s.values)
                out.push_back(std::string(s.key) + "=" + v);
        }
    }
    return out;
}

// Candidates for a value of type `type` (an option's placeholder or a positional's).
std::vector<std::string> values_of(const std::string& type, const std::string& word) {
    std::string base = type.substr(0, type.find(':'));
    if (base == k_machine_type) return machine_names();
    if (base == k_image_type) return image_names();
    if (base == k_setting_type) return setting_words(word);
    if (base == k_file_type) return {k_files};
    return choices(type);
}

// What may follow `words` (the words after "container", the last one being completed).
std::vector<std::string> candidates(const CLI::App& root, const std::vector<std::string>& words) {
    const CLI::App* cur = &root;
    const CLI::Option* pending = nullptr; // an option whose value comes next
    size_t positional = 0;                // words of `cur` that were neither options nor verbs
    for (size_t i = 0; i + 1 < words.size(); ++i) {
        const std::string& w = words[i];
        if (pending) {
            pending = nullptr;
        } else if (w == "--") {
            return {}; // a command to run in the machine follows
        } else if (w.size() > 1 && w[0] == '-') {
            const CLI::Option* o = find_option(cur, w.substr(0, w.find('=')));
            if (o && takes_value(o) && w.find('=') == std::string::npos) pending = o;
        } else if (const CLI::App* sub = positional == 0 ? find_subcommand(cur, w) : nullptr) {
            cur = sub;
        } else {
            ++positional;
        }
    }
    const std::string word = words.empty() ? "" : words.back();
    bool has_positionals = !cur->get_options([](const CLI::Option* x) { return x->get_positional(); }).empty();
    if (positional > 0 && !has_positionals) return {}; // `machine run CMD …`: the rest is the command's
    std::vector<std::string> out;
    if (pending) {
        out = values_of(pending->get_type_name(), word);
    } else if (starts_with(word, "-")) {
        for (const CLI::App* a = cur; a; a = a->get_parent())
            for (const CLI::Option* o : a->get_options()) {
                if (o->get_positional() || o->get_group().empty()) continue;
                for (const auto& l : o->get_lnames())
                    out.push_back("--" + l);
                for (const auto& s : o->get_snames())
                    out.push_back("-" + s);
            }
    } else {
        if (positional == 0)
            for (const CLI::App* s : cur->get_subcommands([](const CLI::App* a) { return visible(a); }))
                out.push_back(s->get_name());
        // The positional this word fills: each takes its expected number of words; a list takes the rest.
        size_t seen = 0;
        for (const CLI::Option* o : cur->get_options([](const CLI::Option* x) { return x->get_positional(); })) {
            int n = o->get_items_expected_max();
            if (n <= 0 || n >= CLI::detail::expected_max_vector_size || positional < seen + static_cast<size_t>(n)) {
                auto v = values_of(o->get_type_name(), word);
                out.insert(out.end(), v.begin(), v.end());
                break;
            }
            seen += static_cast<size_t>(n);
        }
    }
    if (!out.empty() && out[0] == k_files) return out;
    std::vector<std::string> fit;
    for (auto& c : out)
        if (starts_with(c, word) && std::find(fit.begin(), fit.end(), c) == fit.end()) fit.push_back(std::move(c));
    return fit;
}

constexpr const char* k_bash = R"(# bash completion for container (from 'container completion bash')
_container() {
    # The words typed so far, split on blanks only: "memory=2G" stays one word for `container`.
    local line=${COMP_LINE:0:COMP_POINT} word prefix
    local -a words
    read -ra words <<<"$line"
    [[ $line == *[[:blank:]] ]] && words+=("")
    word=${words[${#words[@]}-1]}
    mapfile -t COMPREPLY < <(command container __complete "${words[@]:1}" 2>/dev/null)
    if [[ ${COMPREPLY[0]-} == :files ]]; then
        mapfile -t COMPREPLY < <(compgen -f -- "$word")
        return
    fi
    # bash breaks words at '=' and ':': it replaces only the part after the last of them.
    if [[ ${COMP_WORDS[COMP_CWORD]} != "$word" && $word == *[=:]* ]]; then
        prefix=${word%"${word##*[=:]}"}
        COMPREPLY=("${COMPREPLY[@]#"$prefix"}")
    fi
    [[ ${#COMPREPLY[@]} == 1 && ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
}
complete -F _container container
)";

constexpr const char* k_zsh = R"(#compdef container
# zsh completion for container (from 'container completion zsh')
_container() {
    local -a c
    c=("${(@f)$(command container __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    if [[ ${c[1]-} == :files ]]; then
        _files
        return
    fi
    local -a spaced nospace
    local w
    for w in "${c[@]}"; do
        [[ -z $w ]] && continue
        if [[ $w == *= ]]; then nospace+=("$w"); else spaced+=("$w"); fi
    done
    (( ${#spaced} )) && compadd -Q -- "${spaced[@]}"
    (( ${#nospace} )) && compadd -Q -S '' -- "${nospace[@]}"
}
if [[ ${funcstack[1]-} == _container ]]; then
    _container "$@"
else
    compdef _container container
fi
)";

constexpr const char* k_fish = R"(# fish completion for container (from 'container completion fish')
function __container_complete
    set -l words (commandline -opc) (commandline -ct)
    set -e words[1]
    set -l c (command container __complete $words 2>/dev/null)
    if test "$c[1]" = ":files"
        __fish_complete_path (commandline -ct)
        return
    end
    printf '%s\n' $c
end
complete -c container -f -a '(__container_complete)'
)";

} // namespace

void add_completion_commands(CLI::App& app, Action& action) {
    auto shell = std::make_shared<std::string>();
    CLI::App* completion = app.add_subcommand("completion", "Print the shell completion script for bash, zsh or fish");
    completion->add_option("shell", *shell, "Shell")->required()->check(CLI::IsMember({"bash", "zsh", "fish"}));
    completion->footer("Load it in the running shell with: source <(container completion bash)\n"
                       "Packages install it where each shell looks (bash-completion, zsh's fpath, fish's "
                       "vendor_completions.d).");
    completion->callback([&action, shell] {
        action = [shell]() -> Result<int> {
            fmt::print("{}", *shell == "bash" ? k_bash : *shell == "zsh" ? k_zsh : k_fish);
            return 0;
        };
    });

}

void print_completions(const CLI::App& app, const std::vector<std::string>& words) {
    for (const auto& c : candidates(app, words))
        fmt::print("{}\n", c);
}

} // namespace ctr::cli
