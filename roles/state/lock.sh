#!/bin/sh
# Take the cluster lock for HOLDER. Prints `acquired`, or `taken-over` (with the stale
# holder's lines) when the holder stopped refreshing it STALE seconds ago; exit 4 with the
# holder's lines when someone else holds it. The guard makes check-and-take one step.
set -eu
guard
if [ -f "$LOCK_FILE" ]; then
  if grep -qx "holder=$HOLDER" "$LOCK_FILE"; then
    touch "$LOCK_FILE"
    echo acquired
    exit 0
  fi
  age=$(lock_age)
  if [ "$age" -lt "$STALE" ]; then
    cat "$LOCK_FILE"
    echo "age=$age"
    exit 4
  fi
  echo taken-over
  cat "$LOCK_FILE"
  echo "age=$age"
  rm -f "$LOCK_FILE"
fi
tmp=$(mktemp "$STATE_DIR/.lock.XXXXXX")
printf 'holder=%s\n%s\n' "$HOLDER" "$INFO" >"$tmp"
if ln "$tmp" "$LOCK_FILE" 2>/dev/null; then
  rm -f "$tmp"
  echo acquired
else
  rm -f "$tmp"
  cat "$LOCK_FILE"
  exit 4
fi
