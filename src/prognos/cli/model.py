"""Model commands: ``data fetch``, ``train``, ``evaluate``, ``predict``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from prognos.cli.app import DataDir, Dataset, app, choice, data_dir
from prognos.errors import ConfigError

if TYPE_CHECKING:
    from prognos.training.trainer import EpochReport

data_app = typer.Typer(no_args_is_help=True, help="Download NASA's C-MAPSS data set (data fetch).")
app.add_typer(data_app, name="data")


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
    data_dir_: DataDir = None,
    out: Annotated[Path, typer.Option("--out", help="bundle directory to write")] = Path("bundles/model"),
    config: Annotated[Path | None, typer.Option("--config", help="JSON or TOML training config")] = None,
    model: Annotated[str | None, typer.Option("--model", help="tcn+lstm (default), tcn, lstm, cnn, gru")] = None,
    epochs: Annotated[int | None, typer.Option(help="max epochs per ensemble member")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    folds: Annotated[int | None, typer.Option(help="cross-fitted ensemble members")] = None,
    holdout: Annotated[float | None, typer.Option(help="share of training engines held out for evaluation")] = None,
    confidence: Annotated[float | None, typer.Option(help="nominal interval coverage, e.g. 0.9")] = None,
    track: Annotated[bool, typer.Option("--track", help="log the run to MLflow (on whenever "
                                        "PROGNOS_MLFLOW_TRACKING_URI is set)")] = False,
    register_name: Annotated[str | None, typer.Option("--register-name", help="also register the bundle in the "
                                                      "MLflow Model Registry (implies --track)")] = None,
) -> None:
    """Train an RUL model and write a bundle (model.onnx + preprocessing.json + bundle.json)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from prognos.data.cmapss import subset_name
    from prognos.errors import DataFormatError

    # Cheap checks first: a mistyped subset or path fails before torch is imported.
    dataset = subset_name(dataset)
    path = data_dir(data_dir_)
    if not path.exists():
        raise DataFormatError(f"{path}: no such directory or zip file")
    try:
        from prognos.training.config import load_train_config
        from prognos.training.run import train_bundle
    except ImportError as exc:
        raise ConfigError(f"training needs the 'train' extra (pip install 'prognos[train]'): {exc}") from None
    cfg = load_train_config(config, model=model, epochs=epochs, seed=seed, folds=folds, holdout=holdout,
                            confidence=confidence)
    from prognos.config import get_settings
    from prognos.lifecycle.tracking import tracker_for  # MLflow, imported only when tracking

    tracker = tracker_for(get_settings(), track or register_name is not None)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), transient=False) as progress:
        task = progress.add_task("training", total=cfg.folds * cfg.epochs, info="")

        def on_epoch(r: EpochReport) -> None:
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
    if tracker is not None:
        run = tracker.log_run(bundle, register_name=register_name)
        typer.echo(f"MLflow run {run.run_id} ({tracker.tracking_uri})"
                   + (f"; registered {run.model_uri} (alias candidate)" if run.model_uri else ""))


@app.command()
def evaluate(
    bundle: Annotated[Path, typer.Option("--bundle", help="bundle directory")],
    dataset: Dataset = "FD001",
    data_dir_: DataDir = None,
    rul_file: Annotated[Path | None, typer.Option("--rul-file", help="true RUL of the test engines")] = None,
    report: Annotated[Path, typer.Option("--report", help="output folder")] = Path("report"),
) -> None:
    """Evaluate a bundle: RMSE, MAE, PHM08 score, interval coverage; writes metrics.json and plots."""
    from prognos.evaluation import evaluate_bundle
    from prognos.serving.predictor import Predictor

    res = evaluate_bundle(Predictor.from_path(bundle), data_dir(data_dir_), dataset, report, rul_file)
    m = res.metrics
    typer.echo(res.protocol)
    typer.echo(f"RMSE {m['rmse']:.2f}  MAE {m['mae']:.2f}  score {m['score']:.1f}  coverage {m['coverage']:.3f} "
               f"(nominal {m['confidence_level']:.2f})  mean width {m['mean_interval_width']:.1f}  "
               f"engines {m['n_engines']}")
    typer.echo(f"uncapped truth: RMSE {m['rmse_uncapped']:.2f}  score {m['score_uncapped']:.1f}")
    for key in ("every_cycle", "every_cycle_holdout"):
        if key in m and (key == "every_cycle" or m[key] is not m.get("every_cycle")):
            for line in every_cycle_lines(m[key]):
                typer.echo(line)
    oof = res.metrics.get("out_of_fold_by_age")
    if oof:
        typer.echo("every cycle of the training engines, out-of-fold (each engine predicted by members that did not "
                   "train on it), RMSE by age without -> with the age correction"
                   + (" (kept)" if oof["kept"] else " (dropped)") + ":")
        typer.echo("  " + "; ".join(f"{r['age']}: {r['rmse_without']:.2f} -> {r['rmse_with']:.2f}"
                                    for r in oof["by_age"]))
    typer.echo(f"report -> {report}/metrics.json, engines.csv, *.png")


