#!/bin/bash
# SPDX-License-Identifier: MIT
# `image pull`, `registry login/logout` and `machine create`'s pull against Debian's docker-registry on
# loopback: anonymous HTTP, TLS with the test's CA, basic auth, bearer tokens from the registry's token
# mode, an index with two platforms, OCI and Docker v2 manifests, gzip, zstd and plain layers, pull by
# digest; then the failures (unknown names, 401, a corrupted blob, a dead port), an interrupted
# download that the next pull resumes, 5xx retried and 4xx not, the progress display, "insecure"
# registries, and pulls beside other commands. As root and as the unprivileged test user.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry_lib.sh"

busybox_images busybox-fixture:1.0
BB=$T/bb
chmod 777 "$T"
want_manifest=$(cat "$BB/manifest-digest")
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# Each mode gets its own config and runtime directories, so no real file of root or the user is touched.
mkdir -p "$T/cfg-root" "$T/run-root" "$T/cfg-user" "$T/run-user"
chown "$TEST_USER" "$T/cfg-user" "$T/run-user" 2>/dev/null || true
chmod 700 "$T"/run-*
runner() { # runner MODE: the command prefix that runs the CLI as that mode, with its own config dirs
    if [[ $1 == root ]]; then
        echo "env CONTAINER_DATA_DIR=$T/data XDG_CONFIG_HOME=$T/cfg-root XDG_RUNTIME_DIR=$T/run-root"
    else
        echo "run_as_user env XDG_CONFIG_HOME=$T/cfg-user XDG_RUNTIME_DIR=$T/run-user"
    fi
}
data_of() { [[ $1 == root ]] && echo "$T/data" || echo "$T/udata"; }
# The image names the store holds for a mode, one per line.
names() { $(runner "$1") "$C" image ls -q; }
login_with() { # login_with PASSWORD CMD...: CMD reads the password on stdin
    local pass=$1
    shift
    echo "$pass" | "$@"
}

# push_big REPO MB: the busybox image plus a layer of MB MiB of random data (so it shares no layer with
# anything stored), pushed to $REG_URL as REPO:1.0; sets BIG_LAYER (its digest) and BIG_SIZE (bytes).
push_big() {
    registry_py big-layer-image "$BB/layout" "$T/layout-$1" "$2" >"$T/big-$1"
    BIG_LAYER=$(awk '$1 == "layer" {print $2}' "$T/big-$1")
    BIG_SIZE=$(awk '$1 == "layer" {print $3}' "$T/big-$1")
    registry_py push "$T/layout-$1" "$REG_URL" "$1:1.0" >/dev/null
}
# wait_partial FILE BYTES: until a download in progress has written more than BYTES (10 s at most).
wait_partial() {
    for _ in $(seq 200); do [[ $(stat -c %s "$1" 2>/dev/null || echo 0) -gt $2 ]] && return 0; sleep 0.05; done
}

registry_start plain http
PLAIN=$REG_HOST
registry_py push "$BB/layout" "$REG_URL" bb:1.0 >/dev/null
registry_py push "$BB/layout" "$REG_URL" bb:docker --docker >/dev/null
registry_py push "$BB/layout" "$REG_URL" bb:zstd --zstd >/dev/null
registry_py push "$BB/layout" "$REG_URL" bb:plain --uncompressed >/dev/null
registry_py push-index "$REG_URL" multi:1.0 linux/amd64="$BB/layout" linux/arm64/v8="$BB/layout" >"$T/index"
idx_amd64=$(awk '$1 == "linux/amd64" {print $2}' "$T/index")
idx_arm64=$(awk '$1 == "linux/arm64/v8" {print $2}' "$T/index")
[[ -n $idx_amd64 && -n $idx_arm64 && $idx_amd64 != "$idx_arm64" ]] || fail "push-index output: $(cat "$T/index")"
host_arch=$(uname -m | sed 's/x86_64/amd64/; s/aarch64/arm64/')

