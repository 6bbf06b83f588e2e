#!/bin/sh
# Can this node mount the share? Mounts SERVER:SHARE read-only on a temporary folder, within
# TIMEOUT seconds, and unmounts it. Exit 0 when it could; the error otherwise.
set -eu
dir=$(mktemp -d /tmp/clusterup-nfs-probe.XXXXXX)
trap 'umount -f "$dir" 2>/dev/null || true; rmdir "$dir"' EXIT
timeout "$TIMEOUT" mount -t nfs -o "ro,nfsvers=4.2,soft,timeo=50,retrans=1" "$SERVER:$SHARE" "$dir"
umount "$dir"
