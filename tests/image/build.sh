#!/usr/bin/env bash
# Build the agent image from the repo's Dockerfile for linux/amd64, linux/arm64 and linux/arm/v7
# into the local Docker engine, without any container registry:
#
#   tests/image/build.sh [amd64] [arm64] [armv7]     (default: all three)
#   tests/image/build.sh save DIR [ARCH...]           (docker save each image as DIR/flotilla-agent-<tag>.tar)
#
# Tags flotilla-agent:dev-amd64, :dev-arm64, :dev-armv7, and flotilla-agent:dev for amd64 (the
# engine's image store keeps one architecture per tag).  The Dockerfile's inputs come from:
#   - the base: a Debian bookworm root made with mmdebstrap for the target architecture (minbase,
#     merged /usr, docs and locales left out like debian:bookworm-slim, plus the Dockerfile's
#     RUNTIME_PACKAGES), loaded into the engine as a one-layer image of the target's platform;
#   - helm and sops: tests/image/cross-tools.sh on the host (Go module proxy, no emulation), at the
#     versions pinned in tests/tools/build-tools.sh;
#   - Python: wheels downloaded on the host from PyPI for the target platform; the ones PyPI has
#     no wheel for (PyYAML and msgspec on arm/v7) cross-compiled on the host by
#     tests/image/cross-wheels.sh (Debian's cross gcc, the build root's headers); and the project
#     itself as a wheel built on the host.  Nothing is compiled under emulation: a cold arm/v7
#     build went from 19 min to 6.2 min (the venv stage under QEMU: 12.9 min -> 3 min).
# Everything is cached under FLOTILLA_IMAGE_CACHE (default ~/.cache/flotilla/image), keyed by what
# it was made from, and Docker's layer cache does the rest: a second run takes seconds.  To time a
# cold build without touching those caches: FLOTILLA_IMAGE_CACHE=$(mktemp -d) GOCACHE=$(mktemp -d)
# FLOTILLA_IMAGE_NO_CACHE=1 FLOTILLA_IMAGE_NAME=flotilla-agent-cold tests/image/build.sh.
# Starts dockerd and registers QEMU with binfmt_misc first (tests/image/engine.sh).
set -euo pipefail
shopt -s inherit_errexit # the helpers below run in $(...): a failure there must stop the build

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${FLOTILLA_IMAGE_CACHE:-${HOME}/.cache/flotilla/image}"
# Debian's docker client: BuildKit built in.  (A newer CLI needs the buildx plugin for BuildKit.)
DOCKER="${FLOTILLA_DOCKER:-/usr/bin/docker}"
PYTHON="${PYTHON:-python3}"
# The image's name: another name (FLOTILLA_IMAGE_NAME=flotilla-agent-mine) keeps a trial build from
# replacing the flotilla-agent:dev-* images someone else runs on this engine.
NAME="${FLOTILLA_IMAGE_NAME:-flotilla-agent}"
SUITE=bookworm
export DOCKER_BUILDKIT=1

log() { printf '[image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
key() { sha256sum | cut -c1-12; }
# with_lock NAME FUNCTION ARGS...: one at a time per NAME, so a `make image` and a test session (or
# two architectures sharing an input) wait for each other instead of building the same thing twice.
with_lock() {
  local name="$1"
  shift
  mkdir -p "${CACHE}/locks"
  (
    flock 9
    "$@"
  ) 9>"${CACHE}/locks/${name}"
}

# A pin from the test tools' build script, else the Dockerfile's default for that build argument.
pin() {
  local value
  value="$(sed -n "s/^$1=//p" "$REPO/tests/tools/build-tools.sh")"
  [ -n "$value" ] || value="$(dockerfile_arg "$1")"
  [ -n "$value" ] || die "no $1 in tests/tools/build-tools.sh or the Dockerfile"
  echo "$value"
}
dockerfile_arg() { sed -n "s/^ARG $1=\"\{0,1\}\([^\"]*\)\"\{0,1\}$/\1/p" "$REPO/Dockerfile" | head -n1; }

deb_arch() { case "$1" in amd64) echo amd64 ;; arm64) echo arm64 ;; armv7) echo armhf ;; esac; }
platform() { case "$1" in amd64) echo linux/amd64 ;; arm64) echo linux/arm64 ;; armv7) echo linux/arm/v7 ;; esac; }
pip_platforms() { # manylinux tags bookworm's glibc (2.36) accepts, for pip download --platform
  local machine v
  case "$1" in amd64) machine=x86_64 ;; arm64) machine=aarch64 ;; armv7) machine=armv7l ;; esac
  for v in $(seq 17 36); do printf -- '--platform manylinux_2_%s_%s ' "$v" "$machine"; done
  printf -- '--platform manylinux2014_%s --platform linux_%s' "$machine" "$machine"
}

