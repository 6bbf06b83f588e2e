#!/bin/sh
# Stop the steps of a run that was stopped midway: every process of the process groups in
# PGIDS (the groups common/announce.sh reported) gets SIGTERM, and SIGKILL if it is still
# there 5 s later. The members are found in /proc: dash's `kill` takes no negative pid.
set -u

members() {
  for stat in /proc/[0-9]*/stat; do
    line=$(cat "$stat" 2>/dev/null) || continue
    # After the command name in parentheses: state, parent, process group, ...
    # shellcheck disable=SC2086 # split into fields on purpose
    set -- ${line##*) }
    for group in $PGIDS; do
      if [ "${3:-}" = "$group" ]; then echo "${stat#/proc/}" | cut -d/ -f1; fi
    done
  done
}

signal_all() {
  for pid in $(members); do
    kill -s "$1" "$pid" 2>/dev/null || true
  done
}

signal_all TERM
for _ in 1 2 3 4 5; do
  [ -n "$(members)" ] || exit 0
  sleep 1
done
signal_all KILL
exit 0
