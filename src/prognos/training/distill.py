"""Distillation: one compact network (the *student*) learns the ensemble's (the *teacher's*) answers.

The teacher is accurate but costs one network call per member; the student costs one. It trains on
the teacher's predictions (not the labels) over more windows than the labelled set:

* every training window (each engine from its first cycle, so short, front-padded histories too);
* windows of **late-starting histories**: the engine's readings from a random later cycle on, as a
  client sends when it holds only recent readings (the smoothing restarts at the first row given);
* the same windows with small **Gaussian noise** on the features (sensor noise the teacher has
  smoothed over; the student learns to answer as the teacher does on unseen perturbations).

The teacher labels every window, so the student never sees a target the teacher would not give (the
labels come with the teacher: its members predict them where they were trained).

With ``cfg.threads`` > 1 a second process trains the same network on the other half of every batch:
each half's gradient is computed with dropout seeded by (step, half), the two are summed (one float
addition, which commutes), and both processes take the same optimiser step. One process does the two
halves in turn. Either way the student is the same network to the bit (a unit test holds this).
Progress: the same :class:`~prognos.training.trainer.EpochReport` as the members, with
``stage="student"``; ``val_rmse`` is the RMSE (cycles) of student vs teacher on windows held back
from the student's training (a fixed tenth of the engines).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from prognos.data.cmapss import Readings
from prognos.features.pipeline import FeaturePipeline, Windows
from prognos.training.config import TrainConfig
from prognos.training.networks import Ensemble, build_network
from prognos.training.trainer import EpochReport, _predict

__all__ = ["StudentFit", "StudentResult", "StudentWindows", "distill", "fit_student", "student_windows"]


@dataclass
class StudentResult:
    model: Ensemble  # one member; scaled and clipped like the teacher
    agreement_rmse: float  # student vs teacher on held-back engines' windows, cycles
    n_windows: int
    best_epoch: int
    seconds: float


@dataclass(frozen=True)
class StudentWindows:
    x: np.ndarray  # (n, window, features) float32; the first rows are the training windows, in order
    engine_ids: np.ndarray  # (n,)


def student_windows(pipeline: FeaturePipeline, readings: Readings, windows: Windows, seed: int,
                    late_starts: int = 1, noise: float = 0.05) -> StudentWindows:
    """The student's inputs: ``windows`` themselves, then late-starting histories and noisy copies.

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
    return StudentWindows(np.concatenate(xs).astype(np.float32), np.concatenate(ids))


def distill(
    inputs: StudentWindows, teacher_rul: np.ndarray, n_features: int, window: int, cfg: TrainConfig,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> StudentResult:
    """Train ``cfg.student`` on ``teacher_rul`` (the teacher's prediction of every window of ``inputs``,
    cycles, clipped to [0, cap]); a tenth of the engines is held back to pick the best epoch."""
    torch.set_num_threads(1)  # a small network gains nothing from more threads; one keeps it deterministic
    start = time.perf_counter()
    y = (teacher_rul / cfg.rul_cap).astype(np.float32)
    engines = np.unique(inputs.engine_ids)
    rng = np.random.default_rng(cfg.seed + 15485863)
    held = set(rng.choice(engines, size=max(1, len(engines) // 10), replace=False)) if len(engines) > 1 else set()
    is_val = np.isin(inputs.engine_ids, list(held))
    tr = np.flatnonzero(~is_val)
    va = np.flatnonzero(is_val) if is_val.any() else tr[: min(len(tr), 2048)]
    spec = {"n_features": n_features, "window": window, "config": cfg.model_dump()}
    if cfg.threads > 1 and len(tr) > 1:
        from prognos.training.workers import shard_helper

        with shard_helper(inputs.x, y, tr, spec) as group:
            fit = fit_student(torch.from_numpy(inputs.x), torch.from_numpy(y), tr, va, spec, on_epoch, group=group)
    else:
        fit = fit_student(torch.from_numpy(inputs.x), torch.from_numpy(y), tr, va, spec, on_epoch)
    assert fit is not None
    model = Ensemble([fit.net.eval()], cfg.rul_cap).eval()
    return StudentResult(model, fit.agreement_rmse, len(inputs.x), fit.best_epoch, time.perf_counter() - start)


@dataclass(frozen=True)
class StudentFit:
    net: nn.Module  # at its best epoch
    agreement_rmse: float  # cycles, on the held-back windows
    best_epoch: int


def fit_student(
    xt: torch.Tensor, y: torch.Tensor, tr: np.ndarray, va: np.ndarray, spec: dict[str, Any],
    on_epoch: Callable[[EpochReport], None] | None = None, group: Any = None, rank: int = 0,
) -> StudentFit | None:
    """The distillation loop, run by one process (``group`` None) or by each of two (``rank`` 0 and 1
    of ``group``, a gloo process group); rank 0 validates and returns the fit, rank 1 None."""
    cfg = TrainConfig.model_validate(spec["config"])
    torch.set_num_threads(1)
    torch.manual_seed(cfg.seed + 17)
    gen = torch.Generator().manual_seed(cfg.seed + 17)
    net = build_network(cfg.student, spec["n_features"], spec["window"], **cfg.student_params)
    params = list(net.parameters())
    epochs = min(cfg.student_epochs, cfg.epochs)
    steps = epochs * ((len(tr) + cfg.batch_size - 1) // cfg.batch_size)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(1, steps), pct_start=0.15)
    best, best_state, best_epoch = np.inf, copy.deepcopy(net.state_dict()), 0
    tr_t = torch.from_numpy(tr)
    y_va = y[torch.from_numpy(va)].numpy() * cfg.rul_cap
    step = 0
    for epoch in range(1, epochs + 1):
        net.train()
        perm = tr_t[torch.randperm(len(tr_t), generator=gen)]
        total = 0.0
        for i in range(0, len(perm), cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            cut = (len(idx) + 1) // 2
            opt.zero_grad(set_to_none=True)
            loss_sum = torch.zeros(())
            for half, part in enumerate((idx[:cut], idx[cut:])):
                if (group is not None and half != rank) or len(part) == 0:
                    continue
                torch.manual_seed(cfg.seed * 1_000_003 + 2 * step + half)  # dropout: a function of (step, half)
                loss = ((net(xt[part]) - y[part]) ** 2).sum() / len(idx)  # the halves sum to the batch's MSE
                loss.backward()
                loss_sum = loss_sum + loss.detach()
            if group is not None:
                flat = torch.cat([p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel()) for p in params]
                                 + [loss_sum.reshape(1)])
                group.allreduce([flat]).wait()
                offset = 0
                for p in params:
                    p.grad = flat[offset : offset + p.numel()].view_as(p)
                    offset += p.numel()
                loss_sum = flat[-1]
            opt.step()
            sched.step()
            step += 1
            total += float(loss_sum) * len(idx)
        if rank != 0:
            continue
        pred = np.clip(_predict(net, xt[torch.from_numpy(va)]) * cfg.rul_cap, 0, cfg.rul_cap)
        rmse = float(np.sqrt(np.mean((pred - y_va) ** 2)))
        if rmse < best - 1e-4:
            best, best_state, best_epoch = rmse, copy.deepcopy(net.state_dict()), epoch
        if on_epoch:
            on_epoch(EpochReport(1, 1, epoch, epochs, total / len(tr), rmse, best, stage="student"))
    if rank != 0:
        return None
    net.load_state_dict(best_state)
    return StudentFit(net, float(best), best_epoch)
