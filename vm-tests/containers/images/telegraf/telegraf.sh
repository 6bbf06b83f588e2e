#!/bin/sh
# Every 5 s, to the InfluxDB of the config's [[outputs.influxdb]]: with `gather_services = true`
# (the cluster-wide agent) `docker_swarm,host=H services=N`, else `docker,host=H
# n_containers_running=N` and `system,host=H uptime=S`; N is read from the docker socket.
set -u
config=/etc/telegraf/telegraf.conf
# The value of `key` in the [[outputs.influxdb]] section (the first URL of `urls`).
output() {
  awk -v key="$1" '
    /^\[/ { out = ($0 ~ /^\[\[outputs\.influxdb\]\]/) }
    out && $1 == key { sub(/^[^=]*= */, ""); print; exit }
  ' "$config" | tr -d '[]" ' | cut -d, -f1
}
url=$(output urls)
db=$(output database)
user=$(output username)
# The agent's `hostname` when the config sets one, else the container's (the node's).
host=$(awk '/^\[agent\]/ { a = 1; next } /^\[/ { a = 0 } a && $1 == "hostname" { gsub(/"/, "", $3); print $3 }' "$config")
host=${host:-$(hostname)}
echo "telegraf stand-in: $(id), host $host, writing to $url db $db as $user"
if grep -q '^ *gather_services *= *true' "$config"; then
  swarm=yes
else
  swarm=no
fi
while :; do
  info=$(curl -s --unix-socket /var/run/docker.sock http://docker/info)
  running=$(printf '%s' "$info" | sed -n 's/.*"ContainersRunning":\([0-9]*\).*/\1/p')
  if [ -z "$running" ]; then
    echo "cannot read the docker socket as $(id)" >&2
  elif [ "$swarm" = yes ]; then
    services=$(curl -s --unix-socket /var/run/docker.sock http://docker/services | grep -o '"ID":' | wc -l)
    points="docker_swarm,host=$host services=${services}i"
  else
    uptime=$(cut -d. -f1 /proc/uptime 2>/dev/null || echo 0)
    points="docker,host=$host n_containers_running=${running}i
system,host=$host uptime=${uptime}i"
  fi
  if [ -n "$running" ]; then
    curl -s -S -f -u "$user:$INFLUX_PASSWORD" --data-binary "$points" "$url/write?db=$db" || echo "write failed" >&2
  fi
  sleep 5
done
