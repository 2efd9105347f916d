#!/bin/bash
# SPDX-License-Identifier: MIT
# Man pages and help share one source: every command has a page (container(1), container-machine(1),
# container-machine-run(1), …) that man renders without warnings; its options are exactly those of the
# command's --help, and its description is the one --help shows; `container help VERB` prints what
# `VERB --help` does; `cmake --install` puts the pages where man finds them.
source "$(dirname "$0")/lib.sh"

build=${BUILD_DIR:?set BUILD_DIR to the build directory}
man_dir=$build/man
[[ -f $man_dir/container.1 ]] || fail "no man pages in $man_dir (target 'man_pages')"
command -v man >/dev/null || skip "needs man (Debian's man-db)"

# Every command, walked through the parser's own tree: what completion offers at each level that
# `help` accepts as a command (the rest are values: setting keys, shells).
commands=("")
walk() { # walk "machine" etc.
    local path=$1 sub
    local -a words
    read -ra words <<<"$path"
    for sub in $("$C" __complete "${words[@]}" ""); do
        "$C" help "${words[@]}" "$sub" >/dev/null 2>&1 || continue
        commands+=("${path:+$path }$sub")
        walk "${path:+$path }$sub"
    done
}
walk ""
((${#commands[@]} > 20)) || fail "only ${#commands[@]} commands found: ${commands[*]}"
longs() { grep -o -- '--[a-z][a-z-]*' | sort -u; }
squash() { tr -s ' \n\t' '   ' | sed 's/‐ *//g; s/ *$//'; } # rendered text as one line, hyphenation undone

for cmd in "${commands[@]}"; do
    read -ra words <<<"$cmd"
    page=$man_dir/container${cmd:+-${cmd// /-}}.1
    [[ -f $page ]] || fail "no man page for '$cmd': $page"
    warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
    [[ -z $warnings ]] || fail "man warns about $page: $warnings"
    MANWIDTH=80 man -l "$page" 2>/dev/null >"$T/page.txt"
    "$C" "${words[@]}" --help >"$T/help.txt"
    # The same options: those in the page's OPTIONS section and those --help lists.
    sed -n '/^OPTIONS/,/^[A-Z]/p' "$T/page.txt" | longs >"$T/page.opts"
    sed -n '/^Options:/,/^$/p' "$T/help.txt" | longs >"$T/help.opts"
    [[ -s $T/help.opts ]] || fail "no options in '$cmd --help'"
    diff "$T/page.opts" "$T/help.opts" >/dev/null ||
        fail "options of '$cmd': page and --help differ: $(diff "$T/page.opts" "$T/help.opts" | tr '\n' ' ')"
    # The same description: the page's first DESCRIPTION sentence is in --help.
    first=$(sed -n '/^DESCRIPTION/,/^[A-Z]/p' "$T/page.txt" | sed '1d;$d' | squash | sed 's/\. .*/./; s/^ //')
    [[ -n $first ]] || fail "no description in the page of '$cmd'"
    squash <"$T/help.txt" | grep -qF -- "$first" || fail "'$cmd --help' lacks the page's description: $first"
    # `help VERB` is `VERB --help`.
    diff <("$C" help "${words[@]}") "$T/help.txt" >/dev/null || fail "'help $cmd' differs from '$cmd --help'"
done
echo "${#commands[@]} pages checked"
expect_error "no command 'nope'" "$C" help machine nope

# Installed where man looks.
prefix=$T/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
[[ -f $prefix/share/man/man1/container-machine-run.1.gz ]] || fail "pages not installed gzipped in share/man/man1"
gzip -t "$prefix"/share/man/man1/container*.1.gz || fail "an installed page is not valid gzip"
MANWIDTH=80 man -M "$prefix/share/man" container-machine-run 2>/dev/null | grep -q "^SYNOPSIS" ||
    fail "man -M $prefix/share/man container-machine-run finds no page"
echo "PASS"
