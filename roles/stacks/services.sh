#!/bin/sh
# Every stack's services: "<stack> <service> <mode> <replicas>" per line. Read-only.
set -eu
docker stack ls --format '{{.Name}}' | while read -r stack; do
  docker stack services "$stack" --format "$stack {{.Name}} {{.Mode}} {{.Replicas}}"
done
