"""The CPU model of llama-server: parallel slots sharing one CPU, with a prompt-prefix cache per slot.

Pure logic on an explicit clock (every method takes ``now``), so tests can drive it with fake time.

- A job's work is measured in seconds of the whole CPU: uncached prompt tokens / pp-rate plus
  completion tokens / tg-rate.
- Processor sharing: with k jobs computing, each progresses at 1/k speed.
- Jobs beyond the number of slots wait in a FIFO queue.
- Each slot remembers the prompt it last processed; a new job pays only for the tokens after the
  common prefix (at least one, as llama.cpp re-evaluates the last token). A free slot with the
  longest common prefix is chosen, then the least recently used one.
- Completion is computed event-driven: the next finish time follows from the remaining work and
  the current share, and is recomputed whenever a job starts or ends.
- A job abandoned by its client is not touched: it keeps its slot until its work is done. Only
  :meth:`CpuModel.cancel` (LiteLLM's own timeout) frees the slot early, at the next batch
  boundary as llama-server does: after the current token when generating, or once the current
  ``n_batch`` chunk of the prompt (2048 tokens by default, so usually the whole prompt) is
  processed. A ``hold`` job (the ``hang`` fault) keeps its slot after its work is done until
  :meth:`CpuModel.release`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from tests.fakes.llm.tokens import common_prefix

_EPS = 1e-9


class JobState(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    HELD = "held"
    DONE = "done"
    CANCELLED = "cancelled"


@dataclass(eq=False)
class Job:
    """One completion on the backend. ``tg_scale`` > 1 slows generation (the slow_stream fault)."""

    prompt: tuple[str, ...]
    completion_tokens: int
    hold: bool = False
    tg_scale: float = 1.0
    state: JobState = JobState.QUEUED
    slot: int | None = None
    cached_tokens: int = 0
    pp_work: float = 0.0
    tg_work: float = 0.0
    done_work: float = 0.0
    submitted_at: float = 0.0
    started_at: float | None = None
    prompt_done_at: float | None = None
    finished_at: float | None = None
    cancel_at_work: float | None = None  # set by cancel(): stop here (a batch boundary)

    @property
    def total_work(self) -> float:
        return self.pp_work + self.tg_work

    @property
    def target_work(self) -> float:
        return self.total_work if self.cancel_at_work is None else self.cancel_at_work

    @property
    def remaining(self) -> float:
        return max(0.0, self.target_work - self.done_work)

    @property
    def finished(self) -> bool:
        """The answer is complete (or the job was cancelled): nothing more will be generated."""
        return self.state in (JobState.DONE, JobState.CANCELLED, JobState.HELD)

    def prompt_tokens_processed(self, pp_rate: float) -> int:
        """Prompt tokens in the slot's cache now: the cached prefix is not counted."""
        todo = len(self.prompt) - self.cached_tokens
        if math.isinf(pp_rate) or self.pp_work <= 0:
            return todo
        return min(todo, int(min(self.done_work, self.pp_work) * pp_rate + _EPS))

    def token_work(self, n: int) -> float:
        """Work done when the n-th completion token exists."""
        if self.completion_tokens <= 0:
            return self.pp_work
        return self.pp_work + self.tg_work * min(n, self.completion_tokens) / self.completion_tokens


@dataclass
class Slot:
    index: int
    cache: tuple[str, ...] = ()
    job: Job | None = None
    last_used: float = -math.inf