formats() {
    local mode=$1 run
    run=$(runner "$mode")
    note "anonymous HTTP pulls ($mode)"
    # OCI manifest, gzip layer: the digest is the one umoci wrote; stdout is only the name (not a terminal).
    $run "$C" image pull --progress plain "$PLAIN/bb:1.0" >"$T/out" 2>"$T/err" || fail "pull: $(cat "$T/err")"
    [[ $(cat "$T/out") == "$PLAIN/bb:1.0" ]] || fail "pull output: $(cat "$T/out")"
    grep -q ': downloading ' "$T/err" && grep -q ': done$' "$T/err" || fail "--progress plain printed no layer states: $(cat "$T/err")"
    grep -q '^total ' "$T/err" || fail "--progress plain printed no total: $(cat "$T/err")"
    $run "$C" image inspect "$PLAIN/bb:1.0" >"$T/i"
    [[ $(field 'd[0]["descriptor"]["digest"]' <"$T/i") == "$want_manifest" ]] || fail "manifest digest differs"
    [[ $(field 'd[0]["layers"][0]["mediaType"]' <"$T/i") == application/vnd.oci.image.layer.v1.tar+gzip ]] ||
        fail "gzip layer media type"
    # Docker v2 schema 2, zstd and uncompressed layers.
    $run "$C" image pull "$PLAIN/bb:docker" >/dev/null 2>"$T/err" || fail "docker pull: $(cat "$T/err")"
    [[ ! -s $T/err ]] || fail "pull wrote to stderr off a terminal: $(cat "$T/err")"
    [[ $($run "$C" image inspect "$PLAIN/bb:docker" | field 'd[0]["descriptor"]["mediaType"]') == \
        application/vnd.docker.distribution.manifest.v2+json ]] || fail "docker manifest media type"
    $run "$C" image pull "$PLAIN/bb:zstd" >/dev/null || fail "zstd pull"
    [[ $($run "$C" image inspect "$PLAIN/bb:zstd" | field 'd[0]["layers"][0]["mediaType"]') == \
        application/vnd.oci.image.layer.v1.tar+zstd ]] || fail "zstd layer media type"
    $run "$C" image pull "$PLAIN/bb:plain" >/dev/null || fail "uncompressed pull"
    # All four share the uncompressed layer, so the store unpacked it once.
    local data
    data=$(data_of "$mode")
    [[ $(find "$data/layers/sha256" -mindepth 1 -maxdepth 1 | wc -l) == 1 ]] || fail "layers not shared"
    # By digest: stored under the digest reference, no tag.
    $run "$C" image pull "$PLAIN/bb@$want_manifest" >/dev/null || fail "pull by digest"
    names "$mode" | grep -qx "$PLAIN/bb@$want_manifest" || fail "digest name missing: $(names "$mode")"
    # The index: this host's platform by default, another on request, and a clear list when none fits.
    $run "$C" image pull "$PLAIN/multi:1.0" >/dev/null || fail "index pull"
    [[ $host_arch != amd64 ]] || [[ $($run "$C" image inspect "$PLAIN/multi:1.0" | field 'd[0]["descriptor"]["digest"]') == "$idx_amd64" ]] ||
        fail "index resolved to the wrong manifest"
    $run "$C" image pull --platform linux/arm64/v8 "$PLAIN/multi:1.0" >/dev/null || fail "index pull arm64"
    $run "$C" image inspect "$PLAIN/multi:1.0" >"$T/i"
    [[ $(field 'd[0]["descriptor"]["digest"]' <"$T/i") == "$idx_arm64" ]] || fail "--platform linux/arm64/v8 ignored"
    [[ $(field 'd[0]["platform"]["architecture"]' <"$T/i") == arm64 ]] || fail "arm64 config not stored"
    expect_error 'has no linux/s390x variant; it has: linux/amd64, linux/arm64/v8' \
        $run "$C" image pull --platform linux/s390x "$PLAIN/multi:1.0"
    # machine create pulls what the store lacks.
    expect_error "failed to create container machine: .*image $PLAIN/bb:2-$mode not found" \
        $run "$C" machine create --no-boot --name pulled "$PLAIN/bb:2-$mode"
    registry_py push "$BB/layout" "$REG_URL" "bb:2-$mode" >/dev/null
    $run "$C" machine create --no-boot --name pulled "$PLAIN/bb:2-$mode" >"$T/out" 2>"$T/err" ||
        fail "create with pull: $(cat "$T/err")"
    [[ $(cat "$T/out") == pulled ]] || fail "create output: $(cat "$T/out")"
    names "$mode" | grep -qx "$PLAIN/bb:2-$mode" || fail "create did not store the pulled image"
    $run "$C" machine rm pulled >/dev/null 2>&1
}

