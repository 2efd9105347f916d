#!/bin/bash
# SPDX-License-Identifier: MIT
# Hostile layers (hostile_layers.py) are rejected naming the entry or contained in their layer; nothing outside changes, nothing half-unpacked stays,
# no decompressor program is ever started.
set -euo pipefail
source "${LIB:-$(dirname "$0")/lib.sh}"

HERE=$(cd "$(dirname "$0")" && pwd)
OUTSIDE=$T/outside
REL=${OUTSIDE#/} # where an absolute name aimed at OUTSIDE lands inside a layer
mkdir -p "$OUTSIDE"
printf 'do not touch\n' >"$OUTSIDE/victim"
# Writable by everyone, the test user included: only the tool's own checks keep the layers out of it.
chmod 777 "$OUTSIDE"
chmod 666 "$OUTSIDE/victim"
VICTIM_SHA=$(sha256sum "$OUTSIDE/victim" | cut -d' ' -f1)
# Decompressor programs that record being started: the store must never run one.
FAKEBIN=$T/fakebin
mkdir -p "$FAKEBIN"
for p in xz unxz lzma bzip2 lbzip2 lzop lz4 lzip zstd gzip lrzip grzip compress; do
    printf '#!/bin/sh\necho "$0 $*" >>"%s/ran-$(id -u)"\nexit 1\n' "$FAKEBIN" >"$FAKEBIN/$p"
    chmod 755 "$FAKEBIN/$p"
done
chmod 777 "$FAKEBIN" # the test user's loads write there too
python3 "$HERE/hostile_layers.py" "$T/corpus" "$OUTSIDE" >/dev/null || fail "hostile_layers.py failed"
chmod -R a+rX "$T/corpus"
mapfile -t ROWS < <(python3 -c '
import json, sys
for c in json.load(open(sys.argv[1])):
    env = " ".join(f"{k}={v}" for k, v in c.get("env", {}).items())
    print(c["case"], c["expect"], c["entry"] or "-", c.get("match") or "-", ",".join(c.get("diff_ids", [])),
          env or "-", sep="\t")
' "$T/corpus/cases.json")
((${#ROWS[@]} >= 18)) || fail "cases.json lists ${#ROWS[@]} cases"

snapshot() { find "$OUTSIDE" -printf '%p %s %m %u %T@\n' | sort; }
BEFORE=$(snapshot)
ere_quote() { sed 's/[][\\.*^$+?(){}|]/\\&/g' <<<"$1"; }
runner() { if [[ $MODE == user ]]; then run_as_user env "PATH=$FAKEBIN:$PATH" "$@"; else env "PATH=$FAKEBIN:$PATH" "$@"; fi; }
problem() { fail "$CASE (as $WHO): $*"; }

# --- what "contained" means, case by case (names and types by find; content where readable) -----------
kind() { find "$L/$1" -maxdepth 0 -printf '%y' 2>/dev/null || true; } # f d l c …, empty when absent
want() { # want TYPE REL [CONTENT]
    local k
    k=$(kind "$2")
    [[ $k == "$1" ]] || problem "$2 in the layer is '${k:-absent}', expected '$1'"
    if [[ $# -ge 3 && $1 == f && -r $L/$2 ]]; then
        [[ $(cat "$L/$2") == "$3" ]] || problem "$2 in the layer holds '$(head -c 80 "$L/$2")', expected '$3'"
    fi
    return 0
}
absent() { [[ -z $(kind "$1") ]] || problem "$1 should not be in the layer"; }
link_to() { [[ $(readlink "$L/$1") == "$2" ]] || problem "$1 points to '$(readlink "$L/$1")', expected '$2'"; }
same_file() { [[ $(stat -c %i "$L/$1") == $(stat -c %i "$L/$2") ]] || problem "$1 and $2 are not one file"; }
devnum() { [[ $(stat -c '%t:%T' "$L/$1") == "$2" ]] || problem "$1 is device $(stat -c '%t:%T' "$L/$1"), expected $2"; }

contained() {
    case $CASE in
    ok) want f etc/hello hi && want f etc/hello2 hi && same_file etc/hello etc/hello2 && want l bin && link_to bin /usr/bin ;;
    absolute) want f "$REL/abs" abs ;;
    symlink-dangling-outside) want l s && link_to s "$OUTSIDE/victim" ;;
    file-over-symlink) want f v "pwned pwned" ;;
    dir-over-symlink) want d s && want f s/x x ;;
    symlink-replaces-dir) want l x && link_to x "$OUTSIDE" ;;
    hardlink-absolute-inside)
        want f "$REL/victim" "layer copy" && want f hl-inside "layer copy" && same_file hl-inside "$REL/victim" ;;
    hardlink-to-symlink) want l hl-sym && link_to hl-sym "$OUTSIDE/victim" ;;
    whiteout-symlink) want c s && devnum s 0:0 ;;
    device) absent dev/evil ;; # layers are unpacked in a user namespace, root's too: no working device nodes
    file-replaces-dir) want f d "now a file" ;;
    dir-replaces-file) want d f && want f f/child c ;;
    file-replaces-dir-tree) want f d "file over a tree" ;;
    symlink-replaces-dir-tree) want l a && link_to a "$OUTSIDE" ;;
    gzip-under-limit) [[ $(stat -c %s "$L/zeros") == $((24 << 20)) ]] || problem "zeros is not 24 MiB" ;;
    overlay-xattrs)
        want d d && want f f
        python3 - "$L/d" "$L/f" <<'EOF' || problem "xattrs not as expected"
