"""Beat's poll: find alerts that need work, claim them, queue one assessment each."""

from __future__ import annotations

import logging

from tasks.assess import assess_alert
from worker import pipeline
from worker.app import app
from worker.services import get_services

log = logging.getLogger(__name__)


def _enqueue(job: pipeline.Job) -> None:
    assess_alert.apply_async(args=(job.index, job.alert_id, job.claim_id), priority=job.priority)


@app.task(name="lme_enrich.poll", ignore_result=True)
def poll_alerts() -> dict[str, int]:
    services = get_services()
    report = pipeline.poll(services.settings, services.store, _enqueue)
    if report.found or report.mapped:
        log.info("poll: %d found, %d claimed and queued, mapped %s", report.found, report.queued,
                 report.mapped or "nothing new")
    return {"found": report.found, "claimed": report.claimed, "queued": report.queued}
