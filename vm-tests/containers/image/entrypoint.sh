#!/bin/sh
# Runs at every start of a lab machine, before systemd. Each machine gets its own identity at
# its first start (the image was built once, so all would look alike); a restart keeps it, as
# a rebooted machine would.
set -eu
if [ ! -f /etc/lab-identity ]; then
  rm -f /etc/ssh/ssh_host_*
  ssh-keygen -A >/dev/null
  tr -d '-' </proc/sys/kernel/random/uuid >/etc/machine-id
  date >/etc/lab-identity
fi
if [ -f /lab/authorized_keys ]; then
  for home in /root /home/admin; do
    install -d -m 0700 "$home/.ssh"
    install -m 0600 /lab/authorized_keys "$home/.ssh/authorized_keys"
  done
  chown -R admin:admin /home/admin/.ssh
fi
exec /sbin/init
