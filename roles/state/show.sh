#!/bin/sh
# The lock (if any) and the last 10 audit lines. Read-only.
set -eu
if [ -f "$LOCK_FILE" ]; then
  sed 's/^/lock /' "$LOCK_FILE"
  echo "lock age=$(lock_age)"
fi
if [ -f "$AUDIT_LOG" ]; then
  tail -n 10 "$AUDIT_LOG" | sed 's/^/audit /'
fi
