"""Find alerts that need work and claim them, so exactly one worker assesses each.

A claim is a conditional update (``if_seq_no``/``if_primary_term``) that sets ``lme.ai.status: queued``:
it fails when the alert changed since we saw it (another poller claimed it, or Kibana touched it), so
only successful claims become jobs. This holds even when our own earlier writes are not yet searchable
(near-real-time search): the stale hit's sequence number no longer matches.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from worker.alerts import alert, fields, selection
from worker.alerts.fields import IN_FLIGHT, Status
from worker.alerts.store import AlertStore, Doc
from worker.assessing import facts, fingerprint, prompt
from worker.assessing.pipeline import now_iso
from worker.dispatch import grouping
from worker.dispatch.scheduler import Job, Scheduler
from worker.settings import Settings


@dataclass(frozen=True)
class ClaimContext:
    """What claiming needs beyond Elasticsearch: incident groups, and recent verdicts for the fact cards."""

    groups: grouping.Groups | None
    scheduler: Scheduler | None

    def last_verdicts(self, jobs: list[Job]) -> list[dict[str, Any] | None]:
        """Each job's group's last verdict, else its fingerprint's (one Redis round trip for a page)."""
        if self.scheduler is None:
            return [None] * len(jobs)
        keys = [self.scheduler.group_cache_key(job.group) if job.group else "" for job in jobs]
        found = self.scheduler.cached_many(keys + [job.fingerprint for job in jobs])
        return [by_group or by_fingerprint for by_group, by_fingerprint in zip(found[:len(jobs)], found[len(jobs):],
                                                                               strict=True)]


NO_CONTEXT = ClaimContext(None, None)


@dataclass
class ClaimReport:
    mapped: list[str] = field(default_factory=list)
    found: int = 0
    claimed: int = 0
    queued: int = 0
    stopped: bool = False  # ``should_stop`` ended it between pages: more may be waiting


# Why an alert was claimed (``lme.ai.source``); ``recovered`` is not one: a claim Redis lost keeps its own.
SOURCES = ("new", "stale", "reassess", "requeue", "backfill")
RECOVERED = "recovered"


def _claim_source(hit: Doc, settings: Settings, default: str | None) -> str:
    # The tag wins: a run on a tagged alert must remove the tag when it finishes, whoever started it.
    if settings.reassess_tag in alert.values(hit.source, "kibana.alert.workflow_tags"):
        return "reassess"
    if default == RECOVERED:
        # Taken on again after its job was lost: it keeps its place (a requeue stays ahead of the backlog).
        prior = alert.first(hit.source, fields.field("source"))
        return prior if prior in SOURCES else "stale"
    if default is not None:
        return default
    if alert.first(hit.source, fields.field("status")) in IN_FLIGHT:
        return "stale"
    return "new"


def _level(hit: Doc, source: str) -> str:
    if source in ("requeue", "backfill"):
        return source
    severity = str(alert.first(hit.source, "kibana.alert.severity") or "medium").lower()
    return severity if severity in ("critical", "high", "medium", "low") else "medium"


def job_for(hit: Doc, settings: Settings, source: str, claimed_at: float,
            group: grouping.Group | None = None) -> Job:
    """The job of a claimed hit; its fingerprint is computed here, once, from the poll's own read."""
    built = prompt.build(hit.source)
    return Job(
        index=hit.index, alert_id=hit.id, claim_id=uuid.uuid4().hex,
        fingerprint=fingerprint.compute(hit.source, built.pairs, model=settings.llm_model,
                                        prompt_version=built.version),
        rule=str(alert.first(hit.source, "kibana.alert.rule.name") or ""),
        level=_level(hit, source), claimed_at=claimed_at, fresh=source in ("requeue", "reassess"),
        # A claim we take over (its worker died) must stop holding a slot and leading its fingerprint.
        replaces=str(alert.first(hit.source, fields.field("claim_id")) or "")
        if alert.first(hit.source, fields.field("status")) in IN_FLIGHT else "",
        group=group.id if group else "", group_size=group.size if group else 0,
        triage=",".join(grouping.triage_values(hit.source)) if group else "",
    )


