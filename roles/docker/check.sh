#!/bin/sh
# Does the engine match the inventory? Exit 0: nothing to do. Exit 10: apply.sh is needed,
# and each line printed says why. Read-only.
set -u
# lib.sh of this role is prepended by clusterup (see role.yml).

need=0
want() { echo "$*"; need=1; }

missing=$(missing_packages | tr '\n' ' ')
[ -z "$missing" ] || want "install packages: ${missing% }"
[ "$(daemon_json_current)" = "$DAEMON_JSON_SHA256" ] || want "write /etc/docker/daemon.json"
# Installing the engine starts it: only an engine already installed is started on its own.
if [ -z "$missing" ] && ! systemctl is-active --quiet docker 2>/dev/null; then
  want "start the docker service"
fi
if user_lacks_socket_access; then want "add user $SSH_USER to group docker"; fi
[ "$need" = 0 ] || exit 10
