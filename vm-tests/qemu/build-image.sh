#!/bin/sh
# Build a disk image for lab VMs: Debian (bookworm or trixie) from the lab's debootstrap
# tarball, with Debian's kernel, systemd-networkd for the user-mode NIC, the Docker engine and
# the NFS client baked in (installing them under software emulation takes minutes per VM), no
# SSH host keys (each VM makes its own at first boot) and the lab's key for root and admin.
# The lab's service images (the `docker save` archives in IMAGES_DIR) are in the engine's
# image store already: loading them under emulation takes minutes per VM, here seconds, once
# (the container lab exercises clusterup's own preload).
# Usage: build-image.sh TARBALL APT_SOURCES AUTHORIZED_KEYS OUT_DIR IMAGES_DIR
set -eu
tarball=$1 sources=$2 keys=$3 out=$4 images=$5
here=$(cd "$(dirname "$0")" && pwd)
root=$(mktemp -d "$out/rootfs.XXXXXX")
cleanup() {
  for m in dev/pts dev proc sys; do umount "$root/$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT
tar -C "$root" -xf "$tarball"
cp "$sources" "$root/etc/apt/sources.list.d/debian.sources"
rm -f "$root/etc/apt/sources.list"
printf 'Acquire::Check-Valid-Until "false";\nAcquire::Languages "none";\n' >"$root/etc/apt/apt.conf.d/99lab"
cp /etc/resolv.conf "$root/etc/resolv.conf"
for m in proc sys dev dev/pts; do mount --bind "/$m" "$root/$m"; done
# Nothing may start inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
# A small initramfs: the VMs' root is ext4 on virtio, and unpacking Debian's default one
# (every storage driver, 36 MB) takes seconds of every boot under emulation. virtio_net in it
# too: the NICs must exist before lab-firstboot gives eth1 its address.
mkdir -p "$root/etc/initramfs-tools/conf.d"
printf 'MODULES=list\n' >"$root/etc/initramfs-tools/conf.d/lab"
printf 'virtio_pci\nvirtio_blk\nvirtio_net\next4\ncrc32c_generic\n' >>"$root/etc/initramfs-tools/modules"
# shellcheck disable=SC2016 # expanded by the chroot's shell
chroot "$root" sh -c 'export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # From Debian 13 on, the docker command is a package of its own.
  cli=$(apt-cache show docker-cli >/dev/null 2>&1 && echo docker-cli || true)
  apt-get install -y -qq --no-install-recommends linux-image-amd64 udev \
    netbase docker.io $cli apparmor nfs-common iptables >/dev/null
  # apt-get clean deletes the package cache too: built again, as a host has it after apt-get
  # update or install. Without it every apt-cache query of a user who cannot write the cache
  # (the facts, as the SSH user) builds one in memory: 17-29 s under emulation.
  apt-get clean
  apt-cache gencaches >/dev/null
  useradd --create-home --shell /bin/bash admin
  printf "admin ALL=(ALL) NOPASSWD:ALL\n" >/etc/sudoers.d/admin
  chmod 0440 /etc/sudoers.d/admin
  usermod -aG docker admin' >"$out/image-build.log" 2>&1
# Only the image store is kept, so that each VM's engine makes its own networks and identity
# at its first start.
mkdir -p "$root/tmp/lab-images"
cp "$images"/*.tar "$here/load-images.sh" "$root/tmp/lab-images/"
# The engine wants the cgroup hierarchies and a root that is a mount point (it remounts it to
# unpack layers): made for it in mount and network namespaces of its own, so that nothing it
# mounts outlives it and it cannot touch this machine's interfaces (an engine started without
# a bridge deletes docker0).
# shellcheck disable=SC2016 # expanded by the inner shell
unshare --mount --net --propagation private sh -c 'mount --rbind "$1" "$1" &&
  mount --rbind /sys/fs/cgroup "$1/sys/fs/cgroup" &&
  chroot "$1" sh /tmp/lab-images/load-images.sh /tmp/lab-images' - "$root" >>"$out/image-build.log" 2>&1
rm -rf "$root/tmp/lab-images"
find "$root/var/lib/docker" -mindepth 1 -maxdepth 1 ! -name image ! -name overlay2 -exec rm -rf {} +
rm -f "$root/usr/sbin/policy-rc.d" "$root"/etc/ssh/ssh_host_*
# The engine's configuration as clusterup writes it for the inventories the qemu suite runs
# (the unit test shipped_examples_load keeps the two equal): the engine starts with it at
# the first boot, and clusterup has no restart to do. Under emulation a restart of three
# engines at once took two and a half minutes; rolling daemon.json changes is the container
# lab's (tests/lab_operations.rs).
install -m 0644 "$here/daemon.json" "$root/etc/docker/daemon.json"
# The profiles Debian's apparmor package ships (bookworm's lsb_release and nvidia_modprobe,
# many more in trixie) are of no use here and compiling them held every boot back by 18 s
# under emulation: each is disabled as apparmor documents it, by a link in disable/. The
# engine's own profile (docker-default) is loaded by the engine as on any host.
for profile in "$root"/etc/apparmor.d/*; do
  [ -f "$profile" ] || continue
  ln -sf "../${profile##*/}" "$root/etc/apparmor.d/disable/${profile##*/}"
done
for m in dev/pts dev proc sys; do umount "$root/$m"; done
: >"$root/etc/machine-id"
# The user-mode NIC by systemd-networkd: ifupdown waits for udev to settle first, which takes
# over a minute of every boot under emulation. The private NIC is firstboot.sh's.
printf '[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\n' >"$root/etc/systemd/network/10-eth0.network"
chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
printf '/dev/vda / ext4 defaults 0 1\n' >"$root/etc/fstab"
printf 'nameserver 10.0.2.3\n' >"$root/etc/resolv.conf"
for home in root home/admin; do
  install -d -m 0700 "$root/$home/.ssh"
  install -m 0600 "$keys" "$root/$home/.ssh/authorized_keys"
done
chroot "$root" chown -R admin:admin /home/admin/.ssh
install -m 0755 "$here/firstboot.sh" "$root/usr/local/sbin/lab-firstboot"
cat >"$root/etc/systemd/system/lab-firstboot.service" <<'UNIT'
[Unit]
Description=Lab VM identity and private address
Before=ssh.service
After=systemd-udevd.service network-pre.target
Wants=network-pre.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/lab-firstboot

[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable lab-firstboot.service >/dev/null 2>&1
cp -L "$root/vmlinuz" "$out/vmlinuz"
cp -L "$root/initrd.img" "$out/initrd.img"
mkfs.ext4 -q -F -d "$root" "$out/disk.raw" 4G
