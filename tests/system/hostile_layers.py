#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes a corpus of OCI image archives whose single layer is hostile, plus cases.json saying for each
# whether the store must reject it (with the offending entry named) or contain it inside the layer.
import gzip, hashlib, io, json, os, sys, tarfile

out, outside = sys.argv[1], sys.argv[2].rstrip("/")
os.makedirs(out, exist_ok=True)
cases = []


def entry(tar, name, kind="file", data=b"", target="", mode=0o644, size=None, pax=None):
    ti = tarfile.TarInfo(name)
    ti.mode, ti.mtime, ti.uid, ti.gid = mode, 1700000000, 0, 0
    if pax:
        ti.pax_headers = pax
    if kind == "file":
        ti.size = len(data) if size is None else size
        tar.addfile(ti, io.BytesIO(data))
        return
    ti.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE}[kind]
    ti.linkname = target
    if kind == "chr":
        ti.devmajor, ti.devminor = 1, 3
    tar.addfile(ti)


def archive(case, raw_tar, expect, entry_name, diff_id=None, corrupt_blob=False):
    blob = gzip.compress(raw_tar, mtime=0)
    digest = hashlib.sha256(blob).hexdigest()
    diff = diff_id or "sha256:" + hashlib.sha256(raw_tar).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                       "digest": "sha256:" + digest, "size": len(blob)}]}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + hashlib.sha256(manifest).hexdigest(), "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": f"localhost/hostile-{case}:latest"}}]}).encode()
    if corrupt_blob:
        blob = blob[:-20] + bytes(20)
    with tarfile.open(os.path.join(out, case + ".tar"), "w") as t:
        for name, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index),
                           ("blobs/sha256/" + hashlib.sha256(manifest).hexdigest(), manifest),
                           ("blobs/sha256/" + hashlib.sha256(config).hexdigest(), config),
                           ("blobs/sha256/" + digest, blob)]:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    cases.append({"case": case, "expect": expect, "entry": entry_name})


def tar_of(*entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kw in entries:
            entry(tar, name, **kw)
    return buf.getvalue()


o = outside.lstrip("/")
archive("ok", tar_of(("etc/", {"kind": "dir", "mode": 0o755}), ("etc/hello", {"data": b"hi\n"})), "ok", None)
archive("dotdot", tar_of(("../escape", {"data": b"x"})), "reject", "../escape")
archive("deep-dotdot", tar_of(("a/../../escape", {"data": b"x"})), "reject", "a/../../escape")
archive("absolute", tar_of((outside + "/abs", {"data": b"x"})), "contain", None)
archive("symlink-root", tar_of(("link", {"kind": "sym", "target": "/"}), ("link/" + o + "/through", {"data": b"x"})),
        "reject", "link/" + o + "/through")
archive("symlink-outside", tar_of(("out", {"kind": "sym", "target": outside}), ("out/through", {"data": b"x"})),
        "reject", "out/through")
archive("symlink-relative", tar_of(("up", {"kind": "sym", "target": "../../../../../../.." + outside}),
                                   ("up/through", {"data": b"x"})), "reject", "up/through")
archive("hardlink-host", tar_of(("victim", {"kind": "hard", "target": outside + "/victim"})), "reject", "victim")
archive("hardlink-dotdot", tar_of(("victim", {"kind": "hard", "target": "../../../../.." + outside + "/victim"})),
        "reject", "victim")
archive("hardlink-dir", tar_of(("d/", {"kind": "dir", "mode": 0o755}), ("h", {"kind": "hard", "target": "d"})),
        "reject", "h")
archive("hardlink-through-symlink", tar_of(("s", {"kind": "sym", "target": outside}),
                                           ("h", {"kind": "hard", "target": "s/victim"})), "reject", "h")
archive("whiteout-dotdot", tar_of(("dir/", {"kind": "dir", "mode": 0o755}), ("dir/.wh...", {"data": b""})),
        "reject", "dir/.wh...")
archive("whiteout-dot", tar_of(("dir/", {"kind": "dir", "mode": 0o755}), ("dir/.wh..", {"data": b""})),
        "reject", "dir/.wh..")
archive("device", tar_of(("dev/", {"kind": "dir", "mode": 0o755}), ("dev/evil", {"kind": "chr", "mode": 0o666})),
        "contain", None)
archive("file-replaces-dir", tar_of(("d/", {"kind": "dir", "mode": 0o755}), ("d/child", {"data": b"c"}),
                                    ("d", {"data": b"now a file"})), "contain", None)
archive("dir-replaces-file", tar_of(("f", {"data": b"a file"}), ("f/", {"kind": "dir", "mode": 0o755}),
                                    ("f/child", {"data": b"c"})), "contain", None)
full = tar_of(("big", {"data": b"y" * (1 << 20)}))
archive("truncated", full[: 512 + 4096], "reject", "big")


def _oversized():
    # A header claiming 8 GiB followed by a few bytes of data.
    ti = tarfile.TarInfo("huge")
    ti.size, ti.mode, ti.mtime = 8 << 30, 0o644, 1700000000
    return ti.tobuf(format=tarfile.PAX_FORMAT) + b"z" * 1024


archive("oversized", _oversized(), "reject", "huge")
archive("diffid-mismatch", tar_of(("x", {"data": b"x"})), "reject", None, diff_id="sha256:" + "0" * 64)
archive("blob-digest-mismatch", tar_of(("y", {"data": b"only in this case"})), "reject", None, corrupt_blob=True)
archive("overlay-xattrs", tar_of(("d/", {"kind": "dir", "mode": 0o755, "pax": {
    "SCHILY.xattr.trusted.overlay.redirect": "/etc", "SCHILY.xattr.user.overlay.opaque": "y"}})), "contain", None)

with open(os.path.join(out, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1)
print(len(cases))
