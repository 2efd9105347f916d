#!/bin/bash
# SPDX-License-Identifier: MIT
# A build step's layer is stored by renaming the step's overlay upper directory into layers/, trimmed to
# what the layer's tar holds, instead of unpacking the tar just written (store/layer_writer.hpp,
# trim_to_layer). This test checks, as root and as the unprivileged user, that the tree so taken is the
# tree an unpack of the same blob gives: each build layer's tree is listed (type, mode, owner, size,
# content hash, link target, device numbers, hard-link groups, extended attributes, whole-second
# mtimes but a whiteout's, which a layer does not carry), removed, unpacked again from its blob by `system check --repair`, and listed again. The steps
# add, change, chown and delete files (a whiteout), replace a directory (an opaque one), make hard and
# symbolic links and a FIFO, set a user xattr, and change /etc, whose /etc/hosts and /etc/resolv.conf
# mount points the layer leaves out.
source "$(dirname "$0")/lib.sh"

busybox_images busybox-fixture:1.0
chmod 777 "$T"

# last_diff_ids DATA NAME N: the hex of the image NAME's last N diff_ids, one per line.
last_diff_ids() {
    python3 - "$1" "$2" "$3" <<'PY'
import json, sys
data, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
images = json.load(open(f"{data}/images.json"))["images"]
blob = lambda d: f"{data}/content/sha256/{d.split(':')[1]}"
manifest = json.load(open(blob(images[name]["digest"])))
config = json.load(open(blob(manifest["config"]["digest"])))
for d in config["rootfs"]["diff_ids"][-n:]:
    print(d.split(":")[1])
PY
}
# listing DIR: every entry below DIR, one line each, in name order (run as root: the tree is the store's ids).
listing() {
    python3 - "$1" <<'PY'
import hashlib, os, stat, sys
root = sys.argv[1]
links = {}
out = []
for dirpath, dirs, files in os.walk(root):
    dirs.sort()
    for name in [""] + sorted(dirs + files) if dirpath == root else sorted(dirs + files):
        p = os.path.join(dirpath, name) if name else dirpath
        rel = os.path.relpath(p, root)
        st = os.lstat(p)
        kind = stat.S_IFMT(st.st_mode)
        extra = ""
        if stat.S_ISREG(kind):
            extra = hashlib.sha256(open(p, "rb").read()).hexdigest()[:16]
            if st.st_nlink > 1:
                extra += " link-group=" + links.setdefault((st.st_dev, st.st_ino), rel)
        elif stat.S_ISLNK(kind):
            extra = "-> " + os.readlink(p)
        elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
            extra = f"dev={os.major(st.st_rdev)},{os.minor(st.st_rdev)}"
        xattrs = ""
        if stat.S_ISREG(kind) or stat.S_ISDIR(kind):
            xattrs = " ".join(f"{x}={os.getxattr(p, x, follow_symlinks=False)!r}"
                              for x in sorted(os.listxattr(p, follow_symlinks=False)))
        size = st.st_size if not stat.S_ISDIR(kind) else "-"
        # A whiteout's time is not in the layer (unpack makes a new one): overlay never shows it.
        mtime = "-" if stat.S_ISCHR(kind) and st.st_rdev == 0 else int(st.st_mtime)
        out.append(f"{rel} {oct(st.st_mode)} {st.st_uid}:{st.st_gid} {size} {mtime} {extra} [{xattrs}]")
print("\n".join(out))
PY
}

cat >"$T/Containerfile" <<'CF'
FROM busybox-fixture:1.0
RUN mkdir -p /d/sub /keep && echo one >/d/sub/f && echo kept >/keep/k && echo a >/a && ln /a /a-hard && \
    ln -s /a /a-soft && mkfifo /fifo && chown 12:34 /a && chmod 4755 /keep/k && \
    echo "127.0.0.9 extra" >>/etc/hosts.extra && rm /etc/inittab && \
    if command -v setfattr >/dev/null; then setfattr -n user.test -v hello /keep/k; fi
RUN rm -rf /d && mkdir /d && echo two >/d/new && rm /a-hard && echo changed >>/keep/k
CF

for mode in $(machine_modes); do
    run=$(runner_for "$mode")
    data=$(data_for "$mode")
    note "as $mode"
    $run "$C" image load -i "$T/bb/image.oci.tar" >/dev/null || fail "load ($mode)"
    $run "$C" --debug build --no-cache --progress plain -t localhost/tree:1 "$T" >"$T/out" 2>"$T/err" ||
        fail "build ($mode): $(tail -20 "$T/err")"
    taken=$(grep -c 'taken as the unpacked layer' "$T/err" || true)
    [[ $taken == 2 ]] || fail "expected both steps' trees taken as their layers, $taken were: $(grep -i layer "$T/err")"
    mapfile -t ids < <(last_diff_ids "$data" localhost/tree:1 2)
    [[ ${#ids[@]} == 2 ]] || fail "the image has no two build layers"

    i=0
    for id in "${ids[@]}"; do
        i=$((i + 1))
        dir=$data/layers/sha256/$id
        [[ -d $dir ]] || fail "layer $id is not in the store"
        listing "$dir" >"$T/taken-$i" || fail "list $dir"
        rm -rf "$dir"
        $run "$C" system check --repair >"$T/check" 2>&1 || fail "check --repair ($mode): $(cat "$T/check")"
        grep -q "unpacked again" "$T/check" || fail "--repair did not unpack $id: $(cat "$T/check")"
        listing "$dir" >"$T/unpacked-$i" || fail "list $dir again"
        diff -u "$T/unpacked-$i" "$T/taken-$i" >"$T/diff" ||
            fail "layer $i taken from the step differs from its unpack (- unpack, + taken): $(cat "$T/diff")"
    done

    # The listings show what the comparison covered: without these it could pass on two empty trees.
    grep -q "^etc " "$T/taken-1" || fail "the first layer has no /etc"
    ! grep -Eq "^etc/(hosts|resolv.conf) " "$T/taken-1" || fail "the runtime mount points are in the layer"
    grep -q "^etc/inittab 0o20000 .* dev=0,0 " "$T/taken-1" || fail "no whiteout for /etc/inittab: $(cat "$T/taken-1")"
    grep -q "^a 0o100644 .* link-group=a " "$T/taken-1" || fail "no hard-link group for /a"
    grep -q "^a-soft .* -> /a " "$T/taken-1" || fail "no symlink"
    grep -q "^fifo 0o10" "$T/taken-1" || fail "no FIFO"
    grep -q "^keep/k 0o104755 " "$T/taken-1" || fail "no setuid file"
    grep -q "^d \S* .*user.overlay.opaque=b'y'" "$T/taken-2" || fail "no opaque /d in the second layer: $(cat "$T/taken-2")"
    ! grep -q "user.overlay.origin\|user.overlay.impure" "$T/taken-1" "$T/taken-2" || fail "overlay bookkeeping kept"
    $run "$C" machine create --name tree-$mode localhost/tree:1 --no-boot >/dev/null || fail "create ($mode)"
    on_exit "$run '$C' machine rm -f tree-$mode >/dev/null 2>&1"
    [[ $($run "$C" machine run --root -n tree-$mode -- sh -c 'ls /d; cat /keep/k; ls /a-hard /etc/inittab 2>&1 | wc -l') == \
        "$(printf 'new\nkept\nchanged\n2')" ]] || fail "a machine of the image sees the wrong files"
done
