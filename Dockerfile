# The Flotilla edge agent: a multi-arch image (linux/amd64, linux/arm64, linux/arm/v7).
#
# With internet access (Docker Hub, PyPI and the Go module proxy), the ordinary multi-arch build:
#
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 \
#     -t ghcr.io/flotilla/flotilla-agent:0.1.0 --push .
#
# Without a container registry (`make image`, and what the tests run): tests/image/build.sh makes
# the base root from Debian packages with mmdebstrap, cross-compiles helm and sops on the host and
# downloads the wheels from PyPI on the host, then builds this same file with
#
#   --build-arg BASE_IMAGE=<the imported root> --build-arg TOOLS=tools-context \
#   --build-arg WHEELHOUSE=wheelhouse-context
#
# and a build context that holds tools/ and wheelhouse/ next to the sources.  The build arguments
# only choose where the inputs come from; every step that shapes the image is the same both ways.
#
# Stages: `runtime` is Debian bookworm's own python3 (3.11) plus git and ssh, with the agent's user;
# `tools` holds helm and sops built for the target from the Go module proxy (the versions the
# tests use, tests/tools/build-tools.sh); `venv` installs flotilla and its dependencies from wheels,
# compiling only what PyPI has no wheel for (PyYAML and msgspec on arm/v7) -- the compiler never
# reaches the final image, which is `runtime` plus helm, sops and the venv, running as uid 10001
# with every writable path under the state volume, so the root filesystem can be mounted read-only.

ARG BASE_IMAGE=debian:bookworm-slim
ARG TOOLS=tools-build
ARG WHEELHOUSE=wheelhouse-pypi

# ---------------------------------------------------------------------------------------------
# helm and sops, cross-compiled on the build machine's own architecture (no emulation needed).
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS tools-build
ARG TARGETARCH
ARG TARGETVARIANT
ARG HELM_VERSION=4.2.4
ARG SOPS_VERSION=3.13.3
COPY tests/image/cross-tools.sh /usr/local/bin/cross-tools.sh
RUN cross-tools.sh "${TARGETARCH}${TARGETVARIANT}" /tools

# The same two binaries, built by tests/image/build.sh with the same script.
FROM scratch AS tools-context
COPY tools/ /tools/

# ---------------------------------------------------------------------------------------------
# Wheels pip may use instead of PyPI: none (pip reads PyPI) or the ones downloaded on the host.
FROM scratch AS wheelhouse-pypi
FROM scratch AS wheelhouse-context
COPY wheelhouse/ /wheelhouse/

# hadolint ignore=DL3006
FROM ${TOOLS} AS tools
# hadolint ignore=DL3006
FROM ${WHEELHOUSE} AS wheelhouse

# ---------------------------------------------------------------------------------------------
# hadolint ignore=DL3006
FROM ${BASE_IMAGE} AS runtime
# git and ssh for the fleet repo, Debian's python3; nothing else (no compilers, no package caches).
# A base that already has them (the mmdebstrap root) skips apt entirely.
ARG RUNTIME_PACKAGES="python3 git openssh-client ca-certificates"
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008,SC2086
RUN missing="$(for p in ${RUNTIME_PACKAGES}; do \
        dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed || echo "$p"; done)" \
    && if [ -n "$missing" ]; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && groupadd --gid 10001 flotilla \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/flotilla/home \
        --shell /usr/sbin/nologin flotilla \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/flotilla

# ---------------------------------------------------------------------------------------------
FROM runtime AS venv
ARG TARGETARCH
ARG TARGETVARIANT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
# venv (with pip) always; a C compiler only where PyPI publishes no wheel for this architecture.
# hadolint ignore=DL3008,SC2086
RUN packages="python3-venv" \
    && if [ "${TARGETARCH}${TARGETVARIANT}" = armv7 ]; then packages="$packages gcc libc6-dev python3-dev libyaml-dev"; fi \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# With a wheelhouse, pip uses nothing else (a missing wheel fails the build instead of fetching).
# The dependencies first, from pyproject.toml alone: that layer outlives changes to the code.
COPY pyproject.toml ./
RUN --mount=type=bind,from=wheelhouse,target=/mnt/inputs \
    if [ -d /mnt/inputs/wheelhouse ]; then \
        export PIP_NO_INDEX=1 PIP_FIND_LINKS=/mnt/inputs/wheelhouse; \
    fi \
    && python3 -m venv /opt/flotilla \
    && python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        >/tmp/requirements.txt \
    && /opt/flotilla/bin/pip install --requirement /tmp/requirements.txt
COPY README.md ./
COPY agent ./agent
COPY hub ./hub
RUN --mount=type=bind,from=wheelhouse,target=/mnt/inputs \
    if [ -d /mnt/inputs/wheelhouse ]; then \
        export PIP_NO_INDEX=1 PIP_FIND_LINKS=/mnt/inputs/wheelhouse; \
    fi \
    && /opt/flotilla/bin/pip install --no-deps . \
    && /opt/flotilla/bin/pip uninstall --yes pip setuptools

# ---------------------------------------------------------------------------------------------
FROM runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="flotilla-agent" \
      org.opencontainers.image.description="Flotilla edge agent: pull-based GitOps for fleets of edge Kubernetes clusters" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=tools /tools/helm /tools/sops /usr/local/bin/
COPY --from=venv /opt/flotilla /opt/flotilla
# Everything the agent, git and helm write lives in the state volume.
ENV PATH=/opt/flotilla/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FLOTILLA_STATE_DIR=/var/lib/flotilla \
    HOME=/var/lib/flotilla/home \
    HELM_CACHE_HOME=/var/lib/flotilla/helm/cache \
    HELM_CONFIG_HOME=/var/lib/flotilla/helm/config \
    HELM_DATA_HOME=/var/lib/flotilla/helm/data
USER 10001:10001
WORKDIR /var/lib/flotilla
VOLUME /var/lib/flotilla
ENTRYPOINT ["flotilla-agent"]
CMD ["run"]
