#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# hostile_layers.py OUTDIR OUTSIDE_DIR: writes OUTDIR/<case>.tar, one OCI image layout archive per hostile
# layer aimed at OUTSIDE_DIR (an absolute directory outside the store), and OUTDIR/cases.json.
#
# cases.json is a list of {"case", "expect", "entry", "match", "diff_ids", "env"}:
#   expect   "reject" (exit 1, one "Error: " line), "contain" (loads; whatever the entry tried stays inside
#            the layer) or "ok" (the control case);
#   entry    for "reject": the offending entry name, which the error must quote ("<entry>"); else null;
#   match    an extended regex the error must match as well, or null;
#   diff_ids the layer's real uncompressed digest and the one its config claims (equal unless the case is
#            about a wrong diff_id): for "reject" no layers/sha256/<hex> of either may be left behind;
#   env      variables to set for the load ({"CONTAINER_MAX_LAYER_SIZE": "16M"}), usually empty.
# Every case's layer is different, so a rejected one can never be confused with an earlier stored one.
import base64, bz2, gzip, hashlib, io, json, lzma, os, sys, tarfile

if len(sys.argv) != 3 or not sys.argv[2].startswith("/"):
    sys.exit("usage: hostile_layers.py OUTDIR /ABSOLUTE/OUTSIDE_DIR")
OUT, OUTSIDE = sys.argv[1], sys.argv[2].rstrip("/")
REL = OUTSIDE.lstrip("/")  # OUTSIDE_DIR as the layer sees an absolute name once its "/" is stripped
UP = "../" * 12  # more than enough to climb from any layer directory to "/"
MTIME = 1700000000
os.makedirs(OUT, exist_ok=True)
cases = []


def sha(b):
    return hashlib.sha256(b).hexdigest()


# Layer entries: (name, kind, extra) with kind file|dir|sym|hard|chr and extra the data, link target or
# keyword arguments. Built with tarfile in PAX format unless the case asks otherwise.
def F(name, data=b"", **kw):
    return (name, "file", dict(data=data, **kw))


def D(name, mode=0o755, **kw):
    return (name, "dir", dict(mode=mode, **kw))


def S(name, target):
    return (name, "sym", dict(target=target))


def H(name, target):
    return (name, "hard", dict(target=target))


def CHR(name, major, minor, mode=0o666):
    return (name, "chr", dict(major=major, minor=minor, mode=mode))


def layer(*entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, kind, kw in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.uid, ti.gid = MTIME, 0, 0
            ti.mode = kw.get("mode", 0o644)
            if "pax" in kw:
                ti.pax_headers = dict(kw["pax"])
            if kind == "file":
                data = kw["data"]
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
                continue
            ti.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                       "chr": tarfile.CHRTYPE}[kind]
            ti.mode = kw.get("mode", 0o777 if kind == "sym" else 0o755)
            ti.linkname = kw.get("target", "")
            if kind == "chr":
                ti.devmajor, ti.devminor = kw["major"], kw["minor"]
            tar.addfile(ti)
    return buf.getvalue()


