#!/bin/bash
# SPDX-License-Identifier: MIT
# Root-run machines: the machine's root is never the host's root (docs/SECURITY.md). The store's layers
# belong to the store's block of root's id pool (no setuid-root file, no device node, no root file
# capability from an image on the host side), every machine gets a block of its own, root's home is
# shared through an idmapped mount (root inside is root there, and nowhere else), and from inside the
# host-root attacks of issue #14 fail. A store and a machine from before private ids are converted or
# refused.
source "$(dirname "$0")/lib.sh"

is_root || skip "needs root: this is about machines that root runs"
command -v gcc >/dev/null || fail "gcc (build-essential) is needed to build the escape helper"
busybox_images
HELPER=$T/escape-helper
gcc -static -O1 -o "$HELPER" "$SRC/tests/system/escape_helper.c" || fail "build escape_helper.c"
on_exit "remove_all_machines ''"

# An image with what must never reach the host as root's: a setuid-root program, a character device, a
# file capability.
R=$T/img
mkdir -p "$R"
tar -C "$R" -xf "$T/bb/rootfs.tar"
install -D -m 755 "$HELPER" "$R/usr/local/bin/escape-helper"
cp "$R/bin/busybox" "$R/bin/suid-root"
chmod 4755 "$R/bin/suid-root"
mknod -m 666 "$R/dev/evil" c 1 3
cp "$R/bin/busybox" "$R/bin/capped"
python3 -c 'import os,struct,sys; os.setxattr(sys.argv[1], "security.capability", struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0))' "$R/bin/capped"
tar -C "$R" --numeric-owner --xattrs --xattrs-include='security.capability' -cf "$T/img.tar" .
"$C" image import "$T/img.tar" localhost/rootids:1 >/dev/null

DATA=$CONTAINER_DATA_DIR
read -r store_uid store_gid <"$DATA/ids" || fail "no ids record in the store"
[[ $store_uid -ge 65536 && $store_gid -ge 65536 ]] || fail "the store's ids start at $store_uid:$store_gid"
note "store layers belong to the store's block ($store_uid)"
L=$(ls -d "$DATA"/layers/sha256/*/ | head -1)
[[ $(stat -c %u "$L/bin/suid-root") == "$store_uid" ]] || fail "suid-root is owned by $(stat -c %u "$L/bin/suid-root")"
[[ -z $(find "$DATA"/layers/sha256/*/ -uid 0 -print -quit) ]] || fail "files of the host's root in the layers: $(find "$DATA"/layers/sha256/*/ -uid 0 | head -3)"
[[ -z $(find "$DATA/layers" -perm -4000 -uid 0 -print -quit) ]] || fail "a setuid-root file in the store"
devices=$(find "$DATA/layers" -type c ! -exec sh -c '[ "$(stat -c %t:%T "$1")" = 0:0 ]' _ {} \; -print)
[[ -z $devices ]] || fail "device nodes in the store: $devices"
python3 - "$L/bin/capped" "$store_uid" <<'PY' || fail "file capability in the store is not scoped to the store's ids"
import os, struct, sys
try:
    v = os.getxattr(sys.argv[1], "security.capability")
except OSError:
    sys.exit(0)  # dropped: fine
magic, = struct.unpack_from("<I", v)
# A v2 capability would be the host root's; v3 names the root id it belongs to.
sys.exit(0 if (magic >> 24) == 3 and struct.unpack_from("<I", v, 20)[0] == int(sys.argv[2]) else 1)
PY

note "two machines, disjoint blocks"
"$C" machine create --name r1 --home-mount none localhost/rootids:1 >/dev/null
"$C" machine create --name r2 localhost/rootids:1 >/dev/null
range() { "$C" machine inspect "$1" | python3 -c 'import json,sys; r=json.load(sys.stdin)[0]["idRange"]; print(r["uid"], r["gid"], r["size"])'; }
read -r u1 g1 n1 < <(range r1)
read -r u2 g2 n2 < <(range r2)
for v in "$u1" "$g1" "$u2" "$g2"; do [[ $v -ge 65536 ]] || fail "a machine block starts at $v"; done
((u1 + n1 <= u2 || u2 + n2 <= u1)) || fail "uid blocks overlap: $u1+$n1 and $u2+$n2"
((g1 + n1 <= g2 || g2 + n2 <= g1)) || fail "gid blocks overlap"
((u1 != store_uid && u2 != store_uid)) || fail "a machine got the store's block"

note "machine root's files on the host belong to its block"
"$C" machine run -n r1 -- touch /var/made-by-root
owner=$(stat -c %u:%g "$DATA/machines/r1/upper/var/made-by-root")
[[ $owner == "$u1:$g1" ]] || fail "/var/made-by-root is $owner on the host, expected $u1:$g1"
[[ $("$C" machine run -n r1 -- stat -c %u /bin/busybox) == 0 ]] || fail "the image's files are not root's inside"

note "root's home is root's inside, and root's on the host"
marker=$HOME/.ctr-root-ids-$$
on_exit "rm -f '$marker' '$marker.2'"
echo mine >"$marker"
[[ $("$C" machine run -n r2 -- stat -c %u:%g "$marker") == 0:0 ]] || fail "root's home files are not root's inside"
"$C" machine run -n r2 -- sh -c "echo inside > '$marker.2'"
[[ $(stat -c %u:%g "$marker.2") == 0:0 ]] || fail "a file root wrote in its home is $(stat -c %u:%g "$marker.2") on the host"
"$C" machine create --name r3 --home-mount ro localhost/rootids:1 >/dev/null
! "$C" machine run -n r3 -- sh -c "echo x > '$marker'" 2>/dev/null || fail "wrote the read-only home as root inside"
! "$C" machine run -n r3 -- mount -o remount,rw "$HOME" 2>/dev/null || fail "remounted the read-only home"
[[ $(cat "$marker") == mine ]] || fail "the home file changed"
"$C" machine rm -f r2 r3 >/dev/null 2>&1 || { "$C" machine rm -f r2 >/dev/null 2>&1; "$C" machine rm -f r3 >/dev/null 2>&1; }

