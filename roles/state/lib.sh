# Paths of clusterup's state on a manager (prepended by clusterup).
export STATE_DIR=/var/lib/clusterup
export LOCK_FILE=$STATE_DIR/lock
export AUDIT_LOG=$STATE_DIR/audit.log

lock_age() {
  echo $(( $(date +%s) - $(stat -c %Y "$LOCK_FILE") ))
}

# Serialises the lock steps on this host (flock on a guard file), so that checking the lock
# and taking it over are one step: two runs that both find it stale cannot both take it.
guard() {
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/.guard"
  if ! flock -w 10 9; then
    echo "another clusterup step held $STATE_DIR/.guard for 10 s" >&2
    exit 1
  fi
}
