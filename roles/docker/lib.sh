# Helpers shared by check.sh and apply.sh of the docker role (pasted in front of each).

packages_for() {
  case $1 in
    distro) echo docker.io ;;
    docker) echo docker-ce docker-ce-cli containerd.io ;;
  esac
}

apparmor_on() {
  [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ]
}

missing_packages() {
  for p in $(packages_for "$SOURCE") $(apparmor_on && echo apparmor); do
    dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || echo "$p"
  done
}

daemon_json_current() {
  sha256sum /etc/docker/daemon.json 2>/dev/null | cut -d' ' -f1
}

user_lacks_socket_access() {
  [ "$SSH_USER" != root ] && ! id -nG "$SSH_USER" 2>/dev/null | tr ' ' '\n' | grep -qx docker
}
