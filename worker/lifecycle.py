"""What a worker process does when it starts, receives an assess task and stops (Celery signals).

- start: claim its node name (the process that ran it before is dead), beat (``worker.liveness``) and ask for a
  poll, whose recovery step puts back in line whatever a dead worker held: recovery starts with the worker,
  not at the next scheduled poll.
- receiving an assess task: record this process as its owner, so from then on recovery judges the task by
  this process's heartbeat.
- every beat, after Redis lost its state: tell it again which jobs this process holds.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import signals
from celery.worker import state

from worker import liveness, recovery
from worker.app import app
from worker.queueing import ASSESS_TASK
from worker.redis_client import get_redis
from worker.scheduler import Job
from worker.services import get_scheduler

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


_heartbeats: list[liveness.Heartbeat] = []  # this process's one heartbeat, once the worker is ready


@signals.worker_ready.connect
def _on_ready(sender: Any = None, **_: Any) -> None:
    client = get_redis()
    node = str(getattr(sender, "hostname", "") or liveness.TOKEN)
    if liveness.register_node(client, node):
        log.warning("recovery: %s restarted; the tasks its previous process held go back in line", node)
    heartbeat = liveness.Heartbeat(client, also=_Reasserter())
    heartbeat.start()
    _heartbeats.append(heartbeat)
    app.send_task(POLL_TASK, expires=60)


@signals.task_received.connect
def _on_received(request: Any = None, **_: Any) -> None:
    job = job_of(request)
    if job is None:
        return
    try:
        get_scheduler().start(job, request.id, liveness.TOKEN)
    except redis.RedisError as exc:  # the heartbeat re-asserts it once Redis is back
        log.warning("could not record the owner of alert %s: %s", job.alert_id, exc)


@signals.worker_shutdown.connect
def _on_shutdown(**_: Any) -> None:
    while _heartbeats:
        _heartbeats.pop().stop()
