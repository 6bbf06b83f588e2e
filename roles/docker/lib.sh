# Helpers shared by check.sh and apply.sh of the docker role (pasted in front of each).

# The packages of PACKAGES (NAME, or NAME=VERSION where docker.version pins it) to install:
# `install NAME[=VERSION]` for a missing one, `change NAME=VERSION INSTALLED` for one installed
# at another version than pinned. One per line.
package_changes() {
  for p in $PACKAGES; do
    name=${p%%=*}
    have=$(dpkg-query -W -f '${db:Status-Status} ${Version}' "$name" 2>/dev/null || true)
    case $have in
      "installed "*) [ "$p" = "$name" ] || [ "${have#installed }" = "${p#*=}" ] || echo "change $p ${have#installed }" ;;
      *) echo "install $p" ;;
    esac
  done
}

# The `change` lines of package_changes ($1), worded as reported.
version_changes() {
  printf '%s\n' "$1" | while read -r what package installed; do
    if [ "$what" = change ]; then change_words "$package" "$installed"; fi
  done
}

# Why a running engine restarts ($1: `new` when daemon.json changes; $2: the package version
# changes): empty when it does not. Debian's docker.io leaves the old engine running when it is
# upgraded (its scripts stop it only on removal), so an upgrade is a restart clusterup makes.
restart_reason() {
  why=""
  if [ "$1" = new ]; then why="the new daemon.json"; fi
  if [ -n "$2" ]; then why="${why:+$why and }the new engine version"; fi
  echo "$why"
}

# How a change of one package is reported: "upgrade NAME from OLD to NEW" (or "downgrade").
change_words() {
  name=${1%%=*}
  new=${1#*=}
  verb=upgrade
  if dpkg --compare-versions "$new" lt "$2"; then verb=downgrade; fi
  echo "$verb $name from $2 to $new"
}

daemon_json_current() {
  sha256sum /etc/docker/daemon.json 2>/dev/null | cut -d' ' -f1
}

user_lacks_socket_access() {
  [ "$SSH_USER" != root ] && ! id -nG "$SSH_USER" 2>/dev/null | tr ' ' '\n' | grep -qx docker
}
