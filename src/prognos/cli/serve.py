"""``prognos serve``: the prediction service (and the fleet app) over REST and gRPC."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prognos.cli.app import app


@app.command()
def serve(
    bundle: Annotated[Path | None, typer.Option("--bundle", help="bundle directory [env PROGNOS_BUNDLE]")] = None,
    http_port: Annotated[int | None, typer.Option("--http-port", help="REST port [env PROGNOS_HTTP_PORT]")] = None,
    grpc_port: Annotated[int | None, typer.Option("--grpc-port", help="gRPC port [env PROGNOS_GRPC_PORT]")] = None,
    host: Annotated[str | None, typer.Option("--host", help="interface to bind [env PROGNOS_HOST, 127.0.0.1]")] = None,
    sagemaker: Annotated[bool, typer.Option("--sagemaker", help="SageMaker container contract on port 8080 "
                                            "(GET /ping, POST /invocations) [env PROGNOS_SAGEMAKER]")] = False,
    role: Annotated[str, typer.Option("--role", help="all (one process), inference (model only: gRPC + health + "
                                      "metrics, no database) or gateway (fleet app; every model call goes to "
                                      "--inference)")] = "all",
    inference: Annotated[str | None, typer.Option("--inference", help="gateway: inference replicas host:port,"
                                                  "host:port [env PROGNOS_INFERENCE_ADDRESSES]")] = None,
    mqtt: Annotated[bool, typer.Option("--mqtt", help="also ingest PREFIX/engines/ID/readings from the MQTT broker "
                                       "of PROGNOS_MQTT_* (QoS 1; see docs/scaling.md)")] = False,
    model: Annotated[str | None, typer.Option("--model", help="instead of --bundle: a registry alias (production: "
                                              "followed, hot-swapped when it moves), version, or "
                                              "models:/NAME@ALIAS (MLflow)")] = None,
) -> None:
    """Serve a bundle over REST and gRPC (or as a SageMaker container) until SIGTERM; SIGHUP reloads it."""
    from prognos.assembly import build_app, run
    from prognos.bundle import read_bundle
    from prognos.config import get_settings

    settings = get_settings(bundle=bundle, http_port=http_port, grpc_port=grpc_port, host=host,
                            sagemaker=True if sagemaker else None)
    if settings.bundle is not None and model is None:
        # A missing or broken bundle is one error line before any port is bound or anything logged (the
        # server verifies it again when it loads it: that path also serves reloads).
        read_bundle(settings.bundle)
    run(build_app(settings, model=model, role=role, mqtt=mqtt, inference=inference or ()))
