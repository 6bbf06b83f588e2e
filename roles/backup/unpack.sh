#!/bin/sh
# Put a backup's swarm state (ARCHIVE, uploaded by clusterup) in place on this manager, its
# engine stopped meanwhile: the state it had is kept beside it
# (/var/lib/docker/swarm.before-restore-STAMP), never deleted. The engine comes back as a
# manager of the backed-up swarm without its old peers; clusterup then sends `swarm init
# --force-new-cluster` to make it that swarm's only manager.
set -eu
new=/var/lib/docker/swarm.restoring-$STAMP
trap 'rm -f "$ARCHIVE"' EXIT
rm -rf "$new"
mkdir -p "$new"
tar -C "$new" -xzf "$ARCHIVE"
[ -d "$new/swarm/raft" ] || { echo "the backup holds no raft state (swarm/raft)" >&2; exit 3; }
systemctl stop docker.socket docker.service
if [ -d /var/lib/docker/swarm ]; then
  mv /var/lib/docker/swarm "/var/lib/docker/swarm.before-restore-$STAMP"
  echo "kept=/var/lib/docker/swarm.before-restore-$STAMP"
fi
mv "$new/swarm" /var/lib/docker/swarm
rmdir "$new"
systemctl reset-failed docker.service docker.socket 2>/dev/null || true
systemctl start docker.socket docker.service
echo "changed: restored the swarm state"
