#!/bin/sh
# Runs once per boot of a lab VM, before sshd: the VM's name, its address on the lab's private
# network and (at its first boot) its SSH host keys, from the kernel command line
# (clusterup.name=NAME clusterup.ip=ADDR/PREFIX).
set -eu
read -r cmdline </proc/cmdline
# shellcheck disable=SC2086 # split into words on purpose
for word in $cmdline; do
  case $word in
    clusterup.name=*) name=${word#clusterup.name=} ;;
    clusterup.ip=*) ip=${word#clusterup.ip=} ;;
  esac
done
if [ -n "${name:-}" ]; then
  echo "$name" >/etc/hostname
  hostname "$name"
  printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$name" >/etc/hosts
fi
# An Ed25519 key only: RSA's takes a minute under emulation, and sshd waits for it.
[ -f /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
if [ -n "${ip:-}" ]; then
  ip link set eth1 up
  ip addr replace "$ip" dev eth1
fi
