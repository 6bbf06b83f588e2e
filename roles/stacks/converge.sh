#!/bin/sh
# Wait (at most TIMEOUT seconds) until every service of STACK runs its desired replicas and no
# rolling update is still under way. A listing that fails or is empty is not "ready"; an update
# that paused or rolled back fails at once. On failure, print each failing task's state and
# error, and exit 1.
set -eu
deadline=$(( $(date +%s) + TIMEOUT ))

tasks_report() {
  docker stack ps "$STACK" --no-trunc --format '  task {{.Name}} on {{.Node}}: {{.CurrentState}} {{.Error}}' 2>&1 |
    grep -v 'Running' | head -n 20 >&2 || true
}

while :; do
  if ! listing=$(docker stack services "$STACK" --format '{{.Name}} {{.Replicas}}' 2>&1); then
    pending="listing the services failed: $listing"
  elif [ -z "$listing" ]; then
    pending="no service of the stack is listed yet"
  else
    pending=$(printf '%s\n' "$listing" |
      awk '{split($2, r, "/"); sub(/ .*/, "", r[2]); if (r[1] != r[2]) print $1 " " $2}')
    for service in $(printf '%s\n' "$listing" | cut -d' ' -f1); do
      update=$(docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "$service")
      case $update in
        updating | rollback_started) pending="${pending:+$pending
}$service update $update" ;;
        paused | rollback_paused | rollback_completed)
          echo "service $service: its rolling update ended as '$update'" >&2
          tasks_report
          exit 1
          ;;
      esac
    done
  fi
  if [ -z "$pending" ]; then
    echo "ready"
    exit 0
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "not ready after ${TIMEOUT}s:" >&2
    printf '%s\n' "$pending" | sed 's/^/  service /' >&2
    tasks_report
    exit 1
  fi
  sleep 1
done
