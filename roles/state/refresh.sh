#!/bin/sh
# Keep HOLDER's lock fresh; exit 4 if the lock is no longer HOLDER's.
set -eu
guard
grep -qx "holder=$HOLDER" "$LOCK_FILE" 2>/dev/null || exit 4
touch "$LOCK_FILE"
