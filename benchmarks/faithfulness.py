"""Are the explanations faithful? Deletion/insertion curves and a weight-randomisation check.

    .venv/bin/python benchmarks/faithfulness.py BUNDLE --data DIR [--every 25] [--max-windows 400] [--steps 1 2 4 16]

Windows: the bundle's held-out training engines when it has some (validation), else the inputs of
``test_<dataset>.txt`` (the RUL file is never read: no attribution, ranking or curve uses a truth);
each engine's window at every ``--every``-th cycle and at its last reading.

For each ranking of the channels (by |attribution|, largest first):

* **deletion** — put the top-k channels at the baseline (0 in the scaled space: the per-regime
  training mean), k = 1..n-1; the mean |RUL change| (cycles) over k is the area over the curve:
  higher means the ranking found the channels the prediction rests on;
* **insertion** — start from the baseline window and restore the top-k channels; the mean distance
  |f(x) - f(inserted)| over k: lower is better;
* ``top-3 deletion``: |RUL change| with the 3 top channels removed.

Rankings: the served occlusion, Shapley permutation sampling (1 and 2 antithetic pairs), with
``--steps`` integrated gradients (midpoint rule, as served) and gradient x input through gradient
graphs, the per-channel variance over the window (a simple model-free baseline) and random orders
(10 per window). Each ranking is also compared with occlusion window by window (mean difference and
its paired standard error: what "within noise" means here), and each attribution's completeness
residual |f(x) - baseline_rul - sum of attributions| is printed.

The sanity check randomises the network's weights (every float initializer of the ONNX file redrawn
from a normal of the same mean and standard deviation, with the onnx package: no torch)
and reports the rank correlation between |attributions| of the trained and the randomised network:
near 1 would mean the explanation does not depend on what the model learned. Global importance per
channel (mean |occlusion contribution| over the windows) is printed last. Needs the ``onnx`` package
(the ``train`` extra) for the randomised copies.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from prognos.data.cmapss import load_readings
from prognos.data.schema import CHANNELS
from prognos.serving.explain import Explainer, baseline_rul
from prognos.serving.predictor import Predictor
from prognos.serving.runtime import OnnxRuntime


def windows_of(predictor: Predictor, data: Path, every: int, limit: int) -> tuple[np.ndarray, str]:
    m = predictor.bundle.manifest
    held = set(m.holdout_engines)
    if held:
        readings = load_readings(data / f"train_{m.dataset}.txt").select(held)
        what = f"{len(held)} held-out training engines of {m.dataset} (validation)"
    else:
        readings = load_readings(data / f"test_{m.dataset}.txt")
        what = f"inputs of the {readings.n_engines} test engines of {m.dataset} (no RUL file read)"
    xs = []
    for e in readings.engines():
        all_w = predictor.pipeline.engine_windows(e.values)
        ends = sorted({*range(every - 1, len(all_w), every), len(all_w) - 1})
        xs.append(all_w[ends])
    x = np.concatenate(xs)
    if len(x) > limit:
        x = x[np.linspace(0, len(x) - 1, limit).astype(int)]
    return x.astype(np.float32), f"{len(x)} windows: {what}"


def curves(model, x: np.ndarray, orders: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """Per window: mean deletion |change|, mean insertion distance over k = 1..n-1, top-3 deletion,
    and the deletion curve itself (n_windows, n-1)."""
    n_win, n = orders.shape
    ks = np.arange(1, n)
    # keep[i, k, c]: channel c still present after deleting the top-k of window i
    rank = np.empty_like(orders)
    rank[np.arange(n_win)[:, None], orders] = np.arange(n)[None, :]
    removed = rank[:, None, :] < ks[None, :, None]  # (n_win, n-1, n)
    fx = model(x)
    deleted = (x[:, None] * ~removed[:, :, None, :]).reshape(-1, *x.shape[1:])
    inserted = (x[:, None] * removed[:, :, None, :]).reshape(-1, *x.shape[1:])
    yd = np.concatenate([model(deleted[i:i + 4096]) for i in range(0, len(deleted), 4096)]).reshape(n_win, -1)
    yi = np.concatenate([model(inserted[i:i + 4096]) for i in range(0, len(inserted), 4096)]).reshape(n_win, -1)
    d, ins = np.abs(fx[:, None] - yd), np.abs(fx[:, None] - yi)
    return d.mean(1), ins.mean(1), d[:, min(2, n - 2)], d


def attributions(explainer: Explainer, model, x: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = np.zeros((len(x), explainer.n))
    idx = {f: i for i, f in enumerate(explainer.fields)}
    for start in range(0, len(x), 64):
        for j, e in enumerate(explainer.explain_windows(model, x[start:start + 64])):
            for c in e.contributions:
                out[start + j, idx[c.field]] = c.contribution
    return out


def network_copy(model_path: Path, out: Path, seed: int | None) -> Path:
    """The bundle's network without its final clip to [0, rul_cap] (random weights would pin every
    output at a bound, where nothing can be attributed), with every float initializer of more
    than one value redrawn from a normal of its mean and standard deviation when ``seed`` is given."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(model_path))
    out_name = m.graph.output[0].name
    for node in m.graph.node:
        if node.op_type == "Clip" and out_name in node.output:
            m.graph.output[0].name = node.input[0]
            m.graph.node.remove(node)
            break
    if seed is not None:
        rng = np.random.default_rng(seed)
        for init in m.graph.initializer:
            a = numpy_helper.to_array(init)
            if a.dtype.kind == "f" and a.size > 1:
                new = rng.normal(a.mean(), a.std() + 1e-8, a.shape).astype(a.dtype)
                init.CopyFrom(numpy_helper.from_array(new, init.name))
    onnx.save(m, str(out))
    return out


