#!/usr/bin/env bash
# End-to-end check with real k3s clusters, for machines with Docker (not run in CI).
#
# Builds the agent image, creates CLUSTERS k3d clusters on one Docker network, serves a copy of
# fleet-repo-example over smart HTTP from a container on that network, starts a hub on the host,
# installs one agent per cluster with `flotilla-agent manifests | kubectl apply -f -`, waits for the
# fleet to converge, pushes a commit changing one region's value and times the rollout.
#
#   tests/e2e/k3d.sh                     # 2 clusters
#   CLUSTERS=3 KEEP=1 tests/e2e/k3d.sh   # 3 clusters, left running for a look around afterwards
#
# Needs: docker, k3d (v5), kubectl, curl, git, and flotilla installed in the active Python
# environment (`pip install -e '.[hub]'`: the flotilla-agent and flotilla-hub commands).
#
#   CLUSTERS       number of clusters, 1 to 3 (default 2): the fleet repo's eu-west sites
#   IMAGE          agent image tag to build and import (default flotilla-agent:e2e)
#   STATE_STORAGE  pvc | hostPath | emptyDir (default hostPath)
#   INTERVAL       agent poll interval in seconds (default 15)
#   TIMEOUT        seconds to wait for convergence and for the rollout (default 300)
#   KEEP=1         leave clusters, git server and hub running (the script prints how to remove them)
set -euo pipefail

CLUSTERS="${CLUSTERS:-2}"
IMAGE="${IMAGE:-flotilla-agent:e2e}"
STATE_STORAGE="${STATE_STORAGE:-hostPath}"
INTERVAL="${INTERVAL:-15}"
TIMEOUT="${TIMEOUT:-300}"
KEEP="${KEEP:-0}"
PREFIX="flotilla-e2e"
NETWORK="${PREFIX}"
GIT_CONTAINER="${PREFIX}-git"
HUB_PORT="${HUB_PORT:-18080}"
SITES=(eu-west-dublin-1 eu-west-lyon-1 eu-west-porto-1)
OLD_NTP="ntp.eu-west.example.net"
NEW_NTP="ntp2.eu-west.example.net"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/${PREFIX}.XXXXXX")"
HUB_PID=""
CREATED_CLUSTERS=()

