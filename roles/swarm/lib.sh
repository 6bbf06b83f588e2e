# Helpers shared by the swarm steps (prepended by clusterup).

local_state() {
  docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null
}

node_id() {
  docker info --format '{{.Swarm.NodeID}}'
}
