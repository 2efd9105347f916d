#!/bin/bash
# SPDX-License-Identifier: MIT
# `container build` on the busybox fixture, as root and as the unprivileged test user: every instruction
# has its own assertion (on the image config, or on the files a machine made from the image sees),
# .dockerignore with an exception, multi-stage with --target and COPY --from, an unchanged rebuild that
# is all cache hits, a changed file or ARG that is a miss, and a failing RUN that names its line, its
# exit status and its last output, and names no image.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry_lib.sh"

busybox_images busybox-fixture:1.0
chmod 777 "$T"
busybox_registry
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

write_containerfile() {
    cat >"$1" <<'CONTAINERFILE'
# escape=\
ARG BASE=busybox-fixture:1.0
FROM ${BASE} AS first
ARG GREETING=hi
ENV NAME=world \
    EMPTY=
RUN echo "$GREETING ${NAME} ${EMPTY:-dflt} ${NAME:+alt}" >/greeting
WORKDIR /work
COPY hello.txt .
COPY --chown=12:34 --chmod=0640 dir/ /copied/
COPY *.log /logs/
RUN <<SCRIPT
echo heredoc >/heredoc
rm /etc/inittab
SCRIPT
SHELL ["/bin/sh", "-ec"]
RUN ["/bin/sh", "-c", "pwd >/pwd"]
USER 1000:1000
RUN test "$(id -u):$(id -g)" = 1000:1000
USER root
LABEL org.test.label="a b"
EXPOSE 8080/udp
VOLUME /data
STOPSIGNAL SIGRTMIN+3
HEALTHCHECK --interval=30s --retries=3 CMD true
ONBUILD RUN echo triggered
MAINTAINER someone
ENTRYPOINT ["/bin/sh"]
CMD ["-c", "echo hi"]

FROM scratch AS tiny
COPY --from=first /greeting /g

FROM first AS last
RUN echo last >/last
CONTAINERFILE
}

# A web server on loopback for ADD URL.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$T/www"
python3 -m http.server --bind 127.0.0.1 --directory "$T/www" "$port" >/dev/null 2>&1 &
on_exit "kill $!"
echo plain >"$T/www/plain.txt"

