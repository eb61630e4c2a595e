#!/usr/bin/env bash
# Build the fleet-test host image (Debian bookworm + sshd + nginx + php-fpm)
# without any container registry: debootstrap a rootfs from the machine's own
# Debian mirror and `docker import` it.
#
# Prints the image tag (cutover-test-host:<hash>) as the last line of stdout;
# all progress output goes to stderr. The hash covers every file under
# tests/image/, so the image is built once per machine and rebuilt when any
# input changes. Safe to call from parallel test processes (flock).
#
# Environment:
#   CUTOVER_TEST_MIRROR  Debian mirror URI to use instead of the one read from
#                        the apt sources of this machine.
#   TMPDIR               where the lock file and the temporary rootfs live.
set -euo pipefail

readonly SUITE=bookworm
readonly IMAGE_REPO=cutover-test-host
readonly PACKAGES=(
    openssh-server
    php8.2-fpm php8.2-cli php8.2-sqlite3 php8.2-opcache
    nginx-light
    git composer sudo tini ca-certificates curl procps tar
)
# Installed with apt inside the rootfs (debootstrap's resolver does not follow
# virtual packages): what a real framework application needs. Laravel 8 and
# Symfony 5.4 as Debian packages, PHP's database and string extensions,
# MariaDB (the database container runs this same image), and cgi-fcgi.
readonly APP_PACKAGES=(
    php-laravel-framework
    php-symfony-framework-bundle php-symfony-dotenv php-symfony-runtime php-symfony-yaml
    php8.2-mysql php8.2-mbstring php8.2-xml php8.2-curl
    mariadb-server mariadb-client libfcgi-bin
)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf 'build.sh: %s\n' "$*" >&2; }

# --- 1. input hash -----------------------------------------------------------
input_hash() {
    (
        cd "$here"
        find . -type f ! -name '*.swp' ! -name '*~' -print0 | LC_ALL=C sort -z |
            while IFS= read -r -d '' f; do
                mode=-; [[ -x $f ]] && mode=x
                printf '%s %s %s\n' "$(sha256sum < "$f" | cut -d' ' -f1)" "$mode" "$f"
            done
    ) | sha256sum | cut -c1-12
}

tag="${IMAGE_REPO}:$(input_hash)"

have_image() { docker image inspect "$tag" > /dev/null 2>&1; }

if have_image; then
    printf '%s\n' "$tag"
    exit 0
fi

# --- 2. lock -----------------------------------------------------------------
lockfile="${TMPDIR:-/tmp}/${IMAGE_REPO}.lock"
exec 9> "$lockfile"
log "waiting for lock $lockfile"
flock 9

if have_image; then
    log "built by another process meanwhile"
    printf '%s\n' "$tag"
    exit 0
fi

log "building $tag"
start=$SECONDS

# --- 3. debootstrap ----------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive
if ! command -v debootstrap > /dev/null 2>&1; then
    log "installing debootstrap"
    if ! apt-get install -y -q --no-install-recommends debootstrap >&2; then
        apt-get update -q >&2
        apt-get install -y -q --no-install-recommends debootstrap >&2
    fi
fi

# --- 4. mirror from this machine's apt sources ---------------------------------
# Prints the first URI of a `deb` entry whose suite is exactly $SUITE.
mirror_from_deb822() {
    awk -v suite="$SUITE" '
        function flush() {
            if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") &&
                enabled != "no" && uris != "") {
                split(uris, u, " "); print u[1]; found = 1; exit
            }
            types = ""; suites = ""; uris = ""; enabled = ""; field = ""
        }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        /^[ \t]/ {                     # continuation line
            v = $0; gsub(/^[ \t]+|[ \t]+$/, "", v)
            if (field == "types") types = types " " v
            else if (field == "suites") suites = suites " " v
            else if (field == "uris") uris = uris " " v
            next
        }
        {
            i = index($0, ":"); if (!i) next
            k = tolower(substr($0, 1, i - 1)); v = substr($0, i + 1)
            gsub(/^[ \t]+|[ \t]+$/, "", v); field = k
            if (k == "types") types = v
            else if (k == "suites") suites = v
            else if (k == "uris") uris = v
            else if (k == "enabled") enabled = tolower(v)
        }
        END { if (!found) flush() }
    ' "$@"
}

mirror_from_one_line() {
    awk -v suite="$SUITE" '
        /^[ \t]*#/ { next }
        $1 == "deb" {
            n = 2
            if ($n ~ /^\[/) { while (n <= NF && $n !~ /\]$/) n++; n++ }
            if ($(n + 1) == suite) { print $n; exit }
        }
    ' "$@"
}

