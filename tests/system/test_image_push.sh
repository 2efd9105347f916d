#!/bin/bash
# SPDX-License-Identifier: MIT
# `image push` of committed machines to Debian's docker-registry on loopback, in the modes the pull test
# runs (anonymous HTTP, TLS with the test's CA, basic auth, bearer tokens), as root and as the
# unprivileged test user: the pushed digest is `image inspect`'s and a pull into an empty store gives it
# back; skopeo reads it and umoci unpacks skopeo's copy; blobs of another repository are mounted; a
# second push uploads nothing (the proxy log shows HEADs only); a 401 asks for `registry login`; 5xx are
# retried; a push cut mid-layer resumes or starts over, and a killed push names nothing.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry_lib.sh"

busybox_images busybox-fixture:1.0
chmod 777 "$T"
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

mkdir -p "$T/cfg-root/container" "$T/run-root" "$T/cfg-user/container" "$T/run-user"
chown -R "$TEST_USER" "$T/cfg-user" "$T/run-user" 2>/dev/null || true
chmod 700 "$T"/run-*
runner() { # the command prefix that runs the CLI as MODE, with its own config dirs
    if [[ $1 == root ]]; then
        echo "env CONTAINER_DATA_DIR=$T/data XDG_CONFIG_HOME=$T/cfg-root XDG_RUNTIME_DIR=$T/run-root"
    else
        echo "run_as_user env XDG_CONFIG_HOME=$T/cfg-user XDG_RUNTIME_DIR=$T/run-user"
    fi
}
# The same, with a fresh empty data directory of its own (for pulls that must fetch everything).
empty_runner() { # empty_runner MODE TAG
    local d=$T/empty-$1-$2
    if [[ $1 == root ]]; then
        echo "env CONTAINER_DATA_DIR=$d XDG_CONFIG_HOME=$T/cfg-root XDG_RUNTIME_DIR=$T/run-root"
    else
        echo "run_as_user env CONTAINER_DATA_DIR=$d XDG_CONFIG_HOME=$T/cfg-user XDG_RUNTIME_DIR=$T/run-user"
    fi
}
login_with() { local pass=$1; shift; echo "$pass" | "$@"; }
digest_of() { $1 "$C" image inspect "$2" | field 'd[0]["descriptor"]["digest"]'; }

# commit_image MODE NAME [MB]: a busybox machine with a file of its own (and MB MiB of random data),
# committed as NAME; the machine is removed again.
n=0
commit_image() {
    local run m
    run=$(runner "$1")
    m=c$((++n))-$1
    $run "$C" machine create --name "$m" busybox-fixture:1.0 >/dev/null || fail "create $m"
    $run "$C" machine run --root -n "$m" -- sh -ec "echo $m >/made-by; [ -z '${3:-}' ] || dd if=/dev/urandom of=/big bs=1M count=${3:-0} 2>/dev/null" ||
        fail "change $m"
    $run "$C" machine commit "$m" "$2" >/dev/null 2>"$T/err" || fail "commit $m: $(cat "$T/err")"
    $run "$C" machine rm -f "$m" >/dev/null 2>&1
}
# push_and_check MODE REF: push prints the image's digest, and a pull into an empty store gives it back.
push_and_check() {
    local run want got
    run=$(runner "$1")
    want=$(digest_of "$run" "$2")
    $run "$C" image push "$2" >"$T/out" 2>"$T/err" || fail "push $2 ($1): $(cat "$T/err")"
    [[ $(cat "$T/out") == "$want" ]] || fail "push printed $(cat "$T/out"), inspect says $want"
    n=$((n + 1))
    $(empty_runner "$1" "$n") "$C" image pull "$2" >/dev/null 2>"$T/err" || fail "pull back $2 ($1): $(cat "$T/err")"
    got=$(digest_of "$(empty_runner "$1" "$n")" "$2")
    [[ $got == "$want" ]] || fail "pulled $got back, pushed $want"
}

for mode in $(machine_modes); do
    on_exit "remove_all_machines '$(runner "$mode")' '$(data_for "$mode")'"
    $(runner "$mode") "$C" image load -i "$T/bb/image.oci.tar" >/dev/null || fail "load ($mode)"
    commit_image "$mode" localhost/dev:$mode
done

