"""Serving benchmark (run by hand, not in the test suite; a few minutes).

    .venv/bin/python benchmarks/serving.py [--bundle DIR] [--duration 10] [--out table.md]
    .venv/bin/python benchmarks/serving.py compare --bundle DIR --src OLD/src --src NEW/src [--rounds 3]

Prints a dated markdown table with the machine: in-process single-window latency, batch throughput
(one ONNX thread), REST and gRPC latency and achieved throughput at fixed offered rates from a
separate load-generating process over loopback, the serving process's peak RSS, start-to-ready
time, and side by side the naive design (PyTorch eager ``model(x)`` per request in the handler, no
batching, no cache). Without ``--bundle`` it briefly trains a bundle with the shipped training
defaults (5 members, window 30; ``--model cnn`` for another network) on synthetic data; weights do
not change the cost.

Latencies are in milliseconds; open-loop load is measured from each request's *scheduled* send
time, so a server that falls behind shows it (no coordinated omission).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

RATES = (100, 200, 500)
BATCHES = (1, 32, 256, 1024)
HISTORY = 50  # readings per request: some history for the smoothing, as real clients send


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float
    n: int

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ms = np.asarray(seconds) * 1000
        return cls(float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), len(ms))


@dataclass(frozen=True)
class LoadResult:
    protocol: str
    offered_rps: int
    sent: int
    ok: int
    errors: int
    achieved_rps: float
    p50_ms: float
    p99_ms: float
    error_kinds: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------- inputs
def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnxruntime

    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cores": str(os.cpu_count()), "cpu": cpu,
            "python": platform.python_version(), "onnxruntime": onnxruntime.__version__,
            "load_average": " ".join(f"{x:.1f}" for x in os.getloadavg())}


def build_bundle(out: Path, model: str | None) -> Path:
    from prognos.data.synthetic import synthetic_fleet
    from prognos.training.config import TrainConfig
    from prognos.training.run import train_bundle_from_readings

    # The shipped training defaults (architecture, window, 5 members), briefly trained.
    cfg = TrainConfig(folds=5, epochs=2, patience=2, holdout=0.0, threads=1, **({"model": model} if model else {}))
    train_bundle_from_readings(synthetic_fleet(30, seed=5), "SYNTH", out, cfg, log=lambda m: None)
    return out


def request_bodies(bundle: Path, n: int) -> list[dict[str, Any]]:
    """``n`` distinct valid predict bodies of HISTORY readings each."""
    from prognos.data.schema import MEASUREMENT_FIELDS
    from prognos.data.synthetic import synthetic_fleet

    fields = json.loads((bundle / "bundle.json").read_text())["input_fields"]
    fleet = list(synthetic_fleet(20, seed=9).engines())
    bodies = []
    for i in range(n):
        e = fleet[i % len(fleet)]
        start = (i * 7) % (len(e.cycles) - HISTORY)
        rows = [{"cycle": int(c), **{f: round(float(v[MEASUREMENT_FIELDS.index(f)]), 4) for f in fields}}
                for c, v in zip(e.cycles[start:start + HISTORY], e.values[start:start + HISTORY], strict=True)]
        bodies.append({"engine_id": f"engine-{i}", "sensor_data": rows})
    return bodies


def _timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _throughput(fn: Callable[[np.ndarray], object], x: np.ndarray, min_s: float = 1.0) -> float:
    fn(x)  # warm-up (allocations per shape)
    runs, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < min_s or runs < 3:
        fn(x)
        runs += 1
    return runs * len(x) / elapsed


# ------------------------------------------------------------------------------------- in-process
def in_process(bundle: Path, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    from prognos.config import Settings
    from prognos.serving.service import PredictionService, load_predictor

    settings = Settings(_env_file=None, cache_size=0)  # type: ignore[call-arg]
    predictor = load_predictor(bundle, settings)
    seqs = [predictor.validate(b["sensor_data"]) for b in bodies]
    x1 = predictor.window_of(seqs[0])[None]
    raw = Latency.of(_timed(lambda: predictor.predict_windows(x1), 3000))

    service = PredictionService(settings, predictor)

    async def served() -> list[float]:
        out = []
        for i in range(2000):
            b = bodies[i % len(bodies)]
            t = time.perf_counter()
            await service.predict(b["engine_id"], b["sensor_data"])
            out.append(time.perf_counter() - t)
        await service.close()
        return out

    full = Latency.of(asyncio.run(served()))
    rng = np.random.default_rng(0)
    shape = x1.shape[1:]
    batch = {b: _throughput(predictor.predict_windows, rng.standard_normal((b, *shape)).astype(np.float32))
             for b in BATCHES}
    return {"raw": raw, "service": full, "batch": batch, "window": predictor.window, "n_features": shape[1]}


def naive_network(m: Any) -> Any:
    """The bundle's architecture in PyTorch (same members, untrained: weights do not change the cost)."""
    from prognos.training.networks import Ensemble, build_network
    from prognos.training.trainer import architectures

    archs = architectures(m.model["name"])
    params = m.model.get("params") or {}
    nf = len(m.feature_names)
    members = []
    for _ in range(int(m.model.get("members", 1))):
        for arch in archs:
            p = params.get(arch, {}) if len(archs) > 1 else params
            members.append(build_network(arch, nf, m.window, **(p if isinstance(p, dict) else {})))
    return Ensemble(members, m.rul_cap).eval()


