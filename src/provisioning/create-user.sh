#!/bin/sh
# SPDX-License-Identifier: MIT
# Built-in first-boot provisioning (SPEC §7): makes the host user exist in the machine with the same
# name, uid, gid and home, a locked password and passwordless sudo, by editing /etc/passwd, /etc/group
# and /etc/shadow directly (no useradd: it is not in every image). Never touches a shared home.
# Input: CONTAINER_USER, CONTAINER_UID, CONTAINER_GID, CONTAINER_HOME, CONTAINER_MACHINE_ID,
# CONTAINER_SHELL (host login shell), CONTAINER_HOME_MOUNT (rw, ro or none).
set -eu

user=$CONTAINER_USER
uid=$CONTAINER_UID
gid=$CONTAINER_GID
home=$CONTAINER_HOME

# Login shell: the host's if the image has it, else the image's default for new users, else /bin/sh.
shell=${CONTAINER_SHELL:-}
if [ -z "$shell" ] || [ ! -x "$shell" ]; then
    shell=""
    if [ -r /etc/default/useradd ]; then
        shell=$(sed -n 's/^SHELL=//p' /etc/default/useradd | tail -n 1)
    fi
    [ -n "$shell" ] && [ -x "$shell" ] || shell=/bin/sh
fi

# Group: reuse the one holding the gid; else take over one with the user's name; else add it.
group=""
while IFS=: read -r n _ g _; do
    [ "$g" = "$gid" ] && { group=$n; break; }
done </etc/group
if [ -z "$group" ]; then
    group=$user
    if grep -q "^$user:" /etc/group; then
        tmp=/etc/group.machine-new
        while IFS=: read -r n p g m; do
            if [ "$n" = "$user" ]; then g=$gid; fi
            printf '%s:%s:%s:%s\n' "$n" "$p" "$g" "$m"
        done </etc/group >"$tmp"
        cat "$tmp" >/etc/group
        rm -f "$tmp"
    else
        printf '%s:x:%s:\n' "$user" "$gid" >>/etc/group
        if [ -f /etc/gshadow ] && ! grep -q "^$user:" /etc/gshadow; then printf '%s:!::\n' "$user" >>/etc/gshadow; fi
    fi
fi

# Account: the entry with the uid is taken over (renamed, rehomed); another entry with the name goes.
old=""
tmp=/etc/passwd.machine-new
found=""
while IFS=: read -r n p u g gecos h s; do
    [ -z "$n" ] && continue
    if [ "$u" = "$uid" ] && [ -z "$found" ]; then
        found=1
        old=$n
        printf '%s:x:%s:%s:%s:%s:%s\n' "$user" "$uid" "$gid" "${gecos:-$user}" "$home" "$shell"
    elif [ "$n" = "$user" ]; then
        continue
    else
        printf '%s:%s:%s:%s:%s:%s:%s\n' "$n" "$p" "$u" "$g" "$gecos" "$h" "$s"
    fi
done </etc/passwd >"$tmp"
[ -n "$found" ] || printf '%s:x:%s:%s:%s:%s:%s\n' "$user" "$uid" "$gid" "$user" "$home" "$shell" >>"$tmp"
cat "$tmp" >/etc/passwd
rm -f "$tmp"

# Group memberships follow a renamed account.
if [ -n "$old" ] && [ "$old" != "$user" ]; then
    tmp=/etc/group.machine-new
    while IFS=: read -r n p g m; do
        new_m=""
        oldifs=$IFS
        IFS=,
        for x in $m; do
            [ "$x" = "$old" ] && x=$user
            new_m=${new_m:+$new_m,}$x
        done
        IFS=$oldifs
        printf '%s:%s:%s:%s\n' "$n" "$p" "$g" "$new_m"
    done </etc/group >"$tmp"
    cat "$tmp" >/etc/group
    rm -f "$tmp"
fi

# A locked password (root keeps its own entry when the host user is root).
if [ -f /etc/shadow ] && [ "$uid" != 0 ]; then
    tmp=/etc/shadow.machine-new
    while IFS=: read -r n rest; do
        [ -z "$n" ] && continue
        [ "$n" = "$user" ] || [ "$n" = "$old" ] && continue
        printf '%s:%s\n' "$n" "$rest"
    done </etc/shadow >"$tmp"
    printf '%s:!:19000:0:99999:7:::\n' "$user" >>"$tmp"
    cat "$tmp" >/etc/shadow
    rm -f "$tmp"
fi

# Passwordless sudo; sudo ignores files in sudoers.d whose names contain dots.
if [ "$uid" != 0 ]; then
    mkdir -p /etc/sudoers.d
    f=/etc/sudoers.d/$(printf '%s' "$user" | tr . _)
    printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$user" >"$f"
    chmod 0440 "$f"
fi

# A home of its own only when the host home is not shared.
if [ "${CONTAINER_HOME_MOUNT:-rw}" = none ] && [ ! -e "$home" ]; then
    mkdir -p "$home"
    if [ -d /etc/skel ]; then cp -a /etc/skel/. "$home/"; fi
    chown -R "$uid:$gid" "$home"
    chmod 0750 "$home"
fi
echo "provisioned $user ($uid:$gid, group $group, home $home, shell $shell)"
