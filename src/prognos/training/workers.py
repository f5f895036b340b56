"""Training on more than one core, in worker processes of one thread each.

Small networks do not get faster with more threads per network (two threads ran FD001's default no
faster than one), but there is parallel work one level up:

* **members**: ensemble members are independent; ``cfg.threads`` workers train that many at once
  (:func:`train_in_workers`);
* **student**: a helper process trains the same student on the other half of every batch
  (:func:`shard_helper`, the loop is :func:`prognos.training.distill.fit_student`).

Each member and each half-batch is seeded and runs on one thread wherever it runs, so the trained
model does not depend on ``cfg.threads`` (unit tests hold this to the bit).

Protocol, with no pickle: the parent writes arrays as ``.npy`` and the config as JSON into a temporary
directory and starts ``python -m prognos.training.workers members|student DIR``. A members worker reads
one JSON job per line on stdin and answers on stdout with a JSON line per epoch and one when the member
is done, having written the member's weights (``member-N.npz``), its out-of-fold prediction
(``oof-N.npy``) and its outputs on the extra inputs (``extra-N.npy``); it exits at end of input or if
its parent is gone. The student helper is rank 1 of a two-process gloo group on the loopback interface
(rendezvous through a file in DIR); gradients are summed with one all-reduce per step.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import numpy as np

from prognos.errors import TrainingError

__all__ = ["Job", "MemberOutput", "shard_helper", "train_in_workers"]

_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_CHUNK = 65536  # windows of the extra inputs read at a time (a multiple of the prediction batch)


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
    extra: np.ndarray | None = None  # raw output (RUL / cap, unclipped) on the extra inputs


# (member index, epoch, train loss, val RMSE, best val RMSE)
Report = Callable[[int, int, float, float, float], None]


def train_in_workers(jobs: list[Job], x: np.ndarray, y: np.ndarray, y_cycles: np.ndarray, fold: np.ndarray,
                     n_features: int, config_json: str, workers: int, report: Report,
                     extra: np.ndarray | None = None) -> list[MemberOutput]:
    """Train ``jobs`` in ``workers`` processes; outputs in job order.

    ``x``: windows (n, window, features) float32; ``y``: targets / cap, float32; ``y_cycles``: targets in
    cycles; ``fold``: fold of each window; ``extra``: more windows every member predicts once trained."""
    with tempfile.TemporaryDirectory(prefix="prognos-members-") as tmp:
        d = Path(tmp)
        for name, arr in (("x", x), ("y", y), ("y_cycles", y_cycles), ("fold", fold)):
            np.save(d / f"{name}.npy", arr)
        if extra is not None:
            np.save(d / "extra.npy", extra)
        (d / "config.json").write_text(json.dumps({"n_features": n_features, "config": json.loads(config_json)}))
        events: queue.Queue[tuple[int, dict[str, Any] | None]] = queue.Queue()
        procs: list[subprocess.Popen[str]] = []
        errs: list[IO[str]] = []
        readers: list[threading.Thread] = []
        try:
            for w in range(min(workers, len(jobs))):
                errs.append((d / f"worker-{w}.err").open("w"))
                procs.append(_start("members", d, errs[-1], stdin=subprocess.PIPE, stdout=subprocess.PIPE))
                readers.append(threading.Thread(target=_read, args=(w, procs[-1], events), daemon=True))
                readers[-1].start()
            pending = list(reversed(jobs))
            running: dict[int, Job] = {}
            for w, p in enumerate(procs):
                running[w] = _send(p, pending.pop())
            done: dict[int, int] = {}
            while running:
                w, msg = events.get()
                if msg is None and w not in running:  # a worker with nothing left to do has exited
                    continue
                if msg is None:  # the worker's stdout closed with a member unfinished
                    procs[w].wait()
                    errs[w].flush()
                    raise TrainingError(f"training worker {w} stopped (exit {procs[w].returncode}) while training "
                                        f"member {running[w].index}: {_tail(d / f'worker-{w}.err')}")
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
                more = np.load(d / f"extra-{job.index}.npy") if extra is not None else None
                outputs.append(MemberOutput(job.index, state, np.load(d / f"oof-{job.index}.npy"), done[job.index],
                                            more))
            return outputs
        finally:
            _stop(procs)
            for t in readers:
                t.join(timeout=10)
            for p in procs:
                for stream in (p.stdin, p.stdout):
                    if stream is not None:
                        stream.close()
            for f in errs:
                f.close()


@contextlib.contextmanager
def shard_helper(x: np.ndarray, y: np.ndarray, tr: np.ndarray, spec: dict[str, Any]) -> Iterator[Any]:
    """Start the student's helper process and yield the two-process group this process is rank 0 of.

    ``x``: the student's windows; ``y``: the teacher's labels / cap; ``tr``: indices trained on;
    ``spec``: ``{"n_features", "window", "config"}``."""
    with tempfile.TemporaryDirectory(prefix="prognos-student-") as tmp:
        d = Path(tmp)
        for name, arr in (("x", x), ("y", y), ("tr", tr)):
            np.save(d / f"{name}.npy", arr)
        (d / "spec.json").write_text(json.dumps(spec))
        with (d / "helper.err").open("w") as err:
            helper = _start("student", d, err)
            try:
                try:
                    group = _group(d, rank=0)
                except RuntimeError as exc:
                    raise TrainingError(f"student helper did not start: {_tail(d / 'helper.err')}") from exc
                try:
                    yield group
                except RuntimeError as exc:  # gloo: the peer is gone
                    helper.wait(timeout=30)
                    raise TrainingError(f"student helper stopped (exit {helper.returncode}): "
                                        f"{_tail(d / 'helper.err')}") from exc
                if helper.wait(timeout=120) != 0:
                    raise TrainingError(f"student helper exited with {helper.returncode}: {_tail(d / 'helper.err')}")
            finally:
                _stop([helper])


def _group(d: Path, rank: int) -> Any:
    import torch.distributed as dist

    store = dist.FileStore(str(d / "rendezvous"), 2)
    store.set_timeout(timedelta(seconds=120))
    options = dist.ProcessGroupGloo._Options()  # type: ignore[attr-defined]
    options._timeout = timedelta(seconds=300)
    options._devices = [dist.ProcessGroupGloo.create_device(interface="lo")]
    return dist.ProcessGroupGloo(store, rank, 2, options)


def _start(kind: str, d: Path, err: IO[str], **pipes: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "prognos.training.workers", kind, str(d)], stderr=err, text=True,
                            env={**os.environ, **_ENV}, **pipes)


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def _tail(path: Path) -> str:
    lines = path.read_text().strip().splitlines() if path.exists() else []
    return " | ".join(lines[-5:]) or "no message"


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


def predict_chunked(net: Any, x: np.ndarray) -> np.ndarray:
    """``net``'s raw output on windows ``x`` (an array or a memory map), read ``_CHUNK`` at a time."""
    import torch

    from prognos.training.trainer import _predict

    return np.concatenate([_predict(net, torch.from_numpy(np.array(x[i : i + _CHUNK])))
                           for i in range(0, len(x), _CHUNK)]) if len(x) else np.zeros(0, np.float32)


