# shellcheck shell=bash
# Container tooling for the images (deploy/images/build) and their test: Debian's buildah, podman,
# runc, docker-registry and mmdebstrap, with a configuration and an image store of our own under
# $VID2MP3_CACHE/containers, so nothing touches the machine's default store. Sourced after common.sh.

VID2MP3_CONTAINERS="${VID2MP3_CONTAINERS:-$VID2MP3_CACHE/containers}"

# Installs the tools (scripts/install images) and writes the configuration files; exports CONTAINERS_CONF and
# CONTAINERS_STORAGE_CONF so buildah and podman (and the tests they start) read them.
ensure_container_tools() {
  "$VID2MP3_ROOT/scripts/install" images
  mkdir -p "$VID2MP3_CONTAINERS"
  # podman's default ulimits raise the process's own limits, which this kind of machine refuses;
  # Debian's runc is the runtime (crun is not installed with --no-install-recommends).
  cat >"$VID2MP3_CONTAINERS/containers.conf" <<CONF
[containers]
default_ulimits = []

[engine]
runtime = "runc"

[engine.runtimes]
runc = ["/usr/sbin/runc"]
CONF
  cat >"$VID2MP3_CONTAINERS/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$VID2MP3_CONTAINERS/storage"
runroot = "$VID2MP3_CONTAINERS/run"
CONF
  export CONTAINERS_CONF="$VID2MP3_CONTAINERS/containers.conf"
  export CONTAINERS_STORAGE_CONF="$VID2MP3_CONTAINERS/storage.conf"
}
