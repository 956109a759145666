#!/usr/bin/env bash
# Build the pinned test tools (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet, kwok, helm, and sops + age-keygen for the SOPS tests) from the Go module proxy into a version-stamped cache directory outside the repo.
#
# Idempotent: every tool has its own stamp file, so a second run (or a run after a failure)
# only builds what is missing.  Prints the directory holding the binaries as its last line.
#
#   FLOTILLA_TOOLS_CACHE   where to put the tools (default: ~/.cache/flotilla/tools)
set -euo pipefail

K8S_VERSION=1.36.3
K8S_COMMIT=0f29094e5b73085e3802ecc1298ecae13866bfe6
ETCD_VERSION=3.6.14
KWOK_VERSION=0.8.0
HELM_VERSION=4.2.4
SOPS_VERSION=3.13.3
AGE_VERSION=1.3.2

STAMP="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}"
CACHE_ROOT="${FLOTILLA_TOOLS_CACHE:-${HOME}/.cache/flotilla/tools}"
TOOLS_DIR="${CACHE_ROOT}/${STAMP}"
BIN="${TOOLS_DIR}/bin"
WORK="${TOOLS_DIR}/work"
mkdir -p "$BIN" "$WORK"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
export GONOSUMDB="k8s.io,sigs.k8s.io,go.etcd.io,helm.sh,github.com/getsops,filippo.io"
GOBUILD_PARALLEL="${GOBUILD_PARALLEL:-2}"

log() { printf '[build-tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# run_step NAME COMMAND... : runs a build step with its output in a log file; on failure names
# the tool and shows the end of its log.
run_step() {
  local name="$1"; shift
  local logfile="${WORK}/${name}.log"
  local started=$SECONDS
  log "building ${name} (log: ${logfile})"
  if ! "$@" >"$logfile" 2>&1; then
    log "FAILED to build ${name}; last lines of ${logfile}:"
    tail -n 40 "$logfile" >&2
    exit 1
  fi
  touch "${TOOLS_DIR}/.${name}.done"
  log "built ${name} in $((SECONDS - started))s"
}

done_already() { [ -f "${TOOLS_DIR}/.$1.done" ]; }

build_helm() {
  go install -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=v${HELM_VERSION}" \
    "helm.sh/helm/v4/cmd/helm@v${HELM_VERSION}"
}

build_sops() {
  go install -ldflags="-s -w" "github.com/getsops/sops/v3/cmd/sops@v${SOPS_VERSION}"
}

build_age() {
  go install -ldflags="-s -w" "filippo.io/age/cmd/age-keygen@v${AGE_VERSION}"
}

build_kwok() {
  go install -ldflags="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION}" \
    "sigs.k8s.io/kwok/cmd/kwok@v${KWOK_VERSION}"
  # The stage definitions (node/pod lifecycles) ship in the module zip; keep a copy next to the binary.
  local moddir
  moddir="$(go env GOMODCACHE)/sigs.k8s.io/kwok@v${KWOK_VERSION}"
  rm -rf "${TOOLS_DIR}/kwok-stages" && mkdir -p "${TOOLS_DIR}/kwok-stages"
  cp -r "${moddir}/kustomize/stage/." "${TOOLS_DIR}/kwok-stages/"
  chmod -R u+w "${TOOLS_DIR}/kwok-stages"
}

build_etcd() {
  local dir="${WORK}/etcd"
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  go mod init local.invalid/etcd-testbin
  # a `tool` directive keeps the main package required through `go mod tidy`
  go get -tool "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}"
  go mod tidy
  go build -ldflags="-s -w" -o "${BIN}/etcd" go.etcd.io/etcd/server/v3
}

# k8s_module DIR CMD... : a wrapper module in DIR requiring k8s.io/kubernetes's commands CMD
# (e.g. kube-apiserver) as tools, ready for `go build`.
k8s_module() {
  local dir="$1" staging="v0.${K8S_VERSION#1.}" gomod gd cmd tools=()
  shift
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  go mod init local.invalid/k8s-testbin
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and maps them to ./staging with
  # replace lines a dependent ignores; map each to its published tag instead.
  gomod="$(go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  sed -n 's|^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\)[[:space:]]*=>[[:space:]]*\./staging/src/.*|\1|p' "$gomod" |
    while read -r module; do go mod edit -replace="${module}=${module}@${staging}"; done
  gd="$(sed -n 's/^godebug[[:space:]]\{1,\}\([^ (][^ ]*\)[[:space:]]*$/\1/p' "$gomod")"
  if [ -n "$gd" ]; then go mod edit -godebug="$gd"; fi
  for cmd in "$@"; do tools+=("k8s.io/kubernetes/cmd/${cmd}@v${K8S_VERSION}"); done
  go get -tool "${tools[@]}"
  go mod tidy
}

# k8s_build CMD... : build k8s.io/kubernetes's commands, version-stamped (`/version`, `--version`).
k8s_build() {
  local ldflags="-s -w" p k8s_minor cmd packages=()
  k8s_minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${p}.gitVersion=v${K8S_VERSION} -X ${p}.gitMajor=1 -X ${p}.gitMinor=${k8s_minor}"
    ldflags+=" -X ${p}.gitCommit=${K8S_COMMIT} -X ${p}.gitTreeState=clean -X ${p}.buildDate=2026-01-01T00:00:00Z"
  done
  for cmd in "$@"; do packages+=("k8s.io/kubernetes/cmd/${cmd}"); done
  go build -p "$GOBUILD_PARALLEL" -pgo=off -tags=selinux,notest -ldflags="$ldflags" -o "${BIN}/" "${packages[@]}"
}

build_kubernetes() {
  local commands=(kube-apiserver kube-controller-manager kube-scheduler)
  k8s_module "${WORK}/kubernetes" "${commands[@]}"
  k8s_build "${commands[@]}"
}

# The kubelet of the real-node tests (tests/fixtures/realnode.py): its own module and stamp, so the
# control-plane binaries are not rebuilt when it is added to an existing cache.
build_kubelet() {
  k8s_module "${WORK}/kubelet" kubelet
  k8s_build kubelet
}

export GOBIN="$BIN"
started_all=$SECONDS
log "tools directory: ${TOOLS_DIR}"
for tool in helm etcd kwok kubernetes kubelet "sops-${SOPS_VERSION}" "age-${AGE_VERSION}"; do
  if done_already "$tool"; then
    log "${tool}: cached"
  else
    ( run_step "$tool" "build_${tool%%-*}" )
  fi
done
log "all tools ready in $((SECONDS - started_all))s"
echo "$BIN"
