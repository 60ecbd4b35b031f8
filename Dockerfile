# syntax=docker/dockerfile:1
# A static binary on a distroless base: no shell, no libc, non-root.
# CI has no Docker engine: .ci/run lints this file with hadolint and checkov, and runs this file's
# own build.sh line (the RUN below), so that a broken build step shows there.
#
# Both stages are linux/amd64: build.sh makes an x86_64 binary (static glibc, its hot code laid
# out for that target), so an arm64 host builds it under emulation instead of failing.
# The bases are pinned by tag; pin them by digest too for a reproducible build (docs/cluster.md,
# "The image": this repository's CI reaches no image registry to read the digests from).

# hadolint ignore=DL3029
FROM --platform=linux/amd64 rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
# Static glibc, the server and heal features only, and the code it runs at rest laid out
# together: see the script for why (BENCHMARKS.md, "Idle memory"). --min-match warns when the list
# of that code is stale. The registry and target folders are build caches, so the binary is
# copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    strip -o /sidecar-injector "$(src/bin/sidecar-injector/image/build.sh --min-match 0.9)"

# hadolint ignore=DL3029
FROM --platform=linux/amd64 gcr.io/distroless/static-debian12:nonroot
# checkov:skip=CKV_DOCKER_2: Kubernetes ignores HEALTHCHECK; the Deployment's probes check /healthz and /readyz, and distroless has no shell or curl to run one
COPY --from=build /sidecar-injector /sidecar-injector
# distroless's nonroot user; the Deployment runs with readOnlyRootFilesystem, and the binary
# writes nothing.
USER 65532:65532
# mimalloc commits its first arena eagerly: idle RSS this server never uses (BENCHMARKS.md).
ENV MIMALLOC_ARENA_EAGER_COMMIT=0
EXPOSE 8443 9090
ENTRYPOINT ["/sidecar-injector"]
CMD ["serve", "--listen=0.0.0.0:8443", "--metrics-listen=0.0.0.0:9090"]