note "host-root attacks from inside fail (home-mount=none)"
host_core=$(cat /proc/sys/kernel/core_pattern)
! "$C" machine run -n r1 -- sh -c 'echo "|/tmp/x" > /proc/sys/kernel/core_pattern' 2>/dev/null || fail "wrote core_pattern"
[[ $(cat /proc/sys/kernel/core_pattern) == "$host_core" ]] || fail "core_pattern changed"
! "$C" machine run -n r1 -- sh -c 'echo 1 > /proc/sys/vm/drop_caches' 2>/dev/null || fail "wrote drop_caches"
! "$C" machine run -n r1 -- mount -o remount,rw /sys 2>/dev/null || fail "remounted /sys read-write"
! "$C" machine run -n r1 -- umount /sys/fs/cgroup 2>/dev/null || fail "unmounted the cgroup mount"
! "$C" machine run -n r1 -- sh -c 'echo max > /sys/fs/cgroup/memory.max' 2>/dev/null || fail "lifted the machine's memory limit"
! "$C" machine run -n r1 -- sh -c 'mknod /tmp/mem c 1 1 && head -c1 /tmp/mem >/dev/null' 2>/dev/null ||
    fail "made a working device node"
# The host binary is reachable only while a `run` joins: a poller inside tries to change it through
# /proc/N/exe during 30 runs.
read -r bdev bino < <(stat -c '%d %i' "$C")
mode_before=$(stat -c %a "$C")
"$C" machine run -n r1 -d -- escape-helper hostexe "$bdev" "$bino" /tmp/hostexe.out 6 >/dev/null
for _ in $(seq 30); do "$C" machine run -n r1 -- true; done
for _ in $(seq 100); do "$C" machine run -n r1 -- grep -q looks /tmp/hostexe.out 2>/dev/null && break; sleep 0.2; done
out=$("$C" machine run -n r1 -- cat /tmp/hostexe.out)
[[ $out == *"hits 0"* ]] || fail "reached the host binary from inside: $out"
[[ $(stat -c %a "$C") == "$mode_before" ]] || fail "the host binary's mode changed"

note "without idmapped mounts: a copy of the layers owned by the machine's block"
# This kernel has idmapped mounts; CONTAINER_IDMAPPED_MOUNTS=0 takes the path of one that has none.
CONTAINER_IDMAPPED_MOUNTS=0 "$C" machine create --name rc localhost/rootids:1 >/dev/null || fail "create with copied layers"
grep -q "no idmapped mounts (CONTAINER_IDMAPPED_MOUNTS=0): this machine uses its own copy" "$DATA/machines/rc/boot.log" ||
    fail "no line about the copy in boot.log"
read -r uc gc _ < <(range rc)
copy=$(ls -d "$DATA"/machines/rc/layer-copies/*/ | head -1)
[[ $(stat -c %u:%g "$copy/bin/suid-root") == "$uc:$gc" ]] || fail "the copy is not owned by the machine's block"
[[ $(stat -c %a "$copy/bin/suid-root") == 4755 ]] || fail "the copy lost the setuid bit ($(stat -c %a "$copy/bin/suid-root"))"
[[ -z $(find "$copy" -uid 0 -print -quit) && ! -e $copy/dev/evil ]] || fail "host-root files or a device in the copy"
[[ $("$C" machine run -n rc -- stat -c %u:%a /bin/suid-root) == 0:4755 ]] || fail "suid-root is not root's inside"
"$C" machine run -n rc -- touch /var/in-copy
[[ $(stat -c %u "$DATA/machines/rc/upper/var/in-copy") == "$uc" ]] || fail "a file made in the copied machine is not its block's"
"$C" machine rm -f rc >/dev/null 2>&1

note "a store and a machine from before private ids"
"$C" machine stop r1 >/dev/null
# What earlier versions left: layers owned by the host's ids, no ids record, a machine without a block.
chown -R 0:0 "$DATA"/layers/sha256/*/
rm -f "$DATA/ids"
python3 - "$DATA/machines/r1/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); del c["configuration"]["idRange"]; json.dump(c, open(sys.argv[1], "w"))
PY
"$C" image ls >/dev/null || fail "the store did not open"
[[ -f $DATA/ids ]] || fail "the store was not converted"
[[ -z $(find "$DATA"/layers/sha256/*/ -uid 0 -print -quit) ]] || fail "layers still owned by the host's root after conversion"
[[ $(stat -c %u "$(ls -d "$DATA"/layers/sha256/*/ | head -1)/bin/suid-root") == "$store_uid" ]] || fail "not unpacked again"
expect_error 'made before root-run machines got ids of their own.*remove it and create it again' "$C" machine start r1
"$C" machine rm -f r1 >/dev/null 2>&1
"$C" machine create --name r4 localhost/rootids:1 >/dev/null || fail "create after conversion"
[[ $("$C" machine run -n r4 -- id -u) == 0 ]] || fail "no root in a converted store's machine"
echo "root-run machines: store block $store_uid, machine blocks $u1 and $u2"
