"""Fleet commands: ``keys``, ``ingest``, ``retention``, ``db``, ``simulate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prognos.cli.app import DataDir, Dataset, app, database_label, fleet_store

keys_app = typer.Typer(no_args_is_help=True, help="API keys of the fleet app (stored hashed; shown once).")
app.add_typer(keys_app, name="keys")
retention_app = typer.Typer(no_args_is_help=True, help="Delete old readings and predictions.")
app.add_typer(retention_app, name="retention")
db_app = typer.Typer(no_args_is_help=True, help="The fleet database (PROGNOS_DATABASE_URL or <data dir>/prognos.db).")
app.add_typer(db_app, name="db")


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option("--role", help="viewer (read), operator (ingest, alerts) or admin")],
    name: Annotated[str | None, typer.Option("--name", help="a label for the key")] = None,
) -> None:
    """Create an API key and print it (this is the only time it is shown)."""
    from prognos.fleet.keys import KeyStore

    _, store = fleet_store()
    created = KeyStore(store).create(role, name)
    typer.echo(f"created {created.key.role} key {created.key.id} ({created.key.name}); store it now, "
               "it is not shown again:", err=True)
    typer.echo(created.secret)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys by id, role, name and prefix."""
    from prognos.fleet.keys import KeyStore

    settings, store = fleet_store(existing=True)
    keys = KeyStore(store).list()
    if not keys:
        typer.echo(f"no API keys in {database_label(settings)}; create one with `prognos keys create --role viewer`")
        return
    typer.echo(f"{'id':>4}  {'role':<8}  {'prefix':<10}  {'created':<20}  {'status':<8}  name")
    for k in keys:
        status = "active" if k.active else "revoked"
        typer.echo(f"{k.id:>4}  {k.role:<8}  {k.prefix:<10}  {k.created_at:%Y-%m-%d %H:%M:%S}  {status:<8}  {k.name}")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="key id (see prognos keys list)")]) -> None:
    """Revoke an API key (a running server stops accepting it within seconds)."""
    from prognos.fleet.keys import KeyStore

    _, store = fleet_store(existing=True)
    key = KeyStore(store).revoke(key_id)
    typer.echo(f"revoked key {key.id} ({key.prefix}, {key.role})")


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="C-MAPSS text or CSV file")],
    engine_prefix: Annotated[str, typer.Option("--engine-prefix", help="prepended to each unit number")] = "",
    bundle: Annotated[Path | None, typer.Option("--bundle", help="score with this bundle [env PROGNOS_BUNDLE]")]
    = None,
) -> None:
    """Store a file of readings in the fleet database (same validation and idempotency as the API)."""
    import asyncio

    from prognos.config import get_settings
    from prognos.errors import DataFormatError
    from prognos.fleet import build_fleet
    from prognos.serving.service import PredictionService, load_predictor

    settings = get_settings(bundle=bundle)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{file}: cannot read: {exc}") from None
    service = None
    if settings.bundle is not None:
        service = PredictionService(settings, load_predictor(settings.bundle, settings))
    fleet = build_fleet(settings, service)

    async def run():  # type: ignore[no-untyped-def]
        await fleet.start()
        try:
            return await fleet.ingestor.ingest_file(text, str(file), engine_prefix=engine_prefix)
        finally:
            await fleet.stop()

    result = asyncio.run(run())
    typer.echo(f"{result.accepted} readings stored, {result.duplicates} duplicates skipped, "
               f"{len(result.engines)} engines, {len(result.predictions)} predictions")
    if result.prediction_error:
        typer.echo(f"warning: not scored: {result.prediction_error}", err=True)


