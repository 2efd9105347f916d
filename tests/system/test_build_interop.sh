#!/bin/bash
# SPDX-License-Identifier: MIT
# What `container build` writes is read by other tools, and the same Containerfile gives the same file
# tree as theirs: the image saves to an OCI archive that `skopeo inspect` reads; `podman build` (Debian
# 12 ships buildah's builder inside podman, not the buildah CLI; chroot isolation, because crun refuses
# this host's hybrid cgroups, docs/TESTING.md) builds the same Containerfile on the same base, and both
# images, unpacked by umoci, have the same paths, types, modes, owners, link targets and file hashes.
# As root (podman and umoci keep owners only then).
source "$(dirname "$0")/lib.sh"

is_root || skip "needs root: podman and umoci keep file owners only as root"
command -v podman >/dev/null && command -v umoci >/dev/null && command -v skopeo >/dev/null ||
    skip "needs podman, umoci and skopeo"
busybox_images busybox-fixture:1.0
"$C" image load -i "$T/bb/image.oci.tar" >/dev/null || fail "load"

ctx=$T/ctx
mkdir -p "$ctx/tree/sub"
echo one >"$ctx/tree/one"
echo two >"$ctx/tree/sub/two"
chmod 0750 "$ctx/tree/sub"
ln -s one "$ctx/tree/link"
echo conf >"$ctx/app.conf"
cat >"$ctx/Containerfile" <<'CONTAINERFILE'
ARG BASE=busybox-fixture:1.0
FROM ${BASE}
COPY tree /opt/tree/
COPY --chown=7:8 --chmod=0600 app.conf /etc/app.conf
RUN mkdir -p /var/lib/app && echo data >/var/lib/app/data && chown -R 1000:1000 /var/lib/app \
 && ln -s /var/lib/app/data /data-link && ln /etc/app.conf /etc/app.hard && rm /etc/inittab \
 && chmod 4755 /opt/tree/one
WORKDIR /srv
RUN echo in-srv >file
CONTAINERFILE

note "container build, image save, skopeo inspect"
"$C" build --progress none -t localhost/interop:1 "$ctx" >/dev/null 2>"$T/err" || fail "build: $(cat "$T/err")"
"$C" image save -o "$T/ours.tar" localhost/interop:1 || fail "save"
skopeo inspect "oci-archive:$T/ours.tar" >"$T/sk" || fail "skopeo inspect"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["Layers"]) == 5, d["Layers"]' "$T/sk" ||
    fail "skopeo sees the wrong layers"

note "podman build of the same Containerfile"
printf '%s\n' '[containers]' 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' '[engine]' \
    'cgroup_manager = "cgroupfs"' 'events_logger = "file"' >"$T/containers.conf"
pod() { CONTAINERS_CONF=$T/containers.conf podman --root "$T/podman" --runroot "$T/podman-run" --storage-driver vfs "$@"; }
on_exit "CONTAINERS_CONF=$T/containers.conf podman --root $T/podman --runroot $T/podman-run --storage-driver vfs image rm -af >/dev/null 2>&1 || true"
pod load -i "$T/bb/image.oci.tar" >"$T/loaded" 2>&1 || fail "podman load: $(cat "$T/loaded")"
base=$(pod images --format '{{.Repository}}:{{.Tag}}' | grep busybox-fixture | head -1)
[[ -n $base ]] || fail "podman load named no busybox image: $(pod images)"
pod build --isolation chroot --build-arg BASE="$base" -t localhost/interop:theirs "$ctx" >"$T/pb" 2>&1 ||
    fail "podman build: $(tail -20 "$T/pb")"
pod save -q --format oci-archive -o "$T/theirs.tar" localhost/interop:theirs || fail "podman save"

note "both trees unpacked by umoci are the same"
tree_of() { # tree_of ARCHIVE DIR
    mkdir -p "$2"
    skopeo copy -q "oci-archive:$1" "oci:$2/layout:x" || fail "skopeo copy $1"
    umoci unpack --image "$2/layout:x" "$2/bundle" >/dev/null || fail "umoci unpack $1"
    python3 - "$2/bundle/rootfs" <<'PY'
import hashlib, os, stat, sys
root = sys.argv[1]
for d, dirs, files in os.walk(root):
    dirs.sort()
    for n in sorted(dirs + files):
        p = os.path.join(d, n)
        rel = os.path.relpath(p, root)
        if rel in ("etc/hosts", "etc/hostname", "etc/resolv.conf"):
            continue  # mount points of the build sandboxes, which each tool treats its own way
        st = os.lstat(p)
        line = "%s %o %d:%d" % (rel, st.st_mode, st.st_uid, st.st_gid)
        if stat.S_ISLNK(st.st_mode):
            line += " -> " + os.readlink(p)
        elif stat.S_ISREG(st.st_mode):
            line += " " + hashlib.sha256(open(p, "rb").read()).hexdigest()[:16] + " links=%d" % st.st_nlink
        print(line)
PY
}
tree_of "$T/ours.tar" "$T/o" >"$T/ours.list"
tree_of "$T/theirs.tar" "$T/t" >"$T/theirs.list"
grep -q "^opt/tree/one 104755 0:0" "$T/ours.list" || fail "our tree lacks the setuid file: $(grep opt/tree "$T/ours.list")"
# One known difference: a hard link a RUN step made stays a hard link in our layer (layer_writer keeps
# links inside a layer); podman 4.3 writes the two names as separate copies. Link counts are compared
# only for that: ours must be a link.
grep -q "^etc/app.hard .* links=2" "$T/ours.list" || fail "the RUN's hard link is not one in our image"
diff <(sed 's/ links=[0-9]*$//' "$T/ours.list") <(sed 's/ links=[0-9]*$//' "$T/theirs.list") >"$T/diff" ||
    fail "the trees differ (< ours, > podman's): $(cat "$T/diff")"
note "$(wc -l <"$T/ours.list") entries compared"
echo "PASS"
