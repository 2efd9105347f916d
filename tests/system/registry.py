#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Test helpers around a real registry (Debian's docker-registry, the CNCF distribution registry).
# Run with /usr/bin/python3: token-server needs the `cryptography` module; everything else is stdlib.
#
#   push SRC REGISTRY REPO:TAG [--docker|--zstd|--uncompressed] [--ca CA.pem] [--user U:P] [--print-digest]
#       SRC: an OCI image layout directory or an oci-archive .tar (its sole image, or --ref NAME for one
#       of several). With no format option the manifest bytes are pushed unchanged, so the digest is the
#       layout's own. Prints the manifest digest with --print-digest.
#   push-index REGISTRY REPO:TAG PLATFORM=SRC... [--docker] [--ca CA.pem] [--user U:P]
#       PLATFORM is os/arch[/variant]. Prints "index sha256:…" then "PLATFORM sha256:…" per image.
#   token-server --port P --key KEY.pem --cert CERT.pem --issuer ISS --service SVC --htpasswd-user U:P
#                [--anonymous-pull]
#   proxy --listen PORT --target HOST:PORT --rate BYTES_PER_SEC --count-file FILE [--bind ADDR]
#         [--up-rate BYTES_PER_SEC]
#       --up-rate throttles client->server bytes too (uploads), which are otherwise forwarded at once.
#       FILE holds the total of server->client bytes forwarded (all connections, headers included).
#       FILE.fail, when present, holds fault rules, one per line: "N STATUS TEXT" answers the next N
#       connections whose request line contains TEXT with HTTP STATUS (then reads what the client still
#       sends until it closes, and closes) instead of
#       forwarding them; a 3xx STATUS redirects to the same path at the target. Every request line is logged ("proxy: request GET /v2/…"), and every injected
#       answer ("proxy: injected 503 for GET /v2/…"); the rules left are written back to FILE.fail.
#       SIGUSR1 cuts every open connection at once. Killing the target does not cut a transfer at once:
#       the kernel still delivers what the target had written into its socket buffer (up to tcp_wmem's
#       maximum, 4 MiB by default), so a layer that must be cut short has to be well beyond that.
#   corrupt STORAGE_ROOT DIGEST
#   big-layer-image SRC OUT SIZE_MB
import argparse, base64, gzip, hashlib, http.client, http.server, json, os, re, shutil, socket, ssl
import signal, subprocess, sys, tarfile, tempfile, threading, time, urllib.parse, uuid

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
OCI_LAYER_ZSTD = OCI_LAYER + "+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"


def die(msg):
    sys.exit(f"registry.py: {msg}")


