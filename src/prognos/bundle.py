"""The model bundle: a directory the serving layer loads without torch.

::

    BUNDLE/
      bundle.json         manifest: version, dataset, input fields, window, RUL cap, interval
                          calibration, age correction, validation metrics, training time,
                          SHA-256 of every file
      model.onnx          the network (input "window": float32 [batch, window, n_features];
                          output "rul": float32 [batch], cycles, clipped to [0, rul_cap])
      preprocessing.json  the fitted :class:`~prognos.features.FeaturePipeline`

Reading verifies every checksum (and the manifest's own) and refuses an incomplete or tampered
bundle with :class:`~prognos.errors.BundleError`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from prognos.correction import AgeCorrection
from prognos.errors import BundleError
from prognos.features.pipeline import FeaturePipeline
from prognos.intervals import IntervalCalibration

__all__ = ["BUNDLE_FORMAT", "GRADIENT_FILE", "Bundle", "Manifest", "read_bundle", "sha256_file", "write_bundle"]

BUNDLE_FORMAT = "prognos.bundle/1"
MODEL_FILE = "model.onnx"
PREPROCESSING_FILE = "preprocessing.json"
#: The served network's input-gradient graph (optional: bundles written before it, or of networks it
#: cannot be built for, explain by occlusion).
GRADIENT_FILE = "explain.onnx"
MANIFEST_FILE = "bundle.json"


class Manifest(BaseModel):
    """``bundle.json``. Times are UTC ISO-8601, lengths in cycles, durations in seconds."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    format: str = BUNDLE_FORMAT
    version: str
    dataset: str
    created_at: str
    model: dict[str, Any]
    input_fields: list[str]
    feature_names: list[str]
    window: int
    rul_cap: float
    calibration: dict[str, Any]
    correction: dict[str, Any] = {}  # empty: the identity (bundles written before the age correction)
    validation_metrics: dict[str, Any]
    training_seconds: float
    holdout_engines: list[str] = []
    train_config: dict[str, Any] = {}
    input_ranges: dict[str, list[float]] = {}
    files: dict[str, str]
    manifest_sha256: str = ""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _manifest_digest(data: dict[str, Any]) -> str:
    body = {k: v for k, v in data.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk."""

    path: Path
    manifest: Manifest
    pipeline: FeaturePipeline
    calibration: IntervalCalibration
    correction: AgeCorrection = field(default_factory=AgeCorrection)

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def gradient_path(self) -> Path | None:
        return self.path / GRADIENT_FILE if GRADIENT_FILE in self.manifest.files else None

    @property
    def version(self) -> str:
        return self.manifest.version


def write_bundle(
    out: Path, *, onnx_path: Path, pipeline: FeaturePipeline, calibration: IntervalCalibration,
    correction: AgeCorrection | None = None, extra_files: dict[str, str | bytes] | None = None, **fields: Any
) -> Bundle:
    """Write a bundle atomically (a temp dir renamed into place). An existing bundle at ``out`` is
    replaced; any other non-empty directory is refused. ``extra_files`` (name -> text or bytes, e.g. the
    drift reference profile ``reference.json``, the gradient graph ``explain.onnx``) are written beside
    the model and listed and hashed in ``files``."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_FILE).exists())):
        raise BundleError(f"{out}: exists and is not a prognos bundle; refusing to overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        shutil.copyfile(onnx_path, tmp / MODEL_FILE)
        (tmp / PREPROCESSING_FILE).write_text(pipeline.to_json())
        extra = dict(extra_files or {})
        for name, text in extra.items():
            if name in (MODEL_FILE, PREPROCESSING_FILE, MANIFEST_FILE) or Path(name).name != name:
                raise BundleError(f"extra bundle file {name!r}: must be a plain file name other than the core files")
            if isinstance(text, bytes):
                (tmp / name).write_bytes(text)
            else:
                (tmp / name).write_text(text)
        files = {name: sha256_file(tmp / name) for name in (MODEL_FILE, PREPROCESSING_FILE, *extra)}
        created = datetime.now(UTC).replace(microsecond=0)
        model_name = str(fields["model"]["name"]).replace("+", "-")
        version = fields.pop("version", None) or (
            f"{fields['dataset'].lower()}-{model_name}-{created:%Y%m%dT%H%M%SZ}-{files[MODEL_FILE][:8]}"
        )
        data = Manifest(
            version=version,
            created_at=created.isoformat().replace("+00:00", "Z"),
            input_fields=pipeline.required_fields,
            feature_names=list(pipeline.sensors_ or []),
            window=pipeline.window,
            rul_cap=pipeline.rul_cap,
            calibration=calibration.to_dict(),
            correction=(correction or AgeCorrection()).to_dict(),
            input_ranges=pipeline.ranges_ or {},
            files=files,
            **fields,
        ).model_dump()
        data["manifest_sha256"] = _manifest_digest(data)
        (tmp / MANIFEST_FILE).write_text(json.dumps(data, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_bundle(out)


def read_bundle(path: Path) -> Bundle:
    """Load and verify a bundle. Raises :class:`BundleError` naming what is wrong."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path}: no such bundle directory")
    mpath = path / MANIFEST_FILE
    if not mpath.is_file():
        raise BundleError(f"{path}: not a bundle ({MANIFEST_FILE} is missing)")
    try:
        data = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{mpath}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BundleError(f"{mpath}: expected a JSON object")
    if data.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{mpath}: unsupported bundle format {data.get('format')!r} (expected {BUNDLE_FORMAT})")
    if data.get("manifest_sha256") != _manifest_digest(data):
        raise BundleError(f"{mpath}: manifest checksum mismatch — the manifest was modified")
    try:
        manifest = Manifest(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BundleError(f"{mpath}: field {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    for name in (MODEL_FILE, PREPROCESSING_FILE):
        if name not in manifest.files:
            raise BundleError(f"{mpath}: no checksum listed for {name}")
    for name, digest in manifest.files.items():
        f = path / name
        if not f.is_file():
            raise BundleError(f"{path}: incomplete bundle, {name} is missing")
        if sha256_file(f) != digest:
            raise BundleError(f"{path}: {name} does not match its SHA-256 in {MANIFEST_FILE} (tampered or corrupted)")
    try:
        pipeline = FeaturePipeline.from_json((path / PREPROCESSING_FILE).read_text())
        calibration = IntervalCalibration.from_dict(manifest.calibration)
        correction = AgeCorrection.from_dict(manifest.correction)
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{path}: unreadable preprocessing, calibration or correction: {exc}") from None
    if pipeline.required_fields != manifest.input_fields:
        raise BundleError(f"{path}: preprocessing and manifest disagree on the input fields")
    return Bundle(path, manifest, pipeline, calibration, correction)
