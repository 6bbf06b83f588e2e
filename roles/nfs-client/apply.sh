#!/bin/sh
# Install nfs-common. One `changed:` line per change.
set -eu
if ! dpkg-query -W -f '${db:Status-Status}' nfs-common 2>/dev/null | grep -qx installed; then
  apt-get -q -o DPkg::Lock::Timeout=300 update >/dev/null
  apt-get -q -o DPkg::Lock::Timeout=300 install -y --no-install-recommends nfs-common >/dev/null
  echo "changed: installed nfs-common"
fi