def log(msg):
    print(f"registry.py: {msg}", file=sys.stderr, flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def sha256_bytes(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


# ---------------------------------------------------------------------------------------------------
# OCI layouts


class Layout:
    """An OCI image layout directory (an oci-archive is unpacked into a temporary one)."""

    def __init__(self, src):
        self.tmp = None
        if os.path.isfile(src):
            self.tmp = tempfile.mkdtemp(prefix="registry-py.")
            with tarfile.open(src) as t:
                t.extractall(self.tmp)
            src = self.tmp
        if not os.path.isfile(os.path.join(src, "index.json")):
            die(f"{src}: not an OCI image layout (no index.json)")
        self.dir = src
        with open(os.path.join(src, "index.json"), "rb") as f:
            self.index = json.load(f)

    def close(self):
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def blob_path(self, digest):
        algo, hexd = digest.split(":", 1)
        return os.path.join(self.dir, "blobs", algo, hexd)

    def blob(self, digest):
        with open(self.blob_path(digest), "rb") as f:
            return f.read()

    def manifest_desc(self, ref=None):
        ms = self.index.get("manifests", [])
        if ref is not None:
            ms = [m for m in ms if m.get("annotations", {}).get("org.opencontainers.image.ref.name") in
                  (ref, ref.rsplit(":", 1)[-1])]
        if not ms:
            die(f"{self.dir}: no manifest" + (f" named {ref}" if ref else ""))
        if len(ms) > 1:
            die(f"{self.dir}: {len(ms)} manifests, pick one with --ref")
        if ms[0].get("mediaType", OCI_MANIFEST) not in (OCI_MANIFEST, DOCKER_MANIFEST):
            die(f"{self.dir}: not an image manifest: {ms[0].get('mediaType')}")
        return ms[0]


def layer_compression(media_type):
    if media_type.endswith("+gzip") or media_type.endswith(".tar.gzip"):
        return "gzip"
    if media_type.endswith("+zstd"):
        return "zstd"
    if media_type.endswith(".tar"):
        return "none"
    die(f"unknown layer media type {media_type}")


def decompress_to(path, comp, out):
    if comp == "gzip":
        with gzip.open(path, "rb") as i, open(out, "wb") as o:
            shutil.copyfileobj(i, o, 1 << 20)
    elif comp == "zstd":
        subprocess.run(["zstd", "-q", "-d", "-f", "-o", out, path], check=True)
    else:
        shutil.copyfile(path, out)


def compress_to(path, comp, out):
    if comp == "gzip":
        with open(path, "rb") as i, open(out, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as o:
                shutil.copyfileobj(i, o, 1 << 20)
    elif comp == "zstd":
        subprocess.run(["zstd", "-q", "-3", "-f", "-o", out, path], check=True)
    else:
        shutil.copyfile(path, out)


# ---------------------------------------------------------------------------------------------------
# Registry HTTP client with Basic and Bearer auth


def parse_challenge(header):
    """'Bearer realm="x",service="y",scope="a,b"' -> ('bearer', {...})."""
    m = re.match(r"\s*(\w+)\s*(.*)", header or "")
    if not m:
        return None, {}
    params = dict(re.findall(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"', m.group(2)))
    return m.group(1).lower(), params


class Client:
    def __init__(self, registry, ca=None, user=None):
        u = urllib.parse.urlsplit(registry if "://" in registry else "https://" + registry)
        self.scheme, self.host, self.port = u.scheme, u.hostname, u.port or (443 if u.scheme == "https" else 80)
        self.ca = ca
        if user is not None and ":" not in user:
            die("--user must be USER:PASSWORD")
        self.user = user
        self.auth = None  # the Authorization header to send, once learned
        self.ctx = None
        if self.scheme == "https":
            self.ctx = ssl.create_default_context(cafile=ca) if ca else ssl._create_unverified_context()

    def _conn(self, scheme, host, port):
        if scheme == "https":
            ctx = self.ctx or ssl.create_default_context(cafile=self.ca)
            return http.client.HTTPSConnection(host, port, context=ctx, timeout=120)
        return http.client.HTTPConnection(host, port, timeout=120)

    def _basic(self):
        return "Basic " + base64.b64encode(self.user.encode()).decode()

    def _raw(self, method, url, body=None, headers=None):
        """One request to an absolute or registry-relative URL; returns (status, headers, body bytes)."""
        if url.startswith("/"):
            scheme, host, port, path = self.scheme, self.host, self.port, url
        else:
            u = urllib.parse.urlsplit(url)
            scheme, host = u.scheme, u.hostname
            port = u.port or (443 if scheme == "https" else 80)
            path = u.path + ("?" + u.query if u.query else "")
        c = self._conn(scheme, host, port)
        hdrs = dict(headers or {})
        if body is not None and "Content-Length" not in hdrs:
            if isinstance(body, bytes):
                hdrs["Content-Length"] = str(len(body))
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, r.headers, data

    def _token(self, params):
        q = {"service": params.get("service", "")}
        if params.get("scope"):
            q["scope"] = params["scope"]
        url = params["realm"] + ("&" if "?" in params["realm"] else "?") + urllib.parse.urlencode(q)
        hdrs = {"Authorization": self._basic()} if self.user else {}
        st, _, data = self._raw("GET", url, headers=hdrs)
        if st != 200:
            die(f"token server {params['realm']} answered {st}: {data[:200]!r}")
        j = json.loads(data)
        return j.get("token") or j.get("access_token")

    def request(self, method, url, body=None, headers=None, ok=(200,)):
        """A request with auth handled: on 401, answer the challenge once and retry."""
        hdrs = dict(headers or {})
        for attempt in range(2):
            if self.auth:
                hdrs["Authorization"] = self.auth
            if hasattr(body, "seek"):
                body.seek(0)
            st, rh, data = self._raw(method, url, body, hdrs)
            if st != 401 or attempt == 1:
                break
            kind, params = parse_challenge(rh.get("WWW-Authenticate"))
            if kind == "basic":
                if not self.user:
                    die(f"{method} {url}: registry wants basic auth, give --user")
                self.auth = self._basic()
            elif kind == "bearer":
                self.auth = "Bearer " + self._token(params)
            else:
                break
        if st not in ok:
            die(f"{method} {url}: HTTP {st}: {data[:300].decode(errors='replace')}")
        return st, rh, data

    def push_blob(self, repo, digest, path=None, data=None):
        st, _, _ = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", ok=(200, 404))
        if st == 200:
            return
        _, rh, _ = self.request("POST", f"/v2/{repo}/blobs/uploads/", ok=(202,))
        loc = rh.get("Location")
        if not loc:
            die("upload started without a Location")
        loc += ("&" if "?" in loc else "?") + "digest=" + urllib.parse.quote(digest)
        hdrs = {"Content-Type": "application/octet-stream"}
        if path is not None:
            hdrs["Content-Length"] = str(os.path.getsize(path))
            with open(path, "rb") as f:
                self.request("PUT", loc, body=f, headers=hdrs, ok=(201,))
        else:
            self.request("PUT", loc, body=data, headers=hdrs, ok=(201,))

    def push_manifest(self, repo, ref, raw, media_type):
        _, rh, _ = self.request("PUT", f"/v2/{repo}/manifests/{ref}", body=raw,
                                headers={"Content-Type": media_type}, ok=(201,))
        want = sha256_bytes(raw)
        got = rh.get("Docker-Content-Digest")
        if got and got != want:
            die(f"registry says manifest digest {got}, we computed {want}")
        return want


def split_ref(ref):
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag or not repo:
        die(f"reference must be REPO:TAG, got {ref!r}")
    return repo, tag


# ---------------------------------------------------------------------------------------------------
# push / push-index


def prepare_image(layout, desc, fmt, tmp, platform=None):
    """Returns (blobs [(digest, path-or-None, bytes-or-None)], manifest bytes, manifest media type)."""
    raw = layout.blob(desc["digest"])
    manifest = json.loads(raw)
    if fmt is None and platform is None:
        blobs = [(manifest["config"]["digest"], layout.blob_path(manifest["config"]["digest"]), None)]
        blobs += [(l["digest"], layout.blob_path(l["digest"]), None) for l in manifest["layers"]]
        return blobs, raw, manifest.get("mediaType", desc.get("mediaType", OCI_MANIFEST))

    docker = fmt == "docker"
    blobs = []
    layers = []
    for i, l in enumerate(manifest["layers"]):
        src = layout.blob_path(l["digest"])
        have = layer_compression(l["mediaType"])
        want = {"zstd": "zstd", "uncompressed": "none", "docker": "gzip"}.get(fmt, have)
        if want == have:
            path = src
        else:
            plain = os.path.join(tmp, f"layer{i}.tar")
            decompress_to(src, have, plain)
            if want == "none":
                path = plain
            else:
                path = os.path.join(tmp, f"layer{i}.{want}")
                compress_to(plain, want, path)
                os.unlink(plain)
        digest = sha256_file(path) if path != src else l["digest"]
        if docker:
            mt = DOCKER_LAYER_GZIP
        else:
            mt = {"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD, "none": OCI_LAYER}[want]
        nl = {"mediaType": mt, "digest": digest, "size": os.path.getsize(path)}
        if not docker and l.get("annotations"):
            nl["annotations"] = l["annotations"]
        layers.append(nl)
        blobs.append((digest, path, None))

    config_raw = layout.blob(manifest["config"]["digest"])
    if platform is not None:
        config = json.loads(config_raw)
        config["os"], config["architecture"] = platform["os"], platform["architecture"]
        if "variant" in platform:
            config["variant"] = platform["variant"]
        else:
            config.pop("variant", None)
        config_raw = json.dumps(config, separators=(",", ":")).encode()
    config_digest = sha256_bytes(config_raw)
    blobs.insert(0, (config_digest, None, config_raw))
    new = {"schemaVersion": 2,
           "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
           "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG, "digest": config_digest,
                      "size": len(config_raw)},
           "layers": layers}
    if not docker and manifest.get("annotations"):
        new["annotations"] = manifest["annotations"]
    return blobs, json.dumps(new, indent=2).encode(), new["mediaType"]


def push_image(client, repo, ref, blobs, raw, media_type):
    for digest, path, data in blobs:
        client.push_blob(repo, digest, path=path, data=data)
    return client.push_manifest(repo, ref, raw, media_type)


def cmd_push(a):
    fmts = [f for f in ("docker", "zstd", "uncompressed") if getattr(a, f)]
    if len(fmts) > 1:
        die("--docker, --zstd and --uncompressed exclude each other")
    repo, tag = split_ref(a.ref)
    layout = Layout(a.src)
    tmp = tempfile.mkdtemp(prefix="registry-py.")
    try:
        blobs, raw, mt = prepare_image(layout, layout.manifest_desc(a.image_ref), fmts[0] if fmts else None, tmp)
        client = Client(a.registry, a.ca, a.user)
        digest = push_image(client, repo, tag, blobs, raw, mt)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        layout.close()
    if a.print_digest:
        print(digest)


def parse_platform(s):
    parts = s.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        die(f"platform must be os/arch[/variant], got {s!r}")
    p = {"architecture": parts[1], "os": parts[0]}
    if len(parts) == 3:
        p["variant"] = parts[2]
    return p


def cmd_push_index(a):
    repo, tag = split_ref(a.ref)
    client = Client(a.registry, a.ca, a.user)
    entries, lines = [], []
    for spec in a.images:
        plat, sep, src = spec.partition("=")
        if not sep:
            die(f"expected PLATFORM=SRC, got {spec!r}")
        platform = parse_platform(plat)
        layout = Layout(src)
        tmp = tempfile.mkdtemp(prefix="registry-py.")
        try:
            blobs, raw, mt = prepare_image(layout, layout.manifest_desc(), "docker" if a.docker else "oci",
                                           tmp, platform)
            digest = push_image(client, repo, sha256_bytes(raw), blobs, raw, mt)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            layout.close()
        entries.append({"mediaType": mt, "digest": digest, "size": len(raw), "platform": platform})
        lines.append(f"{plat} {digest}")
    index = {"schemaVersion": 2, "mediaType": DOCKER_LIST if a.docker else OCI_INDEX, "manifests": entries}
    raw = json.dumps(index, indent=2).encode()
    idigest = client.push_manifest(repo, tag, raw, index["mediaType"])
    print(f"index {idigest}")
    for l in lines:
        print(l)


# ---------------------------------------------------------------------------------------------------
# token server


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def cmd_token_server(a):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    with open(a.key, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    with open(a.cert, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
    if ":" not in a.htpasswd_user:
        die("--htpasswd-user must be USER:PASSWORD")
    good_user, good_pass = a.htpasswd_user.split(":", 1)

    def make_token(sub, access):
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": x5c}
        claims = {"iss": a.issuer, "sub": sub, "aud": a.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(sig), now

    def grant(scopes, authed):
        access = []
        for scope in scopes:
            # repository:NAME:ACTIONS (NAME may hold ':' only for a port, which repos do not have).
            parts = scope.split(":")
            if len(parts) < 3:
                continue
            typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
            if authed:
                allowed = actions
            elif a.anonymous_pull and typ == "repository":
                allowed = [x for x in actions if x == "pull"]
            else:
                allowed = []
            access.append({"type": typ, "name": name, "actions": allowed})
        return access

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def _reply(self, status, obj, extra=None):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _serve(self, user, password, scopes, creds):
            authed = creds and user == good_user and password == good_pass
            if creds and not authed:
                status = 401
            else:
                status = 200
            print(f"token-server: {self.command} {self.path} creds={'yes' if creds else 'no'} "
                  f"user={user or '-'} status={status}", file=sys.stderr, flush=True)
            if status == 401:
                self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                            {"WWW-Authenticate": 'Basic realm="token"'})
                return
            token, now = make_token(user if authed else "", grant(scopes, authed))
            self._reply(200, {"token": token, "access_token": token, "expires_in": 300,
                              "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})

        def do_GET(self):
            u = urllib.parse.urlsplit(self.path)
            q = urllib.parse.parse_qs(u.query)
            if u.path != "/token":
                self._reply(404, {"error": "not found"})
                return
            h = self.headers.get("Authorization", "")
            user = password = None
            creds = h.lower().startswith("basic ")
            if creds:
                try:
                    user, _, password = base64.b64decode(h[6:].strip()).decode().partition(":")
                except Exception:
                    user, password = "", ""
            scopes = [s for v in q.get("scope", []) for s in v.split(" ") if s]
            self._serve(user, password, scopes, creds)

        def do_POST(self):  # OAuth2 password grant, which some clients use
            u = urllib.parse.urlsplit(self.path)
            n = int(self.headers.get("Content-Length", "0"))
            form = urllib.parse.parse_qs(self.rfile.read(n).decode())
            if u.path != "/token":
                self._reply(404, {"error": "not found"})
                return
            user = form.get("username", [None])[0]
            password = form.get("password", [None])[0]
            scopes = [s for v in form.get("scope", []) for s in v.split(" ") if s]
            self._serve(user, password, scopes, user is not None)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    print(f"token-server: listening on 127.0.0.1:{a.port}", file=sys.stderr, flush=True)
    srv.serve_forever()


# ---------------------------------------------------------------------------------------------------
# throttling proxy


def cmd_proxy(a):
    thost, _, tport = a.target.rpartition(":")
    lock = threading.Lock()
    state = {"total": 0}
    rate = float(a.rate)

    def write_count():
        tmp = a.count_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{state['total']}\n")
        os.replace(tmp, a.count_file)

    with lock:
        write_count()

    def close(s):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    # After an injected answer, reads what the client still sends (the rest of an upload) until it
    # closes, as a real server's lingering close does: closing a socket with unread bytes sends a
    # reset, and the client may then see the cut before the answer, which would make the answer's
    # effect (e.g. a 405 that says "no PATCH") depend on timing.
    def linger(s):
        try:
            s.shutdown(socket.SHUT_WR)
            s.settimeout(5)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and s.recv(65536):
                pass
        except OSError:
            pass
        close(s)

    up_rate = float(a.up_rate) if a.up_rate else 0.0

    def upstream(client, server):  # client -> server, at most --up-rate bytes per second when given
        start = time.monotonic()
        sent = 0
        chunk = max(1, min(65536, int(up_rate / 20))) if up_rate else 65536
        try:
            while True:
                d = client.recv(chunk)
                if not d:
                    break
                server.sendall(d)
                sent += len(d)
                if up_rate:
                    ahead = sent / up_rate - (time.monotonic() - start)
                    if ahead > 0:
                        time.sleep(ahead)
        except OSError:
            pass
        try:
            server.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def downstream(client, server):  # server -> client, at most `rate` bytes per second
        start = time.monotonic()
        sent = 0
        chunk = max(1, min(65536, int(rate / 20)))
        try:
            while True:
                d = server.recv(chunk)
                if not d:
                    break
                client.sendall(d)
                sent += len(d)
                with lock:
                    state["total"] += len(d)
                    write_count()
                ahead = sent / rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
        except OSError:
            pass
        with lock:
            write_count()
        close(client)
        close(server)

    active = set()

    def cut_all(signum, frame):  # SIGUSR1: cut every open connection at once, dropping what is in flight
        with lock:
            socks = [x for pair in active for x in pair]
        for x in socks:
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        log(f"proxy: cut {len(socks) // 2} connection(s)")

    signal.signal(signal.SIGUSR1, cut_all)

    fail_file = a.count_file + ".fail"

    def injected_status(request_line):  # consumes one matching fault rule, if any
        with lock:
            try:
                with open(fail_file) as f:
                    rules = [ln.split(None, 2) for ln in f.read().splitlines() if ln.strip()]
            except FileNotFoundError:
                return None
            for r in rules:
                if len(r) == 3 and int(r[0]) > 0 and r[2] in request_line:
                    r[0] = str(int(r[0]) - 1)
                    tmp = fail_file + ".tmp"
                    with open(tmp, "w") as f:
                        f.write("".join(" ".join(x) + "\n" for x in rules))
                    os.replace(tmp, fail_file)
                    return int(r[1])
        return None

    def read_head(client):  # the request's header block, as the client sent it
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            d = client.recv(4096)
            if not d:
                break
            head += d
            if not head[:1].isalpha():  # not HTTP (a TLS hello): forwarded untouched
                break
        return head

    def handle(client):
        head = read_head(client)
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        log(f"proxy: request {line}")
        status = injected_status(line)
        if status is not None:
            log(f"proxy: injected {status} for {line}")
            body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected by the test proxy"}]}'
            extra = ""
            if status in (301, 302, 303, 307, 308):  # a redirect straight to the target, as to a CDN
                path = line.split(" ")[1] if line.count(" ") >= 2 else "/"
                extra = f"Location: http://{a.target}{path}\r\n"
            try:
                client.sendall(f"HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\n{extra}"
                               f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            except OSError:
                pass
            linger(client)
            return
        try:
            # Small kernel buffers towards the target, so that little more than what the client got is
            # in flight: killing the target then really cuts the transfer short.
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            server.settimeout(10)
            server.connect((thost, int(tport)))
            server.settimeout(None)
        except OSError:
            close(client)
            return
        with lock:
            active.add((client, server))
        try:
            server.sendall(head)  # what read_head took off the client's stream
        except OSError:
            pass
        threading.Thread(target=upstream, args=(client, server), daemon=True).start()
        downstream(client, server)
        with lock:
            active.discard((client, server))

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.bind, a.listen))
    ls.listen(64)
    print(f"proxy: listening on {a.bind}:{a.listen}, to {a.target} at {a.rate} B/s", file=sys.stderr, flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


# ---------------------------------------------------------------------------------------------------
# corrupt / big-layer-image


def cmd_corrupt(a):
    algo, _, hexd = a.digest.partition(":")
    if algo != "sha256" or len(hexd) != 64:
        die(f"not a sha256 digest: {a.digest}")
    path = os.path.join(a.storage, "docker/registry/v2/blobs/sha256", hexd[:2], hexd, "data")
    size = os.path.getsize(path)
    if size == 0:
        die(f"{path} is empty")
    n = min(16, size)
    off = (size - n) // 2
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(n)
        f.seek(off)
        f.write(bytes(x ^ 0xFF for x in b))
    log(f"flipped {n} bytes at offset {off} of {path}")


class HashWriter:
    def __init__(self, f):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        return self.f.write(b)

    def flush(self):
        self.f.flush()


class RandomReader:
    def __init__(self, n):
        self.left = n

    def read(self, n=-1):
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return os.urandom(n)


def cmd_big_layer_image(a):
    size = int(float(a.size_mb) * 1024 * 1024)
    src = Layout(a.src)
    try:
        if os.path.exists(a.out):
            shutil.rmtree(a.out)
        shutil.copytree(src.dir, a.out)
        desc = src.manifest_desc()
    finally:
        src.close()
    out = Layout(a.out)
    manifest = json.loads(out.blob(desc["digest"]))
    config = json.loads(out.blob(manifest["config"]["digest"]))

    tmp = os.path.join(a.out, "blobs", "sha256", ".big-layer.tmp")
    with open(tmp, "wb") as f:
        comp = HashWriter(f)
        with gzip.GzipFile(fileobj=comp, mode="wb", compresslevel=1, mtime=0) as gz:
            plain = HashWriter(gz)
            with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as t:
                d = tarfile.TarInfo("big")
                d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 1700000000
                t.addfile(d)
                ti = tarfile.TarInfo("big/random.bin")
                ti.size, ti.mode, ti.mtime = size, 0o644, 1700000000
                t.addfile(ti, RandomReader(size))
    layer_digest = "sha256:" + comp.h.hexdigest()
    diff_id = "sha256:" + plain.h.hexdigest()
    os.replace(tmp, out.blob_path(layer_digest))

    config.setdefault("rootfs", {"type": "layers", "diff_ids": []})["diff_ids"].append(diff_id)
    config.setdefault("history", []).append({
        "created": "2023-11-14T22:13:20Z",
        "created_by": f"registry.py big-layer-image: {a.size_mb} MiB of random data in /big/random.bin"})
    config_raw = json.dumps(config, separators=(",", ":")).encode()
    config_digest = sha256_bytes(config_raw)
    with open(out.blob_path(config_digest), "wb") as f:
        f.write(config_raw)
    manifest["config"] = {"mediaType": manifest["config"].get("mediaType", OCI_CONFIG),
                          "digest": config_digest, "size": len(config_raw)}
    docker = manifest.get("mediaType") == DOCKER_MANIFEST
    manifest["layers"].append({"mediaType": DOCKER_LAYER_GZIP if docker else OCI_LAYER_GZIP,
                               "digest": layer_digest, "size": comp.n})
    raw = json.dumps(manifest, separators=(",", ":")).encode()
    mdigest = sha256_bytes(raw)
    with open(out.blob_path(mdigest), "wb") as f:
        f.write(raw)
    nd = dict(desc, digest=mdigest, size=len(raw))
    out.index["manifests"] = [nd]
    with open(os.path.join(a.out, "index.json"), "w") as f:
        json.dump(out.index, f)
    for root, dirs, files in os.walk(a.out):
        for n in dirs:
            os.chmod(os.path.join(root, n), 0o755)
        for n in files:
            os.chmod(os.path.join(root, n), 0o644)
    print(f"manifest {mdigest}\nlayer {layer_digest} {comp.n}\ndiff_id {diff_id}")


# ---------------------------------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(prog="registry.py")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("push")
    s.add_argument("src")
    s.add_argument("registry")
    s.add_argument("ref")
    s.add_argument("--docker", action="store_true")
    s.add_argument("--zstd", action="store_true")
    s.add_argument("--uncompressed", action="store_true")
    s.add_argument("--ca")
    s.add_argument("--user")
    s.add_argument("--ref", dest="image_ref", help="which image of a layout with several (its ref name)")
    s.add_argument("--print-digest", action="store_true")
    s.set_defaults(fn=cmd_push)

    s = sub.add_parser("push-index")
    s.add_argument("registry")
    s.add_argument("ref")
    s.add_argument("images", nargs="+", metavar="PLATFORM=SRC")
    s.add_argument("--docker", action="store_true", help="a Docker manifest list of Docker manifests")
    s.add_argument("--ca")
    s.add_argument("--user")
    s.set_defaults(fn=cmd_push_index)

    s = sub.add_parser("token-server")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--cert", required=True)
    s.add_argument("--issuer", required=True)
    s.add_argument("--service", required=True)
    s.add_argument("--htpasswd-user", required=True)
    s.add_argument("--anonymous-pull", action="store_true")
    s.set_defaults(fn=cmd_token_server)

    s = sub.add_parser("proxy")
    s.add_argument("--listen", type=int, required=True)
    s.add_argument("--target", required=True)
    s.add_argument("--rate", type=int, required=True)
    s.add_argument("--count-file", required=True)
    s.add_argument("--up-rate", type=int, default=0)
    s.add_argument("--bind", default="127.0.0.1")
    s.set_defaults(fn=cmd_proxy)

    s = sub.add_parser("corrupt")
    s.add_argument("storage")
    s.add_argument("digest")
    s.set_defaults(fn=cmd_corrupt)

    s = sub.add_parser("big-layer-image")
    s.add_argument("src")
    s.add_argument("out")
    s.add_argument("size_mb")
    s.set_defaults(fn=cmd_big_layer_image)

    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
