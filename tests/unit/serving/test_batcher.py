from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from prognos.errors import OverloadedError
from prognos.serving.batcher import MicroBatcher


class GatedRunner:
    """Returns each window's first value; the first call blocks until ``gate`` opens, so later
    callers pile up in the queue meanwhile."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batch_sizes: list[int] = []

    def predict_windows(self, x: np.ndarray) -> np.ndarray:
        self.batch_sizes.append(len(x))
        self.entered.set()
        self.gate.wait(5)
        return x[:, 0, 0].astype(np.float64)


def windows(*ids: float) -> np.ndarray:
    x = np.zeros((len(ids), 3, 2), dtype=np.float32)
    x[:, 0, 0] = ids
    return x


async def _wait_for(event: threading.Event) -> None:
    for _ in range(500):
        if event.is_set():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the model thread was never entered")


def test_concurrent_callers_share_model_calls_and_get_their_own_results() -> None:
    async def scenario() -> None:
        runner = GatedRunner()
        batcher = MicroBatcher(max_size=64, max_wait_ms=2, max_queue=1000)
        first = asyncio.create_task(batcher.submit(runner, windows(0)))
        await _wait_for(runner.entered)  # the model thread is busy with the first window
        rest = [asyncio.create_task(batcher.submit(runner, windows(i, i + 0.5))) for i in range(1, 11)]
        await asyncio.sleep(0)
        runner.gate.set()
        out = await asyncio.gather(first, *rest)
        assert out[0].tolist() == [0.0]
        for i, y in enumerate(out[1:], start=1):
            assert y.tolist() == [i, i + 0.5]
        assert runner.batch_sizes == [1, 20]  # ten callers, one model call
        assert batcher.stats.batches == 2 and batcher.stats.windows == 21 and batcher.stats.pending == 0
        await batcher.close()

    asyncio.run(scenario())


def test_batches_never_exceed_max_size() -> None:
    async def scenario() -> None:
        runner = GatedRunner()
        runner.gate.set()
        batcher = MicroBatcher(max_size=4, max_wait_ms=0, max_queue=1000)
        out = await asyncio.gather(*(batcher.submit(runner, windows(i)) for i in range(10)),
                                   batcher.submit(runner, windows(*range(9))))
        assert [y.tolist() for y in out[:10]] == [[i] for i in range(10)]
        assert out[10].tolist() == list(range(9))
        assert max(runner.batch_sizes) <= 4
        assert sum(runner.batch_sizes) == 19
        await batcher.close()

    asyncio.run(scenario())


def test_a_full_queue_refuses_at_once() -> None:
    async def scenario() -> None:
        runner = GatedRunner()
        batcher = MicroBatcher(max_size=8, max_wait_ms=0, max_queue=3)
        busy = asyncio.create_task(batcher.submit(runner, windows(1, 2)))
        await _wait_for(runner.entered)
        waiting = asyncio.create_task(batcher.submit(runner, windows(3)))
        await asyncio.sleep(0)
        with pytest.raises(OverloadedError, match="limit 3") as info:
            await batcher.submit(runner, windows(4))
        assert info.value.retry_after_s > 0
        assert batcher.stats.rejected == 1
        runner.gate.set()
        assert (await busy).tolist() == [1, 2]
        assert (await waiting).tolist() == [3]
        assert (await batcher.submit(runner, windows(5))).tolist() == [5]  # room again
        await batcher.close()

    asyncio.run(scenario())


def test_a_model_error_reaches_every_caller_of_that_batch_and_the_worker_survives() -> None:
    class Failing:
        def predict_windows(self, x: np.ndarray) -> np.ndarray:
            raise RuntimeError("boom")

    async def scenario() -> None:
        ok = GatedRunner()
        ok.gate.set()
        batcher = MicroBatcher(max_size=8, max_wait_ms=0, max_queue=100)
        with pytest.raises(RuntimeError, match="boom"):
            await batcher.submit(Failing(), windows(1))
        assert batcher.stats.pending == 0
        assert (await batcher.submit(ok, windows(7))).tolist() == [7]
        await batcher.close()

    asyncio.run(scenario())


def test_jobs_of_two_models_in_one_batch_go_to_their_own_model() -> None:
    class Plus:
        def __init__(self, k: float) -> None:
            self.k, self.calls = k, 0

        def predict_windows(self, x: np.ndarray) -> np.ndarray:
            self.calls += 1
            return x[:, 0, 0].astype(np.float64) + self.k

    async def scenario() -> None:
        gate = GatedRunner()
        old, new = Plus(100), Plus(200)
        batcher = MicroBatcher(max_size=64, max_wait_ms=0, max_queue=100)
        blocker = asyncio.create_task(batcher.submit(gate, windows(0)))
        await _wait_for(gate.entered)
        a = asyncio.create_task(batcher.submit(old, windows(1)))
        b = asyncio.create_task(batcher.submit(new, windows(2)))
        await asyncio.sleep(0)
        gate.gate.set()
        assert (await a).tolist() == [101] and (await b).tolist() == [202]
        assert (old.calls, new.calls) == (1, 1)
        await blocker
        await batcher.close()

    asyncio.run(scenario())


def test_small_batches_run_inline_and_large_ones_in_the_model_thread() -> None:
    import threading as th

    class WhereRunner:
        def __init__(self) -> None:
            self.threads: list[str] = []

        def predict_windows(self, x: np.ndarray) -> np.ndarray:
            self.threads.append(th.current_thread().name)
            return x[:, 0, 0].astype(np.float64)

    async def scenario() -> None:
        runner = WhereRunner()
        batcher = MicroBatcher(max_size=64, max_wait_ms=0, max_queue=100, inline_max=2)
        assert (await batcher.submit(runner, windows(1, 2))).tolist() == [1, 2]
        assert (await batcher.submit(runner, windows(1, 2, 3))).tolist() == [1, 2, 3]
        assert runner.threads[0] == th.main_thread().name
        assert runner.threads[1].startswith("prognos-model")
        await batcher.close()

    asyncio.run(scenario())
