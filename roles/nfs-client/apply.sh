#!/bin/sh
# Install nfs-common. One `changed:` line per change.
set -eu
if ! dpkg-query -W -f '${db:Status-Status}' nfs-common 2>/dev/null | grep -qx installed; then
  if [ -n "$(dpkg --audit 2>/dev/null)" ]; then dpkg --configure -a >/dev/null; fi
  apt-get -q -o "DPkg::Lock::Timeout=$APT_LOCK_TIMEOUT" update >/dev/null
  apt-get -q -o "DPkg::Lock::Timeout=$APT_LOCK_TIMEOUT" install -y --no-install-recommends nfs-common >/dev/null
  echo "changed: installed nfs-common"
fi
