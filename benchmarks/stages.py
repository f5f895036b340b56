"""Cost per stage of one REST predict request, in-process (run by hand, not in the test suite).

    PYTHONPATH=src .venv/bin/python benchmarks/stages.py --bundle DIR [--n 2000] [--json]

Times each stage of ``POST /api/v1/predict`` on the same 50-reading bodies as
``benchmarks/serving.py`` (cache off: every request pays every stage), median microseconds per
request over ``--n`` requests, each stage on its own so the figures add up to the path without the
web framework and socket (see py-spy for those):

- ``json``      — :func:`~prognos.data.validation.parse_json` of the raw body (depth, duplicate keys);
- ``validate``  — the one validator on the 50 readings;
- ``cache_key`` — the digest of the sequence the cache is keyed on (computed even with the cache off);
- ``features``  — the feature pipeline's last window (regimes, scaling, smoothing, padding);
- ``model``     — the ONNX Runtime call on one window;
- ``finish``    — age correction, calibrated interval, status and timestamp;
- ``response``  — the response dict and its orjson bytes;
- ``service``   — ``PredictionService.predict`` end to end (validate ... finish, with the micro-batcher).

To compare two source trees, run it with each on ``PYTHONPATH`` in turn, several times interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from serving import request_bodies


def _median_us(fn: Callable[[int], object], n: int) -> float:
    for i in range(min(n, 50)):  # warm-up
        fn(i)
    out = np.empty(n)
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out[i] = time.perf_counter() - t
    return float(np.median(out) * 1e6)


def stages(bundle: Path, n: int) -> dict[str, float]:
    import orjson

    from prognos.config import Settings
    from prognos.data.validation import parse_json
    from prognos.serving.cache import window_key
    from prognos.serving.service import PredictionService, load_predictor

    settings = Settings(_env_file=None, cache_size=0)  # type: ignore[call-arg]
    predictor = load_predictor(bundle, settings)
    service = PredictionService(settings, predictor)
    bodies = request_bodies(bundle, 400)
    raws = [json.dumps(b, separators=(",", ":")).encode() for b in bodies]
    k = len(bodies)
    seqs = [predictor.validate(b["sensor_data"]) for b in bodies]
    xs = [predictor.windows([s]) for s in seqs]
    ruls = [predictor.predict_windows(x) for x in xs]
    served = [service._serve(predictor.finish([b["engine_id"]], r, [s])[0])
              for b, r, s in zip(bodies, ruls, seqs, strict=True)]

    out = {
        "json": _median_us(lambda i: parse_json(raws[i % k]), n),
        "validate": _median_us(lambda i: predictor.validate(bodies[i % k]["sensor_data"]), n),
        "cache_key": _median_us(lambda i: window_key(predictor.version, seqs[i % k].values), n),
        "features": _median_us(lambda i: predictor.windows([seqs[i % k]]), n),
        "model": _median_us(lambda i: predictor.predict_windows(xs[i % k]), n),
        "finish": _median_us(lambda i: service._serve(
            predictor.finish([bodies[i % k]["engine_id"]], ruls[i % k], [seqs[i % k]])[0]), n),
        "response": _median_us(lambda i: orjson.dumps(served[i % k].to_dict()), n),
    }

    async def end_to_end() -> float:
        lat = np.empty(n)
        for i in range(n):
            b = bodies[i % k]
            t = time.perf_counter()
            await service.predict(b["engine_id"], b["sensor_data"])
            lat[i] = time.perf_counter() - t
        await service.close()
        return float(np.median(lat) * 1e6)

    out["service"] = asyncio.run(end_to_end())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--n", type=int, default=2000, help="requests per stage")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of a table")
    args = parser.parse_args()
    out = stages(args.bundle, args.n)
    if args.json:
        print(json.dumps(out))
        return
    print("| stage | median per request (µs) |\n|---|---|")
    for name, us in out.items():
        print(f"| {name} | {us:.1f} |")


if __name__ == "__main__":
    main()
