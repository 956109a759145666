#!/usr/bin/env bash
# Make this machine able to build and run the agent image for every architecture: a Docker engine
# (Debian's docker.io), QEMU user emulation registered with binfmt_misc (qemu-user-static), and the
# arm/v7 cross compiler for the wheels PyPI does not publish (gcc-arm-linux-gnueabihf).
# Idempotent and quiet when everything is already there; installs the Debian packages it needs.
#
# The engine it starts has no bridge and no iptables rules (`--bridge=none --iptables=false`):
# every container runs with `--network host`, so all test traffic stays on 127.0.0.1 and no
# private-address network is ever created.  Its data lives under FLOTILLA_DOCKER_ROOT
# (default ~/.cache/flotilla/docker) and its log in that directory's dockerd.log.
#
# Needs root (installs packages, mounts binfmt_misc, starts dockerd).
set -euo pipefail

DOCKER_ROOT="${FLOTILLA_DOCKER_ROOT:-${HOME}/.cache/flotilla/docker}"
log() { printf '[image-engine %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

need_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

register_binfmt() {
  local dir=/proc/sys/fs/binfmt_misc name
  [ -e "${dir}/register" ] || mount -t binfmt_misc binfmt_misc "$dir"
  for name in aarch64 arm; do
    if [ ! -e "${dir}/qemu-${name}" ]; then
      log "registering qemu-${name} with binfmt_misc"
      # the F flag makes the kernel open the (static) emulator now, so it also works in containers
      grep -v '^#' "/usr/lib/binfmt.d/qemu-${name}.conf" >"${dir}/register"
    fi
  done
}

engine_up() { timeout 10 docker info >/dev/null 2>&1; }

start_dockerd() {
  mkdir -p "${DOCKER_ROOT}/data" "${DOCKER_ROOT}/exec"
  log "starting dockerd (data: ${DOCKER_ROOT}/data, log: ${DOCKER_ROOT}/dockerd.log)"
  # setsid: the engine outlives this script (and make); it is stopped with `kill $(cat .../dockerd.pid)`.
  setsid dockerd --bridge=none --iptables=false --ip-masq=false --ip-forward=false \
    --data-root="${DOCKER_ROOT}/data" --exec-root="${DOCKER_ROOT}/exec" \
    --pidfile="${DOCKER_ROOT}/dockerd.pid" --storage-driver=overlay2 \
    >>"${DOCKER_ROOT}/dockerd.log" 2>&1 </dev/null &
  local waited=0
  until engine_up; do
    sleep 1
    waited=$((waited + 1))
    if [ "$waited" -ge 60 ]; then
      log "dockerd did not come up in 60s; last lines of ${DOCKER_ROOT}/dockerd.log:"
      tail -n 30 "${DOCKER_ROOT}/dockerd.log" >&2
      exit 1
    fi
  done
  log "dockerd is up after ${waited}s"
}

# gcc-arm-linux-gnueabihf: tests/image/cross-wheels.sh compiles arm/v7's missing wheels on the host;
# libc6-dev-armhf-cross: its C library headers (only recommended by the compiler, and recommends are
# not installed here: without them the cross gcc falls back to the host's /usr/include and fails)
need_packages docker.io qemu-user-static gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
register_binfmt
engine_up || start_dockerd
