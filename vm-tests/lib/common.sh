#!/usr/bin/env bash
# Shared helpers of the lab scripts: logging, the Docker engine on this machine, the base images.
# Sourced, never run.

LAB_CACHE=${CLUSTERUP_LAB_CACHE:-/var/cache/clusterup-lab}
export LAB_DIR=${CLUSTERUP_LAB_DIR:-/var/tmp/clusterup-lab}
# The Debian releases a lab machine can run; the first is the default.
LAB_RELEASES=(bookworm trixie)

log() { printf '[lab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The header comment of the script being run, from its third line to its first line of code.
usage() { sed -n '3,/^[^#]/p' "$0" | sed '/^[^#]/d; s/^# \{0,1\}//' >&2; exit 2; }

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

# Runs `$1 ARG` for each ARG after it, all at once; fails, once all have ended, if any failed.
at_once() {
  local fn=$1 arg pid pids=() failed=0
  shift
  for arg in "$@"; do
    "$fn" "$arg" &
    pids+=("$!")
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  return "$failed"
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

# Whether $1 names a release the lab can run.
is_release() {
  local r
  for r in "${LAB_RELEASES[@]}"; do [ "$1" = "$r" ] && return 0; done
  return 1
}

check_release() {
  is_release "$1" || die "unknown Debian release '$1' (the lab runs: ${LAB_RELEASES[*]})"
}

# This machine's apt sources (deb822) with every suite moved to release $1, the mirror URIs
# kept: "bookworm bookworm-updates" becomes "trixie trixie-updates", "bookworm-security"
# "trixie-security". Lab machines of any release use the mirror this machine uses.
debian_sources_for() {
  local release=$1 src=/etc/apt/sources.list.d/debian.sources
  [ -f "$src" ] || die "no $src on this machine"
  awk -v rel="$release" '
    /^Suites:/ {
      line = "Suites:"
      for (i = 2; i <= NF; i++) {
        dash = index($i, "-")
        line = line " " rel (dash ? substr($i, dash) : "")
      }
      print line
      next
    }
    { print }' "$src"
}

# The debootstrap tarball of release $1: $LAB_CACHE/RELEASE-minbase.tar.
rootfs_tarball() { printf '%s/%s-minbase.tar\n' "$LAB_CACHE" "$1"; }

# Make the debootstrap tarball of release $1 (bookworm when not given) unless it is cached:
# debootstrap takes minutes and the image store may be wiped between runs. Needs no engine.
ensure_rootfs_tarball() {
  local release=${1:-bookworm} tarball
  check_release "$release"
  tarball=$(rootfs_tarball "$release")
  if [ ! -s "$tarball" ]; then
    ensure_packages debootstrap
    mkdir -p "$LAB_CACHE"
    local root logfile="$LAB_CACHE/debootstrap-$release.log"
    [ "$release" != bookworm ] || logfile="$LAB_CACHE/debootstrap.log"
    root=$(mktemp -d "$LAB_CACHE/rootfs.XXXXXX")
    log "debootstrap $release (takes a few minutes, once)"
    debootstrap --variant=minbase \
      --include=systemd,systemd-sysv,dbus,openssh-server,sudo,iproute2,procps,kmod,ca-certificates \
      "$release" "$root" "$(debian_mirror)" >"$logfile" 2>&1 \
      || die "debootstrap $release failed, see $logfile"
    tar -C "$root" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
    rm -rf "$root"
  fi
}

# The minimal Debian image clusterup-lab/base:RELEASE ($1, bookworm when not given),
# imported from the cached debootstrap tarball.
ensure_base_image() {
  local release=${1:-bookworm}
  check_release "$release"
  local image="clusterup-lab/base:$release"
  docker image inspect "$image" >/dev/null 2>&1 && return 0
  ensure_rootfs_tarball "$release"
  log "importing $image"
  docker import "$(rootfs_tarball "$release")" "$image" >/dev/null
}

# Pebble, Debian's package of Let's Encrypt's test ACME CA, with pebble-challtestsrv as its
# DNS, for the qemu lab's proxy test. Its directory is at https://LISTEN:$PEBBLE_PORT/dir,
# the root it issues from (new at every start) at https://LISTEN:15000/roots/0.
#   start_pebble DIR LISTEN SANS TARGET HTTP_PORT
# DIR: its state and logs (pebble.log); LISTEN: the address Pebble and its DNS listen on;
# SANS: subjectAltName of its HTTPS certificate, DIR/cert.pem, made here (the package ships
# none), naming every address clients use; TARGET: the address every name resolves to;
# HTTP_PORT: the port on TARGET where Pebble validates HTTP-01.
PEBBLE_PORT=14000
start_pebble() {
  local dir=$1 listen=$2 sans=$3 target=$4 http_port=$5
  ensure_packages pebble openssl
  stop_pebble "$dir"
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=clusterup lab ACME" -addext "subjectAltName=$sans" \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1 || die "openssl failed"
  printf '{"pebble": {"listenAddress": "%s", "managementListenAddress": "%s", "certificate": "%s", "privateKey": "%s", "httpPort": %s, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": false}}\n' \
    "$listen:$PEBBLE_PORT" "$listen:15000" "$dir/cert.pem" "$dir/key.pem" "$http_port" >"$dir/pebble.json"
  nohup pebble-challtestsrv -defaultIPv4 "$target" -defaultIPv6 "" -dns01 "$listen:8053" \
    -http01 "" -https01 "" -tlsalpn01 "" -management "$listen:8055" >"$dir/challtestsrv.log" 2>&1 &
  echo $! >"$dir/challtestsrv.pid"
  PEBBLE_VA_NOSLEEP=1 nohup pebble -config "$dir/pebble.json" -dnsserver "$listen:8053" \
    >"$dir/pebble.log" 2>&1 &
  echo $! >"$dir/pebble.pid"
  for _ in $(seq 1 50); do
    timeout 1 bash -c "exec 3<>/dev/tcp/$listen/$PEBBLE_PORT" 2>/dev/null && return 0
    sleep 0.2
  done
  die "Pebble did not listen on $listen:$PEBBLE_PORT within 10 s, see $dir/pebble.log"
}

stop_pebble() {
  local pid
  for pid in "$1/pebble.pid" "$1/challtestsrv.pid"; do
    [ -f "$pid" ] || continue
    kill "$(cat "$pid")" 2>/dev/null || true
    rm -f "$pid"
  done
}
