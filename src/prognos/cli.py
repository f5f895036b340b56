"""The ``prognos`` command: parses options, calls one module, prints. Domain errors end as one
line on stderr and a non-zero exit (see :mod:`prognos.errors`), never a traceback."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from prognos.errors import PrognosError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="prognos: Remaining-Useful-Life models — train, evaluate, bundle, serve.")
data_app = typer.Typer(no_args_is_help=True, help="Get and inspect data.")
app.add_typer(data_app, name="data")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="C-MAPSS folder or zip [env PROGNOS_CMAPSS_DIR]")]
Dataset = Annotated[str, typer.Option("--dataset", help="FD001, FD002, FD003 or FD004")]


def _err(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)


def _data_dir(given: Path | None) -> Path:
    from prognos.config import get_settings

    path = given or get_settings().cmapss_dir
    if path is None:
        raise PrognosError("no data directory: pass --data-dir or set PROGNOS_CMAPSS_DIR")
    return path


@data_app.command("fetch")
def data_fetch(
    url: Annotated[str | None, typer.Option(help="archive URL (http(s):// or file://)")] = None,
    to: Annotated[Path, typer.Option(help="folder to unpack into")] = Path("data/cmapss"),
) -> None:
    """Download the NASA C-MAPSS archive and unpack its text files."""
    from prognos.data.fetch import DEFAULT_CMAPSS_URL, fetch_cmapss

    names = fetch_cmapss(url or DEFAULT_CMAPSS_URL, to)
    typer.echo(f"unpacked {len(names)} files into {to}: {', '.join(names)}")


@app.command()
def train(
    dataset: Dataset = "FD001",
    data_dir: DataDir = None,
    out: Annotated[Path, typer.Option("--out", help="bundle directory to write")] = Path("bundles/model"),
    config: Annotated[Path | None, typer.Option("--config", help="JSON or TOML training config")] = None,
    model: Annotated[str | None, typer.Option("--model", help="tcn+lstm (default), tcn, lstm, cnn, gru")] = None,
    epochs: Annotated[int | None, typer.Option(help="max epochs per ensemble member")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    folds: Annotated[int | None, typer.Option(help="cross-fitted ensemble members")] = None,
    holdout: Annotated[float | None, typer.Option(help="share of training engines held out for evaluation")] = None,
    confidence: Annotated[float | None, typer.Option(help="nominal interval coverage, e.g. 0.9")] = None,
    track: Annotated[bool, typer.Option("--track", help="log the run to MLflow (on whenever "
                                        "PROGNOS_MLFLOW_TRACKING_URI is set)")] = False,  # lifecycle
    register_name: Annotated[str | None, typer.Option("--register-name", help="also register the bundle in the "
                                                      "MLflow Model Registry (implies --track)")] = None,  # lifecycle
) -> None:
    """Train an RUL model and write a bundle (model.onnx + preprocessing.json + bundle.json)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from prognos.data.cmapss import subset_name

    # Cheap checks first: a mistyped subset or path fails before torch is imported.
    dataset = subset_name(dataset)
    path = _data_dir(data_dir)
    if not path.exists():
        from prognos.errors import DataFormatError

        raise DataFormatError(f"{path}: no such directory or zip file")
    try:
        from prognos.training.config import load_train_config
        from prognos.training.run import train_bundle
    except ImportError as exc:
        raise PrognosError(f"training needs the 'train' extra (pip install 'prognos[train]'): {exc}") from None
    cfg = load_train_config(config, model=model, epochs=epochs, seed=seed, folds=folds, holdout=holdout,
                            confidence=confidence)
    from prognos.config import get_settings
    from prognos.lifecycle.tracking import tracker_for  # lifecycle: MLflow, imported only when tracking

    tracker = tracker_for(get_settings(), track or register_name is not None)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), transient=False) as progress:
        task = progress.add_task("training", total=cfg.folds * cfg.epochs, info="")

        def on_epoch(r):  # type: ignore[no-untyped-def]
            progress.update(task, description=f"member {r.member}/{r.members} epoch {r.epoch}",
                            completed=(r.member - 1) * cfg.epochs + r.epoch,
                            info=f"loss {r.train_loss:.4f}  val RMSE {r.val_rmse:.2f}  best {r.best_val_rmse:.2f}")
            if not sys.stderr.isatty() and (r.epoch % 10 == 0 or r.epoch == 1):
                typer.echo(f"member {r.member}/{r.members} epoch {r.epoch}: loss {r.train_loss:.4f} "
                           f"val RMSE {r.val_rmse:.2f} (best {r.best_val_rmse:.2f})", err=True)

        bundle = train_bundle(path, dataset, out, cfg, on_epoch=tracker.wrap(on_epoch) if tracker else on_epoch,
                              log=lambda m: progress.console.print(m))
    m = bundle.manifest
    v = m.validation_metrics
    typer.echo(f"bundle {m.version} -> {out}")
    typer.echo(f"validation (out-of-fold): RMSE {v['rmse']:.2f}  coverage {v['coverage']:.3f}  "
               f"width {v['mean_interval_width']:.1f}  in {m.training_seconds / 60:.1f} min")
    if tracker is not None:  # lifecycle
        run = tracker.log_run(bundle, register_name=register_name)
        typer.echo(f"MLflow run {run.run_id} ({tracker.tracking_uri})"
                   + (f"; registered {run.model_uri} (alias candidate)" if run.model_uri else ""))