def gradient_attributions(p: Predictor, x: np.ndarray, steps: list[int], tmp: Path
                          ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Integrated gradients with each number of ``steps`` (midpoints, as served) and gradient x input,
    through the bundle's gradient graphs (benchmarks/gradient_graphs.py: rebuilt from the ONNX weights
    for bundles without one). Returns per-channel attributions and, per method, each window's
    completeness residual |f(x) - baseline - sum of attributions| (cycles)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from gradient_graphs import gradient_runtimes

    runtimes = gradient_runtimes(p, sorted({1, *steps}), tmp)
    fields, w = list(p.pipeline.sensors_ or []), p.window
    fx, base = p.predict_windows(x), baseline_rul(p.predict_windows, w, len(fields))
    out, residual = {}, {}
    for k in steps:
        ex = Explainer(fields, w, base, "integrated_gradients", spans=0, gradient=runtimes[k].gradient, steps=k)
        a = np.stack([ex.integrated(xi).sum(0) for xi in x])
        out[f"integrated gradients, {k} step{'s' * (k > 1)}"] = a
        residual[f"integrated gradients, {k} step{'s' * (k > 1)}"] = np.abs(fx - base - a.sum(1))
    gxi = np.stack([(runtimes[1].gradient(xi[None])[1][0] * xi).sum(0) for xi in x])
    out["gradient x input"] = gxi
    residual["gradient x input"] = np.abs(fx - base - gxi.sum(1))
    return out, residual


