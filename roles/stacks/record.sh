#!/bin/sh
# Record STACK as deployed, once its services have converged: a swarm config labelled
# clusterup.stack with the digest in a label and the deployed files as its data, so any manager
# can tell later whether the stack changed, and `plan --diff` can show how. A stack that failed
# to converge keeps its previous record, so the next run deploys it again instead of trusting it.
set -eu
state="clusterup-stack-$STACK"
docker config rm "$state" >/dev/null 2>&1 || true
printenv CONTENT | docker config create \
  --label "clusterup.stack=$STACK" --label "clusterup.sha256=$SHA256" "$state" - >/dev/null