log() { printf '[k3d-e2e %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

cleanup() {
  local status=$?
  if [ "$KEEP" = "1" ]; then
    log "KEEP=1: leaving everything running; work directory ${WORK}"
    log "remove with: k3d cluster delete ${CREATED_CLUSTERS[*]:-}; docker rm -f ${GIT_CONTAINER};" \
      "kill ${HUB_PID:-<hub pid>}; docker network rm ${NETWORK}"
    exit "$status"
  fi
  log "cleaning up"
  if [ -n "$HUB_PID" ]; then kill "$HUB_PID" 2>/dev/null || true; wait "$HUB_PID" 2>/dev/null || true; fi
  docker rm -f "$GIT_CONTAINER" >/dev/null 2>&1 || true
  local name
  for name in ${CREATED_CLUSTERS[@]+"${CREATED_CLUSTERS[@]}"}; do k3d cluster delete "$name" >/dev/null 2>&1 || true; done
  docker network rm "$NETWORK" >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for DESCRIPTION COMMAND... : retries COMMAND every 2 s until it succeeds or TIMEOUT passes.
wait_for() {
  local what="$1"; shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${TIMEOUT}s waiting for ${what}"
    sleep 2
  done
}

require_tools() {
  local tool
  for tool in docker k3d kubectl curl git flotilla-agent flotilla-hub; do
    command -v "$tool" >/dev/null || die "${tool} is not on PATH (see the top of this script)"
  done
  docker info >/dev/null 2>&1 || die "the Docker daemon is not reachable"
  flotilla-agent manifests --help >/dev/null 2>&1 || die "this flotilla-agent has no 'manifests' command"
  [[ "$CLUSTERS" =~ ^[1-3]$ ]] || die "CLUSTERS must be 1, 2 or 3 (the fleet repo's eu-west sites)"
}

build_image() {
  log "building ${IMAGE} from ${REPO_ROOT} (first build takes a few minutes)"
  docker build --quiet -t "$IMAGE" "$REPO_ROOT" >/dev/null
}

create_clusters() {
  local i name
  for ((i = 1; i <= CLUSTERS; i++)); do
    name="${PREFIX}-${i}"
    log "creating k3d cluster ${name} for site ${SITES[i - 1]}"
    CREATED_CLUSTERS+=("$name")
    k3d cluster create "$name" --network "$NETWORK" --agents 0 --no-lb --wait --timeout 180s \
      --k3s-arg "--disable=traefik@server:0" --kubeconfig-update-default=false >/dev/null
    k3d kubeconfig get "$name" >"${WORK}/${name}.kubeconfig"
    log "importing ${IMAGE} into ${name}"
    k3d image import "$IMAGE" --cluster "$name" >/dev/null
  done
}

network_gateway() {
  docker network inspect -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' "$NETWORK"
}

# A bare copy of fleet-repo-example, served by `git http-backend` through Python's CGI server in a
# container (the agent image has both) on the clusters' network.
start_git_server() {
  log "creating the fleet repo from fleet-repo-example"
  mkdir -p "${WORK}/srv/cgi-bin"
  git init --quiet --initial-branch=main "${WORK}/fleet"
  cp -R "${REPO_ROOT}/fleet-repo-example/." "${WORK}/fleet/"
  git -C "${WORK}/fleet" add --all
  git -C "${WORK}/fleet" -c user.name=e2e -c user.email=e2e@flotilla.invalid commit --quiet -m "initial fleet"
  git clone --quiet --bare "${WORK}/fleet" "${WORK}/srv/fleet.git"
  git -C "${WORK}/fleet" remote add origin "${WORK}/srv/fleet.git"
  cat >"${WORK}/srv/cgi-bin/git" <<'EOF'
#!/bin/sh
export GIT_PROJECT_ROOT=/srv GIT_HTTP_EXPORT_ALL=1 HOME=/tmp
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0='*'
exec git http-backend
EOF
  chmod -R a+rX "${WORK}/srv" && chmod a+x "${WORK}/srv/cgi-bin/git"
  log "starting the Git server container ${GIT_CONTAINER}"
  docker run --detach --name "$GIT_CONTAINER" --network "$NETWORK" --user "$(id -u):$(id -g)" \
    --volume "${WORK}/srv:/srv" --workdir /srv --entrypoint python "$IMAGE" \
    -m http.server --cgi 8080 >/dev/null
  local ip
  ip="$(docker inspect -f "{{(index .NetworkSettings.Networks \"${NETWORK}\").IPAddress}}" "$GIT_CONTAINER")"
  REPO_URL="http://${ip}:8080/cgi-bin/git/fleet.git"
  wait_for "the Git server at ${REPO_URL}" docker exec "$GIT_CONTAINER" git ls-remote "$REPO_URL"
}

# The hub runs on this host, bound to the Docker network's gateway address so that pods reach it
# and nothing outside this machine does.
start_hub() {
  local gateway
  gateway="$(network_gateway)"
  [ -n "$gateway" ] || die "could not read the gateway address of Docker network ${NETWORK}"
  HUB_URL="http://${gateway}:${HUB_PORT}"
  log "starting the hub at ${HUB_URL} (log: ${WORK}/hub.log)"
  flotilla-hub serve --data-dir "${WORK}/hub" --host "$gateway" --port "$HUB_PORT" >"${WORK}/hub.log" 2>&1 &
  HUB_PID=$!
  wait_for "the hub's /healthz" curl -fsS "${HUB_URL}/healthz"
}

install_agent() {
  local name="$1" site="$2" kubeconfig="${WORK}/${1}.kubeconfig" token_file="${WORK}/${1}.token"
  log "installing the agent in ${name} as cluster ${site}"
  (umask 077 && flotilla-hub token create "$site" --data-dir "${WORK}/hub" | tail -n 1 >"$token_file")
  [ -s "$token_file" ] || die "flotilla-hub token create ${site} printed no token"
  flotilla-agent manifests --cluster "$site" --repo "$REPO_URL" --hub "$HUB_URL" \
    --image "$IMAGE" --image-pull-policy Never --state-storage "$STATE_STORAGE" --interval "$INTERVAL" \
    >"${WORK}/${name}.yaml"
  kubectl --kubeconfig "$kubeconfig" apply -f "${WORK}/${name}.yaml" >/dev/null
  kubectl --kubeconfig "$kubeconfig" -n flotilla-system create secret generic flotilla-hub-token \
    --from-file=token="$token_file" >/dev/null
  kubectl --kubeconfig "$kubeconfig" -n flotilla-system rollout status deployment/flotilla-agent \
    --timeout="${TIMEOUT}s" >/dev/null || {
    kubectl --kubeconfig "$kubeconfig" -n flotilla-system describe pods >&2
    die "the agent in ${name} did not become ready"
  }
}

# ntp_server_is CLUSTER VALUE : the edge-base bundle's ConfigMap in CLUSTER carries VALUE.
ntp_server_is() {
  local actual
  actual="$(kubectl --kubeconfig "${WORK}/${1}.kubeconfig" -n edge-system get configmap site-identity \
    -o jsonpath='{.data.ntpServer}' 2>/dev/null)"
  [ "$actual" = "$2" ]
}

wait_for_fleet() {
  local value="$1" i
  for ((i = 1; i <= CLUSTERS; i++)); do
    wait_for "${PREFIX}-${i} to run ntpServer=${value}" ntp_server_is "${PREFIX}-${i}" "$value"
    log "${PREFIX}-${i} (${SITES[i - 1]}) runs ntpServer=${value}"
  done
}

push_rollout() {
  log "committing a new eu-west NTP server (${OLD_NTP} -> ${NEW_NTP}) and pushing"
  sed -i.bak "s/${OLD_NTP}/${NEW_NTP}/" "${WORK}/fleet/bundles/edge-base/bundle.yaml"
  rm -f "${WORK}/fleet/bundles/edge-base/bundle.yaml.bak"
  git -C "${WORK}/fleet" diff --quiet && die "the rollout edit changed nothing: has fleet-repo-example changed?"
  git -C "${WORK}/fleet" -c user.name=e2e -c user.email=e2e@flotilla.invalid \
    commit --quiet -am "eu-west: new NTP server"
  git -C "${WORK}/fleet" push --quiet origin main
}

main() {
  require_tools
  build_image
  create_clusters
  start_git_server
  start_hub
  local i
  for ((i = 1; i <= CLUSTERS; i++)); do install_agent "${PREFIX}-${i}" "${SITES[i - 1]}"; done
  log "waiting for the fleet to converge on the initial commit"
  wait_for_fleet "$OLD_NTP"
  local started=$SECONDS
  push_rollout
  wait_for_fleet "$NEW_NTP"
  log "rollout reached all ${CLUSTERS} clusters $((SECONDS - started))s after the push (interval ${INTERVAL}s)"
  log "hub's view of the clusters:"
  curl -fsS "${HUB_URL}/api/v1/clusters" >&2 || log "(the hub did not answer /api/v1/clusters)"
  printf '\n' >&2
  log "PASSED"
}

main "$@"
