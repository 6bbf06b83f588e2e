#!/bin/sh
# Does the engine match the inventory? Exit 0: nothing to do. Exit 10: apply.sh is needed,
# and each line printed says why. Read-only.
set -u
# lib.sh of this role is prepended by clusterup (see role.yml).

need=0
want() { echo "$*"; need=1; }

# Each line is worded as apply.sh reports the change once made, in the order it makes them:
# the plan is the applied list.
config=current
if [ "$(daemon_json_current)" != "$DAEMON_JSON_SHA256" ]; then
  config=new
  want "write /etc/docker/daemon.json"
fi
changes=$(package_changes)
missing=$(printf '%s\n' "$changes" | sed -n 's/^install //p' | tr '\n' ' ')
if [ -n "$missing" ] && [ "$SOURCE" = docker ] && [ ! -f /etc/apt/sources.list.d/docker.list ]; then
  want "add Docker's apt repository"
fi
[ -z "$missing" ] || want "install packages: ${missing% }"
upgrades=$(version_changes "$changes")
[ -z "$upgrades" ] || want "$upgrades"
# A fresh install starts the engine with the new daemon.json: only an engine already there
# is started, or restarted for a new daemon.json or a new version.
if command -v dockerd >/dev/null 2>&1; then
  why=$(restart_reason "$config" "$upgrades")
  if ! systemctl is-active --quiet docker 2>/dev/null; then
    want "start the docker service"
  elif [ -n "$why" ]; then
    want "restart docker for $why"
  fi
fi
if user_lacks_socket_access; then want "add user $SSH_USER to group docker"; fi
[ "$need" = 0 ] || exit 10