for mode in ${BUILD_TEST_MODES:-$(machine_modes)}; do
    run=$(runner_for "$mode")
    data=$(data_for "$mode")
    on_exit "remove_all_machines '$run' '$data'"
    $run "$C" image load -i "$T/bb/image.oci.tar" >/dev/null || fail "load ($mode)"
    ctx=$T/ctx-$mode
    mkdir -p "$ctx/dir/sub"
    echo hello >"$ctx/hello.txt"
    echo a >"$ctx/dir/a"
    echo b >"$ctx/dir/sub/b"
    echo secret >"$ctx/secret.txt"
    echo keep >"$ctx/keep.log"
    echo drop >"$ctx/drop.log"
    printf '# comment\n*.log\n!keep.log\nsecret.txt\n' >"$ctx/.dockerignore"
    write_containerfile "$ctx/Containerfile"
    chmod -R a+rX "$ctx"

    note "a cold build of the first stage ($mode)"
    $run "$C" build --progress plain --target first --build-arg GREETING=hey -t localhost/b1:$mode "$ctx" \
        >"$T/out" 2>"$T/err" || fail "build ($mode): $(tail -20 "$T/err")"
    grep -q "STEP 2/" "$T/err" || fail "no step display: $(cat "$T/err")"
    grep -q "(cached)" "$T/err" && fail "a cold build hit the cache"
    $run "$C" image inspect localhost/b1:$mode >"$T/i" || fail "inspect ($mode)"
    [[ $(field 'd[0]["descriptor"]["digest"]' <"$T/i") == "$(cat "$T/out")" ]] || fail "printed digest differs"
    cfg() { field "d[0][\"config\"]$1" <"$T/i"; }
    [[ $(cfg '["config"]["WorkingDir"]') == /work ]] || fail "WORKDIR"
    [[ $(cfg '["config"]["User"]') == root ]] || fail "USER"
    cfg '["config"]["Env"]' | grep -q "NAME=world" || fail "ENV"
    [[ $(cfg '["config"]["Labels"]["org.test.label"]') == "a b" ]] || fail "LABEL"
    [[ $(cfg '["config"]["ExposedPorts"]') == "{'8080/udp': {}}" ]] || fail "EXPOSE"
    [[ $(cfg '["config"]["Volumes"]') == "{'/data': {}}" ]] || fail "VOLUME"
    [[ $(cfg '["config"]["StopSignal"]') == SIGRTMIN+3 ]] || fail "STOPSIGNAL"
    [[ $(cfg '["config"]["Healthcheck"]["Test"]') == "['CMD-SHELL', 'true']" ]] || fail "HEALTHCHECK"
    [[ $(cfg '["config"]["Healthcheck"]["Interval"]') == 30000000000 ]] || fail "HEALTHCHECK --interval"
    [[ $(cfg '["config"]["OnBuild"]') == "['RUN echo triggered']" ]] || fail "ONBUILD"
    [[ $(cfg '["config"]["Shell"]') == "['/bin/sh', '-ec']" ]] || fail "SHELL"
    [[ $(cfg '["config"]["Entrypoint"]') == "['/bin/sh']" ]] || fail "ENTRYPOINT"
    [[ $(cfg '["config"]["Cmd"]') == "['-c', 'echo hi']" ]] || fail "CMD"
    [[ $(cfg '["author"]') == someone ]] || fail "MAINTAINER"
    # busybox + RUN greeting + COPY x3 + heredoc RUN + exec RUN; the USER check's RUN changes nothing
    base_layers=$($run "$C" image inspect busybox-fixture:1.0 | field 'len(d[0]["layers"])')
    [[ $(field 'len(d[0]["layers"])' <"$T/i") == $((base_layers + 6)) ]] ||
        fail "layer count: $(field "[h[\"created_by\"][:40] for h in d[0][\"config\"][\"history\"] if not h.get(\"empty_layer\")]" <"$T/i")"
    [[ $(cfg '["history"][-1]["created_by"]') == 'CMD ["-c", "echo hi"]' ]] || fail "history"

    note "the files a machine of the image sees ($mode)"
    $run "$C" machine create --name b-$mode localhost/b1:$mode >/dev/null || fail "create ($mode)"
    inside() { $run "$C" machine run --root -n b-$mode -- sh -c "$1"; }
    [[ $(inside 'cat /greeting') == "hey world dflt alt" ]] || fail "RUN/ARG/ENV expansion: $(inside 'cat /greeting')"
    [[ $(inside 'cat /work/hello.txt') == hello ]] || fail "COPY into WORKDIR"
    [[ $(inside 'stat -c %u:%g:%a /copied/a /copied/sub/b' | tr '\n' ' ') == "12:34:640 12:34:640 " ]] ||
        fail "COPY --chown --chmod: $(inside 'stat -c %u:%g:%a /copied/a /copied/sub/b')"
    [[ $(inside 'ls /logs') == keep.log ]] || fail ".dockerignore exception: $(inside 'ls /logs')"
    [[ $(inside 'cat /heredoc') == heredoc ]] || fail "RUN heredoc"
    inside 'test ! -e /etc/inittab' || fail "a deleted file shows (whiteout)"
    [[ $(inside 'cat /pwd') == /work ]] || fail "RUN exec form in WORKDIR"

    note "ADD: a local tar is unpacked, another file copied ($mode)"
    actx=$T/actx-$mode
    mkdir -p "$actx/src/d"
    echo inner >"$actx/src/d/f"
    ln -s d/f "$actx/src/link"
    tar -czf "$actx/files.tgz" -C "$actx/src" --owner=7 --group=8 d link
    echo plain >"$actx/plain.txt"
    sum=sha256:$(sha256sum "$actx/plain.txt" | cut -c1-64)
    printf 'FROM busybox-fixture:1.0\nADD files.tgz /unpacked/\nADD --chown=5:6 files.tgz /owned/\nADD plain.txt /added.txt\nADD --checksum=%s http://127.0.0.1:%s/plain.txt /from-url/\nRUN echo "[$https_proxy]" >/proxy && ls /proc/self/fd >/fds && env >/env && tty >/tty || true\n' \
        "$sum" "$port" >"$actx/Containerfile"
    chmod -R a+rX "$actx"
    $run "$C" build --progress none --build-arg https_proxy=http://proxy.invalid:3128 -t localhost/add:$mode "$actx" \
        >/dev/null 2>"$T/err" || fail "ADD build: $(cat "$T/err")"
    ! $run "$C" image inspect localhost/add:$mode | grep -q proxy.invalid || fail "the proxy ARG reached the image"
    $run "$C" machine create --name add-$mode localhost/add:$mode >/dev/null || fail "create add ($mode)"
    [[ $($run "$C" machine run --root -n add-$mode -- sh -c 'cat /unpacked/d/f; readlink /unpacked/link; stat -c %u:%g /unpacked/d/f /owned/d/f; cat /added.txt' | paste -sd ' ') == "inner d/f 7:8 5:6 plain" ]] ||
        fail "ADD: $($run "$C" machine run --root -n add-$mode -- sh -c 'ls -lR /unpacked /owned; cat /added.txt')"
    [[ $($run "$C" machine run --root -n add-$mode -- cat /proxy) == "[http://proxy.invalid:3128]" ]] ||
        fail "the predefined proxy ARG did not reach RUN"
    # Nothing of the builder's reaches a step: descriptors (0-2, and ls's own), environment, terminal.
    [[ $($run "$C" machine run --root -n add-$mode -- cat /fds | paste -sd ' ') == "0 1 2 3" ]] ||
        fail "descriptors leak into RUN: $($run "$C" machine run --root -n add-$mode -- cat /fds)"
    ! $run "$C" machine run --root -n add-$mode -- grep -q CONTAINER_DATA_DIR /env || fail "the builder's environment leaks into RUN"
    [[ $($run "$C" machine run --root -n add-$mode -- cat /tty) == "not a tty" ]] || fail "RUN has a terminal"
    [[ $($run "$C" machine run --root -n add-$mode -- sh -c 'cat /from-url/plain.txt; stat -c %a /from-url/plain.txt' | paste -sd ' ') == "plain 600" ]] ||
        fail "ADD URL: $($run "$C" machine run --root -n add-$mode -- ls -l /from-url)"
    $run "$C" machine rm -f add-$mode >/dev/null
    printf 'FROM busybox-fixture:1.0\nADD --checksum=sha256:%064d http://127.0.0.1:%s/plain.txt /x\n' 0 "$port" >"$actx/Containerfile"
    $run "$C" build --progress none "$actx" >/dev/null 2>"$T/err" && fail "ADD URL with a wrong checksum built"
    grep -q "line 2: ADD .*checksum mismatch" "$T/err" || fail "checksum message: $(cat "$T/err")"

    note "--target, COPY --from, FROM scratch ($mode)"
    $run "$C" build --progress none --target tiny -t localhost/tiny:$mode "$ctx" >/dev/null 2>"$T/err" ||
        fail "build tiny: $(cat "$T/err")"
    [[ $($run "$C" image inspect localhost/tiny:$mode | field 'len(d[0]["layers"])') == 1 ]] || fail "tiny layers"

    note "FROM an image the store lacks pulls it, then RUN works in it ($mode)"
    mkdir -p "$T/pull-$mode"
    printf 'FROM %s\nRUN echo pulled >/pulled\n' "$PULLED" >"$T/pull-$mode/Containerfile"
    chmod -R a+rX "$T/pull-$mode"
    $run "$C" image inspect "$PULLED" >/dev/null 2>&1 && fail "the registry image is stored already"
    $run "$C" build --progress plain -t localhost/pulled:$mode "$T/pull-$mode" >/dev/null 2>"$T/err" ||
        fail "build FROM a registry image: $(tail -5 "$T/err")"
    $run "$C" image inspect "$PULLED" >/dev/null || fail "FROM did not pull $PULLED"
    $run "$C" image rm localhost/pulled:$mode "$PULLED" >/dev/null || fail "rm pulled"

    note "the default target is the last stage, FROM an earlier stage; -f, --label, --no-cache ($mode)"
    cp "$ctx/Containerfile" "$T/Other-$mode"
    printf 'FROM first AS extra\nCOPY --from=busybox-fixture:1.0 /etc/passwd /from-image-passwd\n' >>"$T/Other-$mode"
    chmod a+r "$T/Other-$mode"
    $run "$C" build --progress plain --no-cache -f "$T/Other-$mode" --label org.test.cli=yes -t localhost/last:$mode "$ctx" \
        >/dev/null 2>"$T/err" || fail "build -f: $(tail -5 "$T/err")"
    grep -q "(cached)" "$T/err" && fail "--no-cache hit the cache"
    $run "$C" image inspect localhost/last:$mode >"$T/i2" || fail "inspect last"
    [[ $(field 'd[0]["config"]["config"]["Labels"]["org.test.cli"]' <"$T/i2") == yes ]] || fail "--label"
    [[ $(field 'd[0]["config"]["config"]["Labels"]["org.test.label"]' <"$T/i2") == "a b" ]] || fail "FROM a stage keeps its config"
    $run "$C" machine create --name last-$mode localhost/last:$mode >/dev/null || fail "create last ($mode)"
    [[ $($run "$C" machine run --root -n last-$mode -- cat /greeting /from-image-passwd | head -2 | tail -1) == "$($run "$C" machine run --root -n last-$mode -- head -1 /etc/passwd)" ]] ||
        fail "COPY --from an image"
    $run "$C" machine run --root -n last-$mode -- test ! -e /last || fail "the unreached stage 'last' was built into 'extra'"
    $run "$C" machine rm -f last-$mode >/dev/null
    $run "$C" image rm localhost/last:$mode >/dev/null

    note "an unchanged rebuild is all cache; a changed file or ARG is a miss ($mode)"
    $run "$C" build --progress plain --target first --build-arg GREETING=hey -t localhost/b2:$mode "$ctx" \
        >"$T/out2" 2>"$T/err" || fail "rebuild: $(cat "$T/err")"
    [[ $(grep -c "(cached)" "$T/err") == 22 ]] || fail "rebuild not cached: $(cat "$T/err")"
    [[ $(cat "$T/out2") == $(cat "$T/out") ]] || fail "an unchanged rebuild gave another image"
    echo hello2 >"$ctx/hello.txt"
    $run "$C" build --progress plain --target first --build-arg GREETING=hey -t localhost/b3:$mode "$ctx" \
        >/dev/null 2>"$T/err" || fail "rebuild after a change: $(cat "$T/err")"
    [[ $(grep -c "(cached)" "$T/err") == 4 ]] || fail "a changed file must miss from its COPY on: $(cat "$T/err")"
    grep -q "STEP 6/23: COPY hello.txt . *$" "$T/err" || fail "the changed COPY was cached: $(cat "$T/err")"
    $run "$C" build --progress plain --target first --build-arg GREETING=other -t localhost/b3:$mode "$ctx" \
        >/dev/null 2>"$T/err" || fail "rebuild with another ARG: $(cat "$T/err")"
    grep -q "(cached)" "$T/err" && fail "a changed ARG must miss: $(cat "$T/err")"

    note "hostile links: the image's and the context's lead nowhere outside their roots ($mode)"
    hctx=$T/hostile-$mode
    mkdir -p "$hctx"
    echo payload >"$hctx/f"
    ln -s /etc/shadow "$hctx/shadow-link"
    ln -s / "$hctx/rootlink"
    # (Not below /tmp: a machine has its own tmpfs there, which would hide where the file went.)
    esc=/var/tmp/ctr-build-escape-$$-$mode
    on_exit "rm -rf '$esc'"
    printf 'FROM busybox-fixture:1.0\nRUN ln -s /../../../..%s /esc && mkdir -p /d && ln -s / /d/root\nCOPY f /esc/x\nCOPY f /d/root/opt/y\nCOPY shadow-link /s\n' \
        "$esc" >"$hctx/Containerfile"
    chmod -R a+rX "$hctx"
    $run "$C" build --progress none -t localhost/hostile:$mode "$hctx" >/dev/null 2>"$T/err" || fail "hostile build: $(cat "$T/err")"
    [[ ! -e $esc ]] || fail "COPY followed the image's link out of the image: $(ls -la "$esc")"
    $run "$C" machine create --name h-$mode localhost/hostile:$mode >/dev/null || fail "create hostile ($mode)"
    [[ $($run "$C" machine run --root -n h-$mode -- cat "$esc/x" /opt/y | paste -sd ' ') == "payload payload" ]] ||
        fail "COPY through the image's links did not land inside the image"
    [[ $($run "$C" machine run --root -n h-$mode -- readlink /s) == /etc/shadow ]] || fail "a context link was not copied as a link"
    $run "$C" machine rm -f h-$mode >/dev/null
    printf 'FROM busybox-fixture:1.0\nCOPY rootlink/etc/shadow /s2\n' >"$hctx/Containerfile"
    $run "$C" build --progress none "$hctx" >/dev/null 2>"$T/err" && fail "COPY read through a context link to the host's /"
    grep -q 'rootlink/etc/shadow.*not found in the build context' "$T/err" || fail "context link message: $(cat "$T/err")"

    note "a failing RUN names its line and status, and names no image ($mode)"
    mkdir -p "$T/bad-$mode"
    printf 'FROM busybox-fixture:1.0\nRUN echo one && echo to-stderr >&2 && exit 3\n' >"$T/bad-$mode/Containerfile"
    chmod -R a+rX "$T/bad-$mode"
    $run "$C" build -t localhost/bad:$mode "$T/bad-$mode" >/dev/null 2>"$T/err" && fail "a failing RUN built"
    grep -q "line 2: RUN echo one .*exit status 3.*to-stderr" "$T/err" || fail "failure message: $(cat "$T/err")"
    $run "$C" image inspect localhost/bad:$mode >/dev/null 2>&1 && fail "a failed build named its image"
    printf 'FROM --platform=linux/s390x busybox-fixture:1.0\n' >"$T/bad-$mode/Containerfile"
    $run "$C" build "$T/bad-$mode" >/dev/null 2>"$T/err" && fail "a foreign --platform built"
    grep -q "line 1: FROM --platform=linux/s390x: this host is linux/amd64" "$T/err" || fail "platform message: $(cat "$T/err")"
    printf 'FROM busybox-fixture:1.0\nFROBNICATE x\n' >"$T/bad-$mode/Containerfile"
    $run "$C" build "$T/bad-$mode" >/dev/null 2>"$T/err" && fail "an unknown instruction built"
    grep -q "line 2: unknown instruction FROBNICATE" "$T/err" || fail "unknown instruction: $(cat "$T/err")"
    $run "$C" system check >/dev/null 2>&1 || fail "system check after the builds ($mode)"

    note "GC drops cache entries whose layers no image keeps ($mode)"
    [[ -n $(ls "$data/build-cache") ]] || fail "no build cache entries"
    $run "$C" machine rm -f b-$mode >/dev/null || fail "rm machine ($mode)"
    $run "$C" image rm localhost/b1:$mode localhost/b2:$mode localhost/b3:$mode localhost/tiny:$mode localhost/add:$mode localhost/hostile:$mode \
        >/dev/null || fail "image rm ($mode)"
    $run "$C" image prune || fail "image prune ($mode)"
    # What is left is keyed on the busybox image's layer only (FROM, ARG, ENV steps).
    $run "$C" image rm busybox-fixture:1.0 >/dev/null || fail "image rm busybox ($mode)"
    [[ -z $(ls "$data/build-cache") ]] || fail "cache entries left after GC: $(ls "$data/build-cache" | wc -l)"
    [[ -z $(ls "$data/content/sha256") ]] || fail "blobs left after GC"
done
echo "PASS"
