"""Crash recovery in seconds: jobs whose worker died go back in line, claims Redis lost are taken on again.

Runs at the start of every poll (and so right after any worker starts: it asks for a poll), never waiting
for the claim lease or Celery's visibility timeout:

- **reap**: a dispatched job whose owner (the worker process holding its task) stopped beating is put back
  in line, keeping its claim; so is one no worker took (its dispatcher died before sending, or its message was
  lost) once nothing is left waiting in the assess queue. A slow worker keeps beating and keeps its jobs. The
  replacement task gets a new task id; the dead worker's copy, if Redis ever redelivers it, is dropped.
- **reconcile**: an alert queued or running in Elasticsearch under a claim Redis does not know (Redis restarted
  without its data or lost its last second, or a poll died between claiming and queueing) is claimed again.
  Elasticsearch holds every claim, so nothing depends on what Redis kept.

Bounds (``RELIABILITY.md``): a worker restarted under the same node name is reaped at its start; otherwise
within ``liveness.TTL_S`` plus one poll interval; a lost message within ``UNSENT_GRACE_S`` plus one poll; a
claim Redis lost within ``CLAIM_GRACE_S`` (or ``RESET_DELAY_S`` after Redis came back empty) plus one poll.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import redis

from worker.alerts import alert, claiming, fields, selection
from worker.assessing.pipeline import Services
from worker.celery_conf import ASSESS_QUEUE, queue_lists
from worker.dispatch import liveness
from worker.dispatch.scheduler import PREFIX, Job, Scheduler

UNSENT_GRACE_S: Final = 20.0  # a dispatched job no worker took after this, with nothing queued, was lost
CLAIM_GRACE_S: Final = 30  # a claim Redis does not know after this was lost (claiming queues it at once)
RECONCILE_EVERY_S: Final = 15
RESET_DELAY_S: Final = 2 * liveness.BEAT_S  # after Redis came back empty: let live workers re-assert first
EPOCH: Final = PREFIX + "epoch"  # absent: Redis lost its state (or this is the first start)
RECONCILED: Final = PREFIX + "reconciled"  # present: reconciled recently

log = logging.getLogger(__name__)


def bound(poll_interval_s: float) -> float:
    """Seconds after a restart by which every alert that was queued or running is in hand again.

    The slowest path: a claim Redis lost must be ``CLAIM_GRACE_S`` old, then wait for the next reconcile
    (``RECONCILE_EVERY_S``) and the poll that runs it (one interval); a dispatch lock left by a killed process
    expires meanwhile. 75 s at the default 30 s poll interval; a worker restarted under its node name is
    recovered at its start.
    """
    return CLAIM_GRACE_S + RECONCILE_EVERY_S + poll_interval_s


@dataclass
class RecoveryReport:
    requeued: int = 0  # dispatched jobs put back in line
    reclaimed: int = 0  # claims Redis had lost, claimed again
    redis_reset: bool = False  # Redis had lost its state


def assess_messages_waiting(client: redis.Redis) -> int:
    """Assess task messages in the broker's queue that no worker has taken yet (every priority list)."""
    pipe = client.pipeline()
    for name in queue_lists(ASSESS_QUEUE):
        pipe.llen(name)
    return sum(int(n) for n in pipe.execute())


def _redis_uptime(client: redis.Redis) -> float:
    info: dict[str, Any] = client.info("server")
    return float(info.get("uptime_in_seconds", 0))


def reap(scheduler: Scheduler, *, now: float | None = None) -> int:
    """Put back in line every dispatched job whose task cannot run; return how many."""
    client = scheduler.redis
    entries = scheduler.in_flight()
    if not entries:
        return 0
    now = time.time() if now is None else now
    # Just after a Redis restart the heartbeats may have expired while it was down: judge owners once
    # every live worker has had the time to beat again.
    judge_owners = _redis_uptime(client) >= liveness.TTL_S
    alive = liveness.alive_among(client, (e.owner for e in entries))
    waiting: int | None = None
    requeued = 0
    for entry in entries:
        if entry.owner:
            if entry.owner in alive or not judge_owners:
                continue
            why = f"its worker ({entry.owner}) stopped beating"
        else:
            if now - entry.dispatched_at < UNSENT_GRACE_S:
                continue
            if entry.task_id:
                waiting = assess_messages_waiting(client) if waiting is None else waiting
                if waiting:
                    continue  # its message may be one of those: a worker will take it
            why = "no worker took its task"
        if scheduler.requeue(entry):
            requeued += 1
            log.warning("recovery: alert %s back in line (%s)", entry.job.alert_id if entry.job else entry.claim_id,
                        why)
    return requeued


def _reconcile_due(client: redis.Redis) -> tuple[bool, bool]:
    """(whether to reconcile now, whether Redis lost its state since the last poll)."""
    if client.set(EPOCH, uuid.uuid4().hex, nx=True):
        # Empty Redis: reconcile soon, once the live workers re-asserted the jobs they hold.
        client.set(RECONCILED, "1", ex=int(RESET_DELAY_S))
        return False, True
    return bool(client.set(RECONCILED, "1", nx=True, ex=RECONCILE_EVERY_S)), False


def reconcile(services: Services, scheduler: Scheduler, enqueue: Callable[[Iterable[Job]], Any],
              context: claiming.ClaimContext = claiming.NO_CONTEXT) -> int:
    """Claim again every alert queued or running under a claim Redis does not know; return how many."""
    settings, store = services.settings, services.store
    lost: list[str] = []
    before = scheduler.known_claims()
    # Only the claim ids first: in a storm most in-flight claims are known, and reading them is cheap.
    for page in store.search_pages(selection.claims_older_than(CLAIM_GRACE_S), selection.SORT, settings.batch_size,
                                   source=[fields.field("claim_id")]):
        # What Redis knew before and after reading the page: a job moving between two of its sets (taken
        # for dispatch, say) is in one of the two reads, so it is never taken for lost.
        after = scheduler.known_claims()
        known, before = before | after, after
        lost += [hit.id for hit in page if alert.first(hit.source, fields.field("claim_id")) not in known]
    report = claiming.ClaimReport()
    for start in range(0, len(lost), settings.batch_size):
        ids = lost[start:start + settings.batch_size]
        query = {"bool": {"filter": [{"ids": {"values": ids}}, selection.claims_older_than(CLAIM_GRACE_S)]}}
        for page in store.search_pages(query, selection.SORT, settings.batch_size):
            # Conditional on the version just read: an alert finished or claimed meanwhile is left alone.
            claiming.claim_page(settings, store, page, enqueue, report, source=claiming.RECOVERED, context=context)
    if report.claimed:
        log.warning("recovery: %d alert(s) whose claim Redis had lost claimed again", report.claimed)
    return report.claimed


def recover(services: Services, scheduler: Scheduler, enqueue: Callable[[Iterable[Job]], Any],
            context: claiming.ClaimContext = claiming.NO_CONTEXT) -> RecoveryReport:
    """One recovery round (the poll runs it first): reap, then reconcile when due."""
    report = RecoveryReport(requeued=reap(scheduler))
    due, report.redis_reset = _reconcile_due(scheduler.redis)
    if report.redis_reset:
        log.warning("recovery: Redis has none of lme-enrich's state (restarted without it, or first start); "
                    "claims in Elasticsearch will be taken on again in %gs", RESET_DELAY_S)
    if due:
        report.reclaimed = reconcile(services, scheduler, enqueue, context)
    return report