failures() {
    local mode=$1 run data
    run=$(runner "$mode")
    data=$(data_of "$mode")
    note "failures ($mode)"
    expect_error "image $PLAIN/nothere:1.0 not found.*MANIFEST_UNKNOWN" $run "$C" image pull "$PLAIN/nothere:1.0"
    expect_error "image $PLAIN/bb:nosuchtag not found" $run "$C" image pull "$PLAIN/bb:nosuchtag"
    expect_error "image $PLAIN/bb@sha256:0{64} not found" $run "$C" image pull "$PLAIN/bb@sha256:$(printf '0%.0s' {1..64})"
    local dead
    dead=$(free_port)
    expect_error "cannot reach registry 127.0.0.1:$dead" $run "$C" image pull "127.0.0.1:$dead/bb:1.0"
    expect_error 'invalid reference' $run "$C" image pull 'library/Upper'
    # Nothing half-done is left by any of these.
    [[ -z $(ls -A "$data/partial") && -z $(ls -A "$data/tmp") ]] || fail "failed pulls left files behind"
}

for mode in $(machine_modes); do
    formats "$mode"
    failures "$mode"
done

# A blob corrupted in the registry's storage: a digest error, nothing stored, nothing named.
note "corrupted blob"
registry_start bad http
push_big victim 1
bad_layer=$BIG_LAYER
registry_py corrupt "$REG_STORAGE" "$bad_layer"
run=$(runner root)
expect_error "blob $bad_layer .* does not match its digest" $run "$C" image pull "$REG_HOST/victim:1.0"
[[ ! -e $T/data/content/sha256/${bad_layer#sha256:} ]] || fail "the corrupt blob was stored"
[[ -z $(ls -A "$T/data/partial") ]] || fail "the corrupt download was kept: $(ls "$T/data/partial")"
! names root | grep -q victim || fail "an image was named after a failed pull"

# TLS with the test's CA, configured in registries.json; without it, a clear TLS error.
note "TLS"
registry_start secure tls
registry_py push "$BB/layout" "$REG_URL" --ca "$REG_CA" bb:1.0 >/dev/null
for mode in $(machine_modes); do
    run=$(runner "$mode")
    cfg=$T/cfg-$mode
    expect_error "cannot talk to registry $REG_HOST.*(certificate|SSL)" $run "$C" image pull "$REG_HOST/bb:1.0"
    mkdir -p "$cfg/container"
    printf '{"registries": {"%s": {"ca": "%s"}}}\n' "$REG_HOST" "$REG_CA" >"$cfg/container/registries.json"
    chmod -R a+rX "$cfg"
    $run "$C" image pull "$REG_HOST/bb:1.0" >/dev/null || fail "TLS pull with the CA ($mode)"
    $run "$C" image pull --scheme https "$REG_HOST/bb:1.0" >/dev/null || fail "--scheme https"
done

# Basic auth (htpasswd, over TLS): 401 without credentials, refused with the wrong password, then
# `registry login` stores working credentials and `logout` removes them.
note "basic auth"
registry_start basic htpasswd
registry_py push "$BB/layout" "$REG_URL" --ca "$REG_CA" --user "$REG_USER:$REG_PASS" bb:1.0 >/dev/null
for mode in $(machine_modes); do
    run=$(runner "$mode")
    cfg=$T/cfg-$mode
    printf '{"registries": {"%s": {"ca": "%s"}}}\n' "$REG_HOST" "$REG_CA" >"$cfg/container/registries.json"
    expect_error "registry $REG_HOST requires authentication: run 'container registry login $REG_HOST'" \
        $run "$C" image pull "$REG_HOST/bb:1.0"
    expect_error 'refused the credentials of user "tester"' \
        login_with wrong $run "$C" registry login -u tester --password-stdin "$REG_HOST"
    if grep -qs "$REG_HOST" "$T/run-$mode/containers/auth.json"; then fail "a failed login stored credentials"; fi
    login_with "$REG_PASS" $run "$C" registry login -u tester --password-stdin "$REG_HOST" >"$T/out" || fail "login"
    [[ $(cat "$T/out") == "Login Succeeded" ]] || fail "login output: $(cat "$T/out")"
    [[ $(stat -c %a "$T/run-$mode/containers/auth.json") == 600 ]] || fail "auth.json is not private"
    $run "$C" image pull "$REG_HOST/bb:1.0" >/dev/null || fail "pull after login ($mode)"
    $run "$C" registry logout "$REG_HOST" >/dev/null || fail "logout"
    expect_error "not logged in to $REG_HOST" $run "$C" registry logout "$REG_HOST"
    # Credentials from ~/.docker/config.json work too (base64 "auth").
    mkdir -p "$T/docker-$mode"
    printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$REG_HOST" "$(printf '%s:%s' "$REG_USER" "$REG_PASS" | base64 -w0)" \
        >"$T/docker-$mode/config.json"
    chmod -R a+rX "$T/docker-$mode"
    $run DOCKER_CONFIG="$T/docker-$mode" "$C" image pull "$REG_HOST/bb:1.0" >/dev/null ||
        fail "pull with ~/.docker/config.json credentials ($mode)"
done

# Bearer tokens from the registry's token mode: none without credentials, then login and pull.
note "bearer tokens"
registry_start tok token
registry_py push "$BB/layout" "$REG_URL" --user "$REG_USER:$REG_PASS" bb:1.0 >/dev/null
for mode in $(machine_modes); do
    run=$(runner "$mode")
    expect_error "registry $REG_HOST denied access to $REG_HOST/bb" $run "$C" image pull "$REG_HOST/bb:1.0"
    expect_error 'refused the credentials' login_with nope $run "$C" registry login -u tester --password-stdin "$REG_HOST"
    login_with "$REG_PASS" $run "$C" registry login -u tester --password-stdin "$REG_HOST" >/dev/null || fail "token login"
    before=$(grep -c 'creds=yes.*status=200' "$REG_TOKEN_LOG")
    $run "$C" image pull "$REG_HOST/bb:1.0" >/dev/null || fail "pull with a bearer token ($mode)"
    after=$(grep -c 'creds=yes.*status=200' "$REG_TOKEN_LOG")
    # One token serves the whole pull (manifest, config, layer): it is cached for its lifetime.
    ((after == before + 1)) || fail "expected one token request for the pull, saw $((after - before))"
    grep -q 'scope=repository%3Abb%3Apull\|scope=repository:bb:pull' "$REG_TOKEN_LOG" || fail "token request without the pull scope"
done

# The registry dies in the middle of a large layer: the pull fails, the partial download stays (and no
# blob or name), the registry comes back, and the next pull fetches only the rest.
note "interrupted pull resumes"
registry_env bad
push_big big 24
big_layer=$BIG_LAYER big_size=$BIG_SIZE
proxy_start "$REG_HOST" $((4 * 1024 * 1024))
run=$(runner root)
$run "$C" image pull "$PROXY_HOST/big:1.0" >"$T/out" 2>"$T/err" &
pull_pid=$!
part=$T/data/partial/${big_layer#sha256:}
wait_partial "$part" $((2 * 1024 * 1024))
registry_kill bad
wait $pull_pid && fail "the pull survived a dead registry"
grep -q "cannot reach registry $PROXY_HOST\|download blob $big_layer" "$T/err" || fail "interrupted pull's error: $(cat "$T/err")"
[[ $(wc -l <"$T/err") == 1 ]] || fail "more than one error line: $(cat "$T/err")"
kept=$(stat -c %s "$part" 2>/dev/null || echo 0)
((kept > 0 && kept < big_size)) || fail "partial download: $kept of $big_size bytes"
[[ ! -e $T/data/content/sha256/${big_layer#sha256:} ]] || fail "an incomplete blob entered the store"
! names root | grep -q "/big:1.0" || fail "an incomplete image was named"
registry_restart bad
served_before=$(cat "$PROXY_COUNT")
$run "$C" image pull "$PROXY_HOST/big:1.0" >/dev/null 2>"$T/err" || fail "resumed pull: $(cat "$T/err")"
served=$(($(cat "$PROXY_COUNT") - served_before))
# The second pull fetched the manifest, the config and the rest of the layer (plus headers), not the whole.
((served < big_size - kept + 65536)) || fail "resume fetched $served bytes; $kept of $big_size were already here"
[[ -f $T/data/content/sha256/${big_layer#sha256:} && ! -e $part ]] || fail "blob not stored after the resume"
[[ $($run "$C" image inspect "$PROXY_HOST/big:1.0" | field 'd[0]["layers"][1]["digest"]') == "$big_layer" ]] ||
    fail "resumed image has the wrong layer"
note "resumed: $kept bytes kept, $served bytes fetched for a $big_size-byte layer"

# A connection cut in the middle of a layer (the proxy drops every connection) is retried at once with a
# range request, within the same pull, and nothing is fetched twice.
note "connection reset mid-layer"
push_big big2 16
big2_layer=$BIG_LAYER big2_size=$BIG_SIZE
served_before=$(cat "$PROXY_COUNT")
$run "$C" image pull "$PROXY_HOST/big2:1.0" >"$T/out" 2>"$T/err" &
pull_pid=$!
part=$T/data/partial/${big2_layer#sha256:}
wait_partial "$part" $((2 * 1024 * 1024))
kill -USR1 "$PROXY_PID"
wait $pull_pid || fail "the pull did not survive a reset connection: $(cat "$T/err")"
served=$(($(cat "$PROXY_COUNT") - served_before))
((served < big2_size + 65536)) || fail "after the reset the pull fetched $served bytes for a $big2_size-byte layer"
[[ -f $T/data/content/sha256/${big2_layer#sha256:} ]] || fail "blob not stored after the retry"

# Answers of 5xx are retried with backoff (ping, manifest and blob), an answer of 4xx never: the proxy
# injects them (rules in $PROXY_COUNT.fail) and logs every request it sees. A data directory of its
# own, so the blobs are really fetched.
note "5xx retried, 4xx not, redirects followed"
registry_py push "$BB/layout" "$REG_URL" retry:1.0 >/dev/null
plog=$T/proxy-$PROXY_PORT.log
rrun="env CONTAINER_DATA_DIR=$T/data-retry XDG_CONFIG_HOME=$T/cfg-root XDG_RUNTIME_DIR=$T/run-root"
requests() { grep -c "proxy: request GET $1 " "$plog" || true; }
printf '%s\n' "1 502 GET /v2/ " "2 503 /v2/retry/manifests/1.0 " "1 500 /blobs/" >"$PROXY_COUNT.fail"
$rrun "$C" image pull "$PROXY_HOST/retry:1.0" >/dev/null 2>"$T/err" || fail "pull through injected 5xx: $(cat "$T/err")"
[[ -z $(awk '$1 != 0' "$PROXY_COUNT.fail") ]] || fail "injected failures never met: $(cat "$PROXY_COUNT.fail")"
(($(requests /v2/retry/manifests/1.0) == 3)) || fail "manifest requests: $(requests /v2/retry/manifests/1.0), expected 3"
# Blobs redirected elsewhere (as registries send them to a CDN) are followed there.
push_big moved 1
mv_layer=$BIG_LAYER
echo "1 307 /blobs/$mv_layer" >"$PROXY_COUNT.fail"
$rrun "$C" image pull "$PROXY_HOST/moved:1.0" >/dev/null 2>"$T/err" || fail "pull with a redirected blob: $(cat "$T/err")"
grep -q "proxy: injected 307 for GET /v2/moved/blobs/$mv_layer" "$plog" || fail "the blob was not redirected"
[[ -f $T/data-retry/content/sha256/${mv_layer#sha256:} ]] || fail "the redirected blob was not stored"
[[ $($rrun "$C" image inspect "$PROXY_HOST/retry:1.0" | field 'd[0]["descriptor"]["digest"]') == "$want_manifest" ]] ||
    fail "image pulled through 5xx differs"
# A 404 from the registry itself: asked once.
expect_error "image $PROXY_HOST/retry:nosuchtag not found" $rrun "$C" image pull "$PROXY_HOST/retry:nosuchtag"
(($(requests /v2/retry/manifests/nosuchtag) == 1)) || fail "a 404 was asked $(requests /v2/retry/manifests/nosuchtag) times"
# A 403 on a blob: asked once, nothing kept, no image named.
push_big forbidden 1
fb_layer=$BIG_LAYER
echo "1 403 /blobs/$fb_layer" >"$PROXY_COUNT.fail"
expect_error "registry $PROXY_HOST denied access to blob $fb_layer" $rrun "$C" image pull "$PROXY_HOST/forbidden:1.0"
(($(requests "/v2/forbidden/blobs/$fb_layer") == 1)) || fail "a 403 was asked $(requests "/v2/forbidden/blobs/$fb_layer") times"
[[ -z $(ls -A "$T/data-retry/partial") && -z $(ls -A "$T/data-retry/tmp") ]] || fail "the refused blob left files: $(ls -lA "$T/data-retry/partial" "$T/data-retry/tmp")"
! $rrun "$C" image ls -q | grep -q forbidden || fail "an image was named after a 403"
# A 5xx that lasts: five attempts in all, then the registry's answer in one line.
echo "99 503 /v2/retry/manifests/2.0 " >"$PROXY_COUNT.fail"
expect_error "get the manifest of $PROXY_HOST/retry:2.0: the registry answered HTTP 503 \(UNAVAILABLE: injected by the test proxy\)" \
    $rrun "$C" image pull "$PROXY_HOST/retry:2.0"
(($(requests /v2/retry/manifests/2.0) == 5)) || fail "a lasting 503 was asked $(requests /v2/retry/manifests/2.0) times, expected 5"
rm -f "$PROXY_COUNT.fail"

# On a terminal the progress display draws a live table on stderr (per layer, then the total and rate).
note "progress on a terminal"
registry_env plain
push_big big3 4
script -qec "env CONTAINER_DATA_DIR=$T/data $C image pull $REG_HOST/big3:1.0" "$T/typescript" >/dev/null ||
    fail "pull on a terminal: $(cat "$T/typescript")"
grep -q $'\e\[2K' "$T/typescript" || fail "no live display on a terminal"
grep -q 'downloading\|unpacking' "$T/typescript" && grep -q 'done' "$T/typescript" && grep -q 'total .*/s' "$T/typescript" ||
    fail "terminal display lacks states or total: $(tr -d '\033' <"$T/typescript")"

# "insecure" in registries.json: TLS without verification, and plain HTTP at an address that is not
# loopback (which is otherwise only ever asked over HTTPS).
note "insecure registries"
registry_env secure
for mode in $(machine_modes); do
    run=$(runner "$mode")
    printf '{"registries": {"%s": {"insecure": true}}}\n' "$REG_HOST" >"$T/cfg-$mode/container/registries.json"
    $run "$C" image pull --scheme https "$REG_HOST/bb:1.0" >/dev/null || fail "unverified TLS with insecure ($mode)"
done
ext=$({ ip -4 -o addr show scope global 2>/dev/null || true; } | awk '{print $4}' | cut -d/ -f1 | head -1)
if [[ -n $ext ]]; then
    registry_env plain
    proxy_start "$REG_HOST" $((256 * 1024 * 1024)) "$ext"
    run=$(runner root)
    rm -f "$T/cfg-root/container/registries.json"
    expect_error "cannot talk to registry $PROXY_HOST over TLS: .*if it speaks only plain HTTP, mark it \"insecure\"" \
        $run "$C" image pull "$PROXY_HOST/bb:1.0"
    ! grep -q 'proxy: request GET' "$T/proxy-$PROXY_PORT.log" || fail "plain HTTP was tried off loopback without insecure"
    printf '{"registries": {"%s": {"insecure": true}}}\n' "$PROXY_HOST" >"$T/cfg-root/container/registries.json"
    $run "$C" image pull "$PROXY_HOST/bb:1.0" >/dev/null || fail "plain HTTP pull of an insecure registry at $ext"
    grep -q 'proxy: request GET /v2/bb/manifests/1.0 ' "$T/proxy-$PROXY_PORT.log" || fail "the pull did not go over plain HTTP"
else
    note "not tested: plain HTTP off loopback (this host has no non-loopback IPv4 address)"
fi

# A pull holds no lock while it downloads: other commands on the same store finish meanwhile (a GC
# among them, which keeps what the pull has fetched so far), and a second pull of the same image waits
# for the first one's blob instead of fetching it again.
note "pulls beside other commands"
registry_env bad
push_big slow 8
slow_layer=$BIG_LAYER slow_size=$BIG_SIZE
proxy_start "$REG_HOST" $((2 * 1024 * 1024))
crun="env CONTAINER_DATA_DIR=$T/data-conc XDG_CONFIG_HOME=$T/cfg-root XDG_RUNTIME_DIR=$T/run-root"
$crun "$C" image load -i "$BB/image.oci.tar" >/dev/null
served_before=$(cat "$PROXY_COUNT")
$crun "$C" image pull "$PROXY_HOST/slow:1.0" >"$T/p1" 2>&1 &
p1=$!
part=$T/data-conc/partial/${slow_layer#sha256:}
wait_partial "$part" $((512 * 1024))
$crun "$C" image pull "$PROXY_HOST/slow:1.0" >"$T/p2" 2>&1 &
p2=$!
$crun "$C" image tag busybox-fixture:1.0 localhost/other:1 >/dev/null || fail "image tag beside a pull"
$crun "$C" machine create --no-boot --name beside busybox-fixture:1.0 >/dev/null || fail "machine create beside a pull"
$crun "$C" image rm localhost/other:1 >/dev/null || fail "image rm (and its GC) beside a pull"
kill -0 "$p1" 2>/dev/null || fail "the pull was over before the other commands were: they waited for it"
wait "$p1" || fail "first pull: $(cat "$T/p1")"
wait "$p2" || fail "second pull: $(cat "$T/p2")"
served=$(($(cat "$PROXY_COUNT") - served_before))
((served < slow_size + slow_size / 2)) || fail "two pulls fetched $served bytes for a $slow_size-byte layer"
[[ $($crun "$C" image inspect "$PROXY_HOST/slow:1.0" | field 'd[0]["layers"][1]["digest"]') == "$slow_layer" ]] ||
    fail "the image pulled beside other commands has the wrong layer"
[[ -z $(ls -A "$T/data-conc/partial") && -z $(ls -A "$T/data-conc/tmp") ]] ||
    fail "pulls left work files: $(ls -A "$T/data-conc/partial" "$T/data-conc/tmp")"
$crun "$C" machine rm beside >/dev/null

echo "registry pull ok"
