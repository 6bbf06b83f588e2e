#!/bin/sh
# Prepended by clusterup to every script of a role whose role.yml lists `needs:` (the commands
# it calls). REQUIRED_COMMANDS is set just above this file. A missing command is named here
# instead of surfacing later as a bare exit 127 with nothing on stderr.
for required in ${REQUIRED_COMMANDS:-}; do
  if ! command -v "$required" >/dev/null 2>&1; then
    echo "command not found on this host: $required" >&2
    exit 127
  fi
done
