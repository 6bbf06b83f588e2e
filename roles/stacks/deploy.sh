#!/bin/sh
# Deploy a rendered stack: its files are written to a private temp folder and deployed with
# --prune. clusterup records what was deployed (a swarm config) only after the services converged.
set -eu
dir=$(mktemp -d /tmp/clusterup-stack.XXXXXX)
trap 'rm -rf "$dir"' EXIT
i=1
for name in $FILE_NAMES; do
  printenv "FILE_$i" >"$dir/$name"
  i=$((i + 1))
done
cd "$dir"
docker stack deploy --prune --resolve-image "$RESOLVE_IMAGE" -c stack.yml "$STACK" >deploy.log 2>&1 || {
  cat deploy.log >&2
  exit 1
}
echo "changed: deployed stack $STACK"