def every_cycle_lines(ec: dict[str, Any]) -> list[str]:
    """The every-cycle figures of ``prognos evaluate`` (``metrics.json``'s ``every_cycle``) as text."""
    lines = [f"every cycle: {ec['protocol']}",
             f"  RMSE {ec['rmse']:.2f}  bias {ec['bias']:+.2f}  coverage {ec['coverage']:.3f}  "
             f"predictions {ec['n_predictions']}  engines {ec['n_engines']}  one-cycle jumps > 5: "
             f"{ec['jumps_over_5_cycles']}"]
    for key, unit in (("by_true_rul", "true RUL"), ("by_age", "age")):
        lines.append(f"  {unit:<9} {'n':>6} {'RMSE':>6} {'bias':>6} {'cover':>6}")
        lines += [f"  {r[key.removeprefix('by_')]:<9} {r['n']:>6} {r['rmse']:>6.2f} {r['bias']:>+6.2f} "
                  f"{r['coverage']:>6.3f}" for r in ec[key]]
    late = ec["late_life"]
    if late["n"]:
        lines.append(f"  last {late['cycles']} cycles ({late['n']} predictions): truth below the lower bound "
                     f"{late['below_lower_bound']:.1%}; dangerous misses (late by > {late['dangerous_late_by']}) "
                     f"{late['dangerous_misses']:.1%} in {late['engines_with_dangerous_misses']} engines")
    st = ec["status"]
    truth = st["truth_changes"]
    hold = st["fleet"]["hold_readings"]
    for name, label in (("predictor", "predictor (every reading)"), ("fleet", f"fleet (hold {hold} readings)")):
        c = st[name]
        ratio = f" ({c['changes'] / truth:.1f}x)" if truth else ""
        lines.append(f"  status changes, {label}: {c['changes']}{ratio} vs truth {truth}; reversals to a better "
                     f"status {c['reversals_to_better']} ({c['reversals_on_falling_prediction']} on a falling "
                     f"prediction, {c['engines_with_reversals']} engines); within 5 cycles of the previous "
                     f"{c['changes_within_5_cycles_of_previous']}")
    for name in ("warning", "critical"):
        f = ec["first_alarm"][name]
        if f["engines"]:
            lines.append(f"  first {name}: {f['engines']} engines, true RUL median {f['median_true_rul']:g}, "
                         f"min {f['min_true_rul']:g}")
    worst = ", ".join(f"{w['engine_id']} {w['coverage']:.2f}" for w in ec["worst_engines_by_coverage"])
    lines.append(f"  worst engines by coverage: {worst}")
    return lines


@app.command()
def predict(
    bundle: Annotated[Path, typer.Option("--bundle", help="bundle directory")],
    input: Annotated[Path, typer.Option("--input", help="C-MAPSS text or CSV file")],
    format: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
) -> None:
    """Predict the RUL (with interval) of every engine in a file, at its last reading. No torch needed."""
    from prognos.data.cmapss import load_readings
    from prognos.serving.predictor import Predictor

    choice("--format", format, ("table", "json", "csv"))
    predictor = Predictor.from_path(bundle)
    rows = [p.to_dict() for p in predictor.predict_readings(load_readings(input))]
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