@dataclass
class CpuModel:
    """llama-server's slots on one CPU. ``pp_rate``/``tg_rate`` in tokens/s; ``math.inf`` = instant."""

    slots_count: int
    pp_rate: float
    tg_rate: float
    n_batch: int = 2048
    now: float = 0.0
    slots: list[Slot] = field(init=False)
    queue: deque[Job] = field(init=False, default_factory=deque)
    busy_time: float = 0.0
    completed: int = 0
    cancelled: int = 0

    def __post_init__(self) -> None:
        self.slots = [Slot(i) for i in range(self.slots_count)]

    # -- queries ---------------------------------------------------------------------------
    @property
    def computing(self) -> list[Job]:
        return [s.job for s in self.slots if s.job is not None and s.job.state is JobState.RUNNING]

    @property
    def busy_slots(self) -> int:
        return sum(1 for s in self.slots if s.job is not None)

    def next_event(self) -> float | None:
        """When the next running job finishes if nothing else changes."""
        jobs = self.computing
        if not jobs:
            return None
        return self.now + min(j.remaining for j in jobs) * len(jobs)

    def eta(self, job: Job, work: float) -> float | None:
        """When ``job`` reaches ``work`` at the current share (None while it is queued)."""
        if job.state is not JobState.RUNNING:
            return None
        return self.now + max(0.0, work - job.done_work) * len(self.computing)

    def tokens_generated(self, job: Job) -> int:
        if job.finished and job.state is not JobState.CANCELLED:
            return job.completion_tokens
        if job.done_work + _EPS < job.pp_work or job.completion_tokens <= 0 or job.tg_work <= 0:
            return 0
        fraction = (job.done_work - job.pp_work) / job.tg_work
        return min(job.completion_tokens, int(fraction * job.completion_tokens + _EPS))

    # -- time ------------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        """Progress every running job up to ``now``, finishing jobs (and starting queued ones)."""
        while now > self.now + _EPS or self._finish_due():
            jobs = self.computing
            if not jobs:
                self.now = max(self.now, now)
                return
            k = len(jobs)
            first = min(j.remaining for j in jobs)
            t_fin = self.now + first * k
            until = min(now, t_fin)
            step = max(0.0, (until - self.now) / k)
            for job in jobs:
                self._progress(job, step, k)
            self.busy_time += max(0.0, until - self.now)
            self.now = max(self.now, until)
            if t_fin > now + _EPS:
                return
            for job in jobs:
                if job.remaining <= _EPS:
                    self._complete(job)
        self.now = max(self.now, now)

    def _finish_due(self) -> bool:
        return any(j.remaining <= _EPS for j in self.computing)

    def _progress(self, job: Job, step: float, k: int) -> None:
        before = job.done_work
        job.done_work = min(job.target_work, before + step)
        if job.prompt_done_at is None and job.done_work + _EPS >= job.pp_work:
            job.prompt_done_at = self.now + max(0.0, job.pp_work - before) * k

    # -- lifecycle -------------------------------------------------------------------------
    def submit(self, job: Job, now: float) -> None:
        self.advance(now)
        job.state = JobState.QUEUED
        job.submitted_at = self.now
        self.queue.append(job)
        self._fill_slots()

    def cancel(self, job: Job, now: float) -> None:
        """LiteLLM's timeout: stop the job at the next batch boundary and free its slot.

        The prompt processed so far stays in the slot's cache.
        """
        self.advance(now)
        if job.state is JobState.QUEUED:
            self.queue.remove(job)
            self._cancelled(job)
        elif job.state is JobState.HELD:
            self._cancelled(job)
        elif job.state is JobState.RUNNING and job.cancel_at_work is None:
            job.cancel_at_work = min(job.total_work, self._batch_boundary(job))
            if job.remaining <= _EPS:
                self._cancelled(job)

    def _batch_boundary(self, job: Job) -> float:
        if job.done_work + _EPS < job.pp_work:
            todo = len(job.prompt) - job.cached_tokens
            done = job.prompt_tokens_processed(self.pp_rate)
            boundary = min(todo, (done // self.n_batch + 1) * self.n_batch)
            return job.pp_work * boundary / todo
        return job.token_work(self.tokens_generated(job) + 1)

    def _cancelled(self, job: Job) -> None:
        job.state = JobState.CANCELLED
        job.finished_at = self.now
        self.cancelled += 1
        if job.slot is not None and self.slots[job.slot].job is job:
            slot = self.slots[job.slot]
            slot.cache = job.prompt[: job.cached_tokens + job.prompt_tokens_processed(self.pp_rate)]
            slot.job = None
            slot.last_used = self.now
        self._fill_slots()

    def release(self, job: Job, now: float) -> None:
        """The client of a held job went away: free the slot once the work is done."""
        self.advance(now)
        job.hold = False
        if job.state is JobState.HELD:
            self._free(job)

    def _complete(self, job: Job) -> None:
        if job.cancel_at_work is not None:
            job.done_work = job.cancel_at_work
            self._cancelled(job)
            return
        job.done_work = job.total_work
        if job.prompt_done_at is None:
            job.prompt_done_at = self.now
        if job.hold:
            job.state = JobState.HELD
            return
        self._free(job)

    def _free(self, job: Job) -> None:
        job.state = JobState.DONE
        job.finished_at = self.now
        self.completed += 1
        if job.slot is not None:
            slot = self.slots[job.slot]
            slot.cache = job.prompt
            slot.job = None
            slot.last_used = self.now
        self._fill_slots()

    def _fill_slots(self) -> None:
        while self.queue:
            free = [s for s in self.slots if s.job is None]
            if not free:
                return
            job = self.queue.popleft()
            best = max(free, key=lambda s: (common_prefix(s.cache, job.prompt), -s.last_used, -s.index))
            self._start(job, best)

    def _start(self, job: Job, slot: Slot) -> None:
        cached = common_prefix(slot.cache, job.prompt)
        if job.prompt:
            cached = min(cached, len(job.prompt) - 1)
        job.slot = slot.index
        job.cached_tokens = cached
        job.pp_work = (len(job.prompt) - cached) / self.pp_rate
        job.tg_work = job.completion_tokens * job.tg_scale / self.tg_rate
        job.done_work = 0.0
        job.started_at = self.now
        job.state = JobState.RUNNING
        slot.job = job
        slot.cache = job.prompt[:cached]
        slot.last_used = self.now
        if job.total_work <= _EPS:
            self._complete(job)

    def slot_cache_lengths(self) -> list[int]:
        return [len(s.cache) for s in self.slots]


def duration_alone(
    prompt_tokens: int, completion_tokens: int, pp_rate: float, tg_rate: float, cached: int = 0
) -> float:
    """The formula: seconds for one request alone on the CPU."""
    return (prompt_tokens - cached) / pp_rate + completion_tokens / tg_rate

