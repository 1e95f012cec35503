# syntax=docker/dockerfile:1
# multi-casskop controller image.
#   docker build -t orangeopensource/multi-casskop:0.1.0 .
#
# glibc build on Debian 12 + distroless/cc-debian12 (same glibc). A static musl build would need
# musl-tools for ring's C code; not worth it for a controller image.

FROM rust:1-bookworm AS build
WORKDIR /src
# The whole workspace (the e2e crate is a member Cargo must see), minus .dockerignore.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release -p multi-casskop --bin multi-casskop \
    && cp target/release/multi-casskop /multi-casskop

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /multi-casskop /multi-casskop
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/multi-casskop"]
CMD ["run"]
