#!/usr/bin/env bash
# A Docker Swarm of three engines on this machine, each engine in a network namespace of its own: a manager
# (its own "control" machine, which runs no service) and one worker per data center, labelled dc=<name>.
#
#   bash docker/swarm-lab.sh up        # idempotent: what already runs is kept (~1 s then)
#   bash docker/swarm-lab.sh status    # engines, nodes, labels
#   bash docker/swarm-lab.sh down      # every engine, container, namespace and file of the lab: nothing left
#
# Layout (PREFIX defaults to "bkswarm"; SWARM_LAB_PREFIX changes it, so two labs never collide):
#
#   PREFIX-lan           bridge "lan": the machines' switch, in a namespace of its own (the host's firewall
#                        and the host's addresses never see the lab's traffic)
#   PREFIX-ctl           lan0 10.232.0.1   dockerd, swarm manager (availability drain: no task runs here)
#   PREFIX-dc-east       lan0 10.232.0.2   dockerd, worker, label dc=dc-east
#   PREFIX-dc-west       lan0 10.232.0.3   dockerd, worker, label dc=dc-west
#
# Each engine has its own data root (/var/lib/PREFIX/NODE), exec root and pid file (/run/PREFIX/NODE), socket
# (unix:///run/PREFIX/NODE.sock) and hostname (a UTS namespace: the swarm node is named after it), and its own
# containerd. No image is pulled: SWARM_LAB_IMAGES (default blackout:latest) are copied from the host's engine
# (docker save | docker load) into each worker. Only the namespaces created here carry addresses; the host's
# network is not touched. Needs root, iproute2, util-linux's unshare and the docker lab's dockerd.
set -euo pipefail

PREFIX="${SWARM_LAB_PREFIX:-bkswarm}"
IMAGES="${SWARM_LAB_IMAGES:-blackout:latest}"
SUBNET="10.232.0"
NODES=(ctl dc-east dc-west)
DATA="/var/lib/$PREFIX"
RUN="/run/$PREFIX"
LAN="$PREFIX-lan"
DOCKER="${DOCKER:-docker}"
START_TIMEOUT_S=60

