# Flotilla: `make test` sets up everything on a fresh machine and runs the whole test suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint unit tools browser setup clean

test: setup tools browser lint
	FLOTILLA_TOOLS_BIN="$$(tests/tools/build-tools.sh | tail -n 1)" $(PY) -m pytest $(PYTEST_ARGS)

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

# Debian's Chromium for the status-page browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null || { echo "[setup] installing Debian's chromium"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: setup
	$(PY) -m ruff check agent hub tests
	$(PY) -m ruff format --check agent hub tests
	$(PY) -m mypy

unit: setup
	$(PY) -m pytest -m "not cluster and not browser and not e2e" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