# --- the base roots -----------------------------------------------------------------------------
MIRRORS=(
  "deb http://deb.debian.org/debian ${SUITE} main"
  "deb http://deb.debian.org/debian ${SUITE}-updates main"
  "deb http://deb.debian.org/debian-security ${SUITE}-security main"
)
SLIM="${REPO}/tests/image/dpkg-slim.cfg"

# The packages of the venv stage's base (the Dockerfile installs the missing ones itself): the
# runtime's and the venv's, and where PyPI has no wheels (arm/v7) the headers and libraries that
# tests/image/cross-wheels.sh compiles against on the host.  No compiler: with a wheelhouse, the
# image build compiles nothing.
CROSS_PACKAGES="python3-dev libyaml-dev"
build_packages() {
  local packages
  packages="$(dockerfile_arg RUNTIME_PACKAGES) $(dockerfile_arg BUILD_PACKAGES)"
  [ "$1" != armv7 ] || packages+=" ${CROSS_PACKAGES}"
  echo "$packages"
}
root_packages() { if [ "$2" = runtime ]; then dockerfile_arg RUNTIME_PACKAGES; else build_packages "$1"; fi; }
root_tarball() { # ARCH KIND -> the path of that root's tarball, keyed by what it is made from
  local hash
  hash="$( (printf '%s\n' "$SUITE" "$1" "$(root_packages "$1" "$2")" "${MIRRORS[@]}"; cat "$SLIM" "${REPO}/tests/image/debroot.py") | key)"
  echo "${CACHE}/roots/${SUITE}-$1-$2-${hash}.tar"
}

base_images() { with_lock "root-$1" _base_images "$1"; }
_base_images() { # ARCH -> prints the imported runtime and build roots' image names
  local arch="$1" kind packages tarball image update=() images=()
  for kind in runtime build; do
    packages="$(root_packages "$arch" "$kind")"
    tarball="$(root_tarball "$arch" "$kind")"
    image="flotilla-base:$(basename "$tarball" .tar)"
    if [ ! -f "$tarball" ]; then
      log "${arch}: making the Debian ${SUITE} ${kind} root (${packages}; log: ${tarball%.tar}.log)"
      mkdir -p "${CACHE}/roots"
      local mirror_args=() mirror
      for mirror in "${MIRRORS[@]}"; do mirror_args+=(--mirror "$mirror"); done
      # shellcheck disable=SC2086  # one word per package
      if ! nice "$PYTHON" "${REPO}/tests/image/debroot.py" --arch "$(deb_arch "$arch")" \
        --work "${CACHE}/apt/${arch}" --out "$tarball" --slim "$SLIM" "${mirror_args[@]}" "${update[@]}" \
        $packages >"${tarball%.tar}.log" 2>&1; then
        tail -n 30 "${tarball%.tar}.log" >&2
        die "making the ${kind} root failed for ${arch}"
      fi
      log "${arch}: $(tail -n 1 "${tarball%.tar}.log" | sed 's/^\[debroot [0-9:]*\] [a-z0-9]*: //')"
      update=(--no-update) # the build root from the same package lists as the runtime root
    fi
    if ! "$DOCKER" image inspect "$image" >/dev/null 2>&1; then
      log "${arch}: loading the ${kind} root into the engine as ${image}"
      "$PYTHON" "${REPO}/tests/image/root_image.py" "$tarball" "$(platform "$arch")" "$image" |
        "$DOCKER" load >/dev/null
    fi
    images+=("$image")
  done
  echo "${images[@]}"
}

