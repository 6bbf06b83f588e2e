#!/bin/sh
# Remove NODE from the node list once it is down (it left), or at once with FORCE=yes (the
# host is unreachable and cannot leave by itself). Run on a manager.
set -eu
if [ "$FORCE" = yes ]; then
  docker node rm --force "$NODE" >/dev/null
else
  deadline=$(( $(date +%s) + 60 ))
  until [ "$(docker node inspect --format '{{.Status.State}}' "$NODE")" = down ]; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "$NODE did not go down within 60 s after leaving" >&2
      exit 1
    fi
    sleep 1
  done
  docker node rm "$NODE" >/dev/null
fi
echo "changed: removed node $NODE"
