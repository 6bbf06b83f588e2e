#!/bin/sh
# What exists of the cluster objects clusterup manages, one fact per line:
#   network <json of docker network inspect>    (overlay networks)
#   secret <name>
#   stack <name>
#   deployed <stack> <sha256>                   (digest of what clusterup last deployed)
#   secret-used <name>                          (a secret some service mounts)
#   network-used <id or name>                   (a network some service is attached to)
#   key <hex>                                   (the key secret names are made with)
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
services=$(docker service ls -q)
if [ -n "$services" ]; then
  # shellcheck disable=SC2086 # a list of ids
  docker service inspect --format \
    '{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}secret-used {{.SecretName}}{{"\n"}}{{end}}{{range .Spec.TaskTemplate.Networks}}network-used {{.Target}}{{"\n"}}{{end}}' \
    $services | sed '/^$/d' | sort -u
fi
if docker config inspect clusterup-secret-key >/dev/null 2>&1; then
  printf 'key %s\n' "$(docker config inspect --format '{{printf "%s" .Spec.Data}}' clusterup-secret-key)"
fi
