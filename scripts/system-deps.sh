#!/usr/bin/env bash
# The Debian packages `make demo` and `make test` need, installed when missing.
#
#   scripts/system-deps.sh demo          python3 with venv (to build .venv)
#   scripts/system-deps.sh test          + what the tests start for real: Chromium (dashboard tests;
#                                          libatomic1 for the node binary of Playwright's driver),
#                                          Mosquitto, nginx, PostgreSQL 15, Prometheus/promtool,
#                                          systemd-analyze, podman (compose check), curl (the
#                                          demo's suggested commands, run verbatim)
#   scripts/system-deps.sh test container  + what deploy/ci.sh needs (runc, debootstrap: image builds)
#
# All installed: prints nothing (one dpkg-query call). Missing, as root with apt-get: installs them
# (apt-get update first). Missing otherwise: one line naming the command to run, exit 1 — never a
# silent skip. `make test SYSTEM_DEPS=0` does not call this (the tests that need a missing package
# then skip, each with its reason in pytest's summary).
set -euo pipefail

declare -A NEED=(
  [demo]="python3 python3-venv ca-certificates"
  [test]="chromium libatomic1 mosquitto nginx postgresql-15 prometheus systemd podman curl"
  [container]="podman runc debootstrap prometheus postgresql-15"
)
[ $# -gt 0 ] || { echo "usage: $0 demo|test|container ..." >&2; exit 2; }
pkgs="${NEED[demo]}"
for what in "$@"; do
  [ -n "${NEED[$what]:-}" ] || { echo "$0: unknown set '$what' (demo, test or container)" >&2; exit 2; }
  pkgs="$pkgs ${NEED[$what]}"
done
pkgs="$(tr ' ' '\n' <<<"$pkgs" | awk 'NF && !seen[$0]++' | tr '\n' ' ')"

if ! command -v dpkg-query >/dev/null; then
  # Not Debian: the demo only needs a Python with venv; name the rest in Debian's terms.
  if [ "$*" = demo ] && python3 -c 'import venv, ensurepip' 2>/dev/null; then exit 0; fi
  echo "error: not a Debian system; install the equivalents of: $pkgs(or run make with SYSTEM_DEPS=0 to go without)" >&2
  exit 1
fi

# shellcheck disable=SC2086  # word splitting of the package list is the point
installed="$(dpkg-query -W -f='${db:Status-Status} ${Package}\n' $pkgs 2>/dev/null || true)"
missing=""
for p in $pkgs; do grep -qx "installed $p" <<<"$installed" || missing="$missing $p"; done
missing="${missing# }"
[ -n "$missing" ] || exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: $missing"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  apt-get update -qq && apt-get install -y -qq $missing >/dev/null
  exit 0
fi
echo "error: missing Debian packages: run  sudo apt-get install -y $missing  (or make with SYSTEM_DEPS=0: their tests then skip)" >&2
exit 1