def naive(bundle: Path, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """The planning documents' design: the framework model called per request in the handler."""
    import torch

    from prognos.serving.predictor import Predictor

    torch.set_num_threads(1)
    predictor = Predictor.from_path(bundle)
    m = predictor.bundle.manifest
    nf = len(m.feature_names)
    model = naive_network(m)

    def handle(b: dict[str, Any]) -> float:
        seq = predictor.validate(b["sensor_data"])
        x = torch.from_numpy(predictor.window_of(seq)[None])
        with torch.no_grad():
            return float(model(x)[0])

    for b in bodies[:20]:
        handle(b)
    it = iter(range(10**9))
    lat = Latency.of(_timed(lambda: handle(bodies[next(it) % len(bodies)]), 1000))
    rng = np.random.default_rng(0)

    def run(x: np.ndarray) -> object:
        with torch.no_grad():
            return model(torch.from_numpy(x))

    batch = {b: _throughput(run, rng.standard_normal((b, m.window, nf)).astype(np.float32)) for b in BATCHES}
    raw_x = rng.standard_normal((1, m.window, nf)).astype(np.float32)
    raw = Latency.of(_timed(lambda: run(raw_x), 2000))
    return {"raw": raw, "service": lat, "batch": batch}


def naive_process(bundle: Path) -> dict[str, float]:
    """Start-to-ready and peak RSS of a process that serves the naive way (imports torch, builds the model)."""
    code = (
        "import time, json, resource, sys; t=time.perf_counter(); import torch;"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r}); from serving import naive_network;"
        "from prognos.serving.predictor import Predictor;"
        f"p=Predictor.from_path({str(bundle)!r}); m=p.bundle.manifest; net=naive_network(m);"
        "torch.set_num_threads(1);\nwith torch.no_grad(): net(torch.zeros(1, m.window, len(m.feature_names)))\n"
        "print(json.dumps({'ready_s': time.perf_counter()-t, "
        "'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024}))"
    )
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    d = json.loads(out.stdout.strip().splitlines()[-1])
    return {"ready_s": wall, "rss_mb": d["rss_mb"]}


