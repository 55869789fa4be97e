#!/bin/sh
# Installs the Debian/Ubuntu packages polyq builds against. Safe to run again.
set -e
PKGS="build-essential pkg-config ca-certificates libjansson-dev libpcre2-dev libutf8proc-dev libopenblas-dev libdnnl-dev libsqlite3-dev
      libcurl4-openssl-dev libarchive-dev"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
