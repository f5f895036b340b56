"""Lifecycle commands: ``tune``, ``drift report``, ``failure``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from prognos.cli.app import ByOpt, DataDir, Dataset, RegistryOpt, app, data_dir, fleet_store
from prognos.errors import ConfigError


@app.command()
def tune(
    dataset: Dataset = "FD001",
    data_dir_: DataDir = None,
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
        raise ConfigError(f"tuning needs the 'train' extra (pip install 'prognos[train]'): {exc}") from None
    from prognos.config import get_settings

    settings = get_settings(optuna_storage=storage)
    url = settings.optuna_storage_url
    if url.startswith("sqlite:///"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    base = load_train_config(config)
    subset = load_subset(data_dir(data_dir_), dataset)
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
    from prognos.reference import load_reference
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

    settings, store = fleet_store(existing=True)
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
