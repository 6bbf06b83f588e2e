#!/bin/sh
# Converge the NFS server. One `changed:` line per change; the exports are re-read only when
# their file changed.
set -eu
changed() { echo "changed: $*"; }

if ! grep -qx "$SYSCTL_LINE" "$SYSCTL_FILE" 2>/dev/null; then
  printf '%s\n' "$SYSCTL_LINE" >"$SYSCTL_FILE"
  sysctl -q -w fs.leases-enable=0
  changed "disabled file leases"
fi
if ! server_installed; then
  if [ -n "$(dpkg --audit 2>/dev/null)" ]; then dpkg --configure -a >/dev/null; fi
  apt-get -q -o "DPkg::Lock::Timeout=$APT_LOCK_TIMEOUT" update >/dev/null
  apt-get -q -o "DPkg::Lock::Timeout=$APT_LOCK_TIMEOUT" install -y --no-install-recommends nfs-kernel-server >/dev/null
  changed "installed nfs-kernel-server"
fi
if [ ! -d "$EXPORT_ROOT" ]; then
  mkdir -p "$EXPORT_ROOT"
  changed "created $EXPORT_ROOT"
fi
volume_dirs_wrong | while read -r name uid gid; do
  mkdir -p "$EXPORT_ROOT/$name"
  chown "$uid:$gid" "$EXPORT_ROOT/$name"
  changed "volume directory $EXPORT_ROOT/$name owned by $uid:$gid"
done
if [ "$(exports_current)" != "$EXPORTS_SHA256" ]; then
  mkdir -p /etc/exports.d
  tmp=$(mktemp /etc/exports.d/.clusterup.XXXXXX)
  printf '%s\n' "$EXPORTS" >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$EXPORTS_FILE"
  changed "wrote $EXPORTS_FILE"
  if systemctl is-active --quiet nfs-server; then
    exportfs -ra
    changed "re-exported"
  fi
fi
if ! systemctl is-active --quiet nfs-server; then
  systemctl enable --now nfs-server >/dev/null 2>&1
  changed "started nfs-server"
fi
