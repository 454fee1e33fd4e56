#!/usr/bin/env bash
# Installs what the ARM64 cross-build and its emulated test run need on a Debian 12 x86-64
# (or other non-arm64) machine, and nothing that is already there (idempotent): the arm64
# architecture in dpkg, Debian's cross compiler, qemu's user-mode emulator, and the arm64
# builds of meridian's libraries. Run as root (or with sudo available).
set -euo pipefail

# In Debian 12 the arm64 builds of libyaml-cpp-dev and prometheus-cpp-dev cannot sit beside
# the native ones (the first is not "Multi-Arch: same", the second depends on the civetweb
# program, which is not either: apt would remove the native package). Their headers are
# architecture-independent, so the native -dev packages (tests/install-deps.sh) give the
# headers and libyaml-cpp0.7:arm64 and libprometheus-cpp-core1.0:arm64 the libraries
# (tests/arm64/cmake/ joins the two). Google Benchmark is not needed: the micro-benchmarks
# are not cross-built.
native=(crossbuild-essential-arm64 qemu-user-static)
foreign=(libboost1.81-dev libssl-dev libyaml-cpp0.7 libmaxminddb-dev libnghttp2-dev
         libprometheus-cpp-core1.0 libhiredis-dev libc-ares-dev libgtest-dev libgmock-dev)

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for p in "${native[@]}"; do
  installed "$p" || missing+=("$p")
done
for p in "${foreign[@]}"; do
  installed "$p:arm64" || missing+=("$p:arm64")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "arm64 install-deps: installing ${missing[*]}"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $sudo dpkg --add-architecture arm64
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# --no-remove: never trade a native package for an arm64 one; fail instead.
$sudo apt-get install -y -qq --no-install-recommends --no-remove "${missing[@]}" >/dev/null
