#!/bin/sh
# Every node of the swarm as a JSON array (`docker node inspect`). Read-only; run on a manager.
set -eu
# shellcheck disable=SC2046 # node ids are single words
docker node inspect $(docker node ls -q)
