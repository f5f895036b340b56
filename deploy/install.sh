#!/usr/bin/env bash
# Install prognos as a systemd service on a Debian/Ubuntu box (the free-tier topology's user-data
# runs this; docs/deploy.md "Single box without containers"). Idempotent: re-run to upgrade.
#
#   sudo deploy/install.sh [--wheel PATH_OR_URL | --version X.Y.Z] [--extras postgres,aws]
#
# Creates user `prognos`, a virtualenv in /opt/prognos (serving install: no torch), the unit
# /etc/systemd/system/prognos.service, /etc/prognos/prognos.env (PROGNOS_* settings; kept if present),
# then enables and (re)starts the service. State: /var/lib/prognos.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SPEC="prognos"
EXTRAS="postgres,aws"
while [ $# -gt 0 ]; do
  case "$1" in
    --wheel) SPEC="${2:?--wheel needs a path or URL}"; shift ;;
    --version) SPEC="prognos==${2:?--version needs X.Y.Z}"; shift ;;
    --extras) EXTRAS="$2"; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "error: run as root (creates a user, writes /opt, /etc)" >&2; exit 1; }

if ! python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
fi
id prognos >/dev/null 2>&1 || useradd --system --home-dir /var/lib/prognos --shell /usr/sbin/nologin prognos
[ -x /opt/prognos/bin/pip ] || python3 -m venv /opt/prognos
/opt/prognos/bin/pip install -q --upgrade pip
case "$SPEC" in
  http://*|https://*) /opt/prognos/bin/pip install -q --upgrade "prognos[$EXTRAS] @ $SPEC" ;;
  *) /opt/prognos/bin/pip install -q --upgrade "$SPEC[$EXTRAS]" ;;   # a name==version or a local .whl
esac

install -d -m 0750 -o root -g prognos /etc/prognos
if [ ! -f /etc/prognos/prognos.env ]; then
  install -m 0640 -o root -g prognos /dev/null /etc/prognos/prognos.env
  cat >/etc/prognos/prognos.env <<ENV
# prognos settings (PROGNOS_* variables; see docs/deploy.md). Secrets live here: mode 0640 root:prognos.
PROGNOS_HOST=0.0.0.0
PROGNOS_HTTP_PORT=8000
PROGNOS_GRPC_PORT=50051
PROGNOS_ADMIN_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
# The model: a bundle directory, or a registry (directory or s3://bucket/prefix) + alias.
#PROGNOS_BUNDLE=/var/lib/prognos/bundles/current
#PROGNOS_REGISTRY_DIR=s3://my-model-bucket/registry
#PROGNOS_MODEL=production
#PROGNOS_DATABASE_URL=postgresql+psycopg://prognos:...@db.example:5432/prognos
PROGNOS_RETENTION_DAYS=90
ENV
fi
install -d -m 0750 -o prognos -g prognos /var/lib/prognos
install -m 0644 "$HERE/systemd/prognos.service" /etc/systemd/system/prognos.service
# PROGNOS_MODEL (a registry alias) becomes `serve --model ALIAS`, as in the container image.
if grep -q '^PROGNOS_MODEL=' /etc/prognos/prognos.env; then
  install -d /etc/systemd/system/prognos.service.d
  cat >/etc/systemd/system/prognos.service.d/model.conf <<'UNIT'
[Service]
ExecStart=
ExecStart=/opt/prognos/bin/prognos serve --model ${PROGNOS_MODEL}
UNIT
else
  rm -f /etc/systemd/system/prognos.service.d/model.conf
fi
systemctl daemon-reload
systemctl enable prognos.service >/dev/null
systemctl restart prognos.service
echo "prognos installed: systemctl status prognos; journalctl -u prognos -f"
