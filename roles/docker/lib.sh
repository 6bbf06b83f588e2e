# Helpers shared by check.sh and apply.sh of the docker role (pasted in front of each).

missing_packages() {
  for p in $PACKAGES; do
    dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || echo "$p"
  done
}

daemon_json_current() {
  sha256sum /etc/docker/daemon.json 2>/dev/null | cut -d' ' -f1
}

user_lacks_socket_access() {
  [ "$SSH_USER" != root ] && ! id -nG "$SSH_USER" 2>/dev/null | tr ' ' '\n' | grep -qx docker
}
