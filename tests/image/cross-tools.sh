#!/usr/bin/env bash
# Cross-compile the helm and sops that the agent image ships, for one target architecture, from
# the Go module proxy (static binaries: CGO_ENABLED=0).  The one recipe for both ways the image is
# built: the Dockerfile's `tools-build` stage runs it, and tests/image/build.sh runs it on the host.
#
#   cross-tools.sh ARCH OUT_DIR        ARCH: amd64 | arm64 | armv7
#
# HELM_VERSION and SOPS_VERSION come from the environment: the Dockerfile's build arguments, or on
# the host the pins in tests/tools/build-tools.sh (the versions the test suite runs).
set -euo pipefail

arch="${1:?usage: cross-tools.sh amd64|arm64|armv7 OUT_DIR}"
out="${2:?usage: cross-tools.sh amd64|arm64|armv7 OUT_DIR}"
: "${HELM_VERSION:?HELM_VERSION is not set}" "${SOPS_VERSION:?SOPS_VERSION is not set}"
case "$arch" in
  amd64 | arm64) goarch="$arch" ;;
  armv7) goarch=arm; export GOARM=7 ;;
  *) echo "cross-tools.sh: unsupported architecture ${arch}: use amd64, arm64 or armv7" >&2; exit 2 ;;
esac
export CGO_ENABLED=0 GOOS=linux GOARCH="$goarch" GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export GOFLAGS="-trimpath -buildvcs=false"

# `go install pkg@version` is the only way to build a module's command at a version without a
# go.mod of our own; a private GOPATH keeps cross-built binaries apart (GOBIN refuses them), while
# the module and build caches stay the shared ones.
gopath="$(mktemp -d)"
trap 'chmod -R u+w "$gopath"; rm -rf "$gopath"' EXIT
GOMODCACHE="$(go env GOMODCACHE)"
export GOMODCACHE GOPATH="$gopath"
unset GOBIN

go install -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=v${HELM_VERSION}" \
  "helm.sh/helm/v4/cmd/helm@v${HELM_VERSION}"
go install -ldflags="-s -w" "github.com/getsops/sops/v3/cmd/sops@v${SOPS_VERSION}"

mkdir -p "$out"
for tool in helm sops; do
  built="${gopath}/bin/linux_${goarch}/${tool}"
  [ -f "$built" ] || built="${gopath}/bin/${tool}" # a native build lands directly in bin/
  install -m 0755 "$built" "${out}/${tool}"
done
