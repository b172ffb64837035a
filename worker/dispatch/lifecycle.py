"""What a worker process does when it starts, receives an assess task and stops (Celery signals).

- start: claim its node name (the process that ran it before is dead), beat (``worker.dispatch.liveness``) and ask for a
  poll, whose recovery step puts back in line whatever a dead worker held: recovery starts with the worker,
  not at the next scheduled poll.
- receiving an assess task: record this process as its owner, so from then on recovery judges the task by
  this process's heartbeat.
- every beat, after Redis lost its state: tell it again which jobs this process holds.
- every beat: a task this process received that has ended without settling its job (Redis was away or lost
  its last second just then) is handed to recovery, so its slot is not held by a live worker forever.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

import redis
from celery import signals
from celery.worker import state

from worker.app import app
from worker.dispatch import liveness, recovery
from worker.dispatch.queueing import ASSESS_TASK
from worker.dispatch.redis_client import get_redis
from worker.dispatch.scheduler import Job
from worker.services import get_scheduler, get_services

POLL_TASK = "lme_enrich.poll"
log = logging.getLogger(__name__)


def job_of(request: Any) -> Job | None:
    """The job an assess task request carries, or None for another task or a malformed one."""
    if getattr(request, "name", None) != ASSESS_TASK:
        return None
    try:
        return Job(*request.args, **request.kwargs)
    except TypeError:
        return None


class _Reasserter:
    """Re-records the jobs this process holds when Redis's epoch changed (it came back without its state)."""

    def __init__(self) -> None:
        # Jobs received so far were recorded when they arrived: start from the epoch as it is now.
        self.epoch: Any = get_redis().get(recovery.EPOCH)

    def __call__(self) -> None:
        client = get_redis()
        epoch = client.get(recovery.EPOCH)
        if epoch is not None and epoch == self.epoch:
            return
        for request in {*state.active_requests, *state.reserved_requests}:
            job = job_of(request)
            if job is not None:
                get_scheduler().start(job, request.id, liveness.TOKEN)
        self.epoch = epoch


def _requests_in_hand() -> set[str]:
    """Ids of the task requests this process holds (received, reserved or running)."""
    for _ in range(5):
        try:  # Celery's own thread changes these sets meanwhile
            return {r.id for r in (*state.active_requests, *state.reserved_requests)}
        except RuntimeError:
            continue
    return set()


def _eta_epoch(request: Any) -> float:
    """When a request with an ETA (a retry's countdown) is due; 0 for one without."""
    eta = getattr(request, "eta", None)
    if isinstance(eta, str):
        try:
            eta = datetime.fromisoformat(eta)
        except ValueError:
            return time.time() + 3600.0  # unreadable: assume it is still waiting
    return eta.timestamp() if isinstance(eta, datetime) else 0.0


class _Unsettled:
    """The assess tasks this process received, until each has ended; an ended task whose job is still owned by
    this process under the same task id never settled it (``Scheduler.disown`` checks that atomically)."""

    MISSES = 2  # beats in a row a task must be out of hand: a retry's message is received between two

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: dict[str, tuple[str, float]] = {}  # task id -> (claim id, ETA epoch or 0)
        self._misses: dict[str, int] = {}

    def received(self, task_id: str, claim_id: str, eta: float) -> None:
        with self._lock:
            self._received[task_id] = (claim_id, eta)
            self._misses.pop(task_id, None)

    def ended(self, now: float) -> list[tuple[str, str]]:
        """(task id, claim id) of the tasks out of hand for ``MISSES`` beats; they are forgotten."""
        in_hand = _requests_in_hand()
        ended = []
        with self._lock:
            for task_id, (claim_id, eta) in list(self._received.items()):
                if task_id in in_hand or now < eta + 2 * liveness.BEAT_S:
                    self._misses.pop(task_id, None)
                    continue
                self._misses[task_id] = self._misses.get(task_id, 0) + 1
                if self._misses[task_id] >= self.MISSES:
                    ended.append((task_id, claim_id))
                    del self._received[task_id], self._misses[task_id]
        return ended


_unsettled = _Unsettled()


def _hand_back_unsettled() -> None:
    scheduler = None
    for task_id, claim_id in _unsettled.ended(time.time()):
        scheduler = scheduler or get_scheduler()
        if scheduler.disown(claim_id, task_id, liveness.TOKEN):
            log.warning("recovery: task %s ended without settling its alert; recovery sends it again", task_id)


class _OnBeat:
    def __init__(self) -> None:
        self.reassert = _Reasserter()

    def __call__(self) -> None:
        self.reassert()
        _hand_back_unsettled()


_heartbeats: list[liveness.Heartbeat] = []  # this process's one heartbeat, once the worker is ready


@signals.worker_ready.connect
def _on_ready(sender: Any = None, **_: Any) -> None:
    client = get_redis()
    # Made once here, not by whichever of the task threads asks first (two at once would each make their own).
    get_services()
    get_scheduler()
    node = str(getattr(sender, "hostname", "") or liveness.TOKEN)
    if liveness.register_node(client, node):
        log.warning("recovery: %s restarted; the tasks its previous process held go back in line", node)
    heartbeat = liveness.Heartbeat(client, also=_OnBeat())
    heartbeat.start()
    _heartbeats.append(heartbeat)
    app.send_task(POLL_TASK, expires=60)


@signals.task_received.connect
def _on_received(request: Any = None, **_: Any) -> None:
    job = job_of(request)
    if job is None:
        return
    _unsettled.received(request.id, job.claim_id, _eta_epoch(request))
    try:
        get_scheduler().start(job, request.id, liveness.TOKEN)
    except redis.RedisError as exc:  # the heartbeat re-asserts it once Redis is back
        log.warning("could not record the owner of alert %s: %s", job.alert_id, exc)


@signals.worker_shutdown.connect
def _on_shutdown(**_: Any) -> None:
    while _heartbeats:
        _heartbeats.pop().stop()