# --------------------------------------------------------------------------------- load generator
def _http_request(body: dict[str, Any], port: int) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    return (b"POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (port, len(payload))) + payload


async def _load_rest(port: int, bodies: list[dict[str, Any]], rate: int, duration: float) -> LoadResult:
    requests = [_http_request(b, port) for b in bodies]
    pool: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    lat: list[float] = []
    errors: Counter[str] = Counter()

    async def one(i: int, scheduled: float) -> None:
        try:
            conn = pool.pop() if pool else await asyncio.open_connection("127.0.0.1", port)
        except OSError as exc:
            errors[type(exc).__name__] += 1
            return
        reader, writer = conn
        try:
            writer.write(requests[i % len(requests)])
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if head[9:12] == b"200":
                lat.append(loop.time() - scheduled)
            else:
                errors[f"HTTP {head[9:12].decode()}"] += 1
            pool.append(conn)
        except (OSError, asyncio.IncompleteReadError) as exc:
            errors[type(exc).__name__] += 1
            writer.close()

    loop = asyncio.get_running_loop()
    return await _open_loop(loop, "REST", one, rate, duration, lat, errors)


async def _load_grpc(port: int, bodies: list[dict[str, Any]], rate: int, duration: float) -> LoadResult:
    import grpc

    from prognos.serving.grpc.messages import reading_messages
    from prognos.serving.grpc.v1 import rul_pb2, rul_pb2_grpc

    requests = [rul_pb2.PredictRULRequest(engine_id=b["engine_id"], sensor_data=reading_messages(b["sensor_data"]))
                for b in bodies]
    lat: list[float] = []
    errors: Counter[str] = Counter()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = rul_pb2_grpc.RulServiceStub(channel)
        await stub.PredictRUL(requests[0], timeout=10)
        loop = asyncio.get_running_loop()

        async def one(i: int, scheduled: float) -> None:
            try:
                await stub.PredictRUL(requests[i % len(requests)], timeout=10)
                lat.append(loop.time() - scheduled)
            except grpc.aio.AioRpcError as exc:
                errors[exc.code().name] += 1

        return await _open_loop(loop, "gRPC", one, rate, duration, lat, errors)


async def _open_loop(loop: asyncio.AbstractEventLoop, protocol: str, one: Callable[[int, float], Any], rate: int,
                     duration: float, lat: list[float], errors: Counter[str]) -> LoadResult:
    n = int(rate * duration)
    start = loop.time() + 0.05
    tasks = []
    for i in range(n):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    s = Latency.of(lat) if lat else Latency(float("nan"), float("nan"), 0)
    return LoadResult(protocol, rate, n, len(lat), sum(errors.values()), len(lat) / elapsed, s.p50_ms, s.p99_ms,
                      dict(errors))


def loadgen_main(args: argparse.Namespace) -> None:
    bodies = json.loads(Path(args.bodies).read_text())
    run = _load_rest if args.proto == "rest" else _load_grpc
    # Warm the server's path for this protocol before measuring.
    asyncio.run(run(args.port, bodies, 50, 1.0))
    print(json.dumps(asdict(asyncio.run(run(args.port, bodies, args.rate, args.duration)))))


# --------------------------------------------------------------------------------------- serving
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def served(bundle: Path, bodies: list[dict[str, Any]], duration: float, rates: Sequence[int] = RATES,
           protocols: Sequence[str] = ("rest", "grpc"), src: Path | None = None) -> dict[str, Any]:
    """``prognos serve`` under open-loop load at each of ``rates`` for each of ``protocols``;
    ``src``: the source tree to serve from (PYTHONPATH), default the installed one."""
    import httpx

    http_port, grpc_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROGNOS_")}
    # Cache off: every request runs validation, features and the model (the honest worst case).
    env.update(PROGNOS_CACHE_SIZE="0", PROGNOS_LOG_SAMPLE_RATE="0", PROGNOS_DATA_DIR=tempfile.mkdtemp(),
               # one load client on one address: measure the server, not the anonymous per-address limit
               PROGNOS_ANONYMOUS_RATE_LIMIT_PER_S="1000000", PROGNOS_ANONYMOUS_RATE_LIMIT_BURST="1000000")
    if src is not None:
        env["PYTHONPATH"] = str(src)
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "prognos.cli", "serve", "--bundle", str(bundle),
                             "--http-port", str(http_port), "--grpc-port", str(grpc_port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tempfile.gettempdir())
    ready_s = None
    try:
        while time.perf_counter() - started < 60:
            try:
                if httpx.get(f"http://127.0.0.1:{http_port}/ready", timeout=0.5).status_code == 200:
                    ready_s = time.perf_counter() - started
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"prognos serve exited with {proc.returncode}")
            time.sleep(0.01)
        if ready_s is None:
            raise SystemExit("prognos serve not ready within 60 s")
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(bodies, f)
        results = []
        rss_ready = _rss_kb(proc.pid, "VmRSS")
        peak_normal = 0
        # The rates within capacity first for both protocols, the overload (500 req/s) last, so the
        # memory peak of normal operation is measured apart from the overload's.
        ports = {"rest": http_port, "grpc": grpc_port}
        plan = [(proto, ports[proto], rate) for rate in rates for proto in protocols]
        for proto, port, rate in plan:
            out = subprocess.run([sys.executable, __file__, "loadgen", "--proto", proto, "--port", str(port),
                                  "--rate", str(rate), "--duration", str(duration), "--bodies", f.name],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr)
                continue
            results.append(LoadResult(**json.loads(out.stdout.strip().splitlines()[-1])))
            print(f"  {results[-1]}", file=sys.stderr)
            if rate <= 200:
                peak_normal = _rss_kb(proc.pid, "VmHWM")
        peak_kb = _rss_kb(proc.pid, "VmHWM")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    results.sort(key=lambda r: (r.protocol != "REST", r.offered_rps))
    return {"ready_s": ready_s, "rss_ready_mb": rss_ready / 1024, "rss_normal_mb": peak_normal / 1024,
            "rss_mb": peak_kb / 1024, "load": results}


