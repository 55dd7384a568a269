#!/bin/sh
# Writes a Redis ACL file to stdout from redis-users.conf (the first argument, default: beside
# this script). Each user's password comes from REDIS_PASSWORD_<USER>, where <USER> is the name
# after `vid2mp3-`, in capitals, `-` as `_` (vid2mp3-gateway: REDIS_PASSWORD_GATEWAY), and goes
# into the file only as its SHA-256 hash. {prefix} becomes REDIS_KEY_PREFIX (default vid2mp3:).
# The `default` user is disabled: every client logs in as its own user.
#
# POSIX sh with sed, tr and sha256sum only: it runs in the redis image (deploy/) and under
# scripts/services alike.
set -eu
rules="${1:-$(dirname "$0")/redis-users.conf}"
prefix="${REDIS_KEY_PREFIX:-vid2mp3:}"
case "$prefix" in
  '' | *[!A-Za-z0-9:._-]*)
    echo "redis-acl: REDIS_KEY_PREFIX='$prefix' must be letters, digits and : . _ - only" >&2
    exit 1
    ;;
esac
[ -r "$rules" ] || { echo "redis-acl: cannot read $rules" >&2; exit 1; }
echo "user default reset off"
while read -r user rest; do
  case "$user" in '' | '#'*) continue ;; esac
  var="REDIS_PASSWORD_$(printf '%s' "${user#vid2mp3-}" | tr 'a-z-' 'A-Z_')"
  eval "password=\${$var:-}"
  if [ -z "$password" ]; then
    echo "redis-acl: $var is not set; it is the password of the Redis user $user" >&2
    exit 1
  fi
  hash="$(printf '%s' "$password" | sha256sum | cut -d' ' -f1)"
  echo "user $user reset on #$hash $(printf '%s' "$rest" | sed "s/{prefix}/$prefix/g")"
done <"$rules"
