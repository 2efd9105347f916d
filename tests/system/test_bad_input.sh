#!/bin/bash
# SPDX-License-Identifier: MIT
# Bad input gets one line "Error: …", exit status 1, and leaves the store as it was.
source "$(dirname "$0")/lib.sh"

busybox_images
$C image load -i "$T/bb/image.oci.tar" >/dev/null
before=$($C image ls --format json)

# Malformed references.
expect_error 'invalid reference "Busybox": repository name must be lowercase' "$C" image inspect Busybox
expect_error 'invalid reference "a::b"' "$C" image inspect a::b
expect_error 'invalid reference "x@sha256:123"' "$C" image rm x@sha256:123
expect_error 'invalid reference' "$C" image tag busybox-fixture:1.0 'bad name'
expect_error 'invalid image name "x@sha256:[0-9a-f]{64}": a digest cannot name a new image' \
    "$C" image tag busybox-fixture:1.0 "x@sha256:$(printf '%064d' 0)"
expect_error 'invalid reference ".*": invalid tag' "$C" image import "$T/bb/rootfs.tar" "x:-bad"
expect_error 'image localhost/absent:1 not found' "$C" image rm localhost/absent:1

# Missing files.
expect_error "open \"$T/missing.tar\": No such file or directory" "$C" image load -i "$T/missing.tar"
expect_error "open \"$T/missing.tar\": No such file or directory" "$C" image import "$T/missing.tar" x
expect_error "is not a regular file" "$C" image load -i "$T"

# Not an archive.
head -c 5000 /dev/urandom >"$T/noise.bin"
expect_error 'is not an image archive' "$C" image load -i "$T/noise.bin"
expect_error 'is not a root filesystem tarball' "$C" image import "$T/noise.bin" localhost/noise
: >"$T/empty.tar"
expect_error 'is not an image archive' "$C" image load -i "$T/empty.tar"
# A tar that is neither layout.
mkdir -p "$T/plain" && echo hi >"$T/plain/hello" && tar -C "$T/plain" -cf "$T/plain.tar" hello
expect_error 'neither an OCI image layout archive nor a docker save archive' "$C" image load -i "$T/plain.tar"

# Archives whose JSON is wrong, built from the good one.
mk_layout() { # mk_layout NAME: unpack the good archive into $T/NAME for editing
    rm -rf "$T/$1" && mkdir -p "$T/$1" && tar -C "$T/$1" -xf "$T/bb/image.oci.tar"
}
pack() { tar -C "$T/$1" -cf "$T/$1.tar" .; }
put_blob() { # put_blob DIR FILE -> prints digest
    local d
    d=$(sha256sum <"$2" | cut -d' ' -f1)
    cp "$2" "$T/$1/blobs/sha256/$d"
    echo "sha256:$d"
}
index_to() { # index_to DIR MEDIATYPE DIGEST SIZE
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"%s","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"localhost/bad:1"}}]}' \
        "$2" "$3" "$4" >"$T/$1/index.json"
}

# index.json that is not JSON.
mk_layout badjson && echo '{not json' >"$T/badjson/index.json" && pack badjson
expect_error 'index.json: image document is not valid JSON' "$C" image load -i "$T/badjson.tar"

