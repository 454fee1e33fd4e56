#!/usr/bin/env bash
# The container stack for real (docker/compose.yaml): the meridian image built from
# docker/Dockerfile, four demo origins and Prometheus, started with podman-compose, then one
# region taken down (its origin fails its health checks) and MeridianRegionDown awaited in the
# stack's own Prometheus. No registry: the Debian 12 base is made with debootstrap and imported
# (tagged debian:12 and debian:12-slim for the Dockerfile), the origin and Prometheus images
# are built from Debian packages on it (compose.local.yaml swaps them in).
#
#   sudo tests/containers/run.sh
#
# Environment: CONTAINERS_KEEP=1 leaves the stack running; CONTAINERS_TIMEOUT (default 1800 s)
# bounds the whole run. Needs root. About 10 minutes from nothing (the image build compiles
# meridian), 2 with the images built. Prints PASS or FAIL and exits 0 or 1; "SKIPPED: <reason>"
# and exit 0 where containers cannot run at all.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
TIMEOUT=${CONTAINERS_TIMEOUT:-1800}
export CONTAINERS_CONF="$here/containers.conf"
compose=(podman-compose -p meridian-test -f "$root/docker/compose.yaml" -f "$here/compose.local.yaml")
work=$(mktemp -d /tmp/meridian-containers.XXXXXX)

say() { echo "containers: $*"; }
# Every HTTP call bounded: a connection accepted and never answered must not outlast the
# polling deadlines below.
curl() { command curl --max-time 10 "$@"; }
fail() { say "FAIL: $*"; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  say "SKIPPED: needs root (podman with runc and cgroupfs, as the CI machines allow)"
  exit 0
fi

# Bound the whole run: a stuck step must not hold CI. The watchdog's sleep holds neither
# stdout nor stderr (a caller reading them through a pipe would wait for it), and every long
# step below has its own timeout, so what the watchdog ends is only a stuck script. `&&`: the
# cleanup kills the sleep first, and a killed sleep must not go on to kill this script (that
# race ended a passing run with "Terminated" and status 143 in a local .ci/run).
( sleep "$TIMEOUT" > /dev/null 2>&1 && { say "FAIL: still running after $TIMEOUT s"; kill -TERM $$; } ) \
  > /dev/null 2>&1 & watchdog=$!

passed=0
cleanup() {
  pkill -P "$watchdog" 2>/dev/null
  kill "$watchdog" 2>/dev/null
  if [ "$passed" != 1 ]; then
    # What the services said, before `down` removes them.
    for c in $(podman ps -a --format '{{.Names}}' 2>/dev/null | grep '^meridian-test_'); do
      podman logs "$c" > "$work/log-$c.txt" 2>&1
    done
  fi
  if [ "${CONTAINERS_KEEP:-0}" != 1 ]; then
    timeout 120 "${compose[@]}" down -t 5 > "$work/down.log" 2>&1
  fi
  if [ "$passed" = 1 ]; then
    rm -rf "$work"
  else
    say "logs in $work"
  fi
}
trap cleanup EXIT

missing=()
for p in podman runc podman-compose golang-github-containernetworking-plugin-dnsname \
         debootstrap curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    > "$work/apt.log" 2>&1 || fail "apt-get install ${missing[*]} (see $work/apt.log)"
fi

# Can a container run here at all?
if ! podman run --rm --network=none docker.io/library/debian:12 true > "$work/probe.log" 2>&1; then
  if ! podman image exists docker.io/library/debian:12; then
    say "making the Debian 12 base with debootstrap"
    timeout 900 debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian \
      > "$work/debootstrap.log" 2>&1 || fail "debootstrap (see $work/debootstrap.log)"
    tar -C "$work/rootfs" -c . | podman import - localhost/debian-base:12 > /dev/null ||
      fail "podman import"
    rm -rf "$work/rootfs"
    podman tag localhost/debian-base:12 docker.io/library/debian:12
    podman tag localhost/debian-base:12 docker.io/library/debian:12-slim
  fi
  if ! podman run --rm --network=none docker.io/library/debian:12 true > "$work/probe.log" 2>&1; then
    say "SKIPPED: no container runs here: $(tail -n 1 "$work/probe.log")"
    exit 0
  fi
fi

build() {  # image file [context]
  say "building $1"
  timeout 1200 podman build --pull=never --isolation=chroot -t "$1" -f "$2" "${3:-$here}" \
    > "$work/build-${1//[\/:]/_}.log" 2>&1 || fail "podman build $1 (see $work/build-${1//[\/:]/_}.log)"
}
build localhost/meridian:test "$root/docker/Dockerfile" "$root"
build localhost/meridian-origin:test "$here/Containerfile.origin"
build localhost/meridian-prometheus:test "$here/Containerfile.prometheus"

say "starting the stack"
timeout 120 "${compose[@]}" down -t 5 > /dev/null 2>&1
timeout 300 "${compose[@]}" up -d > "$work/up.log" 2>&1 || fail "podman-compose up (see $work/up.log)"

wait_for() {  # seconds description command...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" > /dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "$what not within the deadline"
    sleep 1
  done
}
wait_for 120 "meridian ready on 127.0.0.1:9901" curl -fsS http://127.0.0.1:9901/ready
wait_for 60 "a request through meridian" curl -fsS http://127.0.0.1:8080/
wait_for 60 "Prometheus ready" curl -fsS http://127.0.0.1:9090/-/ready
scraping() {
  curl -fsS 'http://127.0.0.1:9090/api/v1/query?query=up%7Bjob%3D%22meridian%22%7D' |
    grep -q '"1"\]'
}
wait_for 60 "Prometheus scraping meridian" scraping
say "stack up: meridian serves, Prometheus scrapes it"

# eu-west down: its origin (published on 127.0.0.1:9003) fails its health checks.
curl -fsS -X POST "http://127.0.0.1:9003/__control/health?status=503" > /dev/null ||
  fail "could not make eu-west's origin unhealthy"
down_at=$SECONDS
firing() {
  curl -fsS http://127.0.0.1:9090/api/v1/alerts | python3 -c '
import json, sys
alerts = json.load(sys.stdin)["data"]["alerts"]
sys.exit(0 if any(a["labels"].get("alertname") == "MeridianRegionDown" and
                  a["labels"].get("region") == "eu-west" and a["state"] == "firing"
                  for a in alerts) else 1)'
}
# for: 1m, scraped every 5 s, evaluated every 15 s (docker/prometheus.yml).
wait_for 120 "MeridianRegionDown firing for eu-west" firing
say "PASS: MeridianRegionDown fired $((SECONDS - down_at)) s after eu-west went down (for 1m + scrape 5 s + evaluation 15 s)"
curl -fsS -X POST "http://127.0.0.1:9003/__control/health?status=200" > /dev/null
passed=1
exit 0