# --- helm and sops ------------------------------------------------------------------------------
tools_dir() { with_lock "tools-$1" _tools_dir "$1"; }
_tools_dir() { # ARCH -> prints the directory holding helm and sops for ARCH
  local arch="$1" helm sops dir
  helm="$(pin HELM_VERSION)" sops="$(pin SOPS_VERSION)"
  dir="${CACHE}/tools/helm-${helm}_sops-${sops}/${arch}"
  local host_bin="${FLOTILLA_TOOLS_BIN:-}"
  if [ ! -f "${dir}/.done" ] && [ "$arch" = amd64 ] && [ "$(uname -m)" = x86_64 ] && [ -n "$host_bin" ] &&
    "${host_bin}/helm" version --short 2>/dev/null | grep -q "^v${helm}\b" &&
    "${host_bin}/sops" --version --disable-version-check 2>/dev/null | grep -q " ${sops}\b"; then
    # the test tools' helm and sops: the same static build (build-tools.sh and cross-tools.sh share
    # the flags), so there is nothing to compile again
    log "${arch}: helm ${helm} and sops ${sops} from the test tools (${host_bin})"
    mkdir -p "$dir"
    install -m 0755 "${host_bin}/helm" "${host_bin}/sops" "$dir/"
    touch "${dir}/.done"
  fi
  if [ ! -f "${dir}/.done" ]; then
    log "${arch}: cross-compiling helm ${helm} and sops ${sops} (log: ${dir}.log)"
    mkdir -p "$dir"
    local started=$SECONDS
    # sum.golang.org is out of reach here: trust the module proxy for these two, like build-tools.sh
    if ! HELM_VERSION="$helm" SOPS_VERSION="$sops" GONOSUMDB="helm.sh,github.com/getsops" \
      nice "${REPO}/tests/image/cross-tools.sh" "$arch" "$dir" >"${dir}.log" 2>&1; then
      tail -n 30 "${dir}.log" >&2
      die "cross-compiling helm/sops for ${arch} failed"
    fi
    touch "${dir}/.done"
    log "${arch}: helm and sops built in $((SECONDS - started))s"
  fi
  echo "$dir"
}

# --- wheels -------------------------------------------------------------------------------------
pinned_requirements() { with_lock requirements _pinned_requirements; }
_pinned_requirements() { # prints the path of the resolved name==version list for pyproject.toml
  local hash file
  # keyed by what decides the wheels (dependencies, build requirements), not the whole file
  hash="$("$PYTHON" -c 'import sys, tomllib; d = tomllib.load(open(sys.argv[1], "rb"))
print(d["project"]["dependencies"], d["build-system"]["requires"])' "${REPO}/pyproject.toml" | key)"
  file="${CACHE}/wheels/requirements-${hash}.txt"
  if [ ! -f "$file" ]; then
    log "resolving the agent's dependencies (pip, on the host)"
    mkdir -p "${CACHE}/wheels"
    PIP_FIND_LINKS="" "$PYTHON" -m pip install --quiet --dry-run --ignore-installed --report "${file}.json" \
      "$REPO" >&2
    "$PYTHON" - "${file}.json" >"${file}.partial" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
for item in report["install"]:
    meta = item["metadata"]
    if meta["name"] != "flotilla":
        print(f"{meta['name']}=={meta['version']}")
PY
    mv "${file}.partial" "$file"
  fi
  echo "$file"
}

