# syntax=docker/dockerfile:1
# The native programs: the converter sidecar and the migration runner, from one build stage.
# Build from the repository root, one target each:
#
#   docker build -f deploy/images/native.Dockerfile --target converter -t vid2mp3/converter:dev .
#   docker build -f deploy/images/native.Dockerfile --target migrate   -t vid2mp3/migrate:dev .
#
# Both run as an unprivileged user (uid 10001) and need nothing writable but /tmp, so Kubernetes can
# mount the root filesystem read-only.

ARG DEBIAN_RELEASE=bookworm

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
    cargo build --locked --release -p vid2mp3-converter -p vid2mp3-migrations \
    && mkdir -p /out \
    && cp target/release/vid2mp3-converter target/release/vid2mp3-migrate /out/

# The converter: the storage API, job worker, transcoder and event relay. Debian's ffmpeg is its fallback
# decoder for what the pure-Rust fast path does not take (see converter/README.md).
FROM debian:${DEBIAN_RELEASE}-slim AS converter
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 vid2mp3 \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vid2mp3
COPY --from=build /out/vid2mp3-converter /usr/local/bin/vid2mp3-converter
USER 10001:10001
ENV VID2MP3_STORAGE_LISTEN=0.0.0.0:8081
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/vid2mp3-converter"]
CMD ["serve"]

# The migration runner: applies each service's MySQL schema (VID2MP3_MYSQL_URL), then exits.
FROM debian:${DEBIAN_RELEASE}-slim AS migrate
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 vid2mp3 \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vid2mp3
COPY --from=build /out/vid2mp3-migrate /usr/local/bin/vid2mp3-migrate
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/vid2mp3-migrate"]
