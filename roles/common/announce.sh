#!/bin/sh
# Put by clusterup at the top of every script it runs: tells clusterup (one marker line on
# stderr, which it removes) the process group of this step, so that a run stopped midway
# (Ctrl-C, a lost lock) can stop what it started on the host too (common/stop.sh).
# shellcheck disable=SC2034 # the fields before the process group are read and dropped
if read -r _pid _comm _state _ppid clusterup_pgid _rest </proc/$$/stat 2>/dev/null; then
  echo "clusterup-pgid $clusterup_pgid" >&2
fi
