#!/usr/bin/env bash
# Shared helpers of the lab scripts: logging, the Docker engine on this machine, the base image.
# Sourced, never run.

LAB_CACHE=${CLUSTERUP_LAB_CACHE:-/var/cache/clusterup-lab}
export LAB_DIR=${CLUSTERUP_LAB_DIR:-/var/tmp/clusterup-lab}
BASE_IMAGE=clusterup-lab/base:bookworm

log() { printf '[lab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "the lab needs root (it runs dockerd, debootstrap and iptables)"; }

# apt-get install only what is missing; the lab must come up on a fresh machine.
ensure_packages() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Start dockerd unless an engine already answers. There is no systemd on this machine.
ensure_dockerd() {
  docker info >/dev/null 2>&1 && return 0
  ensure_packages docker.io
  log "starting dockerd"
  nohup dockerd >/var/log/clusterup-lab-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  die "dockerd did not answer within 60 s (see /var/log/clusterup-lab-dockerd.log)"
}

# The Debian mirror this machine uses, read from its apt sources.
debian_mirror() {
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
  [ -n "$uri" ] || uri=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  [ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources.list.d/debian.sources"
  printf '%s\n' "$uri"
}

# A minimal Debian bookworm image built from debootstrap; the tarball is cached because
# debootstrap takes minutes and the image store may be wiped between runs.
ensure_base_image() {
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
  local tarball="$LAB_CACHE/bookworm-minbase.tar"
  if [ ! -s "$tarball" ]; then
    ensure_packages debootstrap
    mkdir -p "$LAB_CACHE"
    local root
    root=$(mktemp -d "$LAB_CACHE/rootfs.XXXXXX")
    log "debootstrap bookworm (takes a few minutes, once)"
    debootstrap --variant=minbase \
      --include=systemd,systemd-sysv,dbus,openssh-server,sudo,iproute2,procps,kmod,ca-certificates \
      bookworm "$root" "$(debian_mirror)" >"$LAB_CACHE/debootstrap.log" 2>&1 \
      || die "debootstrap failed, see $LAB_CACHE/debootstrap.log"
    tar -C "$root" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
    rm -rf "$root"
  fi
  log "importing $BASE_IMAGE"
  docker import "$tarball" "$BASE_IMAGE" >/dev/null
}
