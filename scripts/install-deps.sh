#!/bin/sh
# Installs the Debian/Ubuntu packages polyq builds against. Safe to run again.
# --tests adds what only the tests use: OpenMPI (a sweep under mpirun) and Chromium (report.html
# opened headless).
set -e
PKGS="build-essential pkg-config ca-certificates libjansson-dev libpcre2-dev libutf8proc-dev libopenblas-dev libdnnl-dev
      libsqlite3-dev libcurl4-openssl-dev libarchive-dev libcairo2-dev fonts-dejavu-core"
for arg in "$@"; do
    case "$arg" in
    --tests) PKGS="$PKGS openmpi-bin libopenmpi-dev chromium" ;;
    *) echo "usage: $0 [--tests]" >&2; exit 2 ;;
    esac
done
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
