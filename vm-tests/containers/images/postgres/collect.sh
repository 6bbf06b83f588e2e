#!/bin/sh
# Copy the PostgreSQL server, its own files and every shared library they need into $1.
set -eu
out=$1
pg=/usr/lib/postgresql/15
mkdir -p "$out/bin" "$out$pg/bin" "$out$pg/lib" "$out/usr/share/postgresql" "$out/etc" "$out/tmp" \
  "$out/var/run/postgresql" "$out/var/lib/postgresql/data"
cp /bin/busybox "$out/bin/busybox"
for applet in sh cat mkdir rm printf echo mktemp sleep; do ln -s busybox "$out/bin/$applet"; done
for b in postgres initdb pg_isready psql pg_ctl; do cp "$pg/bin/$b" "$out$pg/bin/"; done
cp -a "$pg/lib/." "$out$pg/lib/"
rm -rf "$out$pg/lib/bitcode" "$out$pg/lib"/llvmjit*
cp -a /usr/share/postgresql/15 "$out/usr/share/postgresql/"
find "$out$pg" -type f \( -name '*.so' -o -perm -u+x \) | while read -r f; do
  ldd "$f" 2>/dev/null | awk '/=>/ {print $3} /ld-linux/ {print $1}'
done | sort -u | while read -r lib; do
  [ -n "$lib" ] || continue
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
done
printf 'root:x:0:0::/:/bin/sh\npostgres:x:999:999::/var/lib/postgresql:/bin/sh\n' >"$out/etc/passwd"
printf 'root:x:0:\npostgres:x:999:\n' >"$out/etc/group"
chown -R 999:999 "$out/var/run/postgresql" "$out/var/lib/postgresql"
chmod 0700 "$out/var/lib/postgresql/data"
chmod 1777 "$out/tmp"
