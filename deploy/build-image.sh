#!/usr/bin/env bash
# Build the prognos container images with podman (or docker) from the repository root.
#
#   deploy/build-image.sh [--local-base] [--target runtime|train] [--tag NAME] [--engine podman|docker]
#
# --local-base  make debian:bookworm-slim locally (debootstrap + import) when no registry is reachable;
#               skipped when the image already exists (delete it to rebuild).
# Environment:  PROGNOS_BUILD_CERTS=/etc/ssl/certs (default): this machine's CA certificates, mounted
#               read-only at /run/host-certs during the build so pip inside trusts a TLS-intercepting
#               proxy (podman); PROGNOS_BUILD_WHEELS=DIR: a local wheelhouse pip may use (torch CPU
#               for --target train, e.g. /opt/wheels).
set -euo pipefail
cd "$(dirname "$0")/.."

LOCAL_BASE=0
TARGET=runtime
TAG=""
ENGINE="${PROGNOS_CONTAINER_ENGINE:-podman}"
BASE=docker.io/library/debian:bookworm-slim
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CERTS="${PROGNOS_BUILD_CERTS:-/etc/ssl/certs}"

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --local-base) LOCAL_BASE=1 ;;
    --target) TARGET="${2:?--target needs runtime or train}"; shift ;;
    --tag) TAG="${2:?--tag needs a name}"; shift ;;
    --engine) ENGINE="${2:?--engine needs podman or docker}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
case "$TARGET" in runtime|train) ;; *) echo "error: --target must be runtime or train, not $TARGET" >&2; exit 2 ;; esac
[ -n "$TAG" ] || TAG="localhost/prognos:$([ "$TARGET" = runtime ] && echo latest || echo train)"
command -v "$ENGINE" >/dev/null || { echo "error: $ENGINE not found on PATH" >&2; exit 1; }

# Flags this kind of machine needs (rootful podman, cgroup v1, restricted rlimits).
ENGINE_FLAGS=()
BUILD_FLAGS=()
if [ "$ENGINE" = podman ]; then
  ENGINE_FLAGS=(--runtime runc --cgroup-manager cgroupfs)
  # --format docker: OCI images drop HEALTHCHECK; docker format keeps it.
  BUILD_FLAGS=(--format docker --ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
  if [ -f "$CERTS/ca-certificates.crt" ]; then
    BUILD_FLAGS+=(-v "$CERTS:/run/host-certs:ro" --build-arg PIP_CERT=/run/host-certs/ca-certificates.crt)
  fi
  if [ -n "${PROGNOS_BUILD_WHEELS:-}" ]; then
    # The wheelhouse holds the torch CPU wheel: no need for download.pytorch.org.
    BUILD_FLAGS+=(-v "$PROGNOS_BUILD_WHEELS:/run/host-wheels:ro" --build-arg PIP_FIND_LINKS=/run/host-wheels
                  --build-arg TORCH_INDEX_URL=)
  fi
fi

if [ "$LOCAL_BASE" = 1 ]; then
  if "$ENGINE" "${ENGINE_FLAGS[@]}" image exists "$BASE" 2>/dev/null \
      || "$ENGINE" "${ENGINE_FLAGS[@]}" image inspect "$BASE" >/dev/null 2>&1; then
    echo "base image $BASE present: skipping debootstrap"
  else
    command -v debootstrap >/dev/null || { echo "error: --local-base needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
    [ "$(id -u)" = 0 ] || { echo "error: --local-base needs root (debootstrap)" >&2; exit 1; }
    ROOTFS="$(mktemp -d /tmp/prognos-rootfs.XXXXXX)"
    trap 'rm -rf "$ROOTFS"' EXIT
    echo "debootstrap bookworm (minbase) from $MIRROR ..."
    debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >/tmp/prognos-debootstrap.log 2>&1 \
      || { tail -20 /tmp/prognos-debootstrap.log >&2; echo "error: debootstrap failed (log: /tmp/prognos-debootstrap.log)" >&2; exit 1; }
    # What the official slim image also drops: apt lists and docs.
    rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/usr/share/locale/* "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/*
    tar -C "$ROOTFS" -c . | "$ENGINE" "${ENGINE_FLAGS[@]}" import - "$BASE" >/dev/null
    rm -rf "$ROOTFS"; trap - EXIT
    echo "imported $BASE"
  fi
fi

echo "building $TAG (target $TARGET) with $ENGINE ..."
"$ENGINE" "${ENGINE_FLAGS[@]}" build "${BUILD_FLAGS[@]}" -f deploy/Dockerfile --target "$TARGET" -t "$TAG" .
SIZE=$("$ENGINE" "${ENGINE_FLAGS[@]}" image inspect "$TAG" --format '{{.Size}}')
echo "image $TAG: $((SIZE / 1000000)) MB"