def _members(d: Path) -> None:
    """A members worker: train the members named on stdin, one at a time."""
    import torch

    from prognos.training.config import TrainConfig
    from prognos.training.trainer import _train_here

    torch.set_num_threads(1)
    parent = os.getppid()
    meta = json.loads((d / "config.json").read_text())
    cfg = TrainConfig.model_validate(meta["config"])
    x_all = torch.from_numpy(np.load(d / "x.npy"))
    y_all = torch.from_numpy(np.load(d / "y.npy"))
    y_cycles, fold = np.load(d / "y_cycles.npy"), np.load(d / "fold.npy")
    extra = np.load(d / "extra.npy", mmap_mode="r") if (d / "extra.npy").exists() else None

    def report(index: int, epoch: int, loss: float, rmse: float, best: float) -> None:
        if os.getppid() != parent:  # orphaned: nobody will read the result
            sys.exit(1)
        print(json.dumps({"index": index, "epoch": epoch, "loss": loss, "rmse": rmse, "best": best}), flush=True)

    for line in sys.stdin:
        job = Job(**json.loads(line))
        out = _train_here(job, x_all, y_all, y_cycles, fold, meta["n_features"], cfg, report, extra)
        state: dict[str, Any] = out.state  # (numpy's stub types **kwds as its allow_pickle flag)
        np.savez(d / f"member-{job.index}.npz", **state)
        np.save(d / f"oof-{job.index}.npy", out.oof)
        if out.extra is not None:
            np.save(d / f"extra-{job.index}.npy", out.extra)
        print(json.dumps({"index": job.index, "best_epoch": out.best_epoch}), flush=True)


def _student(d: Path) -> None:
    """The student's helper: rank 1 of the two-process group."""
    import torch

    from prognos.training.distill import fit_student

    torch.set_num_threads(1)
    spec = json.loads((d / "spec.json").read_text())
    x, y, tr = (np.load(d / f"{name}.npy") for name in ("x", "y", "tr"))
    fit_student(torch.from_numpy(x), torch.from_numpy(y), tr, tr[:1], spec, group=_group(d, rank=1), rank=1)


if __name__ == "__main__":
    {"members": _members, "student": _student}[sys.argv[1]](Path(sys.argv[2]))
