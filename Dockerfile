# A static binary on a distroless base: no shell, no libc, non-root.
# CI has no Docker engine: .ci/run lints this file with hadolint and runs the same cargo command,
# with the same target and flags, so that a broken build step shows there.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
# Static glibc, the server feature only, and the code it runs at rest laid out together: see the
# script for why (BENCHMARKS.md, "Idle memory").
RUN src/bin/sidecar-injector/image/build.sh \
    && strip target/x86_64-unknown-linux-gnu/release/sidecar-injector

FROM gcr.io/distroless/static-debian12:nonroot
# checkov:skip=CKV_DOCKER_2: Kubernetes ignores HEALTHCHECK; the Deployment's probes check /healthz and /readyz, and distroless has no shell or curl to run one
COPY --from=build /src/target/x86_64-unknown-linux-gnu/release/sidecar-injector /sidecar-injector
# distroless's nonroot user; the Deployment runs with readOnlyRootFilesystem, and the binary
# writes nothing.
USER 65532:65532
# mimalloc commits its first arena eagerly: idle RSS this server never uses (BENCHMARKS.md).
ENV MIMALLOC_ARENA_EAGER_COMMIT=0
EXPOSE 8443 9090
ENTRYPOINT ["/sidecar-injector"]
CMD ["serve", "--listen=0.0.0.0:8443", "--metrics-listen=0.0.0.0:9090"]
