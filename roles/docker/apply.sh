#!/bin/sh
# Converge the engine: daemon.json first (so a fresh install starts with it and needs no
# restart), then packages, then the service, then socket access. One `changed:` line per
# change, worded as check.sh words it when planning.
set -eu
# lib.sh of this role is prepended by clusterup (see role.yml).

changed() { echo "changed: $*"; }
apt() { apt-get -q -o "DPkg::Lock::Timeout=$APT_LOCK_TIMEOUT" "$@"; }
# docker.service allows 3 starts a minute (StartLimitBurst): an install, an upgrade and a new
# daemon.json in quick succession would hit that limit and leave the engine stopped ("start
# request repeated too quickly"). Each start clusterup asks for is one it means.
reset_start_limit() { systemctl reset-failed docker.service docker.socket 2>/dev/null || true; }
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

changes=$(package_changes)
missing=$(printf '%s\n' "$changes" | sed -n 's/^install //p' | tr '\n' ' ')
upgrades=$(version_changes "$changes")
items=$(printf '%s\n' "$changes" | awk '{print $2}' | tr '\n' ' ')
if [ -n "$items" ]; then
  if [ -n "$missing" ] && [ "$SOURCE" = docker ] && [ ! -f /etc/apt/sources.list.d/docker.list ]; then
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
  downgrades=
  if [ "$ALLOW_DOWNGRADE" = yes ]; then downgrades=--allow-downgrades; fi
  # A version change is an engine restart (below): clusterup rolls hosts whose engine runs one
  # at a time, as for a daemon.json change.
  # Docker's own packages restart the engine from their scripts when upgraded.
  if [ -n "$upgrades" ]; then reset_start_limit; fi
  # shellcheck disable=SC2086 # a list of package names (NAME or NAME=VERSION)
  apt install -y --no-install-recommends $downgrades $items >/dev/null
  [ -z "$missing" ] || changed "install packages: ${missing% }"
  [ -z "$upgrades" ] || printf '%s\n' "$upgrades" | sed 's/^/changed: /'
  # A fresh engine started with the new daemon.json already.
  if [ "$had_engine" = no ]; then config_changed=no; fi
fi

config=current
if [ "$config_changed" = yes ]; then config=new; fi
why=$(restart_reason "$config" "$upgrades")
if ! systemctl is-active --quiet docker; then
  reset_start_limit
  systemctl enable --now docker >/dev/null 2>&1 || systemctl start docker
  changed "start the docker service"
elif [ -n "$why" ]; then
  reset_start_limit
  systemctl restart docker
  changed "restart docker for $why"
fi

if user_lacks_socket_access; then
  usermod -aG docker "$SSH_USER"
  changed "add user $SSH_USER to group docker"
fi