find_mirror() {
    local m="" f
    shopt -s nullglob
    for f in /etc/apt/sources.list.d/*.sources; do
        m="$(mirror_from_deb822 "$f")"
        [[ -n $m ]] && break
    done
    if [[ -z $m ]]; then
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [[ -r $f ]] || continue
            m="$(mirror_from_one_line "$f")"
            [[ -n $m ]] && break
        done
    fi
    shopt -u nullglob
    printf '%s' "$m"
}

mirror="${CUTOVER_TEST_MIRROR:-$(find_mirror)}"
if [[ -z $mirror ]]; then
    log "no apt source for suite $SUITE found in /etc/apt/sources.list{,.d/*}; set CUTOVER_TEST_MIRROR"
    exit 1
fi
log "mirror: $mirror"

# --- 5. rootfs ---------------------------------------------------------------
workdir="$(mktemp -d "${TMPDIR:-/tmp}/${IMAGE_REPO}.XXXXXX")"
cleanup() {
    # Never follow mounts into the host: nothing is mounted in the rootfs, but
    # be defensive anyway.
    if [[ -d $workdir ]]; then
        for m in proc sys dev/pts dev; do
            mountpoint -q "$workdir/rootfs/$m" 2> /dev/null && umount -l "$workdir/rootfs/$m" || true
        done
        rm -rf --one-file-system "$workdir"
    fi
}
trap cleanup EXIT
rootfs="$workdir/rootfs"

include="$(IFS=,; printf '%s' "${PACKAGES[*]}")"
log "debootstrap $SUITE (minbase + $include)"
debootstrap --variant=minbase --include="$include" "$SUITE" "$rootfs" "$mirror" >&2

# --- 6. configure ------------------------------------------------------------
in_root() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

log "apt-get install ${APP_PACKAGES[*]}"
# No service starts inside the chroot.
printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
mount -t proc proc "$rootfs/proc"
in_root DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
in_root DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${APP_PACKAGES[@]}" >&2
umount "$rootfs/proc"
rm -f "$rootfs/usr/sbin/policy-rc.d"
test -f "$rootfs/usr/share/php/Illuminate/autoload.php"

log "configuring rootfs"
rm -f "$rootfs"/etc/nginx/sites-enabled/default

# Our files (permissions are set explicitly below; git does not keep them).
cp -a --no-preserve=ownership "$here/rootfs/." "$rootfs/"
ln -sf ../../mods-available/cutover.ini "$rootfs/etc/php/8.2/fpm/conf.d/99-cutover.ini"

# deploy user: "*" (no password, not locked) so sshd without PAM accepts it.
in_root useradd --uid 1000 --user-group --create-home --home-dir /home/deploy \
    --shell /bin/bash deploy
in_root usermod --password '*' deploy
# In www-data's group: it may connect to the FPM sockets (listen.group).
in_root usermod -a -G www-data deploy
grep -q '^deploy:\*:' "$rootfs/etc/shadow"

install -d -m 0755 "$rootfs/var/www"
install -d -m 0755 "$rootfs/var/www/app"
in_root chown deploy:deploy /var/www/app

# php-fpm: one pid file for the entrypoint and the reload script; give
# in-flight requests time to finish on reload.
fpmconf="$rootfs/etc/php/8.2/fpm/php-fpm.conf"
sed -i -E 's|^;?[[:space:]]*pid[[:space:]]*=.*|pid = /run/php/php-fpm.pid|' "$fpmconf"
sed -i -E '/^;?[[:space:]]*process_control_timeout[[:space:]]*=/d' "$fpmconf"
sed -i -E 's|^\[global\][[:space:]]*$|[global]\nprocess_control_timeout = 10s|' "$fpmconf"
grep -q '^process_control_timeout = 10s$' "$fpmconf"
grep -q '^pid = /run/php/php-fpm.pid$' "$fpmconf"

# git: repositories mounted from outside belong to another uid.
printf '[safe]\n\tdirectory = *\n' > "$rootfs/etc/gitconfig"

chown -R 0:0 "$rootfs/etc/ssh/sshd_config" "$rootfs/etc/nginx/conf.d" \
    "$rootfs/etc/php/8.2/fpm/pool.d" "$rootfs/etc/php/8.2/mods-available/cutover.ini" \
    "$rootfs/etc/sudoers.d/deploy" "$rootfs/usr/local/sbin/reload-php-fpm" \
    "$rootfs/usr/local/bin/cutover-host-entrypoint" "$rootfs/usr/local/bin/cutover-queue-worker" \
    "$rootfs/etc/gitconfig" "$rootfs/etc/php/8.2/fpm/colors" "$rootfs/usr/local/sbin/php-fpm-color"
chmod 0644 "$rootfs/etc/ssh/sshd_config" "$rootfs/etc/nginx/conf.d/cutover.conf" \
    "$rootfs/etc/php/8.2/fpm/pool.d/www.conf" "$rootfs/etc/php/8.2/mods-available/cutover.ini" \
    "$rootfs/etc/gitconfig"
chmod 0440 "$rootfs/etc/sudoers.d/deploy"
chmod 0644 "$rootfs"/etc/php/8.2/fpm/colors/*.conf
chmod 0755 "$rootfs/usr/local/sbin/php-fpm-color" "$rootfs/usr/local/sbin/reload-php-fpm" "$rootfs/usr/local/bin/cutover-host-entrypoint" \
    "$rootfs/usr/local/bin/cutover-queue-worker"
touch "$rootfs/var/log/php-fpm-reloads.log"
chmod 0644 "$rootfs/var/log/php-fpm-reloads.log"

# Sanity checks of the configuration inside the rootfs.
in_root visudo -c -f /etc/sudoers.d/deploy >&2
in_root nginx -t >&2
in_root php-fpm8.2 -t >&2

# Host keys are generated per container by the entrypoint.
rm -f "$rootfs"/etc/ssh/ssh_host_*

# Keep the image small; no device nodes or runtime state in the image.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/apt/* "$rootfs"/var/log/*.log.* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/tmp/* "$rootfs"/dev/*
: > "$rootfs/var/log/php-fpm-reloads.log"
chmod 0644 "$rootfs/var/log/php-fpm-reloads.log"

# --- 7. import ---------------------------------------------------------------
log "importing into docker as $tag"
tar --numeric-owner -C "$rootfs" -c . |
    docker import \
        --change 'ENTRYPOINT ["/usr/bin/tini","--","/usr/local/bin/cutover-host-entrypoint"]' \
        --change 'EXPOSE 22 80 3306' \
        --change 'ENV LANG=C.UTF-8' \
        --message "cutover fleet-test host ($SUITE)" \
        - "$tag" >&2

log "built $tag in $((SECONDS - start))s"
printf '%s\n' "$tag"
