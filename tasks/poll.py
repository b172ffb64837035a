"""Beat's poll: find alerts that need work, claim them, queue one assessment each."""

from __future__ import annotations

import logging

from worker import heartbeat, pipeline
from worker.app import app
from worker.queueing import enqueue_assessment
from worker.redis_client import get_redis
from worker.services import get_services

log = logging.getLogger(__name__)


@app.task(name="lme_enrich.poll", ignore_result=True)
def poll_alerts() -> dict[str, int]:
    services = get_services()
    report = pipeline.poll(services.settings, services.store, enqueue_assessment)
    heartbeat.record(get_redis(), "poll")
    if report.found or report.mapped:
        log.info("poll: %d found, %d claimed and queued, mapped %s", report.found, report.queued,
                 report.mapped or "nothing new")
    return {"found": report.found, "claimed": report.claimed, "queued": report.queued}
