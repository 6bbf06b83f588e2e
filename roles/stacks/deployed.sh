#!/bin/sh
# Print the files clusterup last recorded as deployed for STACK (see record.sh); nothing when
# there is no record. Read-only; run on a manager.
set -eu
docker config inspect --format '{{printf "%s" .Spec.Data}}' "clusterup-stack-$STACK" 2>/dev/null || true
