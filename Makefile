# Flotilla: `make test` sets up everything on a fresh machine and runs the whole test suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint unit tools system-packages setup clean demo demo-stop e2e image image-save image-engine

test: setup tools system-packages lint
	export FLOTILLA_TOOLS_BIN="$$(tests/tools/build-tools.sh | tail -n 1)" && \
	PYTHON=$(CURDIR)/$(PY) tests/image/build.sh $(IMAGE_ARCHES) && $(PY) -m pytest $(PYTEST_ARGS)

setup: $(STAMP)

$(STAMP): pyproject.toml
	@echo "[setup] creating $(VENV) and installing flotilla with its test extras"
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The Go-built test tools (etcd, kube-apiserver, controller-manager, scheduler, kwok, helm),
# cached outside the repo; a cold build takes a while and prints progress.
tools:
	tests/tools/build-tools.sh

# Debian packages the tests drive: Chromium for the status-page browser tests (Playwright drives it;
# no browser download), sshd for the Git-over-SSH tests, and for the supply-chain tests the CNCF
# Distribution registry (docker-registry; started by the tests on loopback, never as a service),
# htpasswd for its basic auth and gpg for signed commits, and PostgreSQL for the hub's PostgreSQL
# store (the tests start their own server as an unprivileged user; the package's service stays off).
# The real-node tests (tests/realnode.py) run Debian's containerd (with runc) and its CNI loopback
# plugin, and build their sandbox image with gcc -static. shellcheck lints the shell scripts.
system-packages:
	@missing=""; command -v chromium >/dev/null || missing="$$missing chromium"; \
	test -x /usr/sbin/sshd || missing="$$missing openssh-server"; \
	test -x /usr/bin/docker-registry || missing="$$missing docker-registry"; \
	command -v htpasswd >/dev/null || missing="$$missing apache2-utils"; \
	command -v gpg >/dev/null || missing="$$missing gnupg"; \
	command -v shellcheck >/dev/null || missing="$$missing shellcheck"; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v containerd >/dev/null || missing="$$missing containerd"; \
	test -x /usr/lib/cni/loopback || missing="$$missing containernetworking-plugins"; \
	test -f /usr/lib/x86_64-linux-gnu/libc.a -a -x /usr/bin/gcc || missing="$$missing gcc libc6-dev"; \
	if [ -n "$$missing" ]; then echo "[setup] installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

lint: setup
	$(PY) -m ruff check agent hub tests
	$(PY) -m ruff format --check agent hub tests
	$(PY) -m mypy

unit: setup
	$(PY) -m pytest -m "not cluster and not browser and not e2e and not image" $(PYTEST_ARGS)

# The agent image for linux/amd64, linux/arm64 and linux/arm/v7 (flotilla-agent:dev-<arch>;
# flotilla-agent:dev is amd64) in the local Docker engine, built from the Dockerfile without any
# container registry: Debian roots (tests/image/debroot.py), helm and sops cross-built from Go,
# wheels from PyPI; cached under ~/.cache/flotilla/image.  Starts dockerd (no bridge, no iptables)
# and registers QEMU with binfmt_misc first.  IMAGE_ARCHES picks a subset.  With FLOTILLA_TOOLS_BIN
# set (`make test` sets it) amd64 reuses the test tools' helm and sops instead of building them.
IMAGE_ARCHES ?= amd64 arm64 armv7
IMAGE_SAVE_DIR ?= $(HOME)/.cache/flotilla/image/save
image: setup
	PYTHON=$(CURDIR)/$(PY) tests/image/build.sh $(IMAGE_ARCHES)

# One tar per architecture for air-gapped sites: `docker load -i` or `k3s ctr images import`.
image-save: image
	PYTHON=$(CURDIR)/$(PY) tests/image/build.sh save $(IMAGE_SAVE_DIR) $(IMAGE_ARCHES)

# Only the engine: dockerd and QEMU (binfmt_misc), e.g. before running the image tests by hand.
image-engine:
	tests/image/engine.sh

# A whole fleet on this machine: CLUSTERS local clusters, a Git server, a hub and one agent each.
CLUSTERS ?= 3
demo: setup tools
	$(PY) -m tests.demo up --clusters $(CLUSTERS)

demo-stop:
	$(PY) -m tests.demo down

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
