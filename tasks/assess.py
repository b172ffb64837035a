"""One assessment per dispatched alert; its result also serves the alerts that waited for it."""

from __future__ import annotations

from typing import Any

from worker import coordinator, pipeline
from worker.app import app
from worker.queueing import send_assessment
from worker.scheduler import Job
from worker.services import get_scheduler, get_services


@app.task(name="lme_enrich.assess", bind=True, ignore_result=True, max_retries=None)
def assess_alert(self: Any, /, index: str, alert_id: str, claim_id: str, **meta: Any) -> str:
    job = Job(index, alert_id, claim_id, **meta)
    services, scheduler = get_services(), get_scheduler()
    outcome = pipeline.assess(services, job, task_retries=self.request.retries)
    if outcome.result == "retry":
        scheduler.keep_leading(job)
        raise self.retry(countdown=outcome.retry_in)
    coordinator.settle(services, scheduler, job, outcome, send_assessment)
    return outcome.result