@retention_app.command("run")
def retention_run(
    days: Annotated[float | None, typer.Option("--days", help="keep this many days [env PROGNOS_RETENTION_DAYS]")]
    = None,
) -> None:
    """Delete readings and predictions older than N days, keeping each engine's latest window."""
    from prognos.errors import ConfigError
    from prognos.fleet.ingest import Ingestor
    from prognos.fleet.notify import FakeNotifier
    from prognos.fleet.retention import run_retention

    settings, store = fleet_store()
    days = days if days is not None else settings.retention_days
    if days is None or days <= 0:
        raise ConfigError("retention: pass --days N (> 0) or set PROGNOS_RETENTION_DAYS")
    keep = Ingestor(settings, store, None, FakeNotifier()).history_length()
    result = run_retention(store, days, keep)
    typer.echo(f"deleted {result.readings_deleted} readings and {result.predictions_deleted} predictions older "
               f"than {result.cutoff:%Y-%m-%d %H:%M:%S} UTC (kept each engine's latest {keep})")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the fleet database to the latest schema."""
    from sqlalchemy.engine import make_url

    from prognos.config import get_settings
    from prognos.fleet.database import connect, upgrade

    settings = get_settings()
    tables = upgrade(connect(settings.sqlalchemy_url))
    safe = make_url(settings.sqlalchemy_url).render_as_string(hide_password=True)
    typer.echo(f"database at {safe} is up to date ({len(tables)} tables)")


@app.command()
def simulate(
    url: Annotated[str | None, typer.Option("--url", help="server base URL, e.g. http://127.0.0.1:8000")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="operator API key [env PROGNOS_API_KEY]",
                                                envvar="PROGNOS_API_KEY")] = None,
    dataset: Dataset = "FD001",
    split: Annotated[str, typer.Option("--split", help="C-MAPSS file to replay: test or train")] = "test",
    data_dir: DataDir = None,
    engines: Annotated[int | None, typer.Option("--engines", min=1, help="replay only the first N engines")] = None,
    speed: Annotated[float, typer.Option("--speed", help="cycles per second per engine (0: flat out)")] = 1.0,
    synthetic: Annotated[int | None, typer.Option("--synthetic", min=1, help="replay N synthetic engines instead")]
    = None,
    max_cycles: Annotated[int | None, typer.Option("--max-cycles", min=1, help="replay at most N cycles per engine")]
    = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="requests in flight at once")] = 16,
    seed: Annotated[int, typer.Option("--seed", help="seed of the synthetic fleet")] = 0,
    prefix: Annotated[str | None, typer.Option("--prefix", help="engine id prefix (default FD001-test- / SYN-)")]
    = None,
    mqtt: Annotated[bool, typer.Option("--mqtt", help="publish to the MQTT broker of PROGNOS_MQTT_* (QoS 1) "
                                       "instead of posting to --url")] = False,
) -> None:
    """Replay a fleet into a running server cycle by cycle (Ctrl-C stops cleanly and prints the summary)."""
    import asyncio
    import signal
    import threading

    from prognos.fleet.simulate import SimulationError, SimulationSummary, load_replay_fleet, simulate_async

    if synthetic is None and data_dir is None:
        from prognos.config import get_settings

        data_dir = get_settings().cmapss_dir
    fleet = load_replay_fleet(dataset=dataset, split=split, data_dir=data_dir, engines=engines, synthetic=synthetic,
                              seed=seed, prefix=prefix)
    if url is None and not mqtt:
        raise typer.BadParameter("give --url of a server, or --mqtt to publish to the broker", param_hint="--url")
    if mqtt:
        from prognos.config import get_settings as settings_of
        from prognos.fleet.mqtt import replay_readings

        typer.echo(replay_readings(settings_of(), fleet, speed=speed, max_cycles=max_cycles).describe())
        return
    assert url is not None
    source = f"{synthetic} synthetic engines" if synthetic is not None else f"{dataset} {split}"
    typer.echo(f"replaying {fleet.n_engines} engines ({source}, {len(fleet)} readings) into {url} "
               f"at {speed:g} cycles/s per engine; Ctrl-C stops", err=True)
    stop = threading.Event()

    def progress(s: SimulationSummary) -> None:
        typer.echo(f"  {s.readings_sent}/{s.readings_total} readings, {s.engines_done} engines done, "
                   f"{s.retries} retries", err=True)

    async def run() -> SimulationSummary:
        # Ctrl-C sets the stop flag: requests in flight finish and the summary still prints.
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
        return await simulate_async(url, api_key, fleet, speed=speed, concurrency=concurrency,
                                    max_cycles=max_cycles, stop=stop, on_progress=progress)

    summary = asyncio.run(run())
    typer.echo(summary.describe())
    if summary.fatal:
        raise SimulationError(summary.fatal)
    if summary.engines_failed:
        raise SimulationError(f"{summary.engines_failed} engines could not be replayed")
    if summary.stopped:
        raise SystemExit(130)  # the shell's code for "ended by Ctrl-C", after a clean stop
