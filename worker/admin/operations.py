"""What the operator commands do, as plain functions: requeue, backfill, status.

The CLI (``worker/admin/cli.py``) only parses arguments and prints; everything here can be driven by tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import redis

from worker.alerts import claiming, fields, history, selection
from worker.alerts.claiming import ClaimReport
from worker.assessing.pipeline import Services
from worker.celery_conf import ASSESS_QUEUE, POLL_QUEUE, queue_lists
from worker.dispatch import coordinator, heartbeat
from worker.dispatch.scheduler import Job, Scheduler


@dataclass
class Preview:
    count: int
    ids: list[str] = field(default_factory=list)


def preview(services: Services, query: dict[str, Any], limit: int = 50) -> Preview:
    """How many alerts ``query`` selects and the first ``limit`` ids, without claiming anything."""
    result = Preview(services.store.count(query))
    for page in services.store.search_pages(query, selection.SORT, min(services.settings.batch_size, limit)):
        result.ids.extend(hit.id for hit in page)
        if len(result.ids) >= limit:
            break
    result.ids = result.ids[:limit]
    return result


def missing(services: Services, ids: list[str]) -> list[str]:
    """Those of ``ids`` that are no alert behind the alert index at all (a typo, or deleted by ILM)."""
    if not ids:
        return []
    found: set[str] = set()
    for page in services.store.search_pages({"ids": {"values": ids}}, selection.SORT, services.settings.batch_size,
                                            source=["kibana.alert.uuid"]):
        found.update(hit.id for hit in page)
    return [alert_id for alert_id in ids if alert_id not in found]


def requeue(services: Services, scheduler: Scheduler, query: dict[str, Any],
            send: Callable[[Job], None]) -> ClaimReport:
    """Claim the selected alerts and put them ahead of the backlog; alerts already in flight are skipped."""
    services.store.ensure_mappings()
    pages = coordinator.PageDispatcher(services, scheduler, send)
    report = claiming.claim_and_queue(services.settings, services.store, query, pages, source="requeue",
                                      context=pages.context)
    pages.dispatch()
    return report


def backfill(
    services: Services,
    scheduler: Scheduler,
    since: timedelta,
    send: Callable[[Job], None],
    *,
    on_page: Callable[[ClaimReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ClaimReport:
    """Claim never-assessed alerts back to ``since`` ago and queue them behind new work.

    Each page's claims are queued before the next page is read and ``should_stop`` is asked between
    pages, so an interrupted backfill leaves nothing claimed but unqueued; a rerun finds only the rest.
    """
    services.store.ensure_mappings()
    pages = coordinator.PageDispatcher(services, scheduler, send)
    report = claiming.claim_and_queue(
        services.settings, services.store, selection.backfill_query(services.settings, since), pages,
        source="backfill", on_page=on_page, should_stop=should_stop, context=pages.context,
    )
    pages.dispatch()
    return report


def queue_depths(client: redis.Redis) -> dict[str, int]:
    """Messages waiting in each of our Celery queues (all priority levels added up)."""
    depths = {}
    for queue in (POLL_QUEUE, ASSESS_QUEUE):
        pipe = client.pipeline()
        for name in queue_lists(queue):
            pipe.llen(name)
        depths[queue] = int(sum(pipe.execute()))
    return depths


def status(services: Services, scheduler: Scheduler, alive: Callable[[], list[str]]) -> dict[str, Any]:
    """Everything ``lme-enrich status`` reports, as one JSON-ready dict."""
    store = services.store
    settings = services.settings
    client = scheduler.redis
    counts = store.status_counts()
    waiting = counts.get("queued", 0) + counts.get("running", 0)
    oldest = store.oldest_claim(fields.Status.queued.value)
    now = time.time()
    stats = store.history_stats(timedelta(hours=1))
    per_hour = stats["count"]
    eta_s = round(waiting / per_hour * 3600, 1) if per_hour else None
    beat_seen = heartbeat.last_seen(client, "beat")
    poll_seen = heartbeat.last_seen(client, "poll")
    interval = min(settings.poll_interval.total_seconds(), 30.0)
    workers = alive()
    return {
        "alerts": {"by_status": counts, "waiting": waiting, "unassessed_in_window": store.count(
            selection.new_alerts(settings)),
            "oldest_wait_s": None if oldest is None else round(max(now - oldest, 0.0), 1)},
        "queues": {**queue_depths(client), "waiting_for_dispatch": scheduler.pending_count(),
                   "dispatched": scheduler.inflight_count()},
        "last_hour": {"assessed": per_hour, "failed": stats["failed"], "mean_duration_ms": stats["mean_ms"],
                      "p95_duration_ms": stats["p95_ms"]},
        "backlog_eta_s": eta_s,
        "last_poll_at": poll_seen,
        "beat": {"last_seen_at": beat_seen,
                 "alive": heartbeat.beat_is_fresh(client, max_age=3 * interval + 30, now=now)},
        "workers": {"alive": sorted(workers), "poll": any(w.startswith("poll@") for w in workers),
                    "assess": any(w.startswith(("assess@", "all@")) for w in workers)},
        "history_index": history.ALIAS,
    }
