"""``prognos mqtt``: a headless ingestion process, the MQTT subscriber and the fleet app without
the HTTP and gRPC front ends (for PostgreSQL deployments that scale ingestion apart; on SQLite use
``prognos serve --mqtt``, one process per database file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prognos.cli.app import app


@app.command("mqtt")
def mqtt(
    bundle: Annotated[Path | None, typer.Option("--bundle", help="score with this bundle [env PROGNOS_BUNDLE]")]
    = None,
    inference: Annotated[str | None, typer.Option("--inference", help="score through these inference replicas "
                                                  "host:port,... instead of a local bundle")] = None,
    host: Annotated[str | None, typer.Option("--broker-host", help="[env PROGNOS_MQTT_HOST, 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option("--broker-port", help="[env PROGNOS_MQTT_PORT, 1883]")] = None,
) -> None:
    """Ingest readings published on PREFIX/engines/ID/readings (QoS 1) until SIGTERM / Ctrl-C;
    refused messages go to PREFIX/errors. Broker user, password and TLS: PROGNOS_MQTT_* settings."""
    import asyncio

    from prognos.assembly import build_app
    from prognos.config import get_settings
    from prognos.fleet.mqtt import run_headless
    from prognos.serving.logs import configure_logging

    settings = get_settings(bundle=bundle, mqtt_host=host, mqtt_port=port)
    configure_logging(settings.log_level, json=settings.log_json)
    built = build_app(settings, role="gateway" if inference else "all", inference=inference or (), mqtt=True)
    typer.echo(f"prognos mqtt: {settings.mqtt_host}:{settings.mqtt_port}, topics "
               f"{settings.mqtt_topic_prefix}/engines/+/readings; Ctrl-C stops", err=True)
    asyncio.run(run_headless(built.settings, built.service, built.hooks))
