"""A synthetic run-to-failure fleet in the C-MAPSS layout, for tests, scale runs and machines
without the NASA data.

Degradation model (per engine *i*, cycle *t* = 1..L_i):

* life ``L_i`` ~ Uniform(``min_life``, ``max_life``) cycles; fault onset at ``t0_i = onset * L_i``;
* damage ``d_i(t) = 0`` before onset, then ``((t - t0_i) / (L_i - t0_i)) ** 1.6`` — rising to 1 at
  failure (the slow-then-fast growth of HPC/fan degradation);
* initial wear ``w_i`` ~ Uniform(0, 0.1) shifts every degrading sensor from its new-engine baseline;
* sensor ``s_j(t) = base_j + slope_j * span_j * (w_i + d_i(t)) + noise_j * N(0,1)``, with FD001-like
  baselines; sensors NASA holds constant (s1, s5, s6, s10, s16, s18, s19) stay constant;
* with ``regimes > 1`` every cycle flies one of six discrete conditions that offset every sensor
  (as in FD002/FD004).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prognos.data.cmapss import SYNTHETIC, Readings

__all__ = ["cmapss_text", "synthetic_fleet", "synthetic_test_set", "write_subset"]

# FD001-like new-engine levels, per-sensor damage response (signed spans) and noise std.
_BASE = np.array([518.67, 642.0, 1585.0, 1400.0, 14.62, 21.61, 554.5, 2388.05, 9050.0, 1.3, 47.3, 522.0,
                  2388.05, 8140.0, 8.42, 0.03, 392.0, 2388.0, 100.0, 38.9, 23.34])
_SPAN = np.array([0, 1.5, 12.0, 20.0, 0, 0, -4.0, 0.25, 25.0, 0, 0.9, -3.5, 0.25, 20.0, 0.08, 0, 4.0, 0, 0,
                  -0.6, -0.35])
_NOISE = np.array([0, 0.5, 6.0, 9.0, 0, 0, 0.9, 0.07, 22.0, 0, 0.27, 0.74, 0.07, 19.0, 0.04, 0, 1.5, 0, 0,
                   0.18, 0.11])
_REGIMES = np.array([[0.0, 0.0, 100.0], [10.0, 0.25, 100.0], [20.0, 0.7, 100.0], [25.0, 0.62, 60.0],
                     [35.0, 0.84, 100.0], [42.0, 0.84, 100.0]])


def synthetic_fleet(
    n_engines: int = 20, *, seed: int = 0, min_life: int = 120, max_life: int = 260, onset: float = 0.4,
    regimes: int = 1, truncate: bool = False, id_prefix: str = "",
) -> Readings:
    """``n_engines`` engines. ``truncate=True`` cuts each at a random cycle (a test-set look-alike)."""
    rng = np.random.default_rng(seed)
    ids, cycles, rows = [], [], []
    for i in range(n_engines):
        life = int(rng.integers(min_life, max_life + 1))
        t = np.arange(1, life + 1)
        t0 = onset * life
        d = np.clip((t - t0) / (life - t0), 0, None) ** 1.6
        w = rng.uniform(0, 0.1)
        sensors = _BASE + np.outer(w + d, _SPAN) + rng.standard_normal((life, 21)) * _NOISE
        if regimes > 1:
            r = rng.integers(0, min(regimes, len(_REGIMES)), size=life)
            settings = _REGIMES[r] + rng.normal(0, 0.001, (life, 3)) * [1, 1, 0]
            sensors = sensors * (1 + 0.02 * r[:, None]) + 3.0 * r[:, None] * (_BASE > 1)
        else:
            settings = np.column_stack([rng.normal(0, 0.002, life), rng.normal(0, 0.0003, life), np.full(life, 100.0)])
        keep = int(rng.integers(max(2, life // 5), life)) if truncate else life
        ids.append(np.full(keep, f"{id_prefix}{i + 1}"))
        cycles.append(t[:keep])
        rows.append(np.column_stack([settings, sensors])[:keep])
    return Readings(np.concatenate(ids), np.concatenate(cycles).astype(np.int64), np.concatenate(rows), "<synthetic>")


def synthetic_test_set(n_engines: int = 20, *, seed: int = 0) -> tuple[Readings, np.ndarray]:
    """A test-set look-alike with its truth: ``n_engines`` engines run to failure, each cut at a seeded
    random cycle (after at least a fifth of its life, before its last). Returns the cut readings and the
    true RUL after each engine's last reading, in cycles (≥ 1: the cut engine has not failed)."""
    full = synthetic_fleet(n_engines, seed=seed)
    rng = np.random.default_rng([seed, 1])  # a stream of its own: the lives are those of synthetic_fleet
    keep = np.zeros(len(full), dtype=bool)
    rul = []
    start = 0
    for engine in full.engines():
        life = len(engine)
        cut = int(rng.integers(max(2, life // 5), life))  # readings kept, < life
        keep[start:start + cut] = True
        rul.append(life - cut)
        start += life
    return Readings(full.engine_ids[keep], full.cycles[keep], full.values[keep], "<synthetic test>"), np.array(rul)


def cmapss_text(readings: Readings) -> str:
    """``readings`` in NASA's text layout: unit, cycle, 3 settings, 21 sensors per line."""
    return "".join(" ".join([str(e), str(int(c)), *(f"{v:.4f}" for v in row)]) + "\n"
                   for e, c, row in zip(readings.engine_ids, readings.cycles, readings.values, strict=True))


def write_subset(folder: Path, name: str = SYNTHETIC, *, n_train: int = 20, n_test: int = 20, seed: int = 0) -> Path:
    """Write a generated subset in NASA's layout: ``train_<name>.txt`` (engines run to failure),
    ``test_<name>.txt`` (other engines, cut before failure) and ``RUL_<name>.txt`` (their true RUL).
    Named ``SYNTHETIC`` by default, so it is never mistaken for NASA's files; ``prognos evaluate
    --dataset SYNTHETIC --data-dir FOLDER`` reads it."""
    folder.mkdir(parents=True, exist_ok=True)
    test, rul = synthetic_test_set(n_test, seed=seed + 1)
    (folder / f"train_{name}.txt").write_text(cmapss_text(synthetic_fleet(n_train, seed=seed)), encoding="utf-8")
    (folder / f"test_{name}.txt").write_text(cmapss_text(test), encoding="utf-8")
    (folder / f"RUL_{name}.txt").write_text("".join(f"{r}\n" for r in rul), encoding="utf-8")
    return folder
