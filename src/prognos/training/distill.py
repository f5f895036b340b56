"""Distillation: one compact network (the *student*) learns the ensemble's (the *teacher's*) answers.

The teacher is accurate but costs one network call per member; the student costs one. It trains on
the teacher's predictions (not the labels) over more windows than the labelled set:

* every training window (each engine from its first cycle, so short, front-padded histories too);
* windows of **late-starting histories**: the engine's readings from a random later cycle on, as a
  client sends when it holds only recent readings (the smoothing restarts at the first row given);
* the same windows with small **Gaussian noise** on the features (sensor noise the teacher has
  smoothed over; the student learns to answer as the teacher does on unseen perturbations).

The teacher labels every window, so the student never sees a target the teacher would not give.
Progress: the same :class:`~prognos.training.trainer.EpochReport` as the members, with
``stage="student"``; ``val_rmse`` is the RMSE (cycles) of student vs teacher on windows held back
from the student's training (a fixed tenth of the engines).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from prognos.data.cmapss import Readings
from prognos.features.pipeline import FeaturePipeline, Windows
from prognos.training.config import TrainConfig
from prognos.training.networks import Ensemble, build_network
from prognos.training.trainer import EpochReport, _predict

__all__ = ["StudentResult", "distill", "student_windows"]


@dataclass
class StudentResult:
    model: Ensemble  # one member; scaled and clipped like the teacher
    agreement_rmse: float  # student vs teacher on held-back engines' windows, cycles
    n_windows: int
    best_epoch: int
    seconds: float


def student_windows(pipeline: FeaturePipeline, readings: Readings, windows: Windows, seed: int,
                    late_starts: int = 1, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Inputs for the student, (n, window, features) float32, and the engine id of each.

    ``late_starts`` histories per engine begin at a random cycle in the first half of its life;
    ``noise`` is the standard deviation of the feature noise (features are z-scores)."""
    rng = np.random.default_rng(seed + 104729)
    xs, ids = [windows.x], [windows.engine_ids]
    for _ in range(late_starts):
        for e in readings.engines():
            n = len(e)
            if n < 4:
                continue
            start = int(rng.integers(1, max(2, n // 2)))
            w = pipeline.engine_windows(e.values[start:])
            xs.append(w)
            ids.append(np.full(len(w), e.engine_id))
    if noise > 0:
        noisy = windows.x + rng.normal(0.0, noise, windows.x.shape).astype(np.float32)
        xs.append(noisy)
        ids.append(windows.engine_ids)
    return np.concatenate(xs).astype(np.float32), np.concatenate(ids)


def distill(
    teacher: nn.Module, pipeline: FeaturePipeline, readings: Readings, windows: Windows, cfg: TrainConfig,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> StudentResult:
    """Train ``cfg.student`` on ``teacher``'s outputs (cycles, clipped) over :func:`student_windows`."""
    torch.set_num_threads(1)  # a small network gains nothing from more threads; one keeps it deterministic
    start = time.perf_counter()
    x, ids = student_windows(pipeline, readings, windows, cfg.seed, cfg.student_late_starts, cfg.student_noise)
    xt = torch.from_numpy(x)
    y = torch.from_numpy(_predict(teacher, xt) / cfg.rul_cap).float()  # teacher in [0, 1]
    engines = np.unique(ids)
    rng = np.random.default_rng(cfg.seed + 15485863)
    held = set(rng.choice(engines, size=max(1, len(engines) // 10), replace=False)) if len(engines) > 1 else set()
    is_val = np.isin(ids, list(held))
    tr = torch.from_numpy(np.flatnonzero(~is_val))
    va = torch.from_numpy(np.flatnonzero(is_val)) if is_val.any() else tr[: min(len(tr), 2048)]
    torch.manual_seed(cfg.seed + 17)
    gen = torch.Generator().manual_seed(cfg.seed + 17)
    net = build_network(cfg.student, pipeline.n_features, pipeline.window, **cfg.student_params)
    epochs = min(cfg.student_epochs, cfg.epochs)
    steps = epochs * ((len(tr) + cfg.batch_size - 1) // cfg.batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(1, steps), pct_start=0.15)
    best, best_state, best_epoch = np.inf, copy.deepcopy(net.state_dict()), 0
    y_va = y[va].numpy() * cfg.rul_cap
    for epoch in range(1, epochs + 1):
        net.train()
        perm = tr[torch.randperm(len(tr), generator=gen)]
        total = 0.0
        for i in range(0, len(perm), cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.mse_loss(net(xt[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        pred = np.clip(_predict(net, xt[va]) * cfg.rul_cap, 0, cfg.rul_cap)
        rmse = float(np.sqrt(np.mean((pred - y_va) ** 2)))
        if rmse < best - 1e-4:
            best, best_state, best_epoch = rmse, copy.deepcopy(net.state_dict()), epoch
        if on_epoch:
            on_epoch(EpochReport(1, 1, epoch, epochs, total / len(tr), rmse, best, stage="student"))
    net.load_state_dict(best_state)
    model = Ensemble([net.eval()], cfg.rul_cap).eval()
    return StudentResult(model, best, len(x), best_epoch, time.perf_counter() - start)