wheelhouse() { with_lock "wheels-$1" _wheelhouse "$1"; }
_wheelhouse() { # ARCH -> prints the directory of wheels for ARCH: PyPI's, plus cross-built ones
  local arch="$1" requirements dir
  requirements="$(pinned_requirements)"
  dir="${CACHE}/wheels/$(basename "$requirements" .txt)/${arch}-pypi"
  if [ ! -f "${dir}/.done" ]; then
    log "${arch}: downloading wheels from PyPI for $(platform "$arch")"
    rm -rf "$dir" && mkdir -p "$dir"
    local target=(--python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none)
    # shellcheck disable=SC2046  # one word per option
    PIP_FIND_LINKS="" "$PYTHON" -m pip download --quiet --no-deps --prefer-binary $(pip_platforms "$arch") \
      "${target[@]}" -d "$dir" -r "$requirements" >&2
    touch "${dir}/.done"
  fi
  local sdists=()
  mapfile -t sdists < <(find "$dir" -name '*.tar.gz' | sort)
  if [ "${#sdists[@]}" = 0 ]; then
    echo "$dir"
    return
  fi
  # PyPI has no wheel for these on ARCH: compile them on the host (tests/image/cross-wheels.sh),
  # against the build root's headers, into a wheelhouse keyed by that root, the compiler and the script.
  local root crossed
  root="$(root_tarball "$arch" build)"
  crossed="${dir%-pypi}-cross-$( (basename "$root"; "$(cross_compiler "$arch")" --version | head -n1
    cat "${REPO}/tests/image/cross-wheels.sh") | key)"
  if [ ! -f "${crossed}/.done" ]; then
    log "${arch}: no wheel on PyPI for $(printf '%s ' "${sdists[@]##*/}"); cross-compiling them on the host (log: ${crossed}.log)"
    local started=$SECONDS
    rm -rf "$crossed" && mkdir -p "$crossed"
    if ! PYTHON="$PYTHON" nice "${REPO}/tests/image/cross-wheels.sh" "$arch" "$root" "${crossed}/built" \
      "${sdists[@]}" >"${crossed}.log" 2>&1; then
      tail -n 30 "${crossed}.log" >&2
      die "cross-compiling the wheels for ${arch} failed"
    fi
    log "${arch}: $(find "${crossed}/built" -name '*.whl' -printf '%f ')built in $((SECONDS - started))s"
    find "$dir" -name '*.whl' -exec cp {} "$crossed/" \;
    mv "${crossed}/built/"*.whl "$crossed/" && rmdir "${crossed}/built"
    touch "${crossed}/.done"
  fi
  echo "$crossed"
}
cross_compiler() { case "$1" in arm64) echo aarch64-linux-gnu-gcc ;; armv7) echo arm-linux-gnueabihf-gcc ;; esac; }

# The project itself, a pure-Python wheel built once on the host from the files the image gets:
# the image installs it instead of running setuptools under emulation.  Keyed by those files.
project_wheel() { with_lock project _project_wheel; }
_project_wheel() { # prints the directory holding flotilla-*.whl
  local sources=() hash dir
  mapfile -t sources < <(sed -n 's/^!//p' "${REPO}/.dockerignore" | grep -v '^tests/')
  hash="$(tar -c --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --exclude=__pycache__ \
    --exclude='*.pyc' -C "$REPO" "${sources[@]}" | key)"
  dir="${CACHE}/project/${hash}"
  if [ ! -f "${dir}/.done" ]; then
    log "building the flotilla wheel on the host"
    rm -rf "$dir" && mkdir -p "${dir}/src"
    # from a copy: an in-tree build would leave build/ and *.egg-info in the repo
    tar -c --exclude=__pycache__ --exclude='*.pyc' -C "$REPO" "${sources[@]}" | tar -x -C "${dir}/src"
    PIP_FIND_LINKS="" "$PYTHON" -m pip wheel --quiet --no-deps -w "$dir" "${dir}/src" >&2
    rm -rf "${dir}/src"
    touch "${dir}/.done"
  fi
  echo "$dir"
}

