# Shared by check.sh and apply.sh of the nfs-server role (prepended by clusterup).
export EXPORTS_FILE=/etc/exports.d/clusterup.exports
# NFSv4 delegations hung every client of a NAS that had to recall them (see the README):
# no leases, no delegations.
export SYSCTL_FILE=/etc/sysctl.d/60-clusterup-nfs.conf
export SYSCTL_LINE="fs.leases-enable = 0"

server_installed() {
  dpkg-query -W -f '${db:Status-Status}' nfs-kernel-server 2>/dev/null | grep -qx installed
}

exports_current() {
  sha256sum "$EXPORTS_FILE" 2>/dev/null | cut -d' ' -f1
}

# "name uid gid" lines whose directory is missing or owned by someone else.
volume_dirs_wrong() {
  printf '%s\n' "$VOLUMES" | while read -r name uid gid; do
    [ -n "$name" ] || continue
    dir="$EXPORT_ROOT/$name"
    if [ ! -d "$dir" ] || [ "$(stat -c '%u %g' "$dir")" != "$uid $gid" ]; then
      echo "$name $uid $gid"
    fi
  done
}