@app.command()
def evaluate(
    bundle: Annotated[Path, typer.Option("--bundle", help="bundle directory")],
    dataset: Dataset = "FD001",
    data_dir: DataDir = None,
    rul_file: Annotated[Path | None, typer.Option("--rul-file", help="true RUL of the test engines")] = None,
    report: Annotated[Path, typer.Option("--report", help="output folder")] = Path("report"),
) -> None:
    """Evaluate a bundle: RMSE, MAE, PHM08 score, interval coverage; writes metrics.json and plots."""
    from prognos.evaluation import evaluate_bundle
    from prognos.serving.predictor import Predictor

    res = evaluate_bundle(Predictor.from_path(bundle), _data_dir(data_dir), dataset, report, rul_file)
    m = res.metrics
    typer.echo(res.protocol)
    typer.echo(f"RMSE {m['rmse']:.2f}  MAE {m['mae']:.2f}  score {m['score']:.1f}  coverage {m['coverage']:.3f} "
               f"(nominal {m['confidence_level']:.2f})  mean width {m['mean_interval_width']:.1f}  "
               f"engines {m['n_engines']}")
    typer.echo(f"uncapped truth: RMSE {m['rmse_uncapped']:.2f}  score {m['score_uncapped']:.1f}")
    typer.echo(f"report -> {report}/metrics.json, engines.csv, *.png")


@app.command()
def predict(
    bundle: Annotated[Path, typer.Option("--bundle", help="bundle directory")],
    input: Annotated[Path, typer.Option("--input", help="C-MAPSS text or CSV file")],
    format: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
) -> None:
    """Predict the RUL (with interval) of every engine in a file, at its last reading. No torch needed."""
    from prognos.data.cmapss import load_readings
    from prognos.serving.predictor import Predictor

    if format not in ("table", "json", "csv"):
        raise PrognosError(f"--format must be table, json or csv, not {format!r}")
    predictor = Predictor.from_path(bundle)
    preds = predictor.predict_readings(load_readings(input))
    rows = [p.to_dict() for p in preds]
    if format == "json":
        typer.echo(json.dumps({"model_version": predictor.version, "predictions": rows}, indent=1))
    elif format == "csv":
        typer.echo("engine_id,last_cycle,predicted_rul,lower,upper,confidence_level")
        for r in rows:
            typer.echo(f"{r['engine_id']},{r['last_cycle']},{r['predicted_rul']:.2f},{r['lower']:.2f},"
                       f"{r['upper']:.2f},{r['confidence_level']}")
    else:
        typer.echo(f"model {predictor.version}; {predictor.confidence:.0%} prediction intervals, cycles")
        typer.echo(f"{'engine':>10} {'cycle':>6} {'RUL':>7} {'lower':>7} {'upper':>7}")
        for r in rows:
            typer.echo(f"{r['engine_id']:>10} {r['last_cycle']!s:>6} {r['predicted_rul']:7.1f} {r['lower']:7.1f} "
                       f"{r['upper']:7.1f}")


# --- serving commands (serve) ---------------------------------------------------------------