# --- the image ----------------------------------------------------------------------------------
build_image() {
  local arch="$1" bases tools wheels inputs started=$SECONDS version
  read -r -a bases <<<"$(base_images "$arch")"
  tools="$(tools_dir "$arch")"
  wheels="$(wheelhouse "$arch")"
  inputs="${CACHE}/context/${NAME}-${arch}"
  rm -rf "$inputs" && mkdir -p "$inputs"
  ln -s "$tools" "${inputs}/tools"
  ln -s "$wheels" "${inputs}/wheelhouse"
  ln -s "$(project_wheel)" "${inputs}/project"
  version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "${REPO}/pyproject.toml")"
  local sources=() logfile="${CACHE}/logs/build-${NAME}-${arch}.log" no_cache=()
  # FLOTILLA_IMAGE_NO_CACHE=1 (with an empty FLOTILLA_IMAGE_CACHE): what a cold build costs
  [ -z "${FLOTILLA_IMAGE_NO_CACHE:-}" ] || no_cache=(--no-cache)
  mapfile -t sources < <(sed -n 's/^!//p' "${REPO}/.dockerignore")
  mkdir -p "${CACHE}/logs"
  log "${arch}: docker build $(platform "$arch") -> ${NAME}:dev-${arch} (log: ${logfile})"
  # The context: the files .dockerignore lets in, plus tools/ and wheelhouse/ (symlinks followed).
  if ! tar -c --dereference --exclude=__pycache__ --exclude='*.pyc' --exclude=.done \
    -C "$REPO" Dockerfile "${sources[@]}" -C "$inputs" tools wheelhouse project |
    "$DOCKER" build --progress=plain --network=host --platform="$(platform "$arch")" "${no_cache[@]}" \
      --build-arg BASE_IMAGE="${bases[0]}" --build-arg BUILD_BASE="${bases[1]}" --build-arg TOOLS=tools-context \
      --build-arg WHEELHOUSE=wheelhouse-context --build-arg PROJECT=project-wheel --build-arg VERSION="$version" \
      -t "${NAME}:dev-${arch}" - 2>&1 | tee "$logfile" |
    grep --line-buffered -E '^#[0-9]+ \[[a-z -]*[0-9]+/[0-9]+\] ' | sed -u "s/^/[image ${arch}] /" >&2; then
    tail -n 40 "$logfile" >&2
    die "docker build failed for ${arch}"
  fi
  [ "$arch" != amd64 ] || "$DOCKER" tag "${NAME}:dev-amd64" "${NAME}:dev"
  log "${arch}: ${NAME}:dev-${arch} ready in $((SECONDS - started))s"
}

save_images() {
  local dir="$1" arch
  shift
  mkdir -p "$dir"
  for arch in "$@"; do
    log "saving ${NAME}:dev-${arch} to ${dir}/${NAME}-dev-${arch}.tar"
    "$DOCKER" save -o "${dir}/${NAME}-dev-${arch}.tar" "${NAME}:dev-${arch}"
  done
}

main() {
  "${REPO}/tests/image/engine.sh"
  if [ "${1:-}" = save ]; then
    local dir="${2:?usage: build.sh save DIR [ARCH...]}"
    shift 2
    [ "$#" -gt 0 ] || set -- amd64 arm64 armv7
    save_images "$dir" "$@"
    return
  fi
  [ "$#" -gt 0 ] || set -- amd64 arm64 armv7
  local arch started=$SECONDS
  for arch in "$@"; do
    [ -n "$(deb_arch "$arch")" ] || die "unknown architecture ${arch}: use amd64, arm64 or armv7"
  done
  pinned_requirements >/dev/null # shared by every architecture: resolve it once, first
  project_wheel >/dev/null
  # One job per architecture: emulated dpkg and pip are single-threaded, so on a small machine the
  # roots, cross-compiles and builds of different architectures overlap well.
  local pids=() failed=0 pid
  for arch in "$@"; do
    build_image "$arch" &
    pids+=("$!")
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [ "$failed" = 0 ] || die "building $* failed (see the errors above)"
  log "images ready in $((SECONDS - started))s: $(printf "${NAME}:dev-%s " "$@")"
}

main "$@"
