"""Training configuration: one validated object, from defaults, a JSON/TOML file and CLI options."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from prognos.errors import ConfigError

__all__ = ["TrainConfig", "load_train_config"]


class TrainConfig(BaseModel):
    """Hyper-parameters of ``prognos train``. Lengths in cycles, rates per optimiser step."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field("tcn+lstm", description="network name, or several joined by '+' for a mixed ensemble")
    model_params: dict[str, dict[str, int | float]] = Field(
        default_factory=dict, description="per network name: hyper-parameters, e.g. {'tcn': {'channels': 48}}"
    )
    window: int = Field(40, ge=1, le=500, description="cycles of history the model reads (front-padded if fewer)")
    rul_cap: float = Field(125.0, gt=0)
    smoothing: float = Field(0.1, gt=0, le=1)
    min_trend: float = Field(0.4, ge=0, le=1)
    n_regimes: int | None = Field(None, ge=1, le=20)
    folds: int = Field(5, ge=2, le=20, description="cross-fitted ensemble members, split by engine")
    epochs: int = Field(60, ge=1)
    patience: int = Field(10, ge=1, description="epochs without validation improvement before stopping")
    batch_size: int = Field(256, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    late_penalty: float = Field(1.0, ge=0, description="extra weight of late predictions' squared error")
    student: str = Field("tcn", description="network distilled from the ensemble (the served model)")
    student_params: dict[str, int | float] = Field(default_factory=dict, description="the student's hyper-parameters")
    student_epochs: int = Field(20, ge=1, description="distillation epochs (at most `epochs`)")
    student_late_starts: int = Field(1, ge=0, description="late-starting histories per engine in distillation")
    student_noise: float = Field(0.05, ge=0, description="feature noise (z-score units) on distillation windows")
    serve: Literal["student", "ensemble"] = Field(
        "student", description="which model the bundle serves: the distilled student or the teacher ensemble"
    )
    age_correction: Literal["auto", "off"] = Field(
        "auto", description="correct the served RUL by the engine's age (readings in its history), fitted on "
        "out-of-fold predictions at every cycle and kept only if it lowers the held-out RMSE in every age bin "
        "(see prognos.correction); off: never",
    )
    confidence: float = Field(0.9, gt=0, lt=1, description="nominal coverage of prediction intervals")
    interval_bins: int = Field(4, ge=1, description="bins of predicted RUL for conditional calibration")
    late_life: float | None = Field(
        50.0, gt=0, description="cycles: each bin's interval lower bound also covers its windows in the last this "
        "many cycles of life (see prognos.intervals); None: off",
    )
    holdout: float | None = Field(
        None, ge=0, lt=1,
        description="share of training engines kept out for evaluation; None: 0 if a RUL file exists, else 0.2",
    )
    seed: int = 0
    threads: int = Field(
        2, ge=1, le=64, description="ensemble members trained at once, each in a worker process on one thread; "
        "the trained model is the same for any value",
    )


def load_train_config(path: Path | None, **overrides: Any) -> TrainConfig:
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"{path}: no such config file")
        try:
            data = tomllib.loads(path.read_text()) if path.suffix == ".toml" else json.loads(path.read_text())
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}") from None
        data = data.get("train", data)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TrainConfig(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{path or 'training config'}: {where}: {err['msg']}") from None