@app.command()
def serve(
    bundle: Annotated[Path | None, typer.Option("--bundle", help="bundle directory [env PROGNOS_BUNDLE]")] = None,
    http_port: Annotated[int | None, typer.Option("--http-port", help="REST port [env PROGNOS_HTTP_PORT]")] = None,
    grpc_port: Annotated[int | None, typer.Option("--grpc-port", help="gRPC port [env PROGNOS_GRPC_PORT]")] = None,
    host: Annotated[str | None, typer.Option("--host", help="interface to bind [env PROGNOS_HOST, 127.0.0.1]")] = None,
    sagemaker: Annotated[bool, typer.Option("--sagemaker", help="SageMaker container contract on port 8080 "
                                            "(GET /ping, POST /invocations) [env PROGNOS_SAGEMAKER]")] = False,
    model: Annotated[str | None, typer.Option("--model", help="instead of --bundle: a registry alias (production: "
                                              "followed, hot-swapped when it moves), version, or "
                                              "models:/NAME@ALIAS (MLflow)")] = None,  # lifecycle
) -> None:
    """Serve a bundle over REST and gRPC (or as a SageMaker container) until SIGTERM; SIGHUP reloads it."""
    from prognos.assembly import plan_serving
    from prognos.config import get_settings
    from prognos.server import run

    settings = get_settings(bundle=bundle, http_port=http_port, grpc_port=grpc_port, host=host,
                            sagemaker=True if sagemaker else None)
    plan = plan_serving(settings, model)
    run(plan.settings, plan.hooks)


# --- fleet commands (keys, ingest, simulate, retention, demo) ----------------------------------

keys_app = typer.Typer(no_args_is_help=True, help="API keys of the fleet app (stored hashed; shown once).")
app.add_typer(keys_app, name="keys")
retention_app = typer.Typer(no_args_is_help=True, help="Delete old readings and predictions.")
app.add_typer(retention_app, name="retention")
db_app = typer.Typer(no_args_is_help=True, help="The fleet database (PROGNOS_DATABASE_URL or <data dir>/prognos.db).")
app.add_typer(db_app, name="db")