import os, sys
for p in sys.argv[1:]:
    names = os.listxattr(p, follow_symlinks=False)
    bad = [n for n in names if n.startswith(("trusted.overlay.", "user.overlay."))]
    if bad:
        sys.exit(f"{p}: overlay attributes from the tar were applied: {bad}")
    if "user.keep" not in names:  # proves the PAX xattrs were read at all
        sys.exit(f"{p}: user.keep from the tar is missing (has {names})")
EOF
        ;;
    *) problem "no containment check for this case" ;;
    esac
}

# --- after every case, whatever its outcome -------------------------------------------------------------
store_intact() {
    local now e d
    now=$(snapshot)
    [[ $now == "$BEFORE" ]] || problem "something changed outside the store: $(diff <(echo "$BEFORE") <(echo "$now") | tr '\n' ' ')"
    [[ $(cat "$OUTSIDE/victim") == "do not touch" ]] || problem "the victim's content changed"
    if [[ -d $DATA/tmp ]]; then
        [[ -z $(ls -A "$DATA/tmp") ]] || problem "work files left in tmp/: $(ls -A "$DATA/tmp" | tr '\n' ' ')"
    fi
    for d in layers content; do
        for e in "$DATA/$d/sha256"/*; do
            [[ -e $e || -L $e ]] || continue
            [[ $(basename "$e") =~ ^[0-9a-f]{64}$ ]] || problem "leftover in $d/sha256: $(basename "$e")"
        done
    done
    if compgen -G "$FAKEBIN/ran-*" >/dev/null; then
        local ran
        ran=$(cat "$FAKEBIN"/ran-*)
        problem "a decompressor program was started: $ran"
    fi
    [[ ! -e $DATA/content/sha256/$VICTIM_SHA ]] || problem "the host file was copied into the content store"
    [[ -z $(find "$DATA" -samefile "$OUTSIDE/victim" 2>/dev/null) ]] ||
        problem "the store holds a hard link to the host file: $(find "$DATA" -samefile "$OUTSIDE/victim" 2>/dev/null)"
}

one_case() { # one_case EXPECT ENTRY MATCH DIFF_IDS ENV (CASE, MODE, DATA set)
    local expect=$1 entry=$2 match=$3 diffs=$4 tarball=$T/corpus/$CASE.tar rc=0 re d
    local name=localhost/hostile-$CASE:latest
    local -a envs=()
    [[ $5 == - ]] || read -ra envs <<<"$5"
    rm -f "$FAKEBIN"/ran-* # a case that failed early leaves its record to nobody else
    case $expect in
    reject)
        re='^Error: '
        [[ $entry == - ]] || re="\"$(ere_quote "$entry")\""
        expect_error "$re" runner env "${envs[@]}" "$C" image load -i "$tarball"
        [[ $match == - ]] || grep -Eq -- "$match" "$T/stderr" || problem "error does not match /$match/: $(cat "$T/stderr")"
        grep -qF "$CASE.tar" "$T/stderr" || problem "error does not name the archive: $(cat "$T/stderr")"
        printf '  %-8s %-30s exit 1 %s\n' "$WHO" "$CASE" "$(cat "$T/stderr")"
        if [[ -f $DATA/images.json ]]; then
            ! grep -qF "\"$name\"" "$DATA/images.json" || problem "images.json names the rejected image"
        fi
        for d in ${diffs//,/ }; do
            [[ ! -e $DATA/layers/sha256/${d#sha256:} ]] || problem "layer ${d#sha256:} of a rejected image is in the store"
        done
        ;;
    ok | contain)
        runner env "${envs[@]}" "$C" image load -i "$tarball" >"$T/stdout" 2>"$T/stderr" || rc=$?
        printf '  %-8s %-30s exit %s %s\n' "$WHO" "$CASE" "$rc" "$(head -c 300 "$T/stderr")"
        [[ $rc == 0 ]] || problem "expected the layer to load (contained), got exit $rc: $(cat "$T/stderr")"
        [[ ! -s $T/stderr ]] || problem "a successful load printed to stderr: $(cat "$T/stderr")"
        runner "$C" image ls -q >"$T/names" || problem "image ls failed"
        grep -qxF "$name" "$T/names" || problem "$name is not listed"
        d=${diffs%%,*}
        L=$DATA/layers/sha256/${d#sha256:}
        [[ -d $L ]] || problem "layer directory $L missing"
        contained
        ;;
    *) problem "unknown expectation '$expect'" ;;
    esac
    store_intact
}

FAILED=()
corpus() { # corpus MODE: the whole corpus into one store, case after case
    MODE=$1
    if [[ $MODE == user ]]; then DATA=$T/udata WHO=$(run_as_user id -un); else DATA=$CONTAINER_DATA_DIR WHO=$(id -un); fi
    echo "--- hostile corpus as $WHO, data in $DATA"
    local row expect entry match diffs envs
    for row in "${ROWS[@]}"; do
        IFS=$'\t' read -r CASE expect entry match diffs envs <<<"$row"
        # A subshell per case: one failure is reported and the rest of the corpus still runs.
        if ! (one_case "$expect" "$entry" "$match" "$diffs" "$envs"); then FAILED+=("$WHO:$CASE"); fi
    done
}

corpus root
if have_test_user; then
    chmod 777 "$T" # the test user creates its data directory here
    corpus user
fi
((${#FAILED[@]} == 0)) || fail "${#FAILED[@]} case(s) failed: ${FAILED[*]}"
echo "hostile corpus: ${#ROWS[@]} cases, all rejected or contained"