def _group_doc(group: grouping.Group) -> dict[str, Any]:
    return {"id": group.id, "size": group.size, "first_seen": _iso(group.first_seen),
            "last_seen": _iso(group.last_seen)}


def _iso(epoch: float) -> str:
    return now_iso(datetime.fromtimestamp(epoch, UTC))


def claim_and_queue(
    settings: Settings,
    store: AlertStore,
    query: dict[str, Any],
    enqueue: Callable[[Iterable[Job]], Any],
    *,
    source: str | None = None,
    on_page: Callable[[ClaimReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    context: ClaimContext = NO_CONTEXT,
) -> ClaimReport:
    """Claim every alert matching ``query`` (conditionally, in bulk) and hand the claimed jobs to ``enqueue``.

    ``source`` overrides what the poll derives (``new``/``stale``/``reassess``). ``should_stop`` is asked
    between pages, so an interrupted run never leaves a claim unqueued.
    """
    report = ClaimReport()
    for page in store.search_pages(query, selection.SORT, settings.batch_size):
        claim_page(settings, store, page, enqueue, report, source=source, context=context)
        if on_page is not None:
            on_page(report)
        if should_stop is not None and should_stop():
            report.stopped = True
            break
    return report


def claim_page(settings: Settings, store: AlertStore, page: list[Doc], enqueue: Callable[[Iterable[Job]], Any],
               report: ClaimReport, *, source: str | None = None, context: ClaimContext = NO_CONTEXT) -> None:
    """Claim the hits of one page (conditionally, in one bulk) and hand the claimed jobs to ``enqueue``.

    Each claim also carries the alert's fact card and incident group (when grouping is on): a person's
    requeue or re-assess tag asks for that alert alone, so it joins no group.
    """
    report.found += len(page)
    stamp, now = now_iso(), time.time()
    sources = [_claim_source(hit, settings, source) for hit in page]
    # A person's requeue or re-assess tag asks for that alert alone: it joins no group.
    grouped = [n for n, src in enumerate(sources) if src not in ("requeue", "reassess")]
    groups: list[grouping.Group | None] = [None] * len(page)
    if context.groups is not None and grouped:
        for n, group in zip(grouped, context.groups.assign_many([page[n].source for n in grouped]), strict=True):
            groups[n] = group
    jobs = [job_for(hit, settings, src, now, group) for hit, src, group in zip(page, sources, groups, strict=True)]
    docs = []
    verdicts = context.last_verdicts(jobs)
    for hit, job, src, group, verdict in zip(page, jobs, sources, groups, verdicts, strict=True):
        extra: dict[str, Any] = {"facts": facts.card(hit.source, group, verdict)}
        if group is not None:
            extra["group"] = _group_doc(group)
        docs.append(fields.ai_doc(status=Status.queued.value, claim_id=job.claim_id, claimed_at=stamp, source=src,
                                  next_attempt_at=None, **extra))
    claimed = [job for job, ok in zip(jobs, store.claim(page, docs), strict=True) if ok]
    report.claimed += len(claimed)
    if claimed:
        enqueue(claimed)
        report.queued += len(claimed)


def poll(settings: Settings, store: AlertStore, enqueue: Callable[[Iterable[Job]], Any],
         context: ClaimContext = NO_CONTEXT, should_stop: Callable[[], bool] | None = None) -> ClaimReport:
    """Map our fields, then claim every alert that needs work and hand the claims to ``enqueue``
    (``should_stop``, asked between pages, may end it first: ``report.stopped``)."""
    mapped = store.ensure_mappings()
    store.ensure_history()
    report = claim_and_queue(settings, store, selection.work_query(settings), enqueue, context=context,
                             should_stop=should_stop)
    report.mapped = mapped
    return report
