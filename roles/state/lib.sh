# Paths of clusterup's state on a manager (prepended by clusterup).
export STATE_DIR=/var/lib/clusterup
export LOCK_FILE=$STATE_DIR/lock
export AUDIT_LOG=$STATE_DIR/audit.log

lock_age() {
  echo $(( $(date +%s) - $(stat -c %Y "$LOCK_FILE") ))
}
