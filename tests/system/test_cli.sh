#!/bin/bash
# SPDX-License-Identifier: MIT
# The command-line contract: help on every level, version, debug output, exit status 0/1/64.
source "$(dirname "$0")/lib.sh"

for args in "--help" "image --help" "image load --help" "image import --help" "image ls --help" \
    "image inspect --help" "image tag --help" "image rm --help" "image save --help"; do
    # shellcheck disable=SC2086
    out=$($C $args) || fail "'container $args' failed"
    grep -q "Usage:" <<<"$out" || fail "'container $args' printed no usage"
done
grep -q "load" <<<"$($C image --help)" || fail "image help lists no verbs"

# The version and the commit the binary was built from (12 hex digits, "+dirty" for a changed tree,
# "unknown" outside a git checkout).
[[ $($C --version) =~ ^container\ version\ [0-9]+\.[0-9]+\.[0-9]+\ \(commit\ ([0-9a-f]{12}(\+dirty)?|unknown)\)$ ]] ||
    fail "bad --version: $($C --version)"
if head=$(git -C "$SRC" rev-parse --short=12 HEAD 2>/dev/null) && git -C "$SRC" diff --quiet HEAD -- 2>/dev/null; then
    [[ $($C --version) == *"(commit $head)" ]] || fail "built from a clean $head, yet: $($C --version)"
fi

expect_status 64 "$C"
expect_status 64 "$C" frobnicate
expect_status 64 "$C" image
expect_status 64 "$C" image load
expect_status 64 "$C" image ls --format yaml
expect_status 64 "$C" image ls --bogus-flag
grep -q "^Error: " "$T/stderr" || fail "usage error without 'Error: '"

# Runtime errors are one line and exit 1.
expect_error "image docker.io/library/nope:latest not found|image nope not found" "$C" image inspect nope

# --debug and CONTAINER_DEBUG=1 both turn on debug lines; without them there are none.
busybox_images
$C image load -i "$T/bb/image.oci.tar" >/dev/null 2>"$T/quiet"
! grep -q "^debug" "$T/quiet" || fail "debug output without --debug"
$C --debug image load -i "$T/bb/image.oci.tar" >/dev/null 2>"$T/dbg"
grep -q "^debug\[" "$T/dbg" || fail "--debug printed nothing"
CONTAINER_DEBUG=1 $C image load -i "$T/bb/image.oci.tar" >/dev/null 2>"$T/dbg2"
grep -q "^debug\[" "$T/dbg2" || fail "CONTAINER_DEBUG=1 printed nothing"

# Every listing has a JSON form that parses.
$C image ls --format json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert isinstance(d, list) and d'
echo "cli contract ok"
