# The Flotilla edge agent: a multi-arch image (linux/amd64, linux/arm64, linux/arm/v7).
#
# With internet access (Docker Hub, PyPI and the Go module proxy), the ordinary multi-arch build:
#
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 \
#     -t ghcr.io/flotilla/flotilla-agent:0.1.0 --push .
#
# Without a container registry (`make image`, and what the tests run): tests/image/build.sh makes
# the base roots from Debian packages (tests/image/debroot.py: the runtime's packages, and for the
# venv stage those plus BUILD_PACKAGES, unpacked on the host without emulation), cross-compiles
# helm and sops on the host, downloads the wheels from PyPI on the host and cross-compiles there
# the ones PyPI lacks (tests/image/cross-wheels.sh: PyYAML and msgspec on arm/v7), builds the
# project's own wheel on the host, then builds this same file with
#
#   --build-arg BASE_IMAGE=<the runtime root> --build-arg BUILD_BASE=<the build root> \
#   --build-arg TOOLS=tools-context --build-arg WHEELHOUSE=wheelhouse-context \
#   --build-arg PROJECT=project-wheel
#
# and a build context that holds tools/, wheelhouse/ and project/ next to the sources: the steps
# that run under emulation then only install wheels (a cold arm/v7 build: 19 min -> 6.2 min).  The build arguments
# only choose where the inputs come from; every step that shapes the image is the same both ways.
#
# Stages: `runtime` is Debian bookworm's own python3 (3.11) plus git and ssh, with the agent's user;
# `tools` holds helm and sops built for the target from the Go module proxy (the versions the
# tests use, tests/tools/build-tools.sh); `venv` installs flotilla and its dependencies from wheels
# (from PyPI, it compiles what PyPI has no wheel for: PyYAML and msgspec on arm/v7) -- a compiler never
# reaches the final image, which is `runtime` plus helm, sops and the venv, running as uid 10001
# with every writable path under the state volume, so the root filesystem can be mounted read-only.

ARG BASE_IMAGE=debian:bookworm-slim
ARG BUILD_BASE=runtime
ARG TOOLS=tools-build
ARG WHEELHOUSE=wheelhouse-pypi
ARG PROJECT=project-sources

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

# The project: its sources (pip builds it in the venv stage), or a wheel built on the host.
FROM scratch AS project-sources
COPY pyproject.toml README.md /project/
COPY agent /project/agent
COPY hub /project/hub
FROM scratch AS project-wheel
COPY project/ /project/

# hadolint ignore=DL3006
FROM ${TOOLS} AS tools
# hadolint ignore=DL3006
FROM ${PROJECT} AS project
# hadolint ignore=DL3006
FROM ${WHEELHOUSE} AS wheelhouse

# ---------------------------------------------------------------------------------------------
# hadolint ignore=DL3006
FROM ${BASE_IMAGE} AS runtime
# git and ssh for the fleet repo, gpg for `--verify-signatures gpg`, Debian's python3, and tini as
# PID 1 (it reaps what git, ssh and helm leave behind; Kubernetes has no `--init`); nothing else (no
# compilers, no package caches).  dpkg-slim.cfg leaves out documentation, perl's module library and
# the git programs the agent does not run.  A base that already has the packages
# (tests/image/debroot.py's root) skips apt entirely.
ARG RUNTIME_PACKAGES="python3 git openssh-client ca-certificates gpg tini"
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY tests/image/dpkg-slim.cfg /etc/dpkg/dpkg.cfg.d/flotilla-slim
# hadolint ignore=SC2086
RUN --mount=type=bind,source=tests/image/install-missing.sh,target=/mnt/install-missing.sh \
    bash /mnt/install-missing.sh ${RUNTIME_PACKAGES} \
    && groupadd --gid 10001 flotilla \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/flotilla/home \
        --shell /usr/sbin/nologin flotilla \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/flotilla

# ---------------------------------------------------------------------------------------------
# The venv is built on `runtime` plus BUILD_PACKAGES (apt), or on a base that has them already.
# hadolint ignore=DL3006
FROM ${BUILD_BASE} AS venv
ARG TARGETARCH
ARG TARGETVARIANT
ARG BUILD_PACKAGES="python3-venv"
# A C compiler only where PyPI publishes no wheel for this architecture (arm/v7), and only when
# pip reads PyPI: a wheelhouse has those wheels already (tests/image/cross-wheels.sh).
ARG COMPILE_PACKAGES="gcc libc6-dev python3-dev libyaml-dev"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
# hadolint ignore=SC2086
RUN --mount=type=bind,source=tests/image/install-missing.sh,target=/mnt/install-missing.sh \
    --mount=type=bind,from=wheelhouse,target=/mnt/inputs \
    packages="${BUILD_PACKAGES}" \
    && if [ "${TARGETARCH}${TARGETVARIANT}" = armv7 ] && [ ! -d /mnt/inputs/wheelhouse ]; then \
        packages="$packages ${COMPILE_PACKAGES}"; \
    fi \
    && bash /mnt/install-missing.sh $packages
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
# Then the project alone (a code change reruns only this): the host-built wheel, or the sources.
RUN --mount=type=bind,from=project,source=/project,target=/mnt/project,rw \
    set -- /mnt/project/flotilla-*.whl \
    && if [ -f "$1" ]; then project="$1"; else project=/mnt/project; fi \
    && /opt/flotilla/bin/pip install --no-deps "$project" \
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
# tini runs the agent as its child and forwards signals (SIGTERM still ends the agent cleanly, and
# its exit code is the container's).  No `-s`: QEMU user emulation has no PR_SET_CHILD_SUBREAPER.
ENTRYPOINT ["/usr/bin/tini", "--", "flotilla-agent"]
CMD ["run"]
