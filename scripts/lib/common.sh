# shellcheck shell=bash disable=SC2034
# Shared settings for scripts/*: where things live and which ports they use.
# Sourced, never run. Every value can be overridden from the environment.

set -euo pipefail

VID2MP3_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export VID2MP3_ROOT

# Service data, logs and pids stay inside the checkout (git-ignored) so two checkouts never share state.
VID2MP3_DATA="${VID2MP3_DATA:-$VID2MP3_ROOT/.data}"
VID2MP3_LOGS="$VID2MP3_DATA/logs"
VID2MP3_RUN="$VID2MP3_DATA/run"

# Tools we install ourselves (Python venv, Mailpit) and the cargo target directory live outside the
# checkout, so a fresh clone on the same machine (CI) reuses them instead of rebuilding for minutes.
VID2MP3_CACHE="${VID2MP3_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/vid2mp3}"
VID2MP3_VENV="${VID2MP3_VENV:-$VID2MP3_CACHE/venv}"
VID2MP3_BIN="${VID2MP3_BIN:-$VID2MP3_CACHE/bin}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$VID2MP3_CACHE/target}"

export VID2MP3_MYSQL_PORT="${VID2MP3_MYSQL_PORT:-3306}"
export VID2MP3_RABBITMQ_PORT="${VID2MP3_RABBITMQ_PORT:-5672}"
export VID2MP3_RABBITMQ_MANAGEMENT_PORT="${VID2MP3_RABBITMQ_MANAGEMENT_PORT:-15672}"
export VID2MP3_RABBITMQ_DIST_PORT="${VID2MP3_RABBITMQ_DIST_PORT:-25672}"
export VID2MP3_EPMD_PORT="${VID2MP3_EPMD_PORT:-4369}"
export VID2MP3_REDIS_PORT="${VID2MP3_REDIS_PORT:-6379}"
export VID2MP3_MONGO_PORT="${VID2MP3_MONGO_PORT:-27017}"
export VID2MP3_MAILPIT_SMTP_PORT="${VID2MP3_MAILPIT_SMTP_PORT:-1025}"
export VID2MP3_MAILPIT_HTTP_PORT="${VID2MP3_MAILPIT_HTTP_PORT:-8025}"

# Development passwords for the loopback-only services: made once per checkout, random, in
# .data/secrets/<name>.password (git-ignored, mode 0600), never committed. Real deployments take
# theirs from Secrets (deploy/).
VID2MP3_SECRETS="$VID2MP3_DATA/secrets"

# Prints the password named NAME, making it (40 hex digits) the first time it is asked for.
dev_password() {
  local file="$VID2MP3_SECRETS/$1.password"
  if [ ! -s "$file" ]; then
    mkdir -p "$VID2MP3_SECRETS"
    chmod 700 "$VID2MP3_SECRETS"
    (umask 077 && od -An -tx1 -N20 /dev/urandom | tr -d ' \n' >"$file")
  fi
  cat "$file"
}

# Least privilege (README "Accounts"): MySQL has one account per service, with rights on its own
# database only (vid2mp3_<service>, same name as the database), one for the migrations, and the
# tests' account, which may create throwaway databases vid2mp3_t_* and accounts confined to them.
# Redis has one ACL user per service (deploy/k8s/base/data/redis-users.conf) and an admin.
MYSQL_SERVICES=(auth gateway notifier)
export VID2MP3_MYSQL_USER="${VID2MP3_MYSQL_USER:-vid2mp3_tests}"
export VID2MP3_MYSQL_PASSWORD="${VID2MP3_MYSQL_PASSWORD:-$(dev_password "mysql-$VID2MP3_MYSQL_USER")}"
REDIS_ACL_SCRIPT="$VID2MP3_ROOT/deploy/k8s/base/data/redis-acl.sh"
REDIS_USERS_FILE="$VID2MP3_ROOT/deploy/k8s/base/data/redis-users.conf"

# `mysql://USER:PASSWORD@127.0.0.1:PORT[/DATABASE]` of a development MySQL account.
mysql_dev_url() {
  echo "mysql://$1:$(dev_password "mysql-$1")@127.0.0.1:$VID2MP3_MYSQL_PORT${2:+/$2}"
}

# `redis://USER:PASSWORD@127.0.0.1:PORT` of a development Redis user (vid2mp3-gateway, ...).
redis_dev_url() {
  echo "redis://$1:$(dev_password "redis-$1")@127.0.0.1:$VID2MP3_REDIS_PORT"
}

