"""Beat's poll: recover what dead workers or a lost Redis left, find alerts that need work, claim them, and
dispatch what the model has room for."""

from __future__ import annotations

import logging

from worker.alerts import claiming
from worker.app import app
from worker.dispatch import coordinator, heartbeat, recovery
from worker.dispatch.queueing import send_assessment
from worker.dispatch.redis_client import get_redis
from worker.services import get_scheduler, get_services

log = logging.getLogger(__name__)


@app.task(name="lme_enrich.poll", ignore_result=True)
def poll_alerts() -> dict[str, int]:
    services, scheduler = get_services(), get_scheduler()
    pages = coordinator.PageDispatcher(services, scheduler, send_assessment)
    recovered = recovery.recover(services, scheduler, pages, pages.context)
    report = claiming.poll(services.settings, services.store, pages, pages.context)
    pages.dispatch()  # also when nothing was claimed: slots may have freed since the last round
    heartbeat.record(get_redis(), "poll")
    if report.found or report.mapped:
        log.info("poll: %d found, %d claimed; dispatched %d, %d served from cache; mapped %s", report.found,
                 report.claimed, pages.sent, pages.cached, report.mapped or "nothing new")
    return {"found": report.found, "claimed": report.claimed, "dispatched": pages.sent,
            "recovered": recovered.requeued + recovered.reclaimed}
