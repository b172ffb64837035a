"""Queue one assessment task for a claimed alert (by task name: producers need not import the tasks)."""

from __future__ import annotations

from worker.app import app
from worker.pipeline import Job

ASSESS_TASK = "lme_enrich.assess"


def enqueue_assessment(job: Job) -> None:
    """Send the assess task for ``job``; its priority orders it in the assess queue (0 first)."""
    app.send_task(ASSESS_TASK, args=(job.index, job.alert_id, job.claim_id), priority=job.priority)