# What the programs and tests read: the tests' MySQL account, the migrations' account and Redis's
# admin (the test harness makes per-test service accounts and users with them).
export VID2MP3_MYSQL_URL="${VID2MP3_MYSQL_URL:-mysql://$VID2MP3_MYSQL_USER:$VID2MP3_MYSQL_PASSWORD@127.0.0.1:$VID2MP3_MYSQL_PORT}"
export VID2MP3_MYSQL_MIGRATE_URL="${VID2MP3_MYSQL_MIGRATE_URL:-$(mysql_dev_url vid2mp3_migrate)}"
export VID2MP3_AMQP_URL="${VID2MP3_AMQP_URL:-amqp://guest:guest@127.0.0.1:$VID2MP3_RABBITMQ_PORT/%2f}"
export VID2MP3_RABBITMQ_MANAGEMENT_URL="${VID2MP3_RABBITMQ_MANAGEMENT_URL:-http://guest:guest@127.0.0.1:$VID2MP3_RABBITMQ_MANAGEMENT_PORT}"
export VID2MP3_REDIS_URL="${VID2MP3_REDIS_URL:-$(redis_dev_url vid2mp3-admin)}"
export VID2MP3_MONGO_URL="${VID2MP3_MONGO_URL:-mongodb://127.0.0.1:$VID2MP3_MONGO_PORT}"
export VID2MP3_MAILPIT_URL="${VID2MP3_MAILPIT_URL:-http://127.0.0.1:$VID2MP3_MAILPIT_HTTP_PORT}"


