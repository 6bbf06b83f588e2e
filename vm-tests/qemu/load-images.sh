#!/bin/sh
# Run inside the VM image's chroot by build-image.sh: the image's own engine (the VMs' version)
# loads the `docker save` archives in $1 into its store, on a socket of its own and without
# networking, and stops again.
set -eu
sock=unix:///run/lab-load.sock
dockerd --host "$sock" --pidfile /run/lab-load.pid --iptables=false --ip-masq=false --bridge=none &
engine=$!
# The engine stops with this script, whatever happens: it holds the chroot's mounts.
trap 'kill "$engine" 2>/dev/null || true; wait "$engine" || true' EXIT
tries=0
until docker --host "$sock" version >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "the engine did not answer within 60 s" >&2; exit 1; }
  sleep 1
done
for archive in "$1"/*.tar; do
  docker --host "$sock" load -q -i "$archive"
done
