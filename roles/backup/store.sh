#!/bin/sh
# Keep a backup in DIR on this host (the NAS): the archive clusterup uploaded (ARCHIVE) moved
# in beside its manifest and checksums, each written to a temporary file and renamed.
set -eu
mkdir -p "$DIR"
chmod 0700 "$DIR"
put() {
  tmp=$(mktemp "$DIR/.$1.XXXXXX")
  printf '%s\n' "$2" >"$tmp"
  mv -f "$tmp" "$DIR/$1"
}
mv -f "$ARCHIVE" "$DIR/swarm.tar.gz"
put manifest.json "$MANIFEST"
put SHA256SUMS "$SUMS"
(cd "$DIR" && sha256sum -c --quiet SHA256SUMS) || { echo "the copy in $DIR does not match its checksums" >&2; exit 1; }
echo "changed: stored the backup in $DIR"
