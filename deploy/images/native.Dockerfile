# syntax=docker/dockerfile:1
# The native programs: the converter sidecar, the migration runner and runtime-host (the image a
# `spinImage` SpinAppExecutor runs), from one build stage. Build from the repository root, one
# target each:
#
#   docker build -f deploy/images/native.Dockerfile --target converter    -t vid2mp3/converter:dev .
#   docker build -f deploy/images/native.Dockerfile --target migrate      -t vid2mp3/migrate:dev .
#   docker build -f deploy/images/native.Dockerfile --target runtime-host -t vid2mp3/runtime-host:dev .
#
# All run as an unprivileged user (uid 10001) and need nothing writable but /tmp, so Kubernetes can
# mount the root filesystem read-only.
#
# deploy/images/build (buildah, no Docker, no base image pulled) uses the same targets with
# prebuilt binaries and Debian bases made by mmdebstrap:
#   --build-arg BINARIES=prebuilt        the binaries from the context's bin/ (no Rust stage runs)
#   --build-arg CONVERTER_BASE=IMAGE     a base with ffmpeg, ca-certificates and the user 10001
#   --build-arg RUNTIME_BASE=IMAGE       a base with ca-certificates and the user 10001

ARG DEBIAN_RELEASE=bookworm
# Where the binaries come from: `build` compiles them below, `prebuilt` copies them from bin/.
ARG BINARIES=build
# What the images start from: the stages below, or images with the same contents.
ARG CONVERTER_BASE=converter-base
ARG RUNTIME_BASE=runtime-base

FROM rust:1.95.0-${DEBIAN_RELEASE} AS build
# cmake builds the bundled libopus (opusic-sys); LAME (mp3lame-sys) needs only the autotools and the C
# compiler that the rust image already has.
# Package versions are left to the Debian release named above (pinning them breaks on every point release).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# rust-toolchain.toml pins the compiler (and the components and target the workspace uses).
COPY rust-toolchain.toml ./
RUN rustup toolchain install
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release -p vid2mp3-converter -p vid2mp3-migrations -p runtime-host \
    && mkdir -p /out \
    && cp target/release/vid2mp3-converter target/release/vid2mp3-migrate target/release/runtime-host /out/

# Binaries built elsewhere (deploy/images/build passes a context holding bin/).
FROM scratch AS prebuilt
COPY bin/ /out/

FROM ${BINARIES} AS binaries

# The bases, for builds that do not bring their own (see the top).
FROM debian:${DEBIAN_RELEASE}-slim AS converter-base
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 vid2mp3 \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vid2mp3

FROM debian:${DEBIAN_RELEASE}-slim AS runtime-base
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 vid2mp3 \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vid2mp3

# The converter: the storage API, job worker, transcoder and event relay. Debian's ffmpeg is its fallback
# decoder for what the pure-Rust fast path does not take (see converter/README.md).
# hadolint ignore=DL3006
FROM ${CONVERTER_BASE} AS converter
COPY --from=binaries /out/vid2mp3-converter /usr/local/bin/vid2mp3-converter
USER 10001:10001
ENV VID2MP3_STORAGE_LISTEN=0.0.0.0:8081
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/vid2mp3-converter"]
CMD ["serve"]

# The migration runner: applies each service's MySQL schema (VID2MP3_MYSQL_URL), then exits.
# hadolint ignore=DL3006
FROM ${RUNTIME_BASE} AS migrate
COPY --from=binaries /out/vid2mp3-migrate /usr/local/bin/vid2mp3-migrate
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/vid2mp3-migrate"]

# runtime-host as a SpinAppExecutor's `spinImage` (deploy/k8s/overlays/spin-image): spin-operator
# gives it `up --listen 0.0.0.0:80 -f <app image> --runtime-config-file /runtime-config.toml
# [--component-id ID]...`, and it pulls the app image itself. Pulled apps are cached under
# $XDG_CACHE_HOME, on /tmp so the root filesystem can stay read-only. Port 80 as uid 10001 works
# in a pod (containerd lets unprivileged processes bind low ports in the pod's network namespace).
# hadolint ignore=DL3006
FROM ${RUNTIME_BASE} AS runtime-host
COPY --from=binaries /out/runtime-host /usr/local/bin/runtime-host
USER 10001:10001
ENV XDG_CACHE_HOME=/tmp/.cache
EXPOSE 80
ENTRYPOINT ["/usr/local/bin/runtime-host"]
CMD ["up", "--help"]