note "anonymous HTTP: push, pull back, skopeo, umoci, cross-repository mounts"
registry_start plain http
for mode in $(machine_modes); do
    run=$(runner "$mode")
    $run "$C" image tag localhost/dev:$mode "$REG_HOST/team/dev:$mode"
    push_and_check "$mode" "$REG_HOST/team/dev:$mode"
    # Another repository of the same registry: blobs it lacks are mounted (the busybox layer may be there
    # from the other mode's push), none uploaded.
    $run "$C" image tag localhost/dev:$mode "$REG_HOST/other/dev:$mode"
    $run "$C" image push "$REG_HOST/other/dev:$mode" >/dev/null 2>"$T/err" || fail "push to other ($mode)"
    grep -Eq ': 0 uploaded, [01] already there, [23] mounted$' "$T/err" || fail "expected mounts: $(cat "$T/err")"
    # A destination given on the command line; --progress plain shows the blobs going up.
    $run "$C" image push --progress plain localhost/dev:$mode "$REG_HOST/third/dev:1" >/dev/null 2>"$T/err" ||
        fail "push to a destination ($mode)"
    grep -q ': uploading ' "$T/err" || fail "no progress: $(cat "$T/err")"
done
skopeo inspect --tls-verify=false "docker://$REG_HOST/team/dev:root" >"$T/sk" 2>&1 || fail "skopeo inspect: $(cat "$T/sk")"
[[ $(field 'd["Digest"]' <"$T/sk") == "$(digest_of "$(runner root)" localhost/dev:root)" ]] || fail "skopeo sees another digest"
skopeo copy -q --src-tls-verify=false "docker://$REG_HOST/team/dev:root" "oci:$T/layout:dev" || fail "skopeo copy"
umoci unpack --rootless --image "$T/layout:dev" "$T/bundle" >/dev/null || fail "umoci unpack"
[[ $(cat "$T/bundle/rootfs/made-by") == c1-root ]] || fail "umoci's unpack lacks the committed file"
expect_error 'names no registry' $(runner root) "$C" image push localhost/dev:root

note "TLS with the test's CA"
registry_start secure tls
for mode in $(machine_modes); do
    run=$(runner "$mode")
    printf '{"registries": {"%s": {"ca": "%s"}}}\n' "$REG_HOST" "$REG_CA" >"$T/cfg-$mode/container/registries.json"
    chmod -R a+rX "$T/cfg-$mode"
    $run "$C" image tag localhost/dev:$mode "$REG_HOST/team/dev:$mode"
    push_and_check "$mode" "$REG_HOST/team/dev:$mode"
done
skopeo inspect --cert-dir "$REG_CERT_DIR" "docker://$REG_HOST/team/dev:root" >/dev/null || fail "skopeo inspect over TLS"

note "basic auth: 401 asks for registry login"
registry_start basic htpasswd
for mode in $(machine_modes); do
    run=$(runner "$mode")
    printf '{"registries": {"%s": {"ca": "%s"}}}\n' "$REG_HOST" "$REG_CA" >"$T/cfg-$mode/container/registries.json"
    $run "$C" image tag localhost/dev:$mode "$REG_HOST/team/dev:$mode"
    expect_error "run 'container registry login $REG_HOST'" $run "$C" image push "$REG_HOST/team/dev:$mode"
    login_with "$REG_PASS" $run "$C" registry login -u tester --password-stdin "$REG_HOST" >/dev/null || fail "login"
    push_and_check "$mode" "$REG_HOST/team/dev:$mode"
done

note "bearer tokens: 401 asks for registry login, the token carries push"
registry_start tok token
for mode in $(machine_modes); do
    run=$(runner "$mode")
    $run "$C" image tag localhost/dev:$mode "$REG_HOST/team/dev:$mode"
    expect_error "registry login $REG_HOST" $run "$C" image push "$REG_HOST/team/dev:$mode"
    ! curl -sf "$REG_URL/v2/team/dev/tags/list" >/dev/null || fail "a refused push named something"
    login_with "$REG_PASS" $run "$C" registry login -u tester --password-stdin "$REG_HOST" >/dev/null || fail "token login"
    push_and_check "$mode" "$REG_HOST/team/dev:$mode"
    grep -q 'repository%3Ateam%2Fdev%3Apull%2Cpush\|repository:team/dev:pull,push' "$REG_TOKEN_LOG" ||
        fail "no token request with the push scope: $(tail -3 "$REG_TOKEN_LOG")"
done

note "a second push uploads no blob"
registry_env plain
proxy_start "$REG_HOST" $((256 * 1024 * 1024))
plog=$T/proxy-$PROXY_PORT.log
run=$(runner root)
commit_image root "$PROXY_HOST/team/again:1" 2
$run "$C" image push "$PROXY_HOST/team/again:1" >/dev/null 2>"$T/err" || fail "first push: $(cat "$T/err")"
grep -aq 'proxy: request PATCH /v2/team/again/blobs/uploads/' "$plog" || fail "the 2 MiB layer did not go up in a PATCH"
lines=$(wc -l <"$plog")
$run "$C" image push "$PROXY_HOST/team/again:1" >/dev/null 2>"$T/err" || fail "second push: $(cat "$T/err")"
# HTTP request lines only: the first thing sent is a TLS hello (the scheme is found as for pulls).
# The proxy's threads log concurrently and two lines can end up on one: split before each message.
tail -n +"$((lines + 1))" "$plog" | sed 's/registry\.py: /\n&/g' | grep -aE 'proxy: request [A-Z]+ /' >"$T/second"
[[ $(grep -c 'request HEAD /v2/team/again/blobs/' "$T/second") == 3 ]] || fail "expected 3 HEADs: $(cat "$T/second")"
! grep -av -e 'request HEAD /v2/team/again/blobs/' -e 'request GET /v2/ ' -e 'request PUT /v2/team/again/manifests/1 ' \
    "$T/second" || fail "the second push sent more than HEADs and the manifest: $(cat -v "$T/second")"

