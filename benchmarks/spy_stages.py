"""Share of a served process's CPU samples per stage of the predict path, from a py-spy profile
(run by hand; see docs/benchmarks.md for how the profile is taken).

    py-spy record -p PID -d 8 -r 250 -f raw -o profile.txt   # while benchmarks/serving.py loadgen runs
    python benchmarks/spy_stages.py [--requests 1600 --rate 250] profile.txt [profile2.txt ...]

With ``--requests`` (requests answered during the profile) and ``--rate`` (py-spy's samples per
second), each stage is also given as CPU microseconds per request. On a busy machine a thread
waiting for a core counts as busy, so absolute figures are upper bounds; compare interleaved runs.

A sample belongs to the outermost prognos stage on its stack (JSON parse, validation, cache key,
features, model, interval/status, response); samples in none of them are split by the innermost
frame's package (uvicorn and h11, FastAPI/Starlette, prognos's edge, asyncio and sockets, other).
Samples of a thread waiting (the selector, an idle executor thread) are left out.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

STAGES = (  # (stage, markers): the first stage with a marker on the stack, outermost first, wins
    ("json parse", ("parse_json",)),
    ("validation", ("validate_sequence (",)),
    ("cache key", ("window_key (",)),
    ("features", ("Predictor.windows (", "last_window (")),
    ("model", ("predict_windows (", "_run_chunked (")),
    ("interval + status", ("Predictor.finish (", "PredictionService._serve (")),
    ("response", ("JsonResponse", "ServedPrediction.to_dict (")),
    ("observers (drift capture)", ("DriftCapture.observe (",)),
)
PACKAGES = (("uvicorn + h11 (HTTP parser, protocol)", ("uvicorn/", "h11/")),
            ("FastAPI / Starlette", ("starlette/", "fastapi/")),
            ("prognos edge (middleware, auth, limits, metrics)",
             ("prognos/serving/http/", "prognos/serving/access.py")),
            ("asyncio + sockets", "asyncio/"))
# Frames a waiting thread sits in (py-spy's idle detection misses some): not CPU, left out.
IDLE = ("EpollSelector.select (", "concurrent/futures/thread.py:81)", "Thread.run (threading.py")


def classify(stack: list[str]) -> str | None:
    if stack and any(m in stack[-1] for m in IDLE):
        return None
    for frame in stack:
        for stage, markers in STAGES:
            if any(m in frame for m in markers):
                return stage
    innermost = stack[-1] if stack else ""
    for name, where in PACKAGES:
        if any(w in innermost for w in ((where,) if isinstance(where, str) else where)):
            return name
    return "other"


def shares(path: Path) -> Counter[str]:
    out: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        stage = classify(stack.split(";")) if stack and n.isdigit() else None
        if stage is not None:
            out[stage] += int(n)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profiles", type=Path, nargs="+")
    parser.add_argument("--requests", type=int, help="requests answered while each profile was taken")
    parser.add_argument("--rate", type=float, default=250.0, help="py-spy samples per second (-r)")
    args = parser.parse_args()
    counts = [shares(p) for p in args.profiles]
    names = [s for s, _ in STAGES] + [n for n, _ in PACKAGES] + ["other"]

    def cell(c: Counter[str], name: str) -> str:
        total = sum(c.values())
        n = total if name == "total" else c[name]
        text = f"{100 * n / max(1, total):.1f} %"
        if args.requests:
            text += f" ({n / args.rate / args.requests * 1e6:.0f} µs)"
        return text

    print("| stage | " + " | ".join(p.name for p in args.profiles) + " |")
    print("|---|" + "---|" * len(args.profiles))
    for name in [*names, "total"]:
        print(f"| {name} | " + " | ".join(cell(c, name) for c in counts) + " |")
    print("| CPU samples | " + " | ".join(str(sum(c.values())) for c in counts) + " |")


if __name__ == "__main__":
    main()
