"""Glue between the scheduler, the single-alert pipeline and the alerts that share a fingerprint.

``dispatch`` sends the best waiting alerts to the model and serves cached ones at once; ``settle`` runs
after an assessment task and hands its result to the alerts that waited for it (coalescing), remembers
it for later ones (cache), frees the slot and dispatches more. Shared results are written in bulk, each
update conditional on the alert still carrying the claim we gave it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from worker.alerts import alert, fields
from worker.alerts.claiming import ClaimContext
from worker.alerts.fields import IN_FLIGHT, Status
from worker.alerts.store import Doc
from worker.assessing import guards
from worker.assessing.pipeline import (
    HISTORY_SOURCE,
    Outcome,
    Services,
    Superseded,
    history_record,
    now_iso,
    update_ours,
    without_tag,
)
from worker.dispatch.scheduler import Dispatch, Job, Scheduler

log = logging.getLogger(__name__)

# What writing a shared result reads of each alert: the claim, the re-assess tag, what history records.
FINAL_SOURCE: Final = sorted({*HISTORY_SOURCE, "kibana.alert.workflow_tags"})
# What a shared assessment copies; the rest (claim, attempts, timings) stays the receiving alert's own.
SHARED_FIELDS = ("summary", "what_happened", "risk_level", "recommended_actions", "confidence", "model",
                 "prompt_version", "fingerprint", "injection_suspected", "injection_reasons", "guards", "group")


def dispatch(services: Services, scheduler: Scheduler, send: Callable[[Job], None]) -> Dispatch:
    """One dispatch round; cached assessments are written straight away."""
    decided = scheduler.dispatch(send)
    for job, cached in decided.cached:
        share(services, [job], cached, source_alert=str(cached.get("source_alert", "")), cached=True)
    return decided


@dataclass
class PageDispatcher:
    """An ``enqueue`` for claiming: each page's claims wait for the model, which starts on the best at once.

    Claiming a large backlog takes a while (pages of ``LME_ENRICH_BATCH_SIZE``, most severe first); waiting for
    the last page before dispatching would leave the model idle all that time.
    """

    services: Services
    scheduler: Scheduler
    send: Callable[[Job], None]
    sent: int = 0
    cached: int = 0

    def __call__(self, jobs: Iterable[Job]) -> None:
        self.scheduler.add(jobs)
        self.dispatch()

    @property
    def context(self) -> ClaimContext:
        """What claiming for this dispatcher needs: the incident groups and the recent verdicts."""
        return ClaimContext(self.services.groups, self.scheduler)

    def dispatch(self) -> Dispatch:
        decided = dispatch(self.services, self.scheduler, self.send)
        self.sent += len(decided.sent)
        self.cached += len(decided.cached)
        return decided


def settle(services: Services, scheduler: Scheduler, job: Job, outcome: Outcome,
           send: Callable[[Job], None]) -> None:
    """After ``job``'s task is finished for good: share its result, free its slot, dispatch more."""
    scheduler.finished(job)
    if outcome.result == "done" and outcome.shared is not None:
        remembered = {**outcome.shared, "source_alert": job.alert_id}
        if job.group:
            scheduler.remember(scheduler.group_cache_key(job.group), remembered)
        if not outcome.members:
            # A group's answer describes the burst: it serves later members of that group, never another alert
            # that merely looks the same.
            scheduler.remember(job.fingerprint, remembered)
    followers = scheduler.release_followers(job)
    if followers:
        if outcome.result == "done" and outcome.shared is not None:
            share(services, followers, outcome.shared, source_alert=job.alert_id, cached=False,
                  recorded=set(outcome.members))
        elif outcome.result == "failed":
            fail_together(services, followers, job, outcome)
        else:
            scheduler.add(followers)  # the leader did not assess: one of them will lead instead
    dispatch(services, scheduler, send)


def _ours(source: dict[str, Any], job: Job) -> bool:
    return (alert.first(source, fields.field("claim_id")) == job.claim_id
            and alert.first(source, fields.field("status")) in IN_FLIGHT)


def _final_partial(settings_tag: str, source: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    if "summary" in result:  # a shared answer: guard it for this alert's own text and facts
        result = {**result, **guards.for_alert({k: result[k] for k in SHARED_FIELDS if k in result}, source)}
    group = result.get("group")
    if isinstance(group, dict) and group.get("id") != alert.first(source, fields.field("group.id")):
        result = {k: v for k, v in result.items() if k != "group"}  # another group's (or cached) answer
    if alert.first(source, fields.field("attempts")) is None:
        result = {**result, "attempts": 0}  # served without a model call
    if alert.first(source, fields.field("source")) == "reassess" and settings_tag in alert.values(
        source, "kibana.alert.workflow_tags"
    ):
        return {**fields.ai_doc(**result), **without_tag(source, settings_tag)}
    return fields.ai_doc(**result)


def _write_final(services: Services, jobs: list[Job], result: dict[str, Any]) -> list[Doc]:
    """Write ``result`` into each job's alert in one bulk, conditional on its claim; conflicts one by one."""
    store = services.store
    tag = services.settings.reassess_tag
    # A shared answer is guarded per alert (worker.assessing.guards reads the whole alert); a failure needs little.
    docs = store.mget([(job.index, job.alert_id) for job in jobs], source=None if "summary" in result else FINAL_SOURCE)
    pairs = [(job, doc) for job, doc in zip(jobs, docs, strict=True) if doc is not None and _ours(doc.source, job)]
    partials = [_final_partial(tag, doc.source, result) for _, doc in pairs]
    written: list[Doc] = []
    for (job, doc), ok in zip(pairs, store.update_many([d for _, d in pairs], partials), strict=True):
        if ok is not None:
            written.append(ok)
            continue
        try:
            written.append(update_ours(store, doc, job.claim_id,
                                       lambda current: _final_partial(tag, current.source, result)))
        except Superseded as exc:
            log.info("alert %s: %s; leaving it alone", job.alert_id, exc)
    return written


def share(services: Services, jobs: list[Job], shared: dict[str, Any], *, source_alert: str, cached: bool,
          recorded: set[str] | None = None) -> None:
    """Give ``jobs`` the assessment of ``source_alert`` without a model call.

    History gets a record per alert written, except for those the leader's record already names (the members
    of an incident group its prompt described).
    """
    stamp = now_iso()
    base = {k: shared[k] for k in SHARED_FIELDS if k in shared}
    result = {**base, "status": Status.done.value, "started_at": stamp, "enriched_at": stamp, "cached": cached,
              "cached_from": source_alert, "error": None, "error_kind": None, "next_attempt_at": None,
              "duration_ms": 0, "tokens": {"prompt": 0, "completion": 0}}
    written = _write_final(services, jobs, result)
    _record(services, [doc for doc in written if doc.id not in (recorded or set())], result)


def fail_together(services: Services, jobs: list[Job], leader: Job, outcome: Outcome) -> None:
    """Alerts that waited for a leader whose assessment failed fail with it (and can be requeued)."""
    result = {"status": Status.failed.value, "enriched_at": now_iso(), "error_kind": outcome.kind or "failed",
              "error": f"assessed together with alert {leader.alert_id}, which failed: {outcome.reason}"[:2000],
              "next_attempt_at": None, "cached_from": leader.alert_id}
    written = _write_final(services, jobs, result)
    _record(services, written, result)


def _record(services: Services, docs: list[Doc], result: dict[str, Any]) -> None:
    services.store.record_history_many([history_record(doc, result) for doc in docs])
