#!/usr/bin/env bash
# Puts a Redis server for the tests under build/redis (no root, nothing installed system-wide):
# Debian's redis-server and the two libraries it needs, fetched and verified by apt, unpacked
# with dpkg-deb. The tests start it on a free loopback port with no persistence.
#
#   scripts/get-redis.sh [DIR]     (default build/redis; prints the redis-server path)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-build/redis}
if [[ -x $DIR/bin/redis-server ]]; then
    echo "$DIR/bin/redis-server"
    exit 0
fi
if command -v redis-server >/dev/null; then
    mkdir -p "$DIR/bin"
    ln -sf "$(command -v redis-server)" "$DIR/bin/redis-server"
    echo "$DIR/bin/redis-server"
    exit 0
fi
debs=$(mktemp -d)
trap 'rm -rf "$debs"' EXIT
fetch() { (cd "$debs" && apt-get download -q redis-server redis-tools libjemalloc2 liblzf1 >/dev/null 2>&1); }
# A fresh machine may have no package lists yet: as root, read them once and try again.
fetch || { [[ $(id -u) == 0 ]] && apt-get update -q >/dev/null 2>&1 && fetch; } || {
    echo "cannot fetch Redis with apt-get download; install redis-server (apt) instead" >&2
    exit 1
}
rm -rf "$DIR/root"
mkdir -p "$DIR/root" "$DIR/bin"
for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$DIR/root"; done
root=$(cd "$DIR/root" && pwd)
cat > "$DIR/bin/redis-server" <<WRAP
#!/bin/sh
LD_LIBRARY_PATH=$root/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH} exec $root/usr/bin/redis-server "\$@"
WRAP
chmod +x "$DIR/bin/redis-server"
"$DIR/bin/redis-server" --version >&2
echo "$DIR/bin/redis-server"
