#!/bin/sh
# Release the lock if HOLDER holds it; with an empty HOLDER, remove it whoever holds it
# (`clusterup unlock`), printing what it held.
set -eu
guard
[ -f "$LOCK_FILE" ] || exit 0
if [ -z "$HOLDER" ]; then
  cat "$LOCK_FILE"
  rm -f "$LOCK_FILE"
elif grep -qx "holder=$HOLDER" "$LOCK_FILE"; then
  rm -f "$LOCK_FILE"
fi
