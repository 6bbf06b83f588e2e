# Helpers shared by the swarm steps (prepended by clusterup).

local_state() {
  docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null
}

node_id() {
  docker info --format '{{.Swarm.NodeID}}'
}

# Runs a `docker node` change, again when the swarm answers "update out of sequence": the node
# object changed between the CLI's read and its write, as it does just after a role change.
node_change() {
  tries=0
  while ! err=$("$@" 2>&1 >/dev/null); do
    tries=$((tries + 1))
    case $err in
      *"out of sequence"*)
        if [ "$tries" -lt 10 ]; then
          sleep 1
          continue
        fi
        ;;
    esac
    printf '%s\n' "$err" >&2
    return 1
  done
}