die() { echo "swarm-lab: $*" >&2; exit 1; }
address() { case "$1" in ctl) echo "$SUBNET.1" ;; dc-east) echo "$SUBNET.2" ;; dc-west) echo "$SUBNET.3" ;; esac; }
sock() { echo "unix://$RUN/$1.sock"; }
engine() { local node="$1"; shift; "$DOCKER" --host "$(sock "$node")" "$@"; }
has_ns() { ip netns list | awk '{print $1}' | grep -qx "$1"; }
answers() { engine "$1" info --format '{{.ID}}' >/dev/null 2>&1; }
pid_of() { [ -f "$RUN/$1/dockerd.pid" ] && cat "$RUN/$1/dockerd.pid" || true; }
# A pid is ours when its command line names this lab's socket: never signal a process we did not start.
ours() { local pid="$1"; [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$RUN/"; }

network_up() {
  has_ns "$LAN" || { ip netns add "$LAN"; ip -n "$LAN" link set lo up; }
  ip -n "$LAN" link show lan >/dev/null 2>&1 || { ip -n "$LAN" link add lan type bridge; ip -n "$LAN" link set lan up; }
  for node in "${NODES[@]}"; do
    local ns="$PREFIX-$node" port="p-$node"
    has_ns "$ns" || { ip netns add "$ns"; ip -n "$ns" link set lo up; }
    if ! ip -n "$ns" link show lan0 >/dev/null 2>&1; then
      ip link add lan0 netns "$ns" type veth peer name "$port" netns "$LAN"
      ip -n "$LAN" link set "$port" master lan up
      ip -n "$ns" addr add "$(address "$node")/24" dev lan0
    fi
    ip -n "$ns" link set lan0 up  # also after a power cut (the link of a "dark" data center goes down)
  done
}

engine_up() {
  local node="$1" ns="$PREFIX-$1"
  answers "$node" && return 0
  mkdir -p "$DATA/$node" "$RUN/$node"
  # setsid: the engine outlives this script, in a session of its own; unshare --uts: its own hostname
  # nsenter, not `ip netns exec`: that remounts /sys in a mount namespace of its own, hiding the cgroups dockerd needs
  setsid nsenter --net="/run/netns/$ns" unshare --uts sh -c "hostname '$PREFIX-$node' && exec dockerd \
      --data-root '$DATA/$node' --exec-root '$RUN/$node/exec' --pidfile '$RUN/$node/dockerd.pid' \
      --host '$(sock "$node")' --cgroup-parent '$PREFIX-$node' --bip 172.31.254.1/24 \
      --default-address-pool base=172.30.0.0/16,size=24" \
    </dev/null >"$RUN/$node.log" 2>&1 &
  local deadline=$((SECONDS + START_TIMEOUT_S))
  until answers "$node"; do
    [ "$SECONDS" -lt "$deadline" ] || die "the $node engine did not answer within ${START_TIMEOUT_S}s; its log: $RUN/$node.log"
    sleep 0.2
  done
}

images_in() {
  local node="$1"
  for image in $IMAGES; do
    local want; want="$("$DOCKER" image inspect --format '{{.Id}}' "$image" 2>/dev/null)" \
      || die "no image '$image' on the host's engine: build it first (make image)"
    [ "$(engine "$node" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)" = "$want" ] && continue
    "$DOCKER" save "$image" | engine "$node" load --quiet >/dev/null
  done
}

swarm_up() {
  if [ "$(engine ctl info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
    engine ctl swarm init --advertise-addr "$(address ctl)" --listen-addr "$(address ctl):2377" >/dev/null
  fi
  local token; token="$(engine ctl swarm join-token --quiet worker)"
  local ctl_id; ctl_id="$(engine ctl info --format '{{.Swarm.NodeID}}')"
  engine ctl node update --availability drain "$ctl_id" >/dev/null
  for node in dc-east dc-west; do
    if [ "$(engine "$node" info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
      engine "$node" swarm join --token "$token" --advertise-addr "$(address "$node")" \
        --listen-addr "$(address "$node"):2377" "$(address ctl):2377" >/dev/null
    fi
    engine ctl node update --label-add "dc=$node" "$(engine "$node" info --format '{{.Swarm.NodeID}}')" >/dev/null
  done
}

cmd_up() {
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces, dockerd)"
  command -v dockerd >/dev/null || die "no dockerd: run the docker lab's setup.sh first"
  local t0="$EPOCHREALTIME"
  mkdir -p "$RUN"
  network_up
  for node in "${NODES[@]}"; do engine_up "$node" & done
  wait
  for node in dc-east dc-west; do images_in "$node" & done
  wait
  swarm_up
  echo "swarm lab up in $(awk "BEGIN {printf \"%.1f\", $EPOCHREALTIME - $t0}") s: manager $(sock ctl); workers $(sock dc-east) (dc=dc-east), $(sock dc-west) (dc=dc-west)"
}

cmd_status() {
  for node in "${NODES[@]}"; do
    if answers "$node"; then echo "$node: engine up (pid $(pid_of "$node"))"; else echo "$node: no engine"; fi
  done
  answers ctl && engine ctl node ls --format '{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}' || true
}

cmd_down() {
  for node in "${NODES[@]}"; do
    local pid; pid="$(pid_of "$node")"
    if answers "$node"; then
      # its containers first: a killed engine would leave their processes to containerd's shims
      local ids; ids="$(engine "$node" ps -aq)"
      [ -z "$ids" ] || engine "$node" rm -f $ids >/dev/null 2>&1 || true
    fi
    if ours "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do ours "$pid" || break; sleep 0.1; done
      ours "$pid" && kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  # containerd and its shims, started by our engines (their command lines name our run directory)
  for proc in /proc/[0-9]*; do
    local pid="${proc#/proc/}"
    ours "$pid" && kill -KILL "$pid" 2>/dev/null || true
  done
  for node in "${NODES[@]}"; do
    has_ns "$PREFIX-$node" && ip netns delete "$PREFIX-$node"
    for hierarchy in /sys/fs/cgroup/*/; do [ -d "$hierarchy$PREFIX-$node" ] && find "$hierarchy$PREFIX-$node" -depth -type d -exec rmdir {} + 2>/dev/null || true; done
  done
  has_ns "$LAN" && ip netns delete "$LAN"
  # what the engines mounted lives in their own mount namespaces (ip netns exec makes one), gone with them
  if grep -q " $DATA/\| $RUN/" /proc/self/mounts; then
    grep -o " $DATA/[^ ]*\| $RUN/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l
  fi
  rm -rf "$DATA" "$RUN"
  echo "swarm lab down: engines, containers, namespaces and files removed"
}

case "${1:-up}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) die "usage: $0 up|status|down" ;;
esac
