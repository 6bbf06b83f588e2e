#!/bin/sh
# Runs at every start of a lab machine, before systemd: each machine must get its own identity,
# or all of them look alike (the image was built once).
set -eu
rm -f /etc/ssh/ssh_host_*
ssh-keygen -A >/dev/null
tr -d '-' </proc/sys/kernel/random/uuid >/etc/machine-id
if [ -f /lab/authorized_keys ]; then
  for home in /root /home/admin; do
    install -d -m 0700 "$home/.ssh"
    install -m 0600 /lab/authorized_keys "$home/.ssh/authorized_keys"
  done
  chown -R admin:admin /home/admin/.ssh
fi
exec /sbin/init