def _fleet_store():  # type: ignore[no-untyped-def]
    from prognos.config import get_settings
    from prognos.fleet import open_store

    settings = get_settings()
    return settings, open_store(settings)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option("--role", help="viewer (read), operator (ingest, alerts) or admin")],
    name: Annotated[str | None, typer.Option("--name", help="a label for the key")] = None,
) -> None:
    """Create an API key and print it (this is the only time it is shown)."""
    from prognos.fleet.keys import KeyStore

    _, store = _fleet_store()
    created = KeyStore(store).create(role, name)
    typer.echo(f"created {created.key.role} key {created.key.id} ({created.key.name}); store it now, "
               "it is not shown again:", err=True)
    typer.echo(created.secret)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys by id, role, name and prefix."""
    from prognos.fleet.keys import KeyStore

    _, store = _fleet_store()
    typer.echo(f"{'id':>4}  {'role':<8}  {'prefix':<10}  {'created':<20}  {'status':<8}  name")
    for k in KeyStore(store).list():
        status = "active" if k.active else "revoked"
        typer.echo(f"{k.id:>4}  {k.role:<8}  {k.prefix:<10}  {k.created_at:%Y-%m-%d %H:%M:%S}  {status:<8}  {k.name}")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="key id (see prognos keys list)")]) -> None:
    """Revoke an API key (a running server stops accepting it within seconds)."""
    from prognos.fleet.keys import KeyStore

    _, store = _fleet_store()
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

    settings, store = _fleet_store()
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
    from prognos.config import get_settings
    from prognos.fleet.database import connect, upgrade

    settings = get_settings()
    tables = upgrade(connect(settings.sqlalchemy_url))
    typer.echo(f"database at {_safe_url(settings.sqlalchemy_url)} is up to date ({len(tables)} tables)")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)



@app.command()
def simulate(
    url: Annotated[str, typer.Option("--url", help="server base URL, e.g. http://127.0.0.1:8000")],
    api_key: Annotated[str | None, typer.Option("--api-key", help="operator API key [env PROGNOS_API_KEY]",
                                                envvar="PROGNOS_API_KEY")] = None,
    dataset: Dataset = "FD001",
    split: Annotated[str, typer.Option("--split", help="C-MAPSS file to replay: test or train")] = "test",
    data_dir: DataDir = None,
    engines: Annotated[int | None, typer.Option("--engines", help="replay only the first N engines")] = None,
    speed: Annotated[float, typer.Option("--speed", help="cycles per second per engine (0: flat out)")] = 1.0,
    synthetic: Annotated[int | None, typer.Option("--synthetic", help="replay N synthetic engines instead")] = None,
    max_cycles: Annotated[int | None, typer.Option("--max-cycles", help="replay at most N cycles per engine")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="requests in flight at once")] = 16,
    seed: Annotated[int, typer.Option("--seed", help="seed of the synthetic fleet")] = 0,
    prefix: Annotated[str | None, typer.Option("--prefix", help="engine id prefix (default FD001-test- / SYN-)")]
    = None,
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


@app.command()
def demo(
    engines: Annotated[int, typer.Option(help="engines to replay")] = 30,
    speed: Annotated[float, typer.Option(help="cycles per second per engine")] = 2.0,
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds (default: Ctrl-C)")] = None,
    retrain: Annotated[bool, typer.Option("--retrain", help="train a new quick model even if one exists")] = False,
) -> None:
    """Train a quick model (or reuse it), serve it with the fleet app, replay a fleet, print the dashboard URL."""
    from prognos.config import get_settings
    from prognos.demo import DemoOptions, run_demo

    run_demo(get_settings(), DemoOptions(engines, speed, duration, retrain), say=typer.echo)


# --- lifecycle commands (models, tune, drift, failure) ----------------------------------------

models_app = typer.Typer(no_args_is_help=True, help="The model registry: versions, approval, aliases.")
app.add_typer(models_app, name="models")
RegistryOpt = Annotated[str | None, typer.Option("--registry", help="directory or s3://bucket/prefix "
                                                 "[env PROGNOS_REGISTRY_DIR, default <data dir>/registry]")]
ByOpt = Annotated[str | None, typer.Option("--by", help="who does this (default: the login name)")]
VersionArg = Annotated[str, typer.Argument(help="version number (3 or v3), alias (production) or bundle version")]


def _registry(location: str | None):  # type: ignore[no-untyped-def]
    from prognos.config import get_settings
    from prognos.lifecycle.registry import open_registry

    settings = get_settings(registry_dir=location)
    return open_registry(settings.registry_location, settings.registry_cache)


@models_app.command("list")
def models_list(
    registry: RegistryOpt = None,
    format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """List the registered versions with their status and aliases (json: a list of version objects)."""
    if format not in ("table", "json"):
        raise PrognosError(f"--format must be table or json, not {format!r}")
    reg = _registry(registry)
    index = reg.index()
    rows = [v.to_dict(index.aliases_of(v.version)) for v in index.versions]
    if format == "json":
        typer.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        typer.echo(f"no versions in {reg.store.url}; add one with `prognos models register BUNDLE`")
        return
    typer.echo(f"{'version':>7}  {'status':<8}  {'aliases':<20}  {'dataset':<7}  {'model':<5}  {'RMSE':>6}  "
               f"{'registered':<20}  bundle")
    for r in rows:
        rmse = r["metrics"].get("rmse")
        rmse_text = f"{rmse:.2f}" if isinstance(rmse, int | float) else "-"
        typer.echo(f"{r['version']:>7}  {r['status']:<8}  {','.join(r['aliases']) or '-':<20}  {r['dataset']:<7}  "
                   f"{r['model']:<5}  {rmse_text:>6}  {r['registered_at']:<20}  {r['bundle_version']}")


@models_app.command("register")
def models_register(
    bundle: Annotated[Path, typer.Argument(help="bundle directory")],
    registry: RegistryOpt = None,
    source_run: Annotated[str | None, typer.Option("--source-run", help="e.g. the MLflow run id")] = None,
    by: ByOpt = None,
) -> None:
    """Verify a bundle and add it as a new pending version (it becomes the `candidate`)."""
    result = _registry(registry).register(bundle, source_run=source_run, actor=by)
    v = result.version
    if result.created:
        typer.echo(f"registered {bundle} as version {v.version} (pending approval; alias candidate)")
    else:
        typer.echo(f"{bundle} is already registered as version {v.version} ({v.status})")


@models_app.command("approve")
def models_approve(version: VersionArg, registry: RegistryOpt = None, by: ByOpt = None) -> None:
    """Approve a pending version for production."""
    v = _registry(registry).approve(version, actor=by)
    typer.echo(f"version {v.version} approved by {v.approved_by} at {v.approved_at}")


@models_app.command("promote")
def models_promote(version: VersionArg, registry: RegistryOpt = None, by: ByOpt = None) -> None:
    """Point `production` at an approved version (servers following the alias hot-swap to it)."""
    move = _registry(registry).promote(version, actor=by)
    if move.moved:
        typer.echo(f"production: version {move.previous if move.previous is not None else '-'} -> {move.current}")
    else:
        typer.echo(f"version {move.current} is already in production")


@models_app.command("rollback")
def models_rollback(registry: RegistryOpt = None, by: ByOpt = None) -> None:
    """Move `production` back to the previous production version."""
    move = _registry(registry).rollback(actor=by)
    typer.echo(f"production rolled back: version {move.previous} -> {move.current}")


@models_app.command("show")
def models_show(version: VersionArg, registry: RegistryOpt = None) -> None:
    """Print one version's metadata and history as JSON."""
    reg = _registry(registry)
    index = reg.index()
    v = reg.get(version)
    doc = v.to_dict(index.aliases_of(v.version))
    doc["events"] = [e.model_dump() for e in index.events if e.version == v.version]
    typer.echo(json.dumps(doc, indent=1))


