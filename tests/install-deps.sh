#!/usr/bin/env bash
# Installs every Debian 12 package meridian needs to build and test, and nothing that is
# already there (idempotent). Run as root (or with sudo available). Extra package names given
# as arguments are installed too (bench/e2e uses this for wrk, nginx and haproxy).
set -euo pipefail

packages=(
  g++ cmake make pkg-config python3 curl ca-certificates clang-format
  libboost1.81-dev libssl-dev libyaml-cpp-dev libmaxminddb-dev libnghttp2-dev
  prometheus-cpp-dev libhiredis-dev libgtest-dev libgmock-dev libbenchmark-dev redis-server
  prometheus haproxy nghttp2-client python3-h2
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
