#!/usr/bin/env bash
# Installs every Debian 12 package meridian needs to build and test (`--build`: to build the
# binary only), and nothing that is already there (idempotent). Run as root (or with sudo
# available). Extra package names given as arguments are installed too (bench/e2e uses this
# for wrk, nginx and haproxy).
set -euo pipefail

# What building the meridian binary needs (`--build`: only this, for docker/Dockerfile's build
# stage), then what the tests need: Redis, Prometheus, HAProxy, h2 clients, the browser.
build_packages=(
  g++ cmake make pkg-config python3 ca-certificates
  libboost1.81-dev libssl-dev libyaml-cpp-dev libmaxminddb-dev libnghttp2-dev
  prometheus-cpp-dev libhiredis-dev libc-ares-dev
)
build_only=false
if [ "${1:-}" = "--build" ]; then
  shift
  build_only=true
  packages=("${build_packages[@]}" "$@")
else
  packages=(
    "${build_packages[@]}" curl clang-format libgtest-dev libgmock-dev libbenchmark-dev
    redis-server prometheus haproxy nghttp2-client python3-h2 python3-grpcio ssl-cert
    chromium chromium-driver python3-selenium
    "$@"
  )
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if $build_only; then
  exit 0  # the test certificates below are for the tests
fi

# conf/meridian.yaml serves ssl-cert's self-signed pair until an operator puts a real one in
# its place. The package makes the pair when it is installed; an image that removed it
# (the package staying installed) gets it back the way the package makes it.
if [ ! -e /etc/ssl/certs/ssl-cert-snakeoil.pem ] || [ ! -e /etc/ssl/private/ssl-cert-snakeoil.key ]; then
  $sudo make-ssl-cert generate-default-snakeoil --force-overwrite
fi