@models_app.command("archive")
def models_archive(version: VersionArg, registry: RegistryOpt = None, by: ByOpt = None) -> None:
    """Retire a version (not the one in production)."""
    v = _registry(registry).archive(version, actor=by)
    typer.echo(f"version {v.version} archived at {v.archived_at}")


@app.command()
def tune(
    dataset: Dataset = "FD001",
    data_dir: DataDir = None,
    trials: Annotated[int, typer.Option("--trials", help="trials to run (added to an existing study)")] = 20,
    storage: Annotated[str | None, typer.Option("--storage", help="Optuna RDB URL [env PROGNOS_OPTUNA_STORAGE, "
                                                "default sqlite:///<data dir>/optuna.db]")] = None,
    study: Annotated[str | None, typer.Option("--study", help="study name (default prognos-<dataset>)")] = None,
    out: Annotated[Path, typer.Option("--out", help="best configuration, for `prognos train --config`")] = Path(
        "best.json"),
    config: Annotated[Path | None, typer.Option("--config", help="base training config (JSON or TOML)")] = None,
    epochs: Annotated[int | None, typer.Option(help="max epochs per member during the search only")] = None,
    folds: Annotated[int | None, typer.Option(help="ensemble members during the search only")] = None,
    seed: Annotated[int, typer.Option(help="sampler seed")] = 0,
    timeout: Annotated[float | None, typer.Option("--timeout", help="stop starting trials after this (s)")] = None,
) -> None:
    """Search hyper-parameters with Optuna (TPE, median pruning on per-epoch validation RMSE)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    try:
        import optuna

        from prognos.data.cmapss import load_subset
        from prognos.lifecycle.tuning import TrialReport, tune_study, write_best_config
        from prognos.training.config import load_train_config
    except ImportError as exc:
        raise PrognosError(f"tuning needs the 'train' extra (pip install 'prognos[train]'): {exc}") from None
    from prognos.config import get_settings

    settings = get_settings(optuna_storage=storage)
    url = settings.optuna_storage_url
    if url.startswith("sqlite:///"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    base = load_train_config(config)
    subset = load_subset(_data_dir(data_dir), dataset)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bar says it all
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn()) as progress:
        task = progress.add_task(f"tuning {subset.name}", total=trials, info="")

        def on_trial(r: TrialReport) -> None:
            value = f"{r.value:.2f}" if r.value is not None else "-"
            best = f"{r.best_value:.2f} (#{r.best_number})" if r.best_value is not None else "-"
            progress.update(task, advance=1, info=f"trial {r.number} {r.state} RMSE {value}  best {best}")
            if not sys.stderr.isatty():
                typer.echo(f"trial {r.number}: {r.state} RMSE {value} in {r.seconds:.1f} s; best {best}", err=True)

        result = tune_study(subset.train, subset.name, n_trials=trials, storage=url, study_name=study, base=base,
                            epochs=epochs, folds=folds, has_test_truth=subset.rul is not None, seed=seed,
                            timeout_s=timeout, on_trial=on_trial)
    write_best_config(result, out)
    typer.echo(f"study {result.study_name}: {result.n_trials} trials ({result.n_complete} complete, "
               f"{result.n_pruned} pruned) in {result.storage_display}")
    typer.echo(f"best trial {result.best_number}: out-of-fold RMSE {result.best_value:.2f} cycles")
    typer.echo(f"best configuration -> {out}  (train with: prognos train --dataset {dataset} --config {out})")


drift_app = typer.Typer(no_args_is_help=True, help="Drift of a model's inputs and predictions from its training data.")
app.add_typer(drift_app, name="drift")


@drift_app.command("report")
def drift_report(
    bundle: Annotated[Path | None, typer.Option("--bundle", help="bundle directory")] = None,
    model: Annotated[str | None, typer.Option("--model", help="instead of --bundle: registry alias or version")]
    = None,
    input: Annotated[Path | None, typer.Option("--input", help="C-MAPSS text or CSV file to compare (every row "
                                               "of every engine); default: what the server captured")] = None,
    since: Annotated[str | None, typer.Option("--since", help="captured requests from this UTC time on (ISO-8601)")]
    = None,
    out: Annotated[Path, typer.Option("--out", help="folder for drift.html and drift.json")] = Path("drift-report"),
    registry: RegistryOpt = None,
) -> None:
    """Compare data with a model's reference profile: PSI and KS per feature, prediction drift, HTML report."""
    from datetime import UTC, datetime

    from prognos.config import get_settings
    from prognos.errors import BundleError, ConfigError, ValidationError
    from prognos.lifecycle.drift import (
        DriftThresholds,
        compute_drift,
        read_capture,
        sample_from_readings,
        sample_from_records,
        write_report,
    )
    from prognos.lifecycle.profile import load_reference
    from prognos.serving.predictor import Predictor

    if (bundle is None) == (model is None):
        raise ConfigError("pass --bundle DIR or --model ALIAS (one of them)")
    if input is not None and since is not None:
        raise ConfigError("pass --input FILE or --since TIME, not both")
    settings = get_settings(registry_dir=registry)
    if model is not None:
        from prognos.lifecycle.registry import open_registry

        bundle = open_registry(settings.registry_location, settings.registry_cache).fetch(model)
    assert bundle is not None
    predictor = Predictor.from_path(bundle)
    reference = load_reference(predictor.bundle)
    if reference is None:
        raise BundleError(f"{bundle}: no reference profile (reference.json): model {predictor.version} was trained "
                          "before drift profiles existed; retrain it to monitor drift")
    if input is not None:
        from prognos.data.cmapss import load_readings

        sample = sample_from_readings(predictor, load_readings(input), source=str(input))
    else:
        start = None
        if since is not None:
            try:
                t = datetime.fromisoformat(since.replace("Z", "+00:00"))
            except ValueError:
                raise ValidationError(f"--since: {since!r} is not an ISO-8601 time (e.g. 2026-11-23T12:00:00Z)"
                                      ) from None
            start = (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()
        where = settings.data_dir / "drift"
        records = read_capture(where, model_version=predictor.version, since=start)
        sample = sample_from_records(predictor, records, f"{len(records)} requests captured in {where}"
                                     + (f" since {since}" if since else ""))
    report = compute_drift(reference, sample, DriftThresholds.from_settings(settings), predictor.version)
    files = write_report(report, reference, sample, out)
    verdict = {"drift": "DRIFT", "ok": "no drift", "insufficient": "not enough data"}.get(report.status, report.status)
    typer.echo(f"model {predictor.version}: {verdict} — {report.message}")
    typer.echo(f"{report.n_samples} samples ({sample.source}); prediction PSI "
               f"{report.prediction.psi if report.prediction else float('nan'):.3f}")
    typer.echo(f"report -> {files.html}, {files.json}" + ("" if files.plots else " (no plots: matplotlib missing)"))


@app.command()
def failure(
    engine_id: Annotated[str, typer.Argument(help="the engine that failed")],
    cycle: Annotated[int, typer.Option("--cycle", help="the cycle at which it failed (its last cycle)")],
    by: ByOpt = None,
) -> None:
    """Record an engine's actual failure (ground truth) and print its predictions' realised errors."""
    import getpass

    from prognos.lifecycle.feedback import DEFAULT_RUL_CAP, record_failure

    settings, store = _fleet_store()
    result = record_failure(store, engine_id, cycle, by or getpass.getuser(),
                            rul_cap=settings.feedback_rul_cap or DEFAULT_RUL_CAP)
    f = result.failure
    typer.echo(f"engine {f.engine_id} failed at cycle {f.cycle} " + ("(recorded)" if result.created else
                                                                      f"(already recorded by {f.recorded_by})"))
    if not result.performance:
        typer.echo("no stored predictions for this engine")
    for p in result.performance:
        e = p.errors
        typer.echo(f"  {p.model_version}: {e.n} predictions  RMSE {e.rmse:.2f}  PHM08 {e.score:.1f}  "
                   f"(uncapped RMSE {e.rmse_uncapped:.2f})")


def main() -> None:
    """Console entry point: run the app, turning domain errors into one line and an exit code."""
    try:
        app(standalone_mode=False)
    except PrognosError as exc:
        _err(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            _err("aborted")
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
