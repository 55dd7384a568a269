# syntax=docker/dockerfile:1
# The Spin application (gateway, auth, notifier) as an OCI image that containerd-shim-spin runs, built
# without the Spin CLI. Build from the repository root:
#
#   docker build -f deploy/images/spin-app.Dockerfile -t vid2mp3/spin-app:dev .
#
# How the shim reads it (containerd-shim-spin v0.23 and v0.24, Spin 3.6 inside): an image whose layers are
# ordinary filesystem layers (not the `application/vnd.fermyon.spin.application.v1+config` artifact that
# `spin registry push` makes) is unpacked as a root filesystem; the shim then loads the manifest from the
# fixed path `/spin.toml` and resolves each component's `source` relative to `/`. So this image is
# nothing but `/spin.toml` plus every `.wasm` at exactly the path spin.toml names
# (deploy/tests/test_images.py checks that against spin.toml). spin-operator starts the container
# with command `/`; the image needs no entrypoint, no shell and no libc.
#
# deploy/images/build (buildah, no Docker) passes `--build-arg COMPONENTS=prebuilt` and a context
# holding spin.toml and wasm/ (the components scripts/build-components made): no Rust stage runs.
#
# For a registry serving several CPU architectures, add `--platform wasi/wasm` (docker buildx); for
# minikube the host's platform is simplest, because `minikube image load` then takes it as it is.

# Where spin.toml and the components come from: `build` compiles them below, `prebuilt` copies them.
ARG COMPONENTS=build

# The build stage runs on the build machine's platform: its output is wasm, the same for every target.
FROM --platform=$BUILDPLATFORM rust:1.95.0-bookworm AS build
WORKDIR /src
# rust-toolchain.toml pins the compiler, its components and the wasm32-wasip2 target: install exactly that.
COPY rust-toolchain.toml ./
RUN rustup toolchain install
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --target wasm32-wasip2 --profile component \
        -p vid2mp3-gateway -p vid2mp3-auth -p vid2mp3-notifier \
    && mkdir -p /out/target/wasm32-wasip2/component \
    && cp target/wasm32-wasip2/component/vid2mp3_gateway.wasm \
          target/wasm32-wasip2/component/vid2mp3_auth.wasm \
          target/wasm32-wasip2/component/vid2mp3_notifier.wasm \
          /out/target/wasm32-wasip2/component/

FROM scratch AS prebuilt
COPY spin.toml /src/spin.toml
COPY wasm/ /out/target/wasm32-wasip2/component/

FROM ${COMPONENTS} AS components

FROM scratch
COPY --from=components /src/spin.toml /spin.toml
COPY --from=components /out/target/wasm32-wasip2/component/vid2mp3_gateway.wasm /target/wasm32-wasip2/component/vid2mp3_gateway.wasm
COPY --from=components /out/target/wasm32-wasip2/component/vid2mp3_auth.wasm /target/wasm32-wasip2/component/vid2mp3_auth.wasm
COPY --from=components /out/target/wasm32-wasip2/component/vid2mp3_notifier.wasm /target/wasm32-wasip2/component/vid2mp3_notifier.wasm
