#!/bin/sh
# Copy this manager's swarm state (/var/lib/docker/swarm: raft log, snapshots, certificates)
# with its engine stopped, so the copy is consistent; the engine is started again whatever
# happens. Prints `stopped_ms=N` (how long the engine was down) and `archive=BASE64` (a
# gzipped tar of the folder). clusterup picks a manager that is not the leader and checks that
# the others keep quorum meanwhile.
set -eu
[ -d /var/lib/docker/swarm ] || { echo "this host has no swarm state (/var/lib/docker/swarm)" >&2; exit 3; }
out=$(mktemp /var/tmp/clusterup-backup.XXXXXX)
started=no
start_again() {
  if [ "$started" = no ]; then
    systemctl reset-failed docker.service docker.socket 2>/dev/null || true
    systemctl start docker.socket docker.service
  fi
  rm -f "$out"
}
trap start_again EXIT
before=$(date +%s%3N)
# The socket too: a request to it would start the engine again in the middle of the copy.
systemctl stop docker.socket docker.service
tar -C /var/lib/docker -czf "$out" swarm
systemctl reset-failed docker.service docker.socket 2>/dev/null || true
systemctl start docker.socket docker.service
started=yes
echo "stopped_ms=$(($(date +%s%3N) - before))"
printf 'archive='
base64 -w0 "$out"
echo
