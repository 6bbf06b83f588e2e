#!/bin/sh
# Exit 0 when nfs-common is installed, 10 (saying so) when it is not. Read-only.
set -u
if ! dpkg-query -W -f '${db:Status-Status}' nfs-common 2>/dev/null | grep -qx installed; then
  echo "install packages: nfs-common"
  exit 10
fi
