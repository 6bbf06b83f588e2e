#!/bin/sh
# Converge the engine: daemon.json first (so a fresh install starts with it and needs no
# restart), then packages, then the service, then socket access. One `changed:` line per
# change, worded as check.sh words it when planning.
set -eu
# lib.sh of this role is prepended by clusterup (see role.yml).

changed() { echo "changed: $*"; }
apt() { apt-get -q -o "DPkg::Lock::Timeout=$APT_LOCK_TIMEOUT" "$@"; }
config_changed=no
had_engine=no
if command -v dockerd >/dev/null 2>&1; then had_engine=yes; fi

if [ "$(daemon_json_current)" != "$DAEMON_JSON_SHA256" ]; then
  mkdir -p /etc/docker
  tmp=$(mktemp /etc/docker/.daemon.json.XXXXXX)
  printf '%s\n' "$DAEMON_JSON" >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" /etc/docker/daemon.json
  config_changed=yes
  changed "write /etc/docker/daemon.json"
fi

missing=$(missing_packages | tr '\n' ' ')
if [ -n "$missing" ]; then
  if [ "$SOURCE" = docker ] && [ ! -f /etc/apt/sources.list.d/docker.list ]; then
    # shellcheck disable=SC1091 # the host's own file
    . /etc/os-release
    apt update >/dev/null
    apt install -y --no-install-recommends ca-certificates curl >/dev/null
    install -d -m 0755 /etc/apt/keyrings
    curl -fsSL "https://download.docker.com/linux/$ID/gpg" -o /etc/apt/keyrings/docker.asc
    echo "deb [arch=$(dpkg --print-architecture) signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/$ID $VERSION_CODENAME stable" \
      >/etc/apt/sources.list.d/docker.list
    changed "add Docker's apt repository"
  fi
  # Finish what an interrupted earlier run left half-configured, or apt refuses to go on.
  # Only then: dpkg does not wait for its lock as apt-get does (DPkg::Lock::Timeout).
  if [ -n "$(dpkg --audit 2>/dev/null)" ]; then dpkg --configure -a >/dev/null; fi
  apt update >/dev/null
  # shellcheck disable=SC2086 # a list of package names
  apt install -y --no-install-recommends $missing >/dev/null
  changed "install packages: ${missing% }"
  # A fresh engine started with the new daemon.json already.
  if [ "$had_engine" = no ]; then config_changed=no; fi
fi

if ! systemctl is-active --quiet docker; then
  systemctl enable --now docker >/dev/null 2>&1 || systemctl start docker
  changed "start the docker service"
elif [ "$config_changed" = yes ]; then
  systemctl restart docker
  changed "restart docker for the new daemon.json"
fi

if user_lacks_socket_access; then
  usermod -aG docker "$SSH_USER"
  changed "add user $SSH_USER to group docker"
fi
