#!/bin/bash
# SPDX-License-Identifier: MIT
# Images made by skopeo (oci-archive, docker-archive) and by `image import` load, list with the right
# digests and sizes, inspect, tag, save (skopeo reads it) and load again; as root and as the test user.
source "$(dirname "$0")/lib.sh"

busybox_images busybox-fixture:1.0
BB=$T/bb
want_manifest=$(cat "$BB/manifest-digest")
want_config=$(cat "$BB/config-digest")
# umoci writes its own layer tar, so the OCI image's diff_id comes from its config; an imported tarball's
# diff_id is the tarball's own digest.
want_diff=$(skopeo inspect --config "oci-archive:$BB/image.oci.tar" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rootfs"]["diff_ids"][0])')
import_diff=sha256:$(sha256sum <"$BB/rootfs.tar" | cut -d' ' -f1)
gzip -c "$BB/rootfs.tar" >"$BB/rootfs.tar.gz"
zstd -q -c "$BB/rootfs.tar" >"$BB/rootfs.tar.zst"
chmod a+r "$BB"/rootfs.tar.*
# Size as skopeo sees the image: manifest + config + layers.
want_size=$(skopeo inspect --raw "oci-archive:$BB/image.oci.tar" | python3 -c '
import json, sys
raw = sys.stdin.buffer.read(); m = json.loads(raw)
print(len(raw) + m["config"]["size"] + sum(l["size"] for l in m["layers"]))')

# jq-less JSON field access: field FILE EXPR (python expression over d).
field() { python3 -c "import json,sys; d=json.load(open('$1')); print($2)"; }

roundtrip() {
    local run=$1 data=$2
    note "round trip ($run)"
    # docker-archive first: same config, same layer content, a name from RepoTags.
    $run "$C" image load -i "$BB/image.docker.tar" >"$T/out" || fail "load docker-archive"
    local dname
    dname=$(sed -n 's/^Loaded image: //p' "$T/out")
    [[ -n $dname ]] || fail "docker load named nothing"
    $run "$C" image inspect "$dname" >"$T/d.json"
    [[ $(field "$T/d.json" 'd[0]["configDigest"]') == "$want_config" ]] || fail "docker-archive config digest differs"
    [[ $(field "$T/d.json" 'd[0]["layers"][0]["diffID"]') == "$want_diff" ]] || fail "docker-archive diff_id differs"
    # It has the OCI image's name; keep it under another so the OCI load below can take that name.
    $run "$C" image tag "$dname" localhost/from-docker:1.0 || fail "tag docker image"

    $run "$C" image load -i "$BB/image.oci.tar" >"$T/out" || fail "load oci-archive"
    grep -qx "Loaded image: docker.io/library/busybox-fixture:1.0" "$T/out" || fail "load said: $(cat "$T/out")"
    $run "$C" image inspect busybox-fixture:1.0 >"$T/i.json"
    [[ $(field "$T/i.json" 'd[0]["descriptor"]["digest"]') == "$want_manifest" ]] || fail "manifest digest differs"
    [[ $(field "$T/i.json" 'd[0]["configDigest"]') == "$want_config" ]] || fail "config digest differs"
    [[ $(field "$T/i.json" 'd[0]["size"]') == "$want_size" ]] || fail "size $(field "$T/i.json" 'd[0]["size"]') != $want_size"
    [[ $(field "$T/i.json" 'd[0]["layers"][0]["diffID"]') == "$want_diff" ]] || fail "diff_id differs"
    [[ $(field "$T/i.json" 'd[0]["config"]["config"]["Cmd"][0]') == /sbin/init ]] || fail "config not in inspect"

    # The table: NAME TAG DIGEST SIZE CREATED, digest shortened to 12 hex digits.
    $run "$C" image ls >"$T/ls"
    head -1 "$T/ls" | grep -Eq '^NAME +TAG +DIGEST +SIZE +CREATED$' || fail "ls header: $(head -1 "$T/ls")"
    grep -Eq "^docker.io/library/busybox-fixture +1.0 +${want_manifest:7:12} " "$T/ls" || fail "ls row: $(cat "$T/ls")"

    # The unpacked layer holds the image's files.
    local layer=$data/layers/sha256/${want_diff#sha256:}
    cmp -s "$layer/bin/busybox" "$(readlink -f /bin/busybox)" || fail "unpacked busybox differs"
    [[ $(readlink "$layer/sbin/init") == /bin/busybox ]] || fail "sbin/init symlink lost"

    # import: plain, gzip, zstd; the layer is the file as given, its diff_id the tar inside.
    local ext
    for ext in tar tar.gz tar.zst; do
        $run "$C" image import "$BB/rootfs.$ext" "localhost/imported-${ext//./-}:v1" >/dev/null || fail "import $ext"
        $run "$C" image inspect "localhost/imported-${ext//./-}:v1" >"$T/m.json"
        [[ $(field "$T/m.json" 'd[0]["layers"][0]["digest"]') == "sha256:$(sha256sum <"$BB/rootfs.$ext" | cut -d' ' -f1)" ]] ||
            fail "imported $ext layer digest differs"
        [[ $(field "$T/m.json" 'd[0]["layers"][0]["diffID"]') == "$import_diff" ]] || fail "imported $ext diff_id differs"
    done
    [[ $(field "$T/m.json" 'd[0]["layers"][0]["mediaType"]') == application/vnd.oci.image.layer.v1.tar+zstd ]] ||
        fail "zstd media type"

    # tag, then -q and JSON listings agree.
    $run "$C" image tag busybox-fixture:1.0 localhost/retagged:2 || fail "tag"
    $run "$C" image ls -q >"$T/q"
    grep -qx localhost/retagged:2 "$T/q" || fail "tag not listed: $(cat "$T/q")"
    [[ $(wc -l <"$T/q") == 6 ]] || fail "expected 6 names, got $(cat "$T/q")"
    $run "$C" image ls --format json >"$T/l.json"
    [[ $(field "$T/l.json" 'len(d)') == 6 ]] || fail "json listing length"
    [[ $(field "$T/l.json" '[x["descriptor"]["digest"] for x in d if x["reference"]=="localhost/retagged:2"][0]') == "$want_manifest" ]] ||
        fail "retagged digest differs"
    # By ID works like by name.
    $run "$C" image inspect "${want_manifest:7:12}" >/dev/null || fail "inspect by short ID"

    # save -> skopeo reads it -> rm everything -> load again, same digest.
    $run "$C" image save -o "$T/saved-$run.tar" busybox-fixture:1.0 localhost/imported-tar-gz:v1 || fail "save"
    skopeo inspect "oci-archive:$T/saved-$run.tar:docker.io/library/busybox-fixture:1.0" >"$T/s.json" ||
        fail "skopeo cannot read the saved archive"
    [[ $(field "$T/s.json" 'd["Digest"]') == "$want_manifest" ]] || fail "saved manifest digest differs"
    $run "$C" image rm $(cat "$T/q") >/dev/null || fail "rm all"
    [[ -z $($run "$C" image ls -q) ]] || fail "images left after rm"
    [[ -z $(ls "$data/content/sha256") && -z $(ls "$data/layers/sha256") ]] || fail "rm left blobs or layers"
    $run "$C" image load -i "$T/saved-$run.tar" >"$T/out" || fail "reload saved"
    grep -qx "Loaded image: localhost/imported-tar-gz:v1" "$T/out" || fail "reload names: $(cat "$T/out")"
    $run "$C" image inspect busybox-fixture:1.0 >"$T/r.json"
    [[ $(field "$T/r.json" 'd[0]["descriptor"]["digest"]') == "$want_manifest" ]] || fail "reloaded digest differs"
    [[ -z $(ls "$data/tmp") ]] || fail "work files left in tmp/"
}

chmod 777 "$T" # the test user writes its own files here too
if is_root; then
    roundtrip "" "$T/data"
else
    note "not root: the root round trip is skipped"
fi
if have_test_user || ! is_root; then
    roundtrip run_as_user "$T/udata"
else
    note "no unprivileged test user with subordinate ids: the rootless round trip is skipped"
fi
echo "round trip ok"
