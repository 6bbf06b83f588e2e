#!/bin/sh
# Deploy a rendered stack: its files are written to a private temp folder, deployed with
# --prune, and the digest of what was deployed is kept in a swarm config labelled
# clusterup.stack, so any manager can tell later whether the stack changed.
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
state="clusterup-stack-$STACK"
docker config rm "$state" >/dev/null 2>&1 || true
printf '%s\n' "$SHA256" | docker config create \
  --label "clusterup.stack=$STACK" --label "clusterup.sha256=$SHA256" "$state" - >/dev/null
echo "changed: deployed stack $STACK"