note "5xx retried"
commit_image root "$PROXY_HOST/team/retry:1" 2
printf '%s\n' "1 503 HEAD /v2/team/retry/blobs/" "1 502 POST /v2/team/retry/blobs/uploads/" \
    "1 503 PATCH /v2/team/retry/" "1 500 PUT /v2/team/retry/manifests/1 " >"$PROXY_COUNT.fail"
push_and_check root "$PROXY_HOST/team/retry:1"
[[ -z $(awk '$1 != 0' "$PROXY_COUNT.fail") ]] || fail "injected failures never met: $(cat "$PROXY_COUNT.fail")"
rm -f "$PROXY_COUNT.fail"

note "a registry that refuses PATCH gets the blob in one PUT"
commit_image root "$PROXY_HOST/team/mono:1" 2
echo "9 405 PATCH /v2/team/mono/" >"$PROXY_COUNT.fail"
push_and_check root "$PROXY_HOST/team/mono:1"
[[ $(awk '{print $1}' "$PROXY_COUNT.fail") == 8 ]] || fail "PATCH was tried $((9 - $(awk '{print $1}' "$PROXY_COUNT.fail"))) times, expected once"
rm -f "$PROXY_COUNT.fail"

note "a registry that says 413 (request too large) gets the layer in chunks"
commit_image root "$PROXY_HOST/team/chunked:1" 20
echo "1 413 PATCH /v2/team/chunked/" >"$PROXY_COUNT.fail"
push_and_check root "$PROXY_HOST/team/chunked:1"
patches=$(sed 's/registry\.py: /\n&/g' "$plog" | grep -ac 'request PATCH /v2/team/chunked/' || true)
# The refused one, then 8 MiB at a time.
((patches >= 4)) || fail "expected the 20 MiB layer in 8 MiB PATCHes after the 413, saw $patches PATCH requests"
rm -f "$PROXY_COUNT.fail"

note "a push cut mid-layer resumes or starts over"
PROXY_UP_RATE=$((4 * 1024 * 1024)) proxy_start "$REG_HOST" $((256 * 1024 * 1024))
plog=$T/proxy-$PROXY_PORT.log
commit_image root "$PROXY_HOST/team/big:1" 24
$run "$C" image push "$PROXY_HOST/team/big:1" >"$T/out" 2>"$T/err" &
push_pid=$!
for _ in $(seq 100); do grep -aq 'request PATCH /v2/team/big/' "$plog" && break; sleep 0.1; done
sleep 1.5
kill -USR1 "$PROXY_PID"
wait $push_pid || fail "the push did not survive a cut connection: $(cat "$T/err")"
grep -aq 'proxy: cut [1-9]' "$plog" || fail "nothing was cut"
grep -aq 'request GET /v2/team/big/blobs/uploads/' "$plog" || fail "the push did not ask the registry where to resume"
# docker-registry 2.8 forgets a session whose PATCH was cut (404 on the status GET): the blob starts over.
echo "upload sessions opened: $(grep -ac 'request POST /v2/team/big/blobs/uploads/' "$plog"), status asked:" \
    "$(grep -ac 'request GET /v2/team/big/blobs/uploads/' "$plog")"
push_and_check root "$PROXY_HOST/team/big:1"

note "a killed push names nothing, and the next push completes"
commit_image root "$PROXY_HOST/team/killed:1" 24
$run "$C" image push "$PROXY_HOST/team/killed:1" >/dev/null 2>&1 &
push_pid=$!
for _ in $(seq 100); do grep -aq 'request PATCH /v2/team/killed/' "$plog" && break; sleep 0.1; done
sleep 1
kill -KILL "$push_pid"
wait "$push_pid" 2>/dev/null || true
code=$(curl -s -o /dev/null -w '%{http_code}' "$REG_URL/v2/team/killed/manifests/1")
[[ $code == 404 ]] || fail "a killed push left a manifest (HTTP $code)"
push_and_check root "$PROXY_HOST/team/killed:1"
echo "PASS"