def _paired(a: np.ndarray, b: np.ndarray) -> str:
    """Mean of a - b over windows with its paired standard error (cycles)."""
    d = a - b
    return f"{d.mean():+.2f} ± {d.std(ddof=1) / np.sqrt(len(d)):.2f}"


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ra, rb = a.argsort(1).argsort(1).astype(float), b.argsort(1).argsort(1).astype(float)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    return (ra * rb).sum(1) / np.sqrt((ra**2).sum(1) * (rb**2).sum(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--data", type=Path, required=True, help="folder with the C-MAPSS text files")
    ap.add_argument("--every", type=int, default=25, help="one window every this many cycles per engine")
    ap.add_argument("--max-windows", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, nargs="*", default=[],
                    help="add integrated gradients with these path points and gradient x input, through gradient "
                         "graphs (torch for bundles without one: the train extra)")
    args = ap.parse_args()
    started = time.perf_counter()
    p = Predictor.from_path(args.bundle)
    model = p.predict_windows
    fields, w = list(p.pipeline.sensors_ or []), p.window
    x, what = windows_of(p, args.data, args.every, args.max_windows)
    base = baseline_rul(model, w, len(fields))
    methods = {
        "occlusion (served)": Explainer(fields, w, base, "occlusion", spans=0),
        "shapley, 1 antithetic pair": Explainer(fields, w, base, "shapley", spans=0, pairs=1),
        "shapley, 2 antithetic pairs": Explainer(fields, w, base, "shapley", spans=0, pairs=2),
    }
    attr = {name: attributions(ex, model, x) for name, ex in methods.items()}
    residual: dict[str, np.ndarray] = {}
    if args.steps:
        with tempfile.TemporaryDirectory() as tmp:
            grads, residual = gradient_attributions(p, x, args.steps, Path(tmp))
        attr.update(grads)
    orders = {name: np.argsort(-np.abs(a), axis=1, kind="stable") for name, a in attr.items()}
    orders["per-channel variance in the window"] = np.argsort(-x.var(axis=1), axis=1, kind="stable")
    rng = np.random.default_rng(args.seed)
    rows = {name: curves(model, x, o) for name, o in orders.items()}
    rand = [curves(model, x, np.stack([rng.permutation(len(fields)) for _ in range(len(x))])) for _ in range(10)]
    rows["random (10 orders per window)"] = tuple(np.mean([r[i] for r in rand], axis=0) for i in range(4))  # type: ignore[assignment]
    fx = model(x)
    print(f"{p.version}: {what}; {len(fields)} channels; baseline RUL {base:.1f} cycles; "
          f"mean |f(x) - baseline| {np.abs(fx - base).mean():.1f} cycles")
    occ_rows = rows["occlusion (served)"]
    print("| ranking | deletion: area over the curve, mean |ΔRUL| (cycles, higher is better) | "
          "insertion: mean distance to f(x) (cycles, lower is better) | top-3 deletion |ΔRUL| (cycles) | "
          "windows where top-3 deletion beats the mean random top-3 |")
    print("|---|---|---|---|---|")
    rand_top3 = rows["random (10 orders per window)"][2]
    for name, (d, ins, top3, _) in rows.items():
        beats = "" if name.startswith("random") else f"{np.mean(top3 > rand_top3):.0%}"
        print(f"| {name} | {d.mean():.2f} | {ins.mean():.2f} | {top3.mean():.2f} | {beats} |")
    ks = [k for k in (1, 2, 3, 5, 8, 11) if k < len(fields)]
    print("\nDeletion curve: mean |ΔRUL| (cycles) with the top-k channels at the baseline")
    print("| ranking | " + " | ".join(f"k={k}" for k in ks) + " |\n|---|" + "---|" * len(ks))
    for name, (*_, curve) in rows.items():
        print(f"| {name} | " + " | ".join(f"{curve[:, k - 1].mean():.2f}" for k in ks) + " |")
    occ = attr["occlusion (served)"]
    occ_ex = methods["occlusion (served)"]
    print("\nAgainst occlusion, per window (mean difference ± its paired standard error, cycles):")
    print("| ranking | deletion area | insertion distance | top-3 deletion | top-1 deletion |\n|---|---|---|---|---|")
    for name, (d, ins, top3, curve) in rows.items():
        if name != "occlusion (served)":
            print(f"| {name} | {_paired(d, occ_rows[0])} | {_paired(ins, occ_rows[1])} | "
                  f"{_paired(top3, occ_rows[2])} | {_paired(curve[:, 0], occ_rows[3][:, 0])} |")
    if residual:
        print("\nCompleteness: |f(x) - baseline_rul - sum of attributions| (cycles), median / mean / 90th percentile")
        print("| method | residual |\n|---|---|")
        occ_res = np.abs(fx - base - attr["occlusion (served)"].sum(1))
        for name, r in {"occlusion (served; its interaction)": occ_res, **residual}.items():
            print(f"| {name} | {np.median(r):.2f} / {r.mean():.2f} / {np.percentile(r, 90):.2f} |")
    print("\nAdditivity of occlusion: mean |interaction| "
          f"{np.abs(fx - base - occ.sum(1)).mean():.2f} cycles vs mean |model_rul - baseline_rul| "
          f"{np.abs(fx - base).mean():.2f}; Shapley (1 pair): max |sum - (f(x) - baseline)| "
          f"{np.abs(attr['shapley, 1 antithetic pair'].sum(1) - (fx - base)).max():.2g}")
    s1, s2 = np.abs(attr["shapley, 1 antithetic pair"]), np.abs(attr["shapley, 2 antithetic pairs"])
    print("Agreement of rankings (Spearman of |attribution| per window, mean): occlusion vs shapley 2 pairs "
          f"{spearman(np.abs(occ), s2).mean():.2f}; shapley 1 vs 2 pairs {spearman(s1, s2).mean():.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        print("\nSanity check, randomised weights (onnx initializers redrawn; same windows; output not clipped):")
        print("| network | output std over the windows | mean |occlusion attribution| | "
              "Spearman of |attribution| with the trained network's, mean over windows |")
        print("|---|---|---|---|")
        attr_of = {}
        for seed in (None, 1, 2, 3):
            rt = OnnxRuntime(network_copy(p.bundle.model_path, Path(tmp) / f"r{seed}.onnx", seed), threads=1)
            rex = Explainer(fields, w, baseline_rul(rt.run, w, len(fields)), "occlusion", spans=0)
            attr_of[seed] = ra = attributions(rex, rt.run, x)
            name = "trained" if seed is None else f"randomised, seed {seed}"
            print(f"| {name} | {rt.run(x).std():.3g} | {np.abs(ra).mean():.3g} | "
                  f"{spearman(np.abs(attr_of[None]), np.abs(ra)).mean():.2f} |")
    imp = np.abs(occ).mean(0)
    print("\nGlobal importance (mean |occlusion contribution| over the windows, cycles):")
    print("| channel | field | importance |\n|---|---|---|")
    for i in np.argsort(-imp):
        print(f"| {CHANNELS[fields[i]].label} | {fields[i]} | {imp[i]:.2f} |")
    print(f"\n({occ_ex.windows_per_explanation} perturbed windows per occlusion explanation; "
          f"{time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
