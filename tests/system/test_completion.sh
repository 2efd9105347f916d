#!/bin/bash
# SPDX-License-Identifier: MIT
# Shell completion, as the unprivileged user (or whoever runs the test): `container completion
# bash|zsh|fish` scripts installed by `cmake --install` where each shell looks, loaded the way each shell
# loads them, complete verbs, options, machine names (after -n and for stop/rm), image names, `set` keys
# and their values, and the choices of an option.
source "$(dirname "$0")/lib.sh"

build=${BUILD_DIR:?set BUILD_DIR to the build directory}
[[ -f $build/completions/container ]] || fail "no completion scripts in $build/completions (target 'completions')"
prefix=$T/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/container share/bash-completion/completions/container share/zsh/site-functions/_container \
    share/fish/vendor_completions.d/container.fish; do
    [[ -f $prefix/$f ]] || fail "not installed: $prefix/$f"
done
chmod -R a+rX "$T"
busybox_images busybox-fixture:1.0
chmod 777 "$T"

# The completing shells run as the test user, with the installed binary first on PATH and the store
# holding two machines and an image.
if is_root && have_test_user; then run=run_as_user; data=$T/udata; else run=""; data=$T/data; fi
on_exit "remove_all_machines '$run'"
$run "$C" image load -i "$T/bb/image.oci.tar" >/dev/null
for n in alpha beta; do $run "$C" machine create busybox-fixture:1.0 --name $n --no-boot >/dev/null; done
shell() { $run env "PATH=$prefix/bin:/usr/bin:/bin" "XDG_DATA_DIRS=$prefix/share:/usr/share" "$@"; }

# bash, through bash-completion's loader as an interactive shell would: LINE is what was typed.
bash_complete() {
    shell bash -c '
        source /usr/share/bash-completion/bash_completion
        _completion_loader container
        COMP_LINE=$1 COMP_POINT=${#1}
        # Split as bash does: "=" is a word of its own (COMP_WORDBREAKS).
        read -ra COMP_WORDS <<<"${1//=/ = }"; [[ $1 == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        _container container
        printf "%s\n" "${COMPREPLY[@]}" | sort | paste -sd" "' _ "$1"
}
# zsh, through its fpath and compinit; compadd prints what it is given instead of drawing a menu.
zsh_complete() {
    shell zsh -f -c '
        fpath=('"$prefix"'/share/zsh/site-functions $fpath)
        autoload -U compinit && compinit -u
        [[ $_comps[container] == _container ]] || { echo "compinit did not register _container"; exit 1; }
        compadd() { while [[ $1 == -* && $1 != -- ]]; do [[ $1 == -S ]] && shift; shift; done; shift; print -l -- "$@"; }
        _files() { print -- ":files"; }
        words=(${(z)1}); [[ $1 == *" " ]] && words+=("")
        CURRENT=${#words}
        autoload -U _container && _container | sort | paste -sd" "' _ "$1"
}
# fish, from vendor_completions.d, asked with `complete -C` as its pager would.
fish_complete() {
    shell fish -c 'complete -C"$argv[1]" | cut -f1 | sort | paste -sd" "' "$1"
}

check() { # check SHELL LINE EXPECTED
    local got
    got=$("$1_complete" "$2") || fail "$1 completion of '$2' failed: $got"
    [[ $got == "$3" ]] || fail "$1: '$2' completed to '$got', expected '$3'"
}
for sh in bash zsh fish; do
    note "$sh"
    check $sh "container mach" "machine"
    check $sh "container machine st" "start stop"
    check $sh "container machine run -n " "alpha beta"
    check $sh "container machine run --na" "--name"
    check $sh "container machine stop al" "alpha"
    check $sh "container machine rm -f alpha " "alpha beta"
    check $sh "container image rm " "docker.io/library/busybox-fixture:1.0"
    check $sh "container machine create --home-mount " "none ro rw"
    check $sh "container image ls --format " "json table"
    check $sh "container machine run -n alpha bash --" ""
done
# Keys and values of `set`: bash replaces only what follows the '=' it breaks words at.
check bash "container machine set -n alpha home-m" "home-mount="
check bash "container machine set -n alpha home-mount=" "none ro rw"
check zsh "container machine set -n alpha home-mount=" "home-mount=none home-mount=ro home-mount=rw"
check fish "container machine set -n alpha virt" "virtualization="
check fish "container machine set -n alpha virtualization=" "virtualization=false virtualization=true"
echo "PASS"
