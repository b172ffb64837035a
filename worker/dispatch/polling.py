"""One poll: recover what dead workers or a lost Redis left, claim the alerts that need work within a time
budget, and dispatch what the model has room for."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from worker.alerts import claiming
from worker.assessing.pipeline import Services
from worker.dispatch import coordinator, heartbeat, recovery
from worker.dispatch.scheduler import Job, Scheduler


@dataclass(frozen=True)
class PollResult:
    report: claiming.ClaimReport
    sent: int  # assessments dispatched to the model
    cached: int  # alerts served from the cache
    recovered: int  # jobs put back in line, and claims Redis had lost claimed again

    @property
    def more(self) -> bool:
        """The budget ended the claiming: alerts may still be waiting for a poll."""
        return self.report.stopped


def poll_once(services: Services, scheduler: Scheduler, send: Callable[[Job], None], *,
              budget_s: float) -> PollResult:
    """Recover, claim (pages of ``LME_ENRICH_BATCH_SIZE`` until none is left or ``budget_s`` has passed, then stop
    between pages), dispatch, and record the poll's heartbeat."""
    deadline = time.monotonic() + budget_s
    pages = coordinator.PageDispatcher(services, scheduler, send)
    recovered = recovery.recover(services, scheduler, pages, pages.context)
    report = claiming.poll(services.settings, services.store, pages, pages.context,
                           should_stop=lambda: time.monotonic() > deadline)
    pages.dispatch()  # also when nothing was claimed: slots may have freed since the last round
    heartbeat.record(scheduler.redis, "poll")
    return PollResult(report, pages.sent, pages.cached, recovered.requeued + recovered.reclaimed)
