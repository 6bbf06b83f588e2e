#!/bin/sh
# What exists of the cluster objects clusterup manages, one fact per line:
#   network <json of docker network inspect>    (overlay networks)
#   secret <name>
#   stack <name>
#   deployed <stack> <sha256>                   (digest of what clusterup last deployed)
# Read-only; run on a manager.
set -eu
docker network ls --filter driver=overlay -q | while read -r id; do
  printf 'network %s\n' "$(docker network inspect --format '{{json .}}' "$id")"
done
docker secret ls --format '{{.Name}}' | sed 's/^/secret /'
docker stack ls --format '{{.Name}}' | sed 's/^/stack /'
docker config ls -q --filter label=clusterup.stack | while read -r id; do
  docker config inspect --format 'deployed {{index .Spec.Labels "clusterup.stack"}} {{index .Spec.Labels "clusterup.sha256"}}' "$id"
done
