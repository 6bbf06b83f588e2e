#!/bin/sh
# Append one line to the audit log.
set -eu
mkdir -p "$STATE_DIR"
printf '%s\n' "$LINE" >>"$AUDIT_LOG"
