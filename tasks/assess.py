"""One assessment per claimed alert."""

from __future__ import annotations

from typing import Any

from worker import pipeline
from worker.app import app
from worker.services import get_services


@app.task(name="lme_enrich.assess", bind=True, ignore_result=True, max_retries=None)
def assess_alert(self: Any, index: str, alert_id: str, claim_id: str) -> str:
    outcome = pipeline.assess(get_services(), pipeline.Job(index, alert_id, claim_id),
                              task_retries=self.request.retries)
    if outcome.result == "retry":
        raise self.retry(countdown=outcome.retry_in)
    return outcome.result