def _rss_kb(pid: int, field_name: str) -> int:
    """VmRSS (now) or VmHWM (peak) of a process, kB (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith(field_name))


# ------------------------------------------------------------------------------------------ table
def table(m: dict[str, str], bundle: Path, fast: dict[str, Any], slow: dict[str, Any], proc: dict[str, Any],
          naive_proc: dict[str, float], duration: float) -> str:
    man = json.loads((bundle / "bundle.json").read_text())
    lines = [
        f"### Serving benchmark — {m['date']}",
        "",
        f"Machine: {m['cores']} cores, {m['cpu']}; Python {m['python']}, ONNX Runtime {m['onnxruntime']}; "
        f"load average at start {m['load_average']} (shared machine).",
        f"Model: `{man['version']}` — {man['model']['name']} ensemble of {man['model'].get('members', 1)}, "
        f"window {man['window']} x {len(man['feature_names'])} features; requests carry {HISTORY} readings.",
        "",
        "| measure | prognos (ONNX Runtime, batching) | naive (PyTorch eager per request) | target |",
        "|---|---|---|---|",
        f"| in-process model call, 1 window, p50 / p99 (ms) | {fast['raw'].p50_ms:.3f} / {fast['raw'].p99_ms:.3f} "
        f"| {slow['raw'].p50_ms:.3f} / {slow['raw'].p99_ms:.3f} | |",
        f"| in-process single prediction (validate + features + model), p50 / p99 (ms) | "
        f"{fast['service'].p50_ms:.3f} / {fast['service'].p99_ms:.3f} | "
        f"{slow['service'].p50_ms:.3f} / {slow['service'].p99_ms:.3f} | p50 <= 1 |",
    ]
    for b in BATCHES:
        target = ">= 20,000" if b >= 256 else ""
        lines.append(f"| batch throughput at batch {b}, one thread (windows/s) | {fast['batch'][b]:,.0f} | "
                     f"{slow['batch'][b]:,.0f} | {target} |")
    lines.append(f"| one caller in-process, requests/s (1 / p50 above) | "
                 f"{1000 / fast['service'].p50_ms:,.0f} | {1000 / slow['service'].p50_ms:,.0f} | |")
    lines += [
        f"| serving process RSS at ready / peak through 200 req/s / peak incl. 500 req/s (MB) | "
        f"{proc['rss_ready_mb']:.0f} / {proc['rss_normal_mb']:.0f} / {proc['rss_mb']:.0f} | "
        f"{naive_proc['rss_mb']:.0f} (torch + model only) | <= 300 |",
        f"| start to ready (s) | {proc['ready_s']:.2f} (`prognos serve` to `/ready` 200) | "
        f"{naive_proc['ready_s']:.2f} (import torch + model) | <= 5 |",
        "",
        f"Load over loopback from a separate process, open loop, {duration:g} s per rate, cache off, latency from "
        "the scheduled send time:",
        "",
        "| protocol | offered (req/s) | achieved (req/s) | sent | errors | p50 (ms) | p99 (ms) | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in proc["load"]:
        target = {("REST", 200): "p99 <= 20, no errors", ("gRPC", 200): "p99 <= 10, no errors"}.get(
            (r.protocol, r.offered_rps), "")
        kinds = ", ".join(f"{k} x{v}" for k, v in sorted(r.error_kinds.items()))
        lines.append(f"| {r.protocol} | {r.offered_rps} | {r.achieved_rps:.0f} | {r.sent} | "
                     f"{r.errors}{f' ({kinds})' if kinds else ''} | "
                     f"{r.p50_ms:.2f} | {r.p99_ms:.2f} | {target} |")
    return "\n".join(lines) + "\n"


def compare_main(args: argparse.Namespace) -> None:
    """Two or more source trees served in turn, rounds interleaved (the order alternates each
    round), so a busy machine's drift hits every tree alike; prints one row per round and load."""
    rates = [int(r) for r in args.rates.split(",")]
    bodies = request_bodies(args.bundle, 400)
    m = machine()
    rows = []
    for rnd in range(args.rounds):
        order = args.src if rnd % 2 == 0 else args.src[::-1]
        for src in order:
            load = " ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"round {rnd + 1}: {src} (load {load}) ...", file=sys.stderr)
            proc = served(args.bundle, bodies, args.duration, rates, [args.proto], src)
            rows += [(rnd + 1, src, load, proc["rss_mb"], r) for r in proc["load"]]
    lines = [f"### Served before/after — {m['date']}", "",
             f"Machine: {m['cores']} cores, {m['cpu']}; {args.proto.upper()}, {args.duration:g} s per rate, cache off, "
             f"{HISTORY} readings per request, bundle `{args.bundle.name}`; rounds interleaved.", "",
             "| round | source | load avg | offered (req/s) | achieved (req/s) | errors | p50 (ms) | p99 (ms) "
             "| peak RSS (MB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for rnd, src, load, rss, r in rows:
        lines.append(f"| {rnd} | `{src}` | {load} | {r.offered_rps} | {r.achieved_rps:.0f} | {r.errors} | "
                     f"{r.p50_ms:.2f} | {r.p99_ms:.2f} | {rss:.0f} |")
    lines += ["", "| source | offered (req/s) | median achieved (req/s) | median p99 (ms) |", "|---|---|---|---|"]
    for src in args.src:
        for rate in rates:
            mine = [r for _, s_, _, _, r in rows if s_ == src and r.offered_rps == rate]
            if mine:
                lines.append(f"| `{src}` | {rate} | {np.median([r.achieved_rps for r in mine]):.0f} | "
                             f"{np.median([r.p99_ms for r in mine]):.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    cmp = sub.add_parser("compare", help="serve from several source trees in interleaved rounds (before/after)")
    cmp.add_argument("--bundle", type=Path, required=True)
    cmp.add_argument("--src", type=Path, action="append", required=True, help="a source tree (PYTHONPATH); twice+")
    cmp.add_argument("--rounds", type=int, default=3)
    cmp.add_argument("--rates", default="200,1000", help="offered rates, req/s, comma-separated")
    cmp.add_argument("--proto", choices=["rest", "grpc"], default="rest")
    cmp.add_argument("--duration", type=float, default=10.0)
    cmp.add_argument("--out", type=Path)
    lg = sub.add_parser("loadgen", help="internal: the load-generating process")
    lg.add_argument("--proto", choices=["rest", "grpc"], required=True)
    lg.add_argument("--port", type=int, required=True)
    lg.add_argument("--rate", type=int, required=True)
    lg.add_argument("--duration", type=float, required=True)
    lg.add_argument("--bodies", required=True)
    parser.add_argument("--bundle", type=Path, help="bundle to serve (default: train a small one)")
    parser.add_argument("--model", help="network of the trained bundle (default: the training default)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per offered rate")
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    if args.command == "loadgen":
        loadgen_main(args)
        return
    if args.command == "compare":
        compare_main(args)
        return
    m = machine()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle
        if bundle is None:
            print("training a small bundle ...", file=sys.stderr)
            bundle = build_bundle(Path(tmp) / "bundle", args.model)
        bodies = request_bodies(bundle, 400)
        print("in-process ...", file=sys.stderr)
        fast = in_process(bundle, bodies)
        print("naive ...", file=sys.stderr)
        slow = naive(bundle, bodies)
        naive_proc = naive_process(bundle)
        print("served (REST, gRPC) ...", file=sys.stderr)
        proc = served(bundle, bodies, args.duration)
        text = table(m, bundle, fast, slow, proc, naive_proc, args.duration)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