# The index points at the config blob: JSON, but not a manifest.
mk_layout notmanifest
cfg=$(cat "$T/bb/config-digest")
index_to notmanifest application/vnd.oci.image.manifest.v1+json "$cfg" \
    "$(stat -c %s "$T/notmanifest/blobs/sha256/${cfg#sha256:}")"
pack notmanifest
expect_error 'manifest: no config descriptor|manifest: schemaVersion is not 2' "$C" image load -i "$T/notmanifest.tar"

# A manifest with an unknown layer media type.
mk_layout badmedia
m=$(cat "$T/bb/manifest-digest")
sed 's#application/vnd.oci.image.layer.v1.tar+gzip#application/x-unknown-layer#' \
    "$T/badmedia/blobs/sha256/${m#sha256:}" >"$T/badmanifest.json"
d=$(put_blob badmedia "$T/badmanifest.json")
index_to badmedia application/vnd.oci.image.manifest.v1+json "$d" "$(stat -c %s "$T/badmanifest.json")"
pack badmedia
expect_error 'unsupported layer media type "application/x-unknown-layer"' "$C" image load -i "$T/badmedia.tar"

# An index entry with an unknown media type.
mk_layout badindex
index_to badindex application/x-whatever "$m" "$(stat -c %s "$T/bb/layout/blobs/sha256/${m#sha256:}")"
pack badindex
expect_error 'unsupported media type "application/x-whatever"' "$C" image load -i "$T/badindex.tar"

# A manifest whose size in the index is wrong, and a missing blob.
mk_layout badsize
index_to badsize application/vnd.oci.image.manifest.v1+json "$m" 3
pack badsize
expect_error "blob $m has [0-9]+ bytes, its descriptor says 3" "$C" image load -i "$T/badsize.tar"
mk_layout missing
rm "$T/missing/blobs/sha256/${cfg#sha256:}"
pack missing
# (into an empty store: a blob the store already holds need not be in the archive)
expect_error "the archive has no file \"blobs/sha256/${cfg#sha256:}\"" \
    env CONTAINER_DATA_DIR="$T/fresh" "$C" image load -i "$T/missing.tar"
[[ -z $(CONTAINER_DATA_DIR="$T/fresh" $C image ls -q) ]] || fail "a failed load named an image"

# A docker archive with no name.
mkdir -p "$T/dock" && tar -C "$T/dock" -xf "$T/bb/image.docker.tar"
python3 - "$T/dock/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); m[0]["RepoTags"] = []; json.dump(m, open(sys.argv[1], "w"))
PY
tar -C "$T/dock" -cf "$T/dock.tar" .
expect_error 'has no name \(RepoTags is empty\)' "$C" image load -i "$T/dock.tar"

# JSON documents past their limit are refused without being read whole: the archive's index.json and a
# docker manifest.json (4 MiB, the distribution spec's manifest limit), and a config blob (8 MiB). Each is
# valid JSON, padded with spaces, so only the limit can refuse it.
pad() { python3 -c 'import sys; p, n = sys.argv[1], int(sys.argv[2]); t = open(p, "rb").read().rstrip(); open(p, "wb").write(t + b" " * n)' "$@"; }
mk_layout bigindex && pad "$T/bigindex/index.json" $((4 << 20)) && pack bigindex
expect_error "the archive's index.json is larger than 4 MiB" "$C" image load -i "$T/bigindex.tar"
rm -rf "$T/dockbig" && mkdir -p "$T/dockbig" && tar -C "$T/dockbig" -xf "$T/bb/image.docker.tar"
pad "$T/dockbig/manifest.json" $((4 << 20)) && tar -C "$T/dockbig" -cf "$T/dockbig.tar" .
expect_error "the archive's manifest.json is larger than 4 MiB" "$C" image load -i "$T/dockbig.tar"
mk_layout bigconfig
read -r bigm bigm_size < <(python3 - "$T/bigconfig/blobs/sha256" "${cfg#sha256:}" "${m#sha256:}" <<'PY'
import hashlib, json, sys
blobs, cfg, man = sys.argv[1:4]
def put(data):
    h = hashlib.sha256(data).hexdigest()
    open(f"{blobs}/{h}", "wb").write(data)
    return h
c = open(f"{blobs}/{cfg}", "rb").read().rstrip() + b" " * (8 << 20)
mf = json.load(open(f"{blobs}/{man}"))
mf["config"].update(digest="sha256:" + put(c), size=len(c))
data = json.dumps(mf).encode()
print("sha256:" + put(data), len(data))
PY
)
index_to bigconfig application/vnd.oci.image.manifest.v1+json "$bigm" "$bigm_size" && pack bigconfig
expect_error "blob sha256:[0-9a-f]{64} is larger than 8 MiB, the most an image document may be" \
    "$C" image load -i "$T/bigconfig.tar"

# Nothing changed, nothing left behind.
[[ $($C image ls --format json) == "$before" ]] || fail "image table changed after bad input"
[[ -z $(ls "$CONTAINER_DATA_DIR/tmp") ]] || fail "work files left: $(ls "$CONTAINER_DATA_DIR/tmp")"
for l in "$CONTAINER_DATA_DIR"/layers/sha256/*; do
    [[ $(basename "$l") =~ ^[0-9a-f]{64}$ ]] || fail "leftover layer dir $l"
done
echo "bad input ok"
