#!/bin/bash
# SPDX-License-Identifier: MIT
# The Debian systemd image unpacked by the unprivileged user: every file on the host belongs to the
# image's owner mapped through the keep-id map (image root -> first subordinate id), modes and links kept.
source "$(dirname "$0")/lib.sh"

is_root || skip "needs root: builds the Debian image with mmdebstrap and inspects subordinate-id files"
have_test_user || skip "no unprivileged test user '$TEST_USER' with subordinate ids"

bash "$FIX/debian-rootfs.sh" "$T/debian.tar" >/dev/null
chmod 644 "$T/debian.tar"
chmod 777 "$T"
run_as_user "$C" image import "$T/debian.tar" localhost/debian:ownership >/dev/null || fail "rootless import"
diff_id=sha256:$(sha256sum <"$T/debian.tar" | cut -d' ' -f1)
layer=$T/udata/layers/sha256/${diff_id#sha256:}
[[ -d $layer ]] || fail "layer directory $layer missing"

python3 - "$T/debian.tar" "$layer" "$TEST_USER" <<'PY'
import os, pwd, stat, sys, tarfile
tar_path, root, user = sys.argv[1:]
pw = pwd.getpwnam(user)

def sub(path):
    for line in open(path):
        name, start, count = line.strip().split(":")
        if name in (user, str(pw.pw_uid)):
            return int(start)
    raise SystemExit(f"no range for {user} in {path}")

def keep_id(inside, own, start):
    if inside == own:
        return own
    return start + inside if inside < own else start + inside - 1

su, sg = sub("/etc/subuid"), sub("/etc/subgid")
seen, checked, devices = set(), 0, 0
with tarfile.open(tar_path) as t:
    members = t.getmembers()
final = {}
for m in members:
    name = os.path.normpath(m.name.lstrip("/")).lstrip("./") or "."
    final[name] = m  # a later entry for the same name wins, as in the unpacker
for name, m in final.items():
    path = os.path.join(root, name) if name != "." else root
    if m.ischr() or m.isblk():
        devices += 1
        if os.path.lexists(path):
            raise SystemExit(f"device node {name} was created rootless")
        continue
    st = os.lstat(path)
    want_uid, want_gid = keep_id(m.uid, pw.pw_uid, su), keep_id(m.gid, pw.pw_gid, sg)
    if (st.st_uid, st.st_gid) != (want_uid, want_gid):
        raise SystemExit(f"{name}: owner {st.st_uid}:{st.st_gid}, want {want_uid}:{want_gid} (image {m.uid}:{m.gid})")
    if not m.issym() and stat.S_IMODE(st.st_mode) != m.mode & 0o7777:
        raise SystemExit(f"{name}: mode {oct(stat.S_IMODE(st.st_mode))}, want {oct(m.mode & 0o7777)}")
    if m.issym() and os.readlink(path) != m.linkname:
        raise SystemExit(f"{name}: link target {os.readlink(path)}, want {m.linkname}")
    if m.isreg() and not m.islnk() and st.st_size != m.size:
        raise SystemExit(f"{name}: size {st.st_size}, want {m.size}")
    checked += 1
# Nothing on disk that the image does not have.
for dirpath, dirnames, filenames in os.walk(root):
    for n in dirnames + filenames:
        rel = os.path.relpath(os.path.join(dirpath, n), root)
        if rel not in final:
            raise SystemExit(f"{rel} is on disk but not in the image")
setuid = os.lstat(os.path.join(root, "usr/bin/sudo")).st_mode & stat.S_ISUID
if not setuid:
    raise SystemExit("sudo lost its setuid bit")
print(f"ownership ok: {checked} entries checked, {devices} device nodes skipped, sudo setuid kept")
PY
