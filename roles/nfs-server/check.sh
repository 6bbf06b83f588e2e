#!/bin/sh
# Is the NFS server as the inventory wants it? Exit 0: yes. Exit 10: apply.sh is needed, and
# each line printed says why. Read-only.
set -u
need=0
want() { echo "$*"; need=1; }
server_installed || want "install packages: nfs-kernel-server"
grep -qx "$SYSCTL_LINE" "$SYSCTL_FILE" 2>/dev/null || want "disable file leases (NFSv4 delegations)"
[ -d "$EXPORT_ROOT" ] || want "create $EXPORT_ROOT"
for name in $(volume_dirs_wrong | cut -d' ' -f1); do want "create or chown $EXPORT_ROOT/$name"; done
[ "$(exports_current)" = "$EXPORTS_SHA256" ] || want "write $EXPORTS_FILE and re-export"
systemctl is-active --quiet nfs-server 2>/dev/null || want "start nfs-server"
[ "$need" = 0 ] || exit 10
