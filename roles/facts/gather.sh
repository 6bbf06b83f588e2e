#!/bin/sh
# Facts about this host, one `key=value` per line, all in one round trip.
# Read-only: changes nothing on the host. Needs root only for `docker info`: with
# ENGINE_VIA=api, clusterup has asked the engine itself (over its socket) and runs this
# script as the SSH user; with ENGINE_VIA=script (through sudo) this script asks it.
set -u
# A non-root user's PATH lacks the sbin directories, where dockerd is.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

if [ -r /etc/os-release ]; then
  # shellcheck disable=SC1091 # the host's own file
  . /etc/os-release
fi
echo "os_id=${ID:-unknown}"
echo "os_version=${VERSION_ID:-unknown}"
echo "os_name=${PRETTY_NAME:-unknown}"
echo "arch=$(uname -m)"
echo "hostname=$(hostname)"
echo "machine_id=$(cat /etc/machine-id 2>/dev/null)"

iface=$(ip -o route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')
echo "route_iface=${iface}"
if [ -n "$iface" ]; then
  echo "route_addr=$(ip -o -4 addr show dev "$iface" 2>/dev/null | awk '{print $4; exit}' | cut -d/ -f1)"
  echo "route_mtu=$(cat "/sys/class/net/$iface/mtu" 2>/dev/null)"
fi

# The engine packages this system's apt sources offer (name=candidate version): the docker
# command is a package of its own on some systems (docker-cli on Debian 13); the installed
# version of each, and every version the sources offer (for `docker.version`). Empty when the
# package lists were never downloaded.
apt-cache policy docker.io docker-cli docker-ce docker-ce-cli 2>/dev/null | awk '
  /^[^ ]/ { name = $1; sub(/:$/, "", name); table = 0; next }
  $1 == "Installed:" && $2 != "(none)" { installed = installed sep_i name "=" $2; sep_i = " "; next }
  $1 == "Candidate:" && $2 != "(none)" { candidates = candidates sep_c name "=" $2; sep_c = " "; next }
  $1 == "Version" && $2 == "table:" { table = 1; next }
  table && $1 == "***" { offered[name] = offered[name] (offered[name] == "" ? "" : ",") $2; next }
  # A version line is "VERSION PRIORITY"; the lines under it name where it comes from.
  table && NF == 2 && $2 ~ /^-?[0-9]+$/ && $1 !~ /^[0-9]+$/ {
    offered[name] = offered[name] (offered[name] == "" ? "" : ",") $1
  }
  END {
    print "apt_candidates=" candidates
    print "apt_installed=" installed
    line = ""
    for (n in offered) line = line (line == "" ? "" : " ") n "=" offered[n]
    print "apt_versions=" line
  }'
if command -v docker >/dev/null 2>&1; then echo "docker_cli=yes"; else echo "docker_cli=no"; fi
echo "apparmor_enabled=$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || echo N)"
if command -v dockerd >/dev/null 2>&1; then
  echo "docker_installed=yes"
  if [ "${ENGINE_VIA:-script}" = script ]; then
    # One call for both (each docker call costs about 25 ms); both empty when the engine is down.
    info=$(docker info --format '{{.ServerVersion}}|{{json .Swarm}}' 2>/dev/null) || info="|"
    echo "docker_version=${info%%|*}"
    # printf, not echo: dash's echo would turn the certificate's \n escapes into line breaks.
    printf 'swarm=%s\n' "${info#*|}"
  fi
else
  echo "docker_installed=no"
fi

# Encrypted overlay networks are IPsec ESP with AES-GCM in the kernel. Without it the engine
# creates the network all the same and drops the traffic between nodes without a word.
# ipsec=yes, no:<what is missing>, or unknown when the kernel's configuration is unreadable.
kernel_config() {
  if [ -r /proc/config.gz ]; then
    gzip -dc /proc/config.gz 2>/dev/null
  elif [ -r "/boot/config-$(uname -r)" ]; then
    cat "/boot/config-$(uname -r)"
  fi
}
config=$(kernel_config | grep -E '^(# )?CONFIG_(XFRM_USER|INET_ESP|CRYPTO_GCM)[ =]')
if [ -z "$config" ]; then
  echo "ipsec=unknown"
else
  missing=""
  for option in XFRM_USER INET_ESP CRYPTO_GCM; do
    printf '%s\n' "$config" | grep -Eq "^CONFIG_${option}=[ym]" || missing="${missing:+$missing,}CONFIG_$option"
  done
  echo "ipsec=${missing:+no:}${missing:-yes}"
fi
