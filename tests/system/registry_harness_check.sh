#!/bin/bash
# SPDX-License-Identifier: MIT
# Self-check of the registry test harness (registry_lib.sh, registry.py) with skopeo and curl only; not a
# CTest test. Run as root:
#   SOURCE_DIR=/work/main CONTAINER_BIN=/bin/true bash tests/system/registry_harness_check.sh
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry_lib.sh"

SECONDS=0
skopeo=(skopeo --insecure-policy)
busybox_images busybox-fixture:1.0
BB=$T/bb
want_manifest=$(cat "$BB/manifest-digest")
diff_id=$(skopeo inspect --config "oci:$BB/layout:1.0" | "$REG_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["rootfs"]["diff_ids"][0])')

# json FILE EXPR: a python expression over d, the file's JSON.
json() { "$REG_PYTHON" -c "import json,sys; d=json.load(open('$1')); print($2)"; }
count_lines() { grep -c -- "$2" "$1" || true; }

note "four registries at once"
registry_start plain http
PLAIN_URL=$REG_URL PLAIN_HOST=$REG_HOST PLAIN_PID=$REG_PID
registry_start sec tls
registry_start basic htpasswd
registry_start tok token
registry_env plain
[[ $REG_URL == "$PLAIN_URL" ]] || fail "registry_env did not restore plain's variables"
ports=$(for n in plain sec basic tok; do sed -n 's/^export REG_HOST=127.0.0.1://p' "$T/reg-$n/env"; done | sort -u | wc -l)
[[ $ports == 4 ]] || fail "registries share ports"

note "http: push as is keeps the manifest digest"
got=$(registry_py push "$BB/layout" "$PLAIN_URL" bb:1 --print-digest)
[[ $got == "$want_manifest" ]] || fail "push changed the digest: $got != $want_manifest"
"${skopeo[@]}" inspect --tls-verify=false "docker://$PLAIN_HOST/bb:1" >"$T/i.json"
[[ $(json "$T/i.json" 'd["Digest"]') == "$want_manifest" ]] || fail "skopeo sees another digest"
"${skopeo[@]}" copy -q --src-tls-verify=false "docker://$PLAIN_HOST/bb:1" "oci:$T/copy:1" || fail "skopeo copy"

note "http: --docker, --zstd, --uncompressed, from the oci-archive"
registry_py push "$BB/image.oci.tar" "$PLAIN_URL" bb:docker --docker >/dev/null
curl -sf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "$PLAIN_URL/v2/bb/manifests/docker" >"$T/m.json"
[[ $(json "$T/m.json" 'd["mediaType"]') == application/vnd.docker.distribution.manifest.v2+json ]] || fail "docker manifest type"
[[ $(json "$T/m.json" 'd["config"]["mediaType"]') == application/vnd.docker.container.image.v1+json ]] || fail "docker config type"
[[ $(json "$T/m.json" 'd["layers"][0]["mediaType"]') == application/vnd.docker.image.rootfs.diff.tar.gzip ]] || fail "docker layer type"
"${skopeo[@]}" copy -q --src-tls-verify=false "docker://$PLAIN_HOST/bb:docker" "oci:$T/copy:docker" || fail "copy docker"

zdigest=$(registry_py push "$BB/layout" "$PLAIN_URL" bb:zstd --zstd --print-digest)
curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$PLAIN_URL/v2/bb/manifests/$zdigest" >"$T/m.json"
[[ $(json "$T/m.json" 'd["layers"][0]["mediaType"]') == application/vnd.oci.image.layer.v1.tar+zstd ]] || fail "zstd layer type"
zlayer=$(json "$T/m.json" 'd["layers"][0]["digest"]')
curl -sf "$PLAIN_URL/v2/bb/blobs/$zlayer" | zstd -q -d | sha256sum | grep -q "^${diff_id#sha256:} " ||
    fail "zstd layer does not decompress to the diff_id"
"${skopeo[@]}" inspect --tls-verify=false --config "docker://$PLAIN_HOST/bb:zstd" >"$T/c.json"
[[ $(json "$T/c.json" 'd["rootfs"]["diff_ids"][0]') == "$diff_id" ]] || fail "zstd config diff_id changed"

registry_py push "$BB/layout" "$PLAIN_URL" bb:tar --uncompressed >/dev/null
"${skopeo[@]}" inspect --tls-verify=false --raw "docker://$PLAIN_HOST/bb:tar" >"$T/m.json"
[[ $(json "$T/m.json" 'd["layers"][0]["mediaType"]') == application/vnd.oci.image.layer.v1.tar ]] || fail "tar layer type"
[[ $(json "$T/m.json" 'd["layers"][0]["digest"]') == "$diff_id" ]] || fail "plain layer digest is not the diff_id"

note "http: push-index"
registry_py push-index "$PLAIN_URL" bb:multi "linux/amd64=$BB/layout" "linux/arm64/v8=$BB/image.oci.tar" >"$T/idx"
[[ $(wc -l <"$T/idx") == 3 && $(sed -n 1p "$T/idx") == "index sha256:"* ]] || fail "push-index printed: $(cat "$T/idx")"
curl -sf -H 'Accept: application/vnd.oci.image.index.v1+json' "$PLAIN_URL/v2/bb/manifests/multi" >"$T/index.json"
[[ "index sha256:$(sha256sum <"$T/index.json" | cut -d' ' -f1)" == "$(sed -n 1p "$T/idx")" ]] || fail "index digest"
[[ $(json "$T/index.json" 'd["mediaType"]') == application/vnd.oci.image.index.v1+json ]] || fail "index media type"
[[ $(json "$T/index.json" '" ".join("/".join(filter(None, [m["platform"]["os"], m["platform"]["architecture"], m["platform"].get("variant")])) + "=" + m["digest"] for m in d["manifests"])') == \
    "$(sed -n '2,3p' "$T/idx" | tr ' ' = | paste -sd' ')" ]] || fail "index platforms: $(cat "$T/index.json")"
while read -r plat digest; do
    curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$PLAIN_URL/v2/bb/manifests/$digest" >"$T/m.json"
    curl -sf "$PLAIN_URL/v2/bb/blobs/$(json "$T/m.json" 'd["config"]["digest"]')" >"$T/c.json"
    [[ $(json "$T/c.json" '"/".join(filter(None, [d["os"], d["architecture"], d.get("variant")]))') == "$plat" ]] ||
        fail "config of $plat says $(json "$T/c.json" 'd["os"], d["architecture"], d.get("variant")')"
done < <(sed -n '2,3p' "$T/idx")
"${skopeo[@]}" inspect --tls-verify=false --override-arch arm64 --override-variant v8 "docker://$PLAIN_HOST/bb:multi" >"$T/i.json"
[[ $(json "$T/i.json" 'd["Architecture"]') == arm64 ]] || fail "skopeo picked $(json "$T/i.json" 'd["Architecture"]')"

note "http: behaviour a client meets"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Range: bytes=100-199' "$PLAIN_URL/v2/bb/blobs/$diff_id")
[[ $code == 206 ]] || fail "range request answered $code"
code=$(curl -s -o "$T/err" -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$PLAIN_URL/v2/nope/manifests/1")
[[ $code == 404 ]] && grep -q MANIFEST_UNKNOWN "$T/err" || fail "unknown repo: $code $(cat "$T/err")"

note "kill and restart keep port and storage"
registry_kill plain
! curl -s -o /dev/null "$PLAIN_URL/v2/" || fail "killed registry still answers"
registry_restart plain
[[ $REG_URL == "$PLAIN_URL" && $REG_PID != "$PLAIN_PID" ]] || fail "restart: $REG_URL $REG_PID"
"${skopeo[@]}" inspect --tls-verify=false "docker://$PLAIN_HOST/bb:1" >/dev/null || fail "image lost on restart"

note "throttling proxy: rate, count, a transfer cut by killing the registry, resumed with Range"
registry_py big-layer-image "$BB/layout" "$T/big" 16 >"$T/big.out"
big_layer=$(awk '$1 == "layer" {print $2}' "$T/big.out")
big_size=$(awk '$1 == "layer" {print $3}' "$T/big.out")
registry_py push "$T/big" "$PLAIN_URL" big:1 >/dev/null
"${skopeo[@]}" inspect --tls-verify=false --config "docker://$PLAIN_HOST/big:1" >"$T/c.json"
[[ $(json "$T/c.json" 'len(d["rootfs"]["diff_ids"])') == 2 ]] || fail "big image has no second layer"
proxy_start "$PLAIN_HOST" 4000000
start=$(date +%s%N)
curl -sf -o "$T/blob" "$PROXY_URL/v2/big/blobs/$big_layer" || fail "GET through the proxy"
took_ms=$((($(date +%s%N) - start) / 1000000))
[[ $(stat -c %s "$T/blob") == "$big_size" ]] || fail "blob through the proxy has the wrong size"
count=$(cat "$PROXY_COUNT")
((count >= big_size && count < big_size + 2048)) || fail "count $count for a blob of $big_size"
# 16 MiB at 4 MB/s: about 4.2 s.
((took_ms > 3500 && took_ms < 9000)) || fail "proxy took $took_ms ms for $big_size bytes at 4 MB/s"
echo "    $big_size bytes in $took_ms ms, count $count"

before=$(cat "$PROXY_COUNT")
curl -s -o "$T/part" "$PROXY_URL/v2/big/blobs/$big_layer" &
curl_pid=$!
# The kernel still delivers what the registry had written into its socket buffer when it is killed (up
# to tcp_wmem's maximum, 4 MiB by default): the layer must be well beyond that to be cut short.
sleep 1
registry_kill plain
rc=0
wait $curl_pid || rc=$?
[[ $rc != 0 ]] || fail "curl finished although the registry was killed"
part=$(stat -c %s "$T/part")
((part > 500000 && part < big_size)) || fail "cut transfer got $part of $big_size bytes"
sleep 0.2
cut=$(($(cat "$PROXY_COUNT") - before))
((cut >= part && cut < part + 2048)) || fail "count grew by $cut for $part bytes"
# Refused while the registry is down: the proxy closes the client at once.
! curl -s -m 5 -o /dev/null "$PROXY_URL/v2/" || fail "proxy answered with the registry down"
registry_restart plain
before=$(cat "$PROXY_COUNT")
curl -sf -C - -o "$T/part" "$PROXY_URL/v2/big/blobs/$big_layer" || fail "resume"
[[ sha256:$(sha256sum <"$T/part" | cut -d' ' -f1) == "$big_layer" ]] || fail "resumed blob has the wrong digest"
rest=$(($(cat "$PROXY_COUNT") - before))
((rest >= big_size - part && rest < big_size - part + 2048)) || fail "resume fetched $rest, wanted $((big_size - part))"
echo "    cut after $part bytes (count +$cut), resumed with $rest bytes"
# SIGUSR1 cuts at once, with nothing in flight delivered afterwards.
before=$(cat "$PROXY_COUNT")
curl -s -o "$T/part" "$PROXY_URL/v2/big/blobs/$big_layer" &
curl_pid=$!
sleep 0.5
kill -USR1 "$PROXY_PID"
rc=0
wait $curl_pid || rc=$?
part=$(stat -c %s "$T/part")
cut=$(($(cat "$PROXY_COUNT") - before))
[[ $rc != 0 ]] && ((part < big_size / 2 && cut >= part && cut < part + 2048)) ||
    fail "SIGUSR1: curl rc $rc, got $part, count +$cut"
echo "    SIGUSR1 after 0.5 s: $part bytes (count +$cut)"

note "corrupt: skopeo refuses a blob whose digest is wrong"
registry_py corrupt "$T/reg-plain/storage" "$zlayer"
[[ $(stat -c %s "$(registry_blob_path plain "$zlayer")") == $(curl -sI "$PLAIN_URL/v2/bb/blobs/$zlayer" | sed -n 's/^Content-Length: //Ip' | tr -d '\r') ]] ||
    fail "corrupt changed the size"
! "${skopeo[@]}" copy -q --src-tls-verify=false "docker://$PLAIN_HOST/bb:zstd" "oci:$T/copy:bad" 2>"$T/err" ||
    fail "skopeo copied a corrupt blob"
grep -qi digest "$T/err" || fail "skopeo failed otherwise: $(cat "$T/err")"
"${skopeo[@]}" copy -q --src-tls-verify=false "docker://$PLAIN_HOST/bb:1" "oci:$T/copy:good" || fail "other blobs hurt"

note "tls"
registry_env sec
registry_py push "$BB/layout" "$REG_URL" bb:1 --ca "$REG_CA" >/dev/null
"${skopeo[@]}" inspect --cert-dir "$REG_CERT_DIR" "docker://$REG_HOST/bb:1" >/dev/null || fail "skopeo with the CA"
! "${skopeo[@]}" inspect "docker://$REG_HOST/bb:1" >/dev/null 2>"$T/err" || fail "skopeo trusted the registry without the CA"
grep -q x509 "$T/err" || fail "no x509 error: $(cat "$T/err")"
curl -sf --cacert "$REG_CA" "https://localhost:${REG_HOST##*:}/v2/" >/dev/null || fail "certificate for localhost"
if have_test_user; then
    run_as_user curl -sf --cacert "$REG_CA" "$REG_URL/v2/" >/dev/null || fail "test user cannot use the CA"
else
    echo "    (no test user: CA readability not checked)"
fi

note "htpasswd (TLS + basic)"
registry_env basic
registry_py push "$BB/layout" "$REG_URL" bb:1 --ca "$REG_CA" --user "$REG_USER:$REG_PASS" >/dev/null
! registry_py push "$BB/layout" "$REG_URL" bb:2 --ca "$REG_CA" 2>/dev/null || fail "push without creds"
! registry_py push "$BB/layout" "$REG_URL" bb:2 --ca "$REG_CA" --user "$REG_USER:wrong" 2>/dev/null || fail "push with bad creds"
"${skopeo[@]}" inspect --cert-dir "$REG_CERT_DIR" --creds "$REG_USER:$REG_PASS" "docker://$REG_HOST/bb:1" >/dev/null ||
    fail "skopeo with creds"
! "${skopeo[@]}" inspect --cert-dir "$REG_CERT_DIR" --creds "$REG_USER:wrong" "docker://$REG_HOST/bb:1" >/dev/null 2>&1 ||
    fail "skopeo with wrong creds"
! "${skopeo[@]}" inspect --cert-dir "$REG_CERT_DIR" --no-creds "docker://$REG_HOST/bb:1" >/dev/null 2>&1 ||
    fail "skopeo without creds"
[[ $(curl -s -o /dev/null -w '%{http_code}' --cacert "$REG_CA" "$REG_URL/v2/") == 401 ]] || fail "anonymous /v2/ is not 401"

note "token"
registry_env tok
registry_py push "$BB/layout" "$REG_URL" bb:1 --user "$REG_USER:$REG_PASS" >/dev/null
(($(count_lines "$REG_TOKEN_LOG" 'creds=yes user=tester status=200') >= 2)) || fail "push got no tokens: $(cat "$REG_TOKEN_LOG")"
! registry_py push "$BB/layout" "$REG_URL" bb:2 --user "$REG_USER:wrong" 2>/dev/null || fail "push with bad creds"
! registry_py push "$BB/layout" "$REG_URL" bb:2 2>/dev/null || fail "push without creds"
n=$(count_lines "$REG_TOKEN_LOG" status=200)
"${skopeo[@]}" inspect --tls-verify=false --creds "$REG_USER:$REG_PASS" "docker://$REG_HOST/bb:1" >/dev/null ||
    fail "skopeo with a token"
(($(count_lines "$REG_TOKEN_LOG" status=200) > n)) || fail "skopeo fetched no token"
n=$(count_lines "$REG_TOKEN_LOG" status=401)
! "${skopeo[@]}" inspect --tls-verify=false --creds "$REG_USER:wrong" "docker://$REG_HOST/bb:1" >/dev/null 2>&1 ||
    fail "skopeo with wrong creds"
(($(count_lines "$REG_TOKEN_LOG" status=401) > n)) || fail "wrong creds were not refused by the token server"
! "${skopeo[@]}" inspect --tls-verify=false --no-creds "docker://$REG_HOST/bb:1" >/dev/null 2>&1 ||
    fail "anonymous pull allowed"
grep -q 'creds=no user=- status=200' "$REG_TOKEN_LOG" || fail "no anonymous token request logged"
echo "    token requests: $(count_lines "$REG_TOKEN_LOG" 'GET /token')"

note "token with anonymous pull"
registry_start anon token-anon
registry_py push "$BB/layout" "$REG_URL" bb:1 --user "$REG_USER:$REG_PASS" >/dev/null
"${skopeo[@]}" inspect --tls-verify=false --no-creds "docker://$REG_HOST/bb:1" >/dev/null || fail "anonymous pull refused"
! registry_py push "$BB/layout" "$REG_URL" bb:2 2>/dev/null || fail "anonymous push allowed"

note "registry_stop ends registry and token server"
registry_env tok
registry_stop tok
! kill -0 "$REG_PID" 2>/dev/null || fail "registry_stop left the registry"
! kill -0 "$REG_TOKEN_PID" 2>/dev/null || fail "registry_stop left the token server"
echo "PASS registry harness (${SECONDS}s)"
