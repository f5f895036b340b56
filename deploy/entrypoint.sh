#!/bin/sh
# Container entry point. `exec` hands PID 1 to prognos itself, so SIGTERM (stop) and SIGHUP
# (reload the bundle) reach the server, not a shell.
#   serve [OPTIONS]   serve PROGNOS_BUNDLE, or the registry alias/version PROGNOS_MODEL (--model);
#                     SageMaker: the model unpacked at /opt/ml/model -> /ping and /invocations on 8080
#   ANYTHING ELSE     runs `prognos ANYTHING ELSE` (e.g. `keys create`, `db upgrade`, `models list`)
set -eu
if [ "${1:-}" = serve ]; then
  shift
  if [ -z "${PROGNOS_BUNDLE:-}" ] && [ -z "${PROGNOS_MODEL:-}" ] && [ -f /opt/ml/model/bundle.json ]; then
    export PROGNOS_BUNDLE=/opt/ml/model PROGNOS_SAGEMAKER=true
  fi
  if [ -n "${PROGNOS_MODEL:-}" ]; then
    exec prognos serve --model "$PROGNOS_MODEL" "$@"
  fi
  exec prognos serve "$@"
fi
exec prognos "$@"