def add(case, raw, expect, entry=None, match=None, diff_id=None, blob=None, corrupt_blob=False,
        blob_symlink=None, env=None):
    """Writes OUT/<case>.tar around the uncompressed layer `raw`.

    diff_id: the config's diff_id instead of the real one; blob: the layer blob bytes instead of gzip(raw);
    corrupt_blob: alter the blob after the manifest recorded its digest; blob_symlink: (target, digest,
    size): the layer blob in the archive is a symlink to `target` and the manifest claims digest/size.
    """
    assert expect in ("reject", "contain", "ok") and (entry is None or expect == "reject")
    real = "sha256:" + sha(raw)
    if blob is None:
        blob = gzip.compress(raw, mtime=0)
    ldigest, lsize = sha(blob), len(blob)
    if blob_symlink:
        ldigest, lsize = blob_symlink[1], blob_symlink[2]
    claimed = diff_id or real
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [claimed]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + sha(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + ldigest,
                    "size": lsize}]}).encode()
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + sha(manifest),
        "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": f"localhost/hostile-{case}:latest"}}]}).encode()
    if corrupt_blob:  # same length, different bytes: only the digest check can notice
        blob = blob[:len(blob) // 2] + bytes(b ^ 0xFF for b in blob[len(blob) // 2:])
    files = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index),
             ("blobs/sha256/" + sha(manifest), manifest), ("blobs/sha256/" + sha(config), config)]
    with tarfile.open(os.path.join(OUT, case + ".tar"), "w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, MTIME
            t.addfile(ti, io.BytesIO(data))
        ti = tarfile.TarInfo("blobs/sha256/" + ldigest)
        ti.mode, ti.mtime = 0o644, MTIME
        if blob_symlink:
            ti.type, ti.linkname = tarfile.SYMTYPE, blob_symlink[0]
            t.addfile(ti)
        else:
            ti.size = len(blob)
            t.addfile(ti, io.BytesIO(blob))
    cases.append({"case": case, "expect": expect, "entry": entry, "match": match,
                  "diff_ids": [real] + ([claimed] if claimed != real else []), "env": env or {}})


# --- the control: a layer with every ordinary kind of entry loads ---------------------------------------
add("ok", layer(D("etc/"), F("etc/hello", b"hi\n"), H("etc/hello2", "etc/hello"), S("bin", "/usr/bin"),
                F("abs-target", b"plain")), "ok")

# --- names that climb out ------------------------------------------------------------------------------
add("dotdot", layer(F("../escape", b"x")), "reject", "../escape", "path leaves the layer directory")
add("deep-dotdot", layer(D("a/"), F("a/../../escape", b"x")), "reject", "a/../../escape",
    "path leaves the layer directory")
add("dot-dotdot", layer(F("./../escape-dot", b"x")), "reject", "./../escape-dot")
# The ustar name is harmless; the PAX "path" record that readers use instead is not.
add("pax-path-dotdot", layer(F("innocent", b"x", pax={"path": "../pax-escape"})), "reject", "../pax-escape")
# A GNU long name (././@LongLink) hiding the ".." past the 100 bytes of the ustar field.
long_name = "g" * 120 + "/../../gnu-escape"
add("gnu-longname-dotdot", layer(F(long_name, b"x"), fmt=tarfile.GNU_FORMAT), "reject", long_name)
# An absolute name is made relative: it lands inside the layer, at the stripped path.
add("absolute", layer(F(OUTSIDE + "/abs", b"abs\n")), "contain")
# The layer root replaced by a symlink out.
add("root-symlink", layer(S(".", OUTSIDE)), "reject", ".", "layer root is not a directory")

# --- symlinks in the parent path ------------------------------------------------------------------------
add("symlink-root", layer(S("link", "/"), F("link/" + REL + "/through", b"x")), "reject",
    "link/" + REL + "/through", "is not a directory")
add("symlink-outside", layer(S("out", OUTSIDE), F("out/through", b"x")), "reject", "out/through",
    "is not a directory")
add("symlink-relative", layer(S("up", UP.rstrip("/") + OUTSIDE), F("up/through", b"x")), "reject", "up/through",
    "is not a directory")
# The symlink deeper down, with a directory to create below it (mkdir must not follow it either).
add("symlink-nested", layer(D("a/"), S("a/s", OUTSIDE), F("a/s/deep/through", b"x")), "reject",
    "a/s/deep/through", "is not a directory")
# Symlinks themselves may point anywhere: they are only followed inside the machine.
add("symlink-dangling-outside", layer(S("s", OUTSIDE + "/victim")), "contain")
# A file written where a symlink to a host file stands replaces the symlink, not the host file.
add("file-over-symlink", layer(S("v", OUTSIDE + "/victim"), F("v", b"pwned pwned\n")), "contain")
# A directory entry over a symlink to a host directory, then a file in it.
add("dir-over-symlink", layer(S("s", OUTSIDE), D("s/"), F("s/x", b"x")), "contain")
# A directory (with metadata still to apply at the end) replaced by a symlink out: its mode is not applied
# through the symlink.
add("symlink-replaces-dir", layer(D("x/", mode=0o700), S("x", OUTSIDE)), "contain")

# --- hard links ----------------------------------------------------------------------------------------
add("hardlink-host", layer(H("hl-host", OUTSIDE + "/victim")), "reject", "hl-host", "is not in the layer")
add("hardlink-dotdot", layer(H("hl-dotdot", UP.rstrip("/") + OUTSIDE + "/victim")), "reject", "hl-dotdot",
    "leaves the layer")
# An absolute target resolves inside the layer, where the same path exists: linked to the layer's copy.
add("hardlink-absolute-inside", layer(F(OUTSIDE + "/victim", b"layer copy\n"), H("hl-inside", OUTSIDE + "/victim")),
    "contain")
add("hardlink-dir", layer(D("d/"), H("hl-dir", "d")), "reject", "hl-dir", "hard link to a directory")
add("hardlink-root", layer(H("hl-root", ".")), "reject", "hl-root", "hard link to the layer root")
# A symlink planted in the layer, then a hard link whose target goes through it.
add("hardlink-through-symlink", layer(S("s", OUTSIDE), H("hl-through", "s/victim")), "reject", "hl-through",
    "is not in the layer")
# The same with the absolute spelling of the host path: the layer's own "<first component>" is the symlink.
add("hardlink-absolute-via-symlink", layer(S(REL.split("/")[0], "/" + REL.split("/")[0]),
                                           H("hl-abs-via", OUTSIDE + "/victim")), "reject", "hl-abs-via")
# A hard link whose own name goes through the planted symlink.
add("hardlink-name-through-symlink", layer(S("s", OUTSIDE), F("a", b"a"), H("s/planted", "a")), "reject",
    "s/planted", "is not a directory")
# A hard link to a symlink that points at a host file links the symlink, never the host file.
add("hardlink-to-symlink", layer(S("s", OUTSIDE + "/victim"), H("hl-sym", "s")), "contain")

# --- whiteouts -----------------------------------------------------------------------------------------
add("whiteout-dotdot", layer(D("dir/"), F("dir/.wh...")), "reject", "dir/.wh...", "invalid whiteout")
add("whiteout-dot", layer(D("dir/"), F("dir/.wh..")), "reject", "dir/.wh..", "invalid whiteout")
add("whiteout-empty", layer(D("dir/"), F("dir/.wh.")), "reject", "dir/.wh.", "invalid whiteout")
add("whiteout-through-symlink", layer(S("s", OUTSIDE), F("s/.wh.victim")), "reject", "s/.wh.victim",
    "is not a directory")
add("opaque-through-symlink", layer(S("s", OUTSIDE), F("s/.wh..wh..opq")), "reject", "s/.wh..wh..opq",
    "is not a directory")
# Whiting out a symlink to a host directory removes the symlink only.
add("whiteout-symlink", layer(S("s", OUTSIDE), F(".wh.s")), "contain")

# --- special files and replacements --------------------------------------------------------------------
add("device", layer(D("dev/"), CHR("dev/evil", 1, 3)), "contain")
add("file-replaces-dir", layer(D("d/"), F("d/child", b"c"), F("d", b"now a file\n")), "contain")
add("dir-replaces-file", layer(F("f", b"a file"), D("f/"), F("f/child", b"c\n")), "contain")
# The same one level deeper: the replaced directory had a subdirectory whose metadata was still pending.
add("file-replaces-dir-tree", layer(D("d/"), D("d/sub/", mode=0o700), F("d/sub/child", b"c"),
                                    F("d", b"file over a tree\n")), "contain")
add("symlink-replaces-dir-tree", layer(D("a/"), D("a/b/", mode=0o700), S("a", OUTSIDE)), "contain")

# --- damaged streams -----------------------------------------------------------------------------------
full = layer(F("big", b"y" * (1 << 20)))
add("truncated", full[:512 + 4096], "reject", "big")  # the header and 4 KiB of the 1 MiB it announces


def oversized():
    ti = tarfile.TarInfo("huge")  # 8 GiB claimed (a PAX size record), 1 KiB present
    ti.size, ti.mode, ti.mtime = 8 << 30, 0o644, MTIME
    return ti.tobuf(format=tarfile.PAX_FORMAT) + b"z" * 1024


add("oversized", oversized(), "reject", "huge")
add("diffid-mismatch", layer(F("x", b"diff id")), "reject", None, "the image config says sha256:0{64}",
    diff_id="sha256:" + "0" * 64)
add("blob-digest-mismatch", layer(F("y", b"only in this case")), "reject", None, "does not match",
    corrupt_blob=True)
# The archive's layer "blob" is a symlink to the host file, and the manifest claims exactly that file's
# digest and size: following it would copy a host file into the store.
victim_path = os.path.join(OUTSIDE, "victim")
victim = open(victim_path, "rb").read() if os.path.exists(victim_path) else b"do not touch\n"
add("archive-blob-symlink", layer(F("never", b"used")), "reject",
    blob_symlink=(OUTSIDE + "/victim", sha(victim), len(victim)))

# --- compression: gzip and zstd, decoded in-process; anything else is refused, never handed to a program ---
# (the test puts fake xz, lzop, … first in PATH that record being run). libarchive has no lzo library on
# Debian: it used to run `lzop -d` for this blob, which is the magic followed by junk.
add("codec-xz", layer(F("x", b"xz")), "reject", None, "compressed with xz, which the store does not read",
    blob=lzma.compress(layer(F("x", b"xz")), format=lzma.FORMAT_XZ))
add("codec-bzip2", layer(F("b", b"bzip2")), "reject", None, "compressed with bzip2, which the store does not read",
    blob=bz2.compress(layer(F("b", b"bzip2"))))
add("codec-lzop", layer(F("l", b"lzop")), "reject", None, "compressed with lzop, which the store does not read",
    blob=b"\x89LZO\x00\r\n\x1a\n" + bytes(range(256)) * 4)

# --- decompressed size: a gzip bomb (64 MiB of zeros in 64 KiB) over a low limit; a smaller one under a
# raised limit loads ---------------------------------------------------------------------------------------
add("gzip-bomb", layer(F("zeros", bytes(64 << 20))), "reject", None,
    r"layer sha256:[0-9a-f]{64}: expands beyond 16 MiB \(set CONTAINER_MAX_LAYER_SIZE to raise the limit\)$",
    env={"CONTAINER_MAX_LAYER_SIZE": "16M"})
add("gzip-under-limit", layer(F("zeros", bytes(24 << 20))), "contain", env={"CONTAINER_MAX_LAYER_SIZE": "1G"})

# --- overlay's own attributes from PAX headers are dropped, others kept ----------------------------------
add("overlay-xattrs", layer(
    D("d/", pax={"SCHILY.xattr.trusted.overlay.redirect": "/etc", "SCHILY.xattr.user.overlay.opaque": "y",
                 "SCHILY.xattr.user.keep": "1"}),
    F("f", b"f", pax={"LIBARCHIVE.xattr.trusted.overlay.origin": base64.b64encode(b"/etc").decode(),
                      "SCHILY.xattr.user.overlay.redirect": "/etc", "SCHILY.xattr.user.keep": "1"})), "contain")

ids = [c["diff_ids"][0] for c in cases]
assert len(set(ids)) == len(ids), "two cases share a layer"
with open(os.path.join(OUT, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1)
print(len(cases))
