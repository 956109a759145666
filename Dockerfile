# syntax=docker/dockerfile:1
# The Flotilla edge agent: a multi-arch image (linux/amd64, linux/arm64, linux/arm/v7).
#
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 \
#     -t ghcr.io/flotilla/flotilla-agent:0.1.0 --push .
#
# Stages: `helm` downloads the pinned helm release for the target architecture and checks its
# sha256 (runs on the build machine's own architecture); `build` makes wheels of flotilla and its
# dependencies with a compiler at hand and installs them into a venv; the final image is
# python:3.11-slim-bookworm plus git, openssh-client, helm and that venv, running as uid 10001 with
# every writable path under the state volume, so the root filesystem can be mounted read-only.

ARG PYTHON_VERSION=3.11

# ---------------------------------------------------------------------------------------------
FROM --platform=$BUILDPLATFORM debian:bookworm-slim AS helm
ARG TARGETARCH
ARG TARGETVARIANT
# Helm v4.2.4, the version the test suite builds (tests/tools/build-tools.sh).  Checksums from the
# release notes (the .sha256sum files beside each archive on get.helm.sh).
ARG HELM_VERSION=4.2.4
ARG HELM_SHA256_AMD64=c306b46f719b0a4da32d0f78ee21bf90ce8d602f15b22ab753f0674d1670a7f3
ARG HELM_SHA256_ARM64=564de2191b881e9f71b5606b25345821ea1682f06ab90499d3ab22b530176da1
ARG HELM_SHA256_ARM=894e901f7daaf9b458baad7b5c685bfeef49070d7d53f99687bd5846a6c13639
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN case "${TARGETARCH}${TARGETVARIANT}" in \
        amd64) arch=amd64; sum="${HELM_SHA256_AMD64}" ;; \
        arm64*) arch=arm64; sum="${HELM_SHA256_ARM64}" ;; \
        armv7) arch=arm; sum="${HELM_SHA256_ARM}" ;; \
        *) echo "unsupported platform ${TARGETARCH}${TARGETVARIANT}: use linux/amd64, linux/arm64 or linux/arm/v7" >&2; exit 1 ;; \
    esac \
    && archive="helm-v${HELM_VERSION}-linux-${arch}.tar.gz" \
    && curl -fsSL --retry 3 -o "/tmp/${archive}" "https://get.helm.sh/${archive}" \
    && echo "${sum}  /tmp/${archive}" | sha256sum --check --strict - \
    && tar -xzf "/tmp/${archive}" -C /tmp "linux-${arch}/helm" \
    && install -m 0755 "/tmp/linux-${arch}/helm" /usr/local/bin/helm \
    && rm -rf /tmp/*

# ---------------------------------------------------------------------------------------------
# The full (non-slim) image has gcc: PyYAML and msgspec (lightkube's) publish no arm/v7 wheels and
# are compiled here (under QEMU when cross-building: slow), never in the final image.  Same Python
# and Debian release as the final stage, so the venv's interpreter path and ABI match.
FROM python:${PYTHON_VERSION}-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY agent ./agent
COPY hub ./hub
RUN pip wheel --wheel-dir /wheels . \
    && python -m venv /opt/flotilla \
    && /opt/flotilla/bin/pip install --no-index --find-links /wheels flotilla \
    && /opt/flotilla/bin/pip uninstall --yes pip \
    && /opt/flotilla/bin/python -m compileall -q /opt/flotilla/lib

# ---------------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="flotilla-agent" \
      org.opencontainers.image.description="Flotilla edge agent: pull-based GitOps for fleets of edge Kubernetes clusters" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# git and ssh for the fleet repo; nothing else (no compilers, no package caches).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 flotilla \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/flotilla/home \
        --shell /usr/sbin/nologin flotilla \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/flotilla
COPY --from=helm /usr/local/bin/helm /usr/local/bin/helm
COPY --from=build /opt/flotilla /opt/flotilla
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
