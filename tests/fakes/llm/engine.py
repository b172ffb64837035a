"""Runs the pure :class:`CpuModel` on the monotonic clock for many request threads.

One lock guards the model. A ticker thread sleeps until the model's next event (a job finishing)
and wakes every waiter; submitting, cancelling or releasing a job also wakes everyone, so each
waiter recomputes its own deadline from the current share of the CPU. No fixed-interval polling.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from tests.fakes.llm.latency import CpuModel, Job, JobState


class Engine:
    def __init__(self, model: CpuModel, clock: Callable[[], float] = time.monotonic) -> None:
        self._model = model
        self._clock = clock
        self._cond = threading.Condition()
        self._stopping = False
        model.now = clock()
        self._ticker = threading.Thread(target=self._tick, name="llm-sim-cpu", daemon=True)
        self._ticker.start()

    @property
    def model(self) -> CpuModel:
        return self._model

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._ticker.join(timeout=5)

    def _tick(self) -> None:
        with self._cond:
            while not self._stopping:
                self._model.advance(self._clock())
                self._cond.notify_all()
                nxt = self._model.next_event()
                timeout = None if nxt is None else max(0.0, nxt - self._clock())
                self._cond.wait(timeout)

    # -- job control -----------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        with self._cond:
            self._model.submit(job, self._clock())
            self._cond.notify_all()

    def cancel(self, job: Job) -> None:
        with self._cond:
            self._model.cancel(job, self._clock())
            self._cond.notify_all()

    def release(self, job: Job) -> None:
        with self._cond:
            self._model.release(job, self._clock())
            self._cond.notify_all()

    def wait_tokens(self, job: Job, n: int, deadline: float | None = None) -> int:
        """Block until ``job`` has generated ``n`` tokens (or is finished, or ``deadline`` passes).

        Returns the number of tokens generated so far.
        """
        with self._cond:
            while True:
                now = self._clock()
                self._model.advance(now)
                got = self._model.tokens_generated(job)
                if got >= n or job.finished or self._stopping:
                    return got
                if deadline is not None and now >= deadline:
                    return got
                eta = self._model.eta(job, job.token_work(n))
                wake = deadline if eta is None else eta if deadline is None else min(eta, deadline)
                self._cond.wait(None if wake is None else max(0.0, wake - now))

    def wait_finished(self, job: Job, deadline: float | None = None) -> bool:
        """Block until the job's answer is complete; False if ``deadline`` came first."""
        self.wait_tokens(job, max(job.completion_tokens, 1) + 1, deadline)
        with self._cond:
            return job.finished

    def wait_state(self, predicate: Callable[[], bool], deadline: float) -> bool:
        with self._cond:
            while not predicate():
                remaining = deadline - self._clock()
                if remaining <= 0 or self._stopping:
                    return False
                self._cond.wait(remaining)
            return True

    def snapshot(self) -> dict[str, Any]:
        with self._cond:
            m = self._model
            m.advance(self._clock())
            return {
                "cpu_busy_seconds": round(m.busy_time, 6),
                "queue_length": len(m.queue),
                "busy_slots": m.busy_slots,
                "computing": len(m.computing),
                "completed_jobs": m.completed,
                "cancelled_jobs": m.cancelled,
                "slots": [
                    {
                        "index": s.index,
                        "busy": s.job is not None,
                        "state": s.job.state.value if s.job is not None else "idle",
                        "cached_tokens": len(s.cache),
                    }
                    for s in m.slots
                ],
            }

    def is_queued(self, job: Job) -> bool:
        with self._cond:
            return job.state is JobState.QUEUED
