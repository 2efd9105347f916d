#!/bin/bash
# SPDX-License-Identifier: MIT
# A corpus of hostile layers (hostile_layers.py) is rejected with the offending entry named, or contained
# inside the layer, with nothing written outside and nothing half-unpacked left; as root and rootless.
source "$(dirname "$0")/lib.sh"

OUTSIDE=$T/outside
mkdir -p "$OUTSIDE"
echo "do not touch" >"$OUTSIDE/victim"
chmod -R a+rX "$OUTSIDE"
python3 "$(dirname "$0")/hostile_layers.py" "$T/corpus" "$OUTSIDE" >/dev/null
chmod -R a+rX "$T/corpus"
chmod 777 "$T"
snapshot() { find "$OUTSIDE" -printf '%p %s %m %u %T@\n' | sort; }
before=$(snapshot)

corpus() {
    local mode=$1 run data n=0
    run=$(runner_for "$mode")
    data=$(data_for "$mode")
    note "hostile corpus as $mode"
    while IFS=$'\t' read -r case expect entry; do
        n=$((n + 1))
        local tarball=$T/corpus/$case.tar rc=0
        $run "$C" image load -i "$tarball" >"$T/out" 2>"$T/err" || rc=$?
        case $expect in
        reject)
            [[ $rc == 1 ]] || fail "$case: expected a rejection, got exit $rc"
            [[ $(wc -l <"$T/err") == 1 ]] && grep -q '^Error: ' "$T/err" || fail "$case: not one Error line: $(cat "$T/err")"
            [[ $entry == - ]] || grep -qF "\"$entry\"" "$T/err" || fail "$case: error does not name \"$entry\": $(cat "$T/err")"
            ! $run "$C" image ls -q | grep -q "hostile-$case" || fail "$case: rejected image was named"
            ;;
        ok | contain)
            [[ $rc == 0 ]] || fail "$case: expected success, got: $(cat "$T/err")"
            $run "$C" image ls -q | grep -qx "localhost/hostile-$case:latest" || fail "$case: not listed"
            ;;
        esac
        echo "  $case: exit $rc $(head -c 160 "$T/err")"
        [[ $(snapshot) == "$before" ]] || fail "$case: something changed outside the store: $(diff <(echo "$before") <(snapshot))"
        [[ -z $(ls -A "$data/tmp") ]] || fail "$case: work files left: $(ls -A "$data/tmp")"
        for l in "$data"/layers/sha256/*; do
            [[ -e $l ]] || continue
            [[ $(basename "$l") =~ ^[0-9a-f]{64}$ ]] || fail "$case: half-unpacked layer left: $l"
        done
    done < <(python3 -c '
import json, sys
for c in json.load(open(sys.argv[1])):
    print(c["case"], c["expect"], c["entry"] or "-", sep="\t")' "$T/corpus/cases.json")

    # What "contained" means, case by case: inside the layer directory and nowhere else.
    layer_of() { $run "$C" image inspect "localhost/hostile-$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["layers"][0]["diffID"][7:])'; }
    local l
    l=$data/layers/sha256/$(layer_of absolute)
    [[ -f $l$OUTSIDE/abs ]] || fail "absolute name not placed inside the layer"
    [[ ! -e $OUTSIDE/abs ]] || fail "absolute name escaped"
    l=$data/layers/sha256/$(layer_of file-replaces-dir)
    [[ -f $l/d && $(cat "$l/d") == "now a file" ]] || fail "file did not replace the directory"
    l=$data/layers/sha256/$(layer_of dir-replaces-file)
    [[ -d $l/f && -f $l/f/child ]] || fail "directory did not replace the file"
    l=$data/layers/sha256/$(layer_of device)
    if [[ $mode == root ]]; then
        [[ -c $l/dev/evil ]] || fail "root: device node not created inside the layer"
    else
        [[ ! -e $l/dev/evil ]] || fail "rootless: a device node appeared"
    fi
    l=$data/layers/sha256/$(layer_of overlay-xattrs)
    python3 -c 'import os, sys; bad = [x for x in os.listxattr(sys.argv[1]) if ".overlay." in x]; sys.exit(1 if bad else 0)' "$l/d" ||
        fail "overlay xattrs from the tar were applied"
    echo "hostile corpus ($mode): $n cases, all rejected or contained"
}

for mode in $(machine_modes); do corpus "$mode"; done
