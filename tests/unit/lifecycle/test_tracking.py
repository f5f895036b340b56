"""MLflow tracking against a local SQLite tracking store (skipped only without the mlflow extra)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")

from prognos.bundle import read_bundle  # noqa: E402
from prognos.config import get_settings  # noqa: E402
from prognos.errors import BundleError, NotFoundError  # noqa: E402
from prognos.lifecycle.tracking import MlflowTracker, resolve_model_uri, tracker_for  # noqa: E402
from prognos.training.trainer import EpochReport  # noqa: E402

# mlflow's SQLAlchemy store uses a loader strategy SQLAlchemy 2.1 deprecates; nothing we can fix here.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def _epochs(tracker: MlflowTracker) -> None:
    for member in (1, 2):
        for epoch in (1, 2, 3):
            rmse = 40.0 / epoch + member
            tracker.on_epoch(EpochReport(member, 2, epoch, 3, 0.1 / epoch, rmse, rmse))


def test_a_run_logs_params_epochs_metrics_plot_and_bundle(tracking_uri: str, tiny_bundle: Path,
                                                          tmp_path: Path) -> None:
    tracker = MlflowTracker(tracking_uri, "prognos-test", run_name="unit")
    _epochs(tracker)
    bundle = read_bundle(tiny_bundle)
    run = tracker.log_run(bundle, register_name="prognos-tiny")
    client = mlflow.MlflowClient(tracking_uri)
    data = client.get_run(run.run_id).data
    cfg = bundle.manifest.train_config
    assert data.params["lr"] == str(cfg["lr"]) and data.params["folds"] == str(cfg["folds"])
    assert data.params["dataset"] == "SYNTH"
    assert data.metrics["validation_rmse"] == pytest.approx(bundle.manifest.validation_metrics["rmse"])
    history = client.get_metric_history(run.run_id, "member_2/val_rmse")
    assert sorted((h.step, h.value) for h in history) == [(1, 42.0), (2, 22.0), (3, 40.0 / 3 + 2)]
    assert data.tags["prognos.bundle_version"] == bundle.version
    artifacts = {a.path for a in client.list_artifacts(run.run_id, "bundle")}
    assert artifacts == {f"bundle/{name}" for name in (*bundle.manifest.files, "bundle.json")}
    assert "bundle/model.onnx" in artifacts
    assert [a.path for a in client.list_artifacts(run.run_id, "plots")] == ["plots/learning_curves.png"]
    assert client.get_run(run.run_id).info.status == "FINISHED"

    # registered: version 1 with the alias candidate; resolvable to a verified local bundle
    assert run.model_uri == "models:/prognos-tiny/1"
    for uri in ("models:/prognos-tiny@candidate", "models:/prognos-tiny/1"):
        path = resolve_model_uri(uri, tracking_uri, tmp_path / "cache")
        assert read_bundle(path).manifest.manifest_sha256 == bundle.manifest.manifest_sha256
    assert resolve_model_uri("models:/prognos-tiny@candidate", tracking_uri, tmp_path / "cache") == path

    # `prognos serve --model models:/prognos-tiny@candidate` serves that bundle
    from prognos.lifecycle.watcher import follow_model
    from prognos.server import ServerHooks

    settings = get_settings(data_dir=tmp_path / "state", mlflow_tracking_uri=tracking_uri)
    served = follow_model(settings, "models:/prognos-tiny/1", ServerHooks())
    assert read_bundle(served.settings.bundle).version == bundle.version  # type: ignore[arg-type]
    assert served.hooks == ServerHooks()  # a fixed version: resolved once, not followed


def test_serve_follows_an_mlflow_alias(tracking_uri: str, make_bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import time

    from prognos.lifecycle.watcher import follow_model
    from prognos.server import ServerHooks

    first, second = (MlflowTracker(tracking_uri, "prognos-test").log_run(read_bundle(make_bundle(n)),
                                                                       register_name="prognos-follow")
                     for n in ("m1", "m2"))
    client = mlflow.MlflowClient(tracking_uri)
    client.set_registered_model_alias("prognos-follow", "production", first.registered_version)
    settings = get_settings(data_dir=tmp_path / "state", mlflow_tracking_uri=tracking_uri, registry_poll_s=0.05)
    with pytest.raises(NotFoundError, match="models:/prognos-follow@staging: not found"):
        follow_model(settings, "models:/prognos-follow@staging", ServerHooks())
    followed = follow_model(settings, "models:/prognos-follow@production", ServerHooks())
    assert read_bundle(followed.settings.bundle).version == "synth-m1"  # type: ignore[arg-type]

    class Service:  # the one method the hooks use: PredictionService.reload(path)
        def __init__(self) -> None:
            self.loaded: list[str] = []

        async def reload(self, path: Path) -> None:
            self.loaded.append(read_bundle(path).version)

    async def main() -> list[str]:
        service = Service()
        await followed.hooks.on_startup[0](service)  # type: ignore[arg-type]
        client.set_registered_model_alias("prognos-follow", "production", second.registered_version)
        deadline = time.monotonic() + 20
        while not service.loaded and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await followed.hooks.on_shutdown[0](service)  # type: ignore[arg-type]
        return service.loaded

    assert asyncio.run(main()) == ["synth-m2"]


def test_unknown_models_and_tampered_artifacts_are_refused(tracking_uri: str, tiny_bundle_copy_factory,
                                                           tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="models:/nope@production: not found"):
        resolve_model_uri("models:/nope@production", tracking_uri, tmp_path)
    tracker = MlflowTracker(tracking_uri, "prognos-test")
    path = tiny_bundle_copy_factory("tracked")
    run = tracker.log_run(read_bundle(path), register_name="prognos-tampered")
    # damage the stored artifact behind MLflow's back (artifacts live beside the SQLite database)
    source = mlflow.MlflowClient(tracking_uri).get_model_version("prognos-tampered", run.registered_version).source
    db_dir = Path(tracking_uri.removeprefix("sqlite:///")).parent
    assert source.startswith((db_dir / "mlflow-artifacts").as_uri())
    (Path(source.removeprefix("file://")) / "preprocessing.json").write_text("{}")
    with pytest.raises(BundleError, match="models:/prognos-tampered@candidate"):
        resolve_model_uri("models:/prognos-tampered@candidate", tracking_uri, tmp_path / "cache")


def test_tracking_is_off_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROGNOS_MLFLOW_TRACKING_URI", raising=False)
    settings = get_settings(data_dir=tmp_path)
    assert tracker_for(settings, requested=False) is None
    asked = tracker_for(settings, requested=True)
    assert asked is not None and asked.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("PROGNOS_MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    by_env = tracker_for(get_settings(data_dir=tmp_path), requested=False)
    assert by_env is not None and by_env.tracking_uri == "sqlite:///elsewhere.db"


def test_cli_train_tracks_when_the_uri_is_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str], tracking_uri: str) -> None:
    pytest.importorskip("torch")
    from prognos import cli
    from tests.helpers import write_cmapss_dir

    data = write_cmapss_dir(tmp_path / "cmapss", n_train=6, n_test=3)
    monkeypatch.setenv("PROGNOS_MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("PROGNOS_MLFLOW_EXPERIMENT", "prognos-cli")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"folds": 2, "epochs": 2, "window": 20, "threads": 1}))
    monkeypatch.setattr("sys.argv", ["prognos", "train", "--data-dir", str(data), "--config", str(cfg),
                                     "--out", str(tmp_path / "bundle"), "--register-name", "prognos-cli"])
    cli.main()
    out = capsys.readouterr().out
    assert "MLflow run" in out and "models:/prognos-cli/1" in out
    client = mlflow.MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name("prognos-cli")
    (run,) = client.search_runs([exp.experiment_id])
    assert len(client.get_metric_history(run.info.run_id, "member_1/val_rmse")) == 2  # one point per epoch
    assert client.get_metric_history(run.info.run_id, "student/rmse_vs_teacher")  # the served student, apart
    assert run.data.tags["prognos.bundle_version"] == read_bundle(tmp_path / "bundle").version
