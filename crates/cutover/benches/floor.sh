#!/usr/bin/env bash
# The floor a deploy tool is measured against: the same work as cutover's,
# done by hand. One ssh per host, all hosts in parallel (OpenSSH
# multiplexing on), each running one script.
#
#   deploy: update the git mirror, archive the commit into a new release,
#           link shared/, composer install, REVISION, flip current
#           atomically, reload PHP-FPM, prune to 5.
#   rollback: flip current atomically to a release already on the host,
#           reload PHP-FPM, log it.
#   connect: nothing (`true`): what the SSH handshakes alone cost.
#
# The build defaults to the `php` recipe's (composer install). For the Laravel
# application the bench sets, from the `laravel` recipe:
#   FLOOR_BUILD  the build, in the release (composer install, artisan optimize)
#   FLOOR_ONCE   on the first host only, in the release, before its flip
#                (migrate)
#   FLOOR_AFTER  on the first host only, after its flip or rollback
#                (queue:restart)
#   FLOOR_SEED=1 start vendor/ from a copy of the live release's, as
#                cutover's `reuse: vendor` does when composer.lock is unchanged
#
# usage: floor.sh deploy <key> <known_hosts> <release id> <commit> <port>...
#        floor.sh rollback <key> <known_hosts> <release id> <port>...
#        floor.sh connect <key> <known_hosts> - <port>...
set -euo pipefail
mode=$1 key=$2 known=$3 release=$4
shift 4
control=$(mktemp -d /tmp/floor.XXXXXX)
trap 'for s in "$control"/*; do [ -S "$s" ] && ssh -o ControlPath="$s" -O exit x 2>/dev/null; done; rm -rf "$control"' EXIT

case $mode in
deploy)
  commit=$1
  shift
  work='set -e
d=/var/www/app; r='"$release"'; c='"$commit"'; rel=$d/releases/$r
mkdir -p "$d/releases" "$d/shared/storage" "$rel"
if [ -d "$d/repo" ]; then git -C "$d/repo" remote update --prune >/dev/null; else git clone --mirror --quiet /srv/git/app.git "$d/repo"; fi
git -C "$d/repo" archive --format=tar -o "$rel.tar" "$c"
tar -x -f "$rel.tar" -C "$rel"; rm -f "$rel.tar"
rm -rf "$rel/storage"; ln -s "$d/shared/storage" "$rel/storage"
if [ -e "$d/shared/.env" ]; then ln -sfn "$d/shared/.env" "$rel/.env"; fi
cd "$rel"
if [ -n "'"${FLOOR_SEED:-}"'" ] && [ -d "$d/current/vendor" ]; then cp -a "$d/current/vendor" vendor; fi
'"${FLOOR_BUILD:-composer install --no-dev --optimize-autoloader --no-interaction --prefer-dist --quiet}"'
if [ -n "$once" ]; then '"${FLOOR_ONCE:-true}"'; fi
echo "$c" > "$rel/REVISION"
ln -sfn "releases/$r" "$d/current-tmp"; mv -T "$d/current-tmp" "$d/current"
sudo /usr/local/sbin/reload-php-fpm
if [ -n "$once" ]; then '"${FLOOR_AFTER:-true}"'; fi
cd "$d/releases"; ls -1 | sort | head -n -5 | while read -r old; do [ "$d/releases/$old" != "$(readlink -f "$d/current")" ] && rm -rf "$old"; done; true'
  ;;
rollback)
  work='set -e
d=/var/www/app; r='"$release"'
[ -d "$d/releases/$r" ]
ln -sfn "releases/$r" "$d/current-tmp"; mv -T "$d/current-tmp" "$d/current"
sudo /usr/local/sbin/reload-php-fpm
echo "rollback $r" >> "$d/revisions.log"
if [ -n "$once" ]; then cd "$d/current"; '"${FLOOR_AFTER:-true}"'; fi'
  ;;
connect)
  work=true
  ;;
*)
  echo "floor.sh: unknown mode $mode (deploy, rollback or connect)" >&2
  exit 2
  ;;
esac

first=$1
for port in "$@"; do
  once=; [ "$port" = "$first" ] && once=1
  ssh -q -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$known" -i "$key" \
      -o ControlMaster=auto -o ControlPath="$control/%C" -o ControlPersist=30 \
      -p "$port" deploy@127.0.0.1 "once=$once; $work" &
done
status=0
for job in $(jobs -p); do wait "$job" || status=1; done
exit $status
