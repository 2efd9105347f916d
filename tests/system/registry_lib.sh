# SPDX-License-Identifier: MIT
# A real registry for the system tests (Debian's docker-registry, the CNCF distribution registry 2.8).
# Source after lib.sh. Call these functions directly, never in $(…): they start background processes and
# set variables in the calling shell.
#
#   registry_start NAME MODE   MODE: http | tls | htpasswd (TLS + basic auth) | token (HTTP + bearer tokens
#                              from registry.py token-server) | token-anon (token, anonymous pull allowed)
#       Sets and exports REG_NAME REG_URL REG_HOST REG_PID REG_DIR REG_STORAGE, for tls/htpasswd REG_CA
#       (the CA's PEM, readable by the test user) and REG_CERT_DIR (a directory holding only ca.crt, for
#       `skopeo --cert-dir`), for htpasswd/token REG_USER REG_PASS, for token REG_TOKEN_URL REG_TOKEN_LOG
#       REG_TOKEN_PID. The same variables are saved in $T/reg-NAME/env: `registry_env NAME` loads them
#       again when a test runs several registries.
#   registry_kill NAME         SIGKILL the registry (not its token server) and wait until it is gone.
#   registry_restart NAME      start it again: same config, port and storage; waits until it answers.
#   registry_stop NAME         kill registry and token server (registered with on_exit by registry_start).
#   registry_blob_path NAME DIGEST   the file holding a blob in the registry's storage.
#   registry_py ARGS...        /usr/bin/python3 registry.py ARGS… (push, push-index, corrupt, …) in the
#                              foreground; for the proxy use proxy_start (a `registry_py … &` would give
#                              the pid of a subshell, not of python).
#   proxy_start HOST:PORT RATE [ADDR]  start registry.py proxy on ADDR (default 127.0.0.1) towards HOST:PORT
#                              at RATE bytes/s; sets and exports PROXY_PORT PROXY_HOST (ADDR:PORT) PROXY_URL (http://…) PROXY_PID and
#                              PROXY_COUNT (the count file: total server->client bytes, headers included).
#                              `kill -USR1 $PROXY_PID` cuts every open connection at once. Stopped on exit.
#                              With PROXY_UP_RATE set, client->server bytes (uploads) go at most that fast.
#   free_port                  prints a free loopback TCP port.

REGISTRY_PY=$SRC/tests/system/registry.py
REG_PYTHON=/usr/bin/python3

registry_py() { "$REG_PYTHON" "$REGISTRY_PY" "$@"; }

# busybox_registry: a plain HTTP registry holding the busybox fixture ($T/bb, from busybox_images) as
# bb:1.0; sets PULLED to its reference. Call directly (it starts the registry).
busybox_registry() {
    registry_start plain http
    registry_py push "$T/bb/layout" "$REG_URL" bb:1.0 >/dev/null
    PULLED=$REG_HOST/bb:1.0
}

