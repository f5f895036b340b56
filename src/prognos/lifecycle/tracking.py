"""Experiment tracking with MLflow (the optional ``mlflow`` extra).

``prognos train --track`` (or ``PROGNOS_MLFLOW_TRACKING_URI`` set) records one MLflow run per
training: the configuration as parameters, per-epoch train loss and validation RMSE of every
ensemble member (step = epoch), the bundle's validation metrics, a learning-curve plot and the
bundle itself as the ``bundle`` artifact. ``--register-name NAME`` also creates a version of the
MLflow registered model ``NAME`` (alias ``candidate``), whose artifacts are the plain bundle — no
MLflow flavour, no pickle. :func:`resolve_model_uri` turns ``models:/NAME@ALIAS`` (or
``models:/NAME/VERSION``) back into a verified local bundle path for serving.

The run is created when training has finished (epochs are buffered with their timestamps), so a
crashed training leaves no half-open run. Without the extra nothing here is imported; asking for
tracking then fails with a one-line :class:`~prognos.errors.ConfigError`.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prognos.bundle import Bundle, read_bundle
from prognos.config import Settings
from prognos.errors import BundleError, ConfigError, NotFoundError

if TYPE_CHECKING:  # the serving path resolves models:/ URIs through this module: no torch at run time
    from prognos.training.trainer import EpochReport

__all__ = ["MlflowAliases", "MlflowModelVersion", "MlflowTracker", "TrackedRun", "resolve_model_uri", "tracker_for"]

log = logging.getLogger("prognos.lifecycle")

BUNDLE_ARTIFACT = "bundle"
REGISTER_ALIAS = "candidate"


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise ConfigError("experiment tracking needs the 'mlflow' extra (pip install 'prognos[mlflow]')") from None
    return mlflow


def _ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class TrackedRun:
    """What was recorded: the MLflow run, and the registered model version if one was created."""

    run_id: str
    experiment_id: str
    artifact_uri: str
    registered_name: str | None = None
    registered_version: str | None = None

    @property
    def model_uri(self) -> str | None:
        if self.registered_name is None:
            return None
        return f"models:/{self.registered_name}/{self.registered_version}"


@dataclass
class _Epochs:
    rows: list[tuple[str, float, int, int]] = field(default_factory=list)  # key, value, ms timestamp, step


class MlflowTracker:
    """Collects a training's epochs, then logs the run (:meth:`log_run`) to ``tracking_uri``."""

    def __init__(self, tracking_uri: str, experiment: str = "prognos", run_name: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.run_name = run_name
        self.started_ms = _ms()
        self._epochs = _Epochs()
        self._curves: dict[int, list[float]] = {}

    def on_epoch(self, r: EpochReport) -> None:
        """Record one epoch (train loss in (RUL/cap)², validation RMSE in cycles)."""
        now = _ms()
        if r.stage == "student":  # the distilled network: its RMSE is against the teacher, not the truth
            self._epochs.rows += [
                ("student/train_loss", r.train_loss, now, r.epoch),
                ("student/rmse_vs_teacher", r.val_rmse, now, r.epoch),
            ]
            return
        self._epochs.rows += [
            (f"member_{r.member}/train_loss", r.train_loss, now, r.epoch),
            (f"member_{r.member}/val_rmse", r.val_rmse, now, r.epoch),
        ]
        self._curves.setdefault(r.member, []).append(r.val_rmse)

    def wrap(self, on_epoch: Callable[[EpochReport], None] | None) -> Callable[[EpochReport], None]:
        """An ``on_epoch`` callback that records the epoch, then calls ``on_epoch`` (the progress bar)."""

        def both(r: EpochReport) -> None:
            self.on_epoch(r)
            if on_epoch is not None:
                on_epoch(r)

        return both

    def _client(self) -> Any:
        return _mlflow().MlflowClient(self.tracking_uri)

    def log_run(self, bundle: Bundle, *, register_name: str | None = None) -> TrackedRun:
        """Create the run with parameters, epoch metrics, validation metrics, plot and the bundle."""
        _mlflow()
        from mlflow.entities import Metric, Param, RunTag

        client = self._client()
        exp = client.get_experiment_by_name(self.experiment)
        exp_id = exp.experiment_id if exp is not None else client.create_experiment(
            self.experiment, artifact_location=_artifact_location(self.tracking_uri, self.experiment))
        m = bundle.manifest
        run = client.create_run(exp_id, start_time=self.started_ms, run_name=self.run_name or m.version,
                                tags={"prognos.bundle_version": m.version, "prognos.dataset": m.dataset})
        run_id = run.info.run_id
        try:
            params = [Param(k, str(v)[:6000]) for k, v in _flatten(m.train_config).items()]
            params += [Param("dataset", m.dataset), Param("n_features", str(len(m.feature_names)))]
            metrics = [Metric(k, v, ts, step) for k, v, ts, step in self._epochs.rows]
            now = _ms()
            metrics += [Metric(f"validation_{k}", float(v), now, 0) for k, v in m.validation_metrics.items()
                        if isinstance(v, int | float) and not isinstance(v, bool)]
            metrics.append(Metric("training_seconds", float(m.training_seconds), now, 0))
            # MLflow caps one batch at 1000 metrics / 100 params.
            for i in range(0, len(params), 100):
                client.log_batch(run_id, params=params[i : i + 100])
            for i in range(0, len(metrics), 1000):
                client.log_batch(run_id, metrics=metrics[i : i + 1000])
            client.log_batch(run_id, tags=[RunTag("prognos.manifest_sha256", m.manifest_sha256)])
            self._log_plot(client, run_id)
            client.log_artifacts(run_id, str(bundle.path), artifact_path=BUNDLE_ARTIFACT)
        except BaseException:
            client.set_terminated(run_id, status="FAILED")
            raise
        client.set_terminated(run_id, status="FINISHED")
        tracked = TrackedRun(run_id, exp_id, run.info.artifact_uri)
        if register_name:
            version = self.register(tracked, register_name)
            tracked = TrackedRun(run_id, exp_id, run.info.artifact_uri, register_name, version)
        return tracked

    def _log_plot(self, client: Any, run_id: str) -> None:
        if not self._curves:
            return
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:  # plots are a nicety; the numbers are logged anyway
            return
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for member, curve in sorted(self._curves.items()):
            ax.plot(range(1, len(curve) + 1), curve, label=f"member {member}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation RMSE (cycles)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "learning_curves.png"
            fig.savefig(path, dpi=90)
            plt.close(fig)
            client.log_artifact(run_id, str(path), artifact_path="plots")

    def register(self, run: TrackedRun, name: str, alias: str | None = REGISTER_ALIAS) -> str:
        """Create a version of the registered model ``name`` from the run's bundle; returns its number."""
        from mlflow.exceptions import MlflowException

        client = self._client()
        try:
            client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        # create_model_version (not mlflow.register_model): the bundle is plain files, not an MLflow model.
        mv = client.create_model_version(name, source=f"{run.artifact_uri}/{BUNDLE_ARTIFACT}", run_id=run.run_id)
        if alias:
            client.set_registered_model_alias(name, alias, mv.version)
        return str(mv.version)


def tracker_for(settings: Settings, requested: bool, run_name: str | None = None) -> MlflowTracker | None:
    """The tracker ``prognos train`` should use: when asked (``--track``) or when
    ``PROGNOS_MLFLOW_TRACKING_URI`` is set; ``None`` otherwise (mlflow is then never imported)."""
    if not (requested or settings.mlflow_tracking_uri):
        return None
    _mlflow()  # fail before training, not after
    if settings.mlflow_uri.startswith("sqlite:///"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return MlflowTracker(settings.mlflow_uri, settings.mlflow_experiment, run_name)


def _artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """Beside a SQLite tracking database, not MLflow's default ``./mlruns`` in whatever directory
    the command happens to run in; other stores keep their server's default."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    db = Path(tracking_uri[len("sqlite:///") :])
    return (db.parent / "mlflow-artifacts" / experiment).resolve().as_uri()


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def resolve_model_uri(uri: str, tracking_uri: str, cache_dir: Path) -> Path:
    """``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` → a verified local bundle directory in
    ``cache_dir``. Raises :class:`NotFoundError` for an unknown name/alias, :class:`BundleError`
    if the artifacts are not an intact bundle."""
    mlflow = _mlflow()
    from mlflow.exceptions import MlflowException

    if not uri.startswith("models:/"):
        raise ConfigError(f"{uri!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    ref = uri[len("models:/") :]
    client = mlflow.MlflowClient(tracking_uri)
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        else:
            name, _, version = ref.partition("/")
            if not version.isdigit():
                raise ConfigError(f"{uri!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
            mv = client.get_model_version(name, version)
    except MlflowException as exc:
        raise NotFoundError(f"{uri}: not found in MLflow at {tracking_uri} ({exc.error_code})") from None
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".mlflow-", dir=cache_dir))
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=str(tmp),
                                                         tracking_uri=tracking_uri))
        try:
            bundle = read_bundle(local)
        except BundleError as exc:
            raise BundleError(f"{uri} (version {mv.version}): {exc}") from None
        dst = cache_dir / f"mlflow-{name}-v{mv.version}-{bundle.manifest.manifest_sha256[:16]}"
        if dst.is_dir():  # fetched before: keep that copy (a server may be serving from it) if intact
            try:
                read_bundle(dst)
                return dst
            except BundleError:
                shutil.rmtree(dst)
        local.rename(dst)
        return dst
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass(frozen=True)
class MlflowModelVersion:
    """A version of an MLflow registered model (what an alias points at)."""

    name: str
    version: int
    source: str  # artifact URI of the bundle


class MlflowAliases:
    """The aliases of one MLflow registered model, in the shape
    :class:`~prognos.lifecycle.watcher.RegistryWatcher` polls (``alias(name)``, ``fetch(version)``),
    so a server started with ``--model models:/NAME@ALIAS`` follows that alias too."""

    def __init__(self, tracking_uri: str, name: str, cache_dir: Path) -> None:
        self.tracking_uri = tracking_uri
        self.name = name
        self.cache_dir = Path(cache_dir)

    @property
    def url(self) -> str:
        return f"{self.tracking_uri} (registered model {self.name})"

    def alias(self, alias: str) -> MlflowModelVersion | None:
        """The version ``alias`` points at; ``None`` if the model or the alias does not exist."""
        mlflow = _mlflow()
        from mlflow.exceptions import MlflowException

        try:
            mv = mlflow.MlflowClient(self.tracking_uri).get_model_version_by_alias(self.name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise
        return MlflowModelVersion(self.name, int(mv.version), str(mv.source))

    def fetch(self, version: int | str) -> Path:
        """A verified local copy of ``version`` (see :func:`resolve_model_uri`)."""
        return resolve_model_uri(f"models:/{self.name}/{version}", self.tracking_uri, self.cache_dir)