log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[33mwarning:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Root runs apt directly; anyone else needs sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages that are missing; a no-op when all are present.
apt_install() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  # Update the lists at most once per script run: a fresh machine has none, an old one stale ones.
  if [ -z "${VID2MP3_APT_UPDATED:-}" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    VID2MP3_APT_UPDATED=1
  fi
  # policy-rc.d keeps postinst scripts from trying (and failing) to start daemons: we start them ourselves.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Makes sure the pinned toolchain and its wasm32-wasip2 target exist (rust-toolchain.toml names both).
ensure_rust() {
  command -v rustup >/dev/null || die "rustup is not installed; install it from your distribution or rustup.rs first"
  (cd "$VID2MP3_ROOT" && rustup toolchain install >/dev/null 2>&1) ||
    (cd "$VID2MP3_ROOT" && rustup toolchain install) ||
    die "could not install the Rust toolchain named in rust-toolchain.toml (with the wasm32-wasip2 target)"
  (cd "$VID2MP3_ROOT" && rustup target list --installed | grep -qx wasm32-wasip2) ||
    die "the wasm32-wasip2 target is not installed and rustup could not add it; the Spin components cannot be built without it"
}

# cargo writes to the shared target directory; ./target points at it so spin.toml's relative
# `source` paths (the same ones `spin build` produces) resolve for runtime-host and the Spin CLI alike.
link_target_dir() {
  mkdir -p "$CARGO_TARGET_DIR"
  if [ -L "$VID2MP3_ROOT/target" ] || [ ! -e "$VID2MP3_ROOT/target" ]; then
    ln -sfn "$CARGO_TARGET_DIR" "$VID2MP3_ROOT/target"
  elif [ "$(cd "$VID2MP3_ROOT/target" && pwd -P)" != "$(cd "$CARGO_TARGET_DIR" && pwd -P)" ]; then
    # A real ./target from a plain `cargo build`: keep using it rather than deleting someone's build.
    export CARGO_TARGET_DIR="$VID2MP3_ROOT/target"
  fi
}

# Where deploy/tests' Kubernetes binaries live once built (scripts/install deploy): named by the
# Kubernetes version and a hash of the go.mod/go.sum files that pin them, so a bump builds again.
kubernetes_bin_dir() {
  local tools="$VID2MP3_ROOT/deploy/tests/tools" hash version
  hash="$(cat "$tools"/kubernetes/go.mod "$tools"/kubernetes/go.sum "$tools"/etcd/go.mod "$tools"/etcd/go.sum | sha256sum | cut -c1-16)"
  version="$(cd "$tools/kubernetes" && GOFLAGS=-mod=readonly go list -m -f '{{.Version}}' k8s.io/kubernetes)"
  echo "$VID2MP3_CACHE/k8s/$version-$hash/bin"
}

# A full build and test run writes about BUILD_DISK_GB to the target directory, and RabbitMQ
# stops taking messages when its disk runs low, which hangs whatever publishes. Short of space, this
# says so and what could go; it deletes nothing unless asked with VID2MP3_PRUNE_BUILDS=1 (.ci/run
# asks: a CI machine's target directory is nobody's work). Pruning removes first what is rebuilt by
# linking alone (test and program binaries, incremental caches), and the whole debug build only if
# that was not enough.
BUILD_DISK_GB=25
free_disk_gb() { df -P -BG "$CARGO_TARGET_DIR" | awk 'NR == 2 { sub("G", "", $4); print $4 }'; }
ensure_disk_space() {
  local free_gb
  free_gb="$(free_disk_gb)"
  log "free disk space: ${free_gb} GB"
  [ "$free_gb" -lt "$BUILD_DISK_GB" ] || return 0
  if [ "${VID2MP3_PRUNE_BUILDS:-0}" = 1 ] && [ -d "$CARGO_TARGET_DIR/debug" ]; then
    log "under ${BUILD_DISK_GB} GB free, and VID2MP3_PRUNE_BUILDS=1: removing linked binaries and incremental caches in $CARGO_TARGET_DIR/debug"
    rm -rf "$CARGO_TARGET_DIR/debug/incremental"
    find "$CARGO_TARGET_DIR/debug/deps" -maxdepth 1 -type f -perm -u+x ! -name '*.so' ! -name '*.rlib' -delete
    free_gb="$(free_disk_gb)"
    if [ "$free_gb" -lt "$BUILD_DISK_GB" ]; then
      log "still ${free_gb} GB: removing $CARGO_TARGET_DIR/debug (the next build starts cold)"
      rm -rf "$CARGO_TARGET_DIR/debug"
      free_gb="$(free_disk_gb)"
    fi
    log "free disk space now: ${free_gb} GB"
    return 0
  fi
  warn "only ${free_gb} GB free where the build goes; a full build and test run needs about ${BUILD_DISK_GB} GB"
  warn "what could go, largest first (old test binaries of earlier commits are what fill a long-lived target directory):"
  du -sh "$CARGO_TARGET_DIR"/*/ "$VID2MP3_CACHE"/containers "$VID2MP3_DATA" 2>/dev/null | sort -rh | head -n 8 | sed 's/^/    /' >&2 || true
  warn "to free it: VID2MP3_PRUNE_BUILDS=1 scripts/test (removes linked binaries first, rebuilt in minutes), or 'cargo clean' (all of it); carrying on"
}

# Every workspace package with a cdylib target is a Spin component (or a test fixture of one).
wasm_packages() {
  (cd "$VID2MP3_ROOT" && cargo metadata --format-version 1 --no-deps) |
    python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    if any("cdylib" in t["crate_types"] for t in p["targets"]):
        print(p["name"])
'
}

# `-p NAME` for each component package, for cargo.
wasm_package_args() {
  local pkg
  for pkg in $(wasm_packages); do printf -- '-p\n%s\n' "$pkg"; done
}

build_components() {
  local args
  mapfile -t args < <(wasm_package_args)
  [ ${#args[@]} -gt 0 ] || die "found no component packages in the workspace"
  log "building the Wasm components: $(wasm_packages | tr '\n' ' ')"
  (cd "$VID2MP3_ROOT" && cargo build --locked --target wasm32-wasip2 --profile component "${args[@]}")
}

# Secrets for a development install, made once per checkout under .data/secrets (git-ignored,
# mode 0600) and exported where the platform reads them: auth's Ed25519 signing key, the public
# key set the gateway checks tokens with, the token of the converter's storage API, and each
# component's MySQL and Redis URL with its own account's password (VID2MP3_CONVERTER_REDIS_URL
# for the converter). All of it is also written to .data/secrets/spin.env.
ensure_dev_secrets() {
  local dir="$VID2MP3_DATA/secrets"
  mkdir -p "$dir"
  chmod 700 "$dir"
  command -v openssl >/dev/null || die "openssl is missing: run scripts/install"
  if [ ! -s "$dir/token-signing-key" ]; then
    log "making a token signing key (Ed25519) in $dir"
    (umask 077 && openssl genpkey -algorithm ed25519 -outform DER | base64 -w0 >"$dir/token-signing-key")
  fi
  local x
  # The raw public key is the last 32 bytes of its DER form; JWKS wants it base64url, unpadded.
  x="$(base64 -d <"$dir/token-signing-key" | openssl pkey -inform DER -pubout -outform DER |
    tail -c 32 | base64 -w0 | tr '+/' '-_' | tr -d '=')"
  printf '{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"dev-1","x":"%s"}]}' "$x" \
    >"$dir/token-public-keys.json"
  if [ ! -s "$dir/storage-token" ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=' >"$dir/storage-token")
  fi
  SPIN_VARIABLE_TOKEN_SIGNING_KEY="$(cat "$dir/token-signing-key")"
  SPIN_VARIABLE_TOKEN_KEY_ID=dev-1
  SPIN_VARIABLE_TOKEN_PUBLIC_KEYS="$(cat "$dir/token-public-keys.json")"
  SPIN_VARIABLE_STORAGE_TOKEN="$(cat "$dir/storage-token")"
  VID2MP3_STORAGE_TOKEN="$SPIN_VARIABLE_STORAGE_TOKEN"
  export SPIN_VARIABLE_TOKEN_SIGNING_KEY SPIN_VARIABLE_TOKEN_KEY_ID SPIN_VARIABLE_TOKEN_PUBLIC_KEYS \
    SPIN_VARIABLE_STORAGE_TOKEN VID2MP3_STORAGE_TOKEN
  # Each component's own MySQL account and Redis user; the converter's Redis user.
  local service upper
  for service in "${MYSQL_SERVICES[@]}"; do
    upper="$(echo "$service" | tr '[:lower:]' '[:upper:]')"
    export "SPIN_VARIABLE_${upper}_DB_URL=$(mysql_dev_url "vid2mp3_$service" "vid2mp3_$service")"
    export "SPIN_VARIABLE_${upper}_REDIS_URL=$(redis_dev_url "vid2mp3-$service")"
  done
  export SPIN_VARIABLE_MYSQL_HOST="127.0.0.1:$VID2MP3_MYSQL_PORT"
  export SPIN_VARIABLE_REDIS_HOST="127.0.0.1:$VID2MP3_REDIS_PORT"
  VID2MP3_CONVERTER_REDIS_URL="$(redis_dev_url vid2mp3-converter)"
  # The same, for `spin up` by hand: `set -a; . .data/secrets/spin.env; set +a` (README).
  (
    umask 077
    for name in $(compgen -e | grep -E '^SPIN_VARIABLE_'); do
      printf '%s=%q\n' "$name" "${!name}"
    done
    printf 'VID2MP3_STORAGE_TOKEN=%q\nVID2MP3_REDIS_URL=%q\n' "$VID2MP3_STORAGE_TOKEN" "$VID2MP3_CONVERTER_REDIS_URL"
  ) >"$dir/spin.env"
}

# sign_up_confirmed BASE_URL EMAIL PASSWORD: an account that can log in, made as a person makes one
# (the benchmarks use it): POST /api/v1/users, then the token from the confirmation email (read
# through Mailpit's API at $VID2MP3_MAILPIT_URL; the platform's mail must go there) posted to
# /api/v1/users/confirmation.
sign_up_confirmed() {
  local base="$1" email="$2" password="$3" token="" i
  curl -fsS -X POST "$base/api/v1/users" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}" >/dev/null ||
    die "signing up $email at $base failed"
  for i in $(seq 1 150); do
    token="$(curl -fsS --get "$VID2MP3_MAILPIT_URL/api/v1/search" --data-urlencode "query=to:\"$email\"" |
      python3 -c '
import json, re, sys, urllib.request
base = sys.argv[1]
for m in json.load(sys.stdin).get("messages") or []:
    if m["Subject"].startswith("Confirm your email"):
        text = json.load(urllib.request.urlopen(base + "/api/v1/message/" + m["ID"]))["Text"]
        found = re.search(r"/confirm#token=([A-Za-z0-9_-]+)", text)
        if found:
            print(found.group(1))
            break
' "$VID2MP3_MAILPIT_URL")"
    [ -n "$token" ] && break
    [ "$i" -eq 150 ] && die "no confirmation email reached $email within 30 s (is the notifier running? Mailpit: $VID2MP3_MAILPIT_URL)"
    sleep 0.2
  done
  curl -fsS -X POST "$base/api/v1/users/confirmation" -H 'content-type: application/json' \
    -d "{\"token\":\"$token\"}" >/dev/null || die "confirming $email failed"
}