free_port() {
    "$REG_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The test's CA and a server certificate for 127.0.0.1 and localhost signed by it (made once per test).
_registry_ca() {
    local d=$T/reg-ca
    [[ -f $d/server.pem ]] && return 0
    mkdir -p "$d/certs.d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=container test CA" \
        -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null || fail "openssl: CA"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null || fail "openssl: server request"
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
        "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$d/server.ext"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
        -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null || fail "openssl: server certificate"
    cp "$d/ca.pem" "$d/certs.d/ca.crt"
    chmod 755 "$d" "$d/certs.d"
    chmod 644 "$d/ca.pem" "$d/certs.d/ca.crt" "$d/server.pem"
    chmod 600 "$d/ca.key" "$d/server.key"
}

# Waits until URL answers /v2/ with 200 or 401 (curl args after the URL, e.g. --cacert).
_registry_wait() {
    local url=$1 what=$2 i code
    shift 2
    for ((i = 0; i < 200; i++)); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" "$url" 2>/dev/null) || true
        [[ $code == 200 || $code == 401 ]] && return 0
        sleep 0.05
    done
    fail "$what did not answer at $url (last status ${code:-none})"
}

_registry_launch() {
    local dir=$1
    docker-registry serve "$dir/config.yml" >>"$dir/log" 2>&1 &
    echo $! >"$dir/pid"
}

registry_env() {
    local f=$T/reg-$1/env
    [[ -f $f ]] || fail "no registry $1"
    # shellcheck disable=SC1090
    source "$f"
    REG_PID=$(cat "$T/reg-$1/pid")
    export REG_PID
}

registry_start() {
    local name=$1 mode=$2
    local dir=$T/reg-$name
    [[ ! -e $dir/config.yml ]] || fail "registry $name already started"
    case $mode in http | tls | htpasswd | token | token-anon) ;; *) fail "registry_start: unknown mode $mode" ;; esac
    mkdir -p "$dir/storage"
    chmod 755 "$dir"
    local port scheme=http auth="" tls="" curlargs=() token_port=""
    port=$(free_port)
    {
        echo "REG_NAME=$name"
        echo "REG_DIR=$dir"
        echo "REG_STORAGE=$dir/storage"
        echo "REG_HOST=127.0.0.1:$port"
        echo "REG_CA="
        echo "REG_CERT_DIR="
        echo "REG_USER="
        echo "REG_PASS="
        echo "REG_TOKEN_URL="
        echo "REG_TOKEN_LOG="
        echo "REG_TOKEN_PID="
    } >"$dir/env"

    if [[ $mode == tls || $mode == htpasswd ]]; then
        _registry_ca
        scheme=https
        tls="  tls:
    certificate: $T/reg-ca/server.pem
    key: $T/reg-ca/server.key"
        curlargs=(--cacert "$T/reg-ca/ca.pem")
        echo "REG_CA=$T/reg-ca/ca.pem" >>"$dir/env"
        echo "REG_CERT_DIR=$T/reg-ca/certs.d" >>"$dir/env"
    fi
    if [[ $mode != http && $mode != tls ]]; then
        echo "REG_USER=tester" >>"$dir/env"
        echo "REG_PASS=tester-pass-$name" >>"$dir/env"
    fi
    if [[ $mode == htpasswd ]]; then
        htpasswd -Bbn tester "tester-pass-$name" >"$dir/htpasswd" || fail "htpasswd"
        auth="auth:
  htpasswd:
    realm: test-registry
    path: $dir/htpasswd"
    fi
    if [[ $mode == token || $mode == token-anon ]]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=test token signer" \
            -keyout "$dir/token.key" -out "$dir/token.pem" 2>/dev/null || fail "openssl: token key"
        token_port=$(free_port)
        local anon=()
        [[ $mode == token-anon ]] && anon=(--anonymous-pull)
        "$REG_PYTHON" "$REGISTRY_PY" token-server --port "$token_port" --key "$dir/token.key" \
            --cert "$dir/token.pem" --issuer test-issuer --service test-registry \
            --htpasswd-user "tester:tester-pass-$name" "${anon[@]}" 2>"$dir/token.log" &
        echo $! >"$dir/token.pid"
        {
            echo "REG_TOKEN_URL=http://127.0.0.1:$token_port/token"
            echo "REG_TOKEN_LOG=$dir/token.log"
            echo "REG_TOKEN_PID=$!"
        } >>"$dir/env"
        auth="auth:
  token:
    realm: http://127.0.0.1:$token_port/token
    service: test-registry
    issuer: test-issuer
    rootcertbundle: $dir/token.pem"
        local i
        for ((i = 0; i < 100; i++)); do
            grep -q listening "$dir/token.log" 2>/dev/null && break
            kill -0 "$(cat "$dir/token.pid")" 2>/dev/null || fail "token server died: $(cat "$dir/token.log")"
            sleep 0.05
        done
        grep -q listening "$dir/token.log" || fail "token server did not start"
    fi
    echo "REG_URL=$scheme://127.0.0.1:$port" >>"$dir/env"
    sed -i 's/^/export /' "$dir/env"

    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  fields:
    registry: $name
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: test-secret-$name
$tls
$auth
EOF
    : >"$dir/curlargs"
    ((${#curlargs[@]} == 0)) || printf '%s\n' "${curlargs[@]}" >"$dir/curlargs"
    # Cleanup before the temp dir goes (on_exit runs in reverse order of registration).
    on_exit "registry_stop $name"
    _registry_launch "$dir"
    _registry_wait "$scheme://127.0.0.1:$port/v2/" "registry $name" "${curlargs[@]}"
    registry_env "$name"
}

_registry_wait_gone() {
    local pid=$1 i
    # Our own child: reap it. Otherwise poll until it is gone or a zombie.
    wait "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && return 0
        sleep 0.05
    done
    fail "process $pid did not go away"
}

registry_kill() {
    local dir=$T/reg-$1 pid
    [[ -f $dir/pid ]] || fail "no registry $1"
    pid=$(cat "$dir/pid")
    kill -KILL "$pid" 2>/dev/null || true
    _registry_wait_gone "$pid"
}

registry_restart() {
    local dir=$T/reg-$1 pid url
    [[ -f $dir/config.yml ]] || fail "no registry $1"
    pid=$(cat "$dir/pid")
    if kill -0 "$pid" 2>/dev/null; then registry_kill "$1"; fi
    url=$(sed -n 's/^export REG_URL=//p' "$dir/env")
    local curlargs=()
    mapfile -t curlargs <"$dir/curlargs"
    _registry_launch "$dir"
    _registry_wait "$url/v2/" "registry $1" "${curlargs[@]}"
    registry_env "$1"
}

registry_stop() {
    local dir=$T/reg-$1 f pid
    for f in pid token.pid; do
        [[ -f $dir/$f ]] || continue
        pid=$(cat "$dir/$f")
        kill -KILL "$pid" 2>/dev/null || true
        _registry_wait_gone "$pid" 2>/dev/null || true
    done
}

registry_blob_path() {
    local hex=${2#sha256:}
    [[ ${#hex} == 64 ]] || fail "registry_blob_path: not a sha256 digest: $2"
    echo "$T/reg-$1/storage/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
}

proxy_start() {
    local target=$1 rate=$2 bind=${3:-127.0.0.1} i
    PROXY_PORT=$(free_port)
    PROXY_HOST=$bind:$PROXY_PORT
    PROXY_URL=http://$PROXY_HOST
    PROXY_COUNT=$T/proxy-$PROXY_PORT.count
    "$REG_PYTHON" "$REGISTRY_PY" proxy --listen "$PROXY_PORT" --target "$target" --rate "$rate" \
        --count-file "$PROXY_COUNT" --bind "$bind" --up-rate "${PROXY_UP_RATE:-0}" 2>"$T/proxy-$PROXY_PORT.log" &
    PROXY_PID=$!
    export PROXY_PORT PROXY_HOST PROXY_URL PROXY_PID PROXY_COUNT
    on_exit "kill -KILL $PROXY_PID 2>/dev/null; wait $PROXY_PID 2>/dev/null"
    for ((i = 0; i < 100; i++)); do
        grep -q listening "$T/proxy-$PROXY_PORT.log" 2>/dev/null && return 0
        kill -0 "$PROXY_PID" 2>/dev/null || fail "proxy died: $(cat "$T/proxy-$PROXY_PORT.log")"
        sleep 0.05
    done
    fail "proxy did not start"
}
