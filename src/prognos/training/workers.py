"""Ensemble members trained at the same time in worker processes, one thread each.

Small networks do not get faster with more threads per network (the 2-thread FD001 run took as long as
the 1-thread one), but members are independent: ``cfg.threads`` workers train ``cfg.threads`` of them
at once. Each member is seeded and trained on one thread wherever it runs, so the fitted ensemble is
bit-for-bit the one :func:`~prognos.training.trainer.train_ensemble` trains in-process with
``threads=1`` (a unit test holds this).

Protocol, with no pickle: the parent writes the windows, targets and folds as ``.npy`` and the config
as JSON into a temporary directory, starts ``python -m prognos.training.workers DIR`` per worker and
sends one JSON job per line on its stdin; the worker answers on stdout with a JSON line per epoch and
one when the member is done, having written the member's weights (``member-N.npz``) and its
out-of-fold prediction (``oof-N.npy``). A worker exits at end of input, or if its parent is gone.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from prognos.errors import TrainingError

__all__ = ["Job", "MemberOutput", "train_in_workers"]


@dataclass(frozen=True)
class Job:
    """One ensemble member: architecture ``arch`` trained with fold ``fold`` held out."""

    index: int  # 1-based member number, the order members take in the ensemble
    fold: int
    arch: str
    seed: int


@dataclass(frozen=True)
class MemberOutput:
    index: int
    state: dict[str, np.ndarray]  # the network's state_dict as arrays
    oof: np.ndarray  # prediction on the held-out fold's windows, cycles, clipped to [0, cap]
    best_epoch: int


# (member index, epoch, train loss, val RMSE, best val RMSE)
Report = Callable[[int, int, float, float, float], None]


def train_in_workers(jobs: list[Job], x: np.ndarray, y: np.ndarray, y_cycles: np.ndarray, fold: np.ndarray,
                     n_features: int, config_json: str, workers: int, report: Report) -> list[MemberOutput]:
    """Train ``jobs`` in ``workers`` processes; outputs in job order.

    ``x``: windows (n, window, features) float32; ``y``: targets / cap, float32; ``y_cycles``: targets in
    cycles; ``fold``: fold of each window."""
    with tempfile.TemporaryDirectory(prefix="prognos-members-") as tmp:
        d = Path(tmp)
        np.save(d / "x.npy", x)
        np.save(d / "y.npy", y)
        np.save(d / "y_cycles.npy", y_cycles)
        np.save(d / "fold.npy", fold)
        (d / "config.json").write_text(json.dumps({"n_features": n_features, "config": json.loads(config_json)}))
        events: queue.Queue[tuple[int, dict[str, Any] | None]] = queue.Queue()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        procs: list[subprocess.Popen[str]] = []
        errs: list[IO[str]] = []
        readers: list[threading.Thread] = []
        try:
            for w in range(min(workers, len(jobs))):
                err = (d / f"worker-{w}.err").open("w")
                errs.append(err)
                p = subprocess.Popen([sys.executable, "-m", "prognos.training.workers", str(d)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=err, text=True, env=env)
                procs.append(p)
                readers.append(threading.Thread(target=_read, args=(w, p, events), daemon=True))
                readers[-1].start()
            pending = list(reversed(jobs))
            running: dict[int, Job] = {}
            for w, p in enumerate(procs):
                running[w] = _send(p, pending.pop())
            done: dict[int, int] = {}
            while running:
                w, msg = events.get()
                if msg is None:  # the worker's stdout closed with a member unfinished
                    procs[w].wait()
                    errs[w].flush()
                    tail = (d / f"worker-{w}.err").read_text().strip().splitlines()[-5:]
                    raise TrainingError(f"training worker {w} stopped (exit {procs[w].returncode}) while training "
                                        f"member {running[w].index}: " + (" | ".join(tail) or "no message"))
                if "epoch" in msg:
                    report(msg["index"], msg["epoch"], msg["loss"], msg["rmse"], msg["best"])
                    continue
                done[msg["index"]] = msg["best_epoch"]
                if pending:
                    running[w] = _send(procs[w], pending.pop())
                else:
                    del running[w]
                    stdin = procs[w].stdin
                    assert stdin is not None
                    stdin.close()  # end of input: the worker exits
            outputs = []
            for job in jobs:
                with np.load(d / f"member-{job.index}.npz") as z:
                    state = {k: z[k] for k in z.files}
                outputs.append(MemberOutput(job.index, state, np.load(d / f"oof-{job.index}.npy"), done[job.index]))
            return outputs
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
            for t in readers:
                t.join(timeout=10)
            for p in procs:
                for stream in (p.stdin, p.stdout):
                    if stream is not None:
                        stream.close()
            for f in errs:
                f.close()


def _send(p: subprocess.Popen[str], job: Job) -> Job:
    assert p.stdin is not None
    p.stdin.write(json.dumps(job.__dict__) + "\n")
    p.stdin.flush()
    return job


def _read(w: int, p: subprocess.Popen[str], events: queue.Queue[tuple[int, dict[str, Any] | None]]) -> None:
    assert p.stdout is not None
    for line in p.stdout:
        if line.startswith("{"):
            events.put((w, json.loads(line)))
    events.put((w, None))


def _serve(d: Path) -> None:
    """The worker: train the members named on stdin, one at a time."""
    import torch

    from prognos.training.config import TrainConfig
    from prognos.training.trainer import _predict, _train_member

    torch.set_num_threads(1)
    parent = os.getppid()
    meta = json.loads((d / "config.json").read_text())
    cfg = TrainConfig.model_validate(meta["config"])
    x_all = torch.from_numpy(np.load(d / "x.npy"))
    y_all = torch.from_numpy(np.load(d / "y.npy"))
    y_cycles, fold = np.load(d / "y_cycles.npy"), np.load(d / "fold.npy")
    for line in sys.stdin:
        job = Job(**json.loads(line))
        tr = torch.from_numpy(np.flatnonzero(fold != job.fold))
        va = np.flatnonzero(fold == job.fold)
        x_va = x_all[torch.from_numpy(va)]

        def report(epoch: int, loss: float, rmse: float, best: float, index: int = job.index) -> None:
            if os.getppid() != parent:  # orphaned: nobody will read the result
                sys.exit(1)
            print(json.dumps({"index": index, "epoch": epoch, "loss": loss, "rmse": rmse, "best": best}), flush=True)

        m = _train_member(job.arch, job.seed, x_all, y_all, tr, x_va, y_cycles[va], meta["n_features"], cfg, report)
        np.savez(d / f"member-{job.index}.npz", **{k: v.detach().numpy() for k, v in m.net.state_dict().items()})
        np.save(d / f"oof-{job.index}.npy", np.clip(_predict(m.net, x_va) * cfg.rul_cap, 0, cfg.rul_cap))
        print(json.dumps({"index": job.index, "best_epoch": m.best_epoch}), flush=True)


if __name__ == "__main__":
    _serve(Path(sys.argv[1]))
