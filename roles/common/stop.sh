#!/bin/sh
# Stop the steps of a run that was stopped midway: each process group in PGIDS (the groups
# common/announce.sh reported) gets SIGTERM, and SIGKILL if it is still there 5 s later.
set -u
for group in $PGIDS; do
  kill -TERM -- "-$group" 2>/dev/null && echo "stopped: $group"
done
for _ in 1 2 3 4 5; do
  alive=no
  for group in $PGIDS; do
    if kill -0 -- "-$group" 2>/dev/null; then alive=yes; fi
  done
  [ "$alive" = yes ] || exit 0
  sleep 1
done
for group in $PGIDS; do
  kill -KILL -- "-$group" 2>/dev/null && echo "killed: $group"
done
exit 0
