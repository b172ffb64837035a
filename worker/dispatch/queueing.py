"""Send one assessment task for a job (by task name: producers need not import the tasks)."""

from __future__ import annotations

from dataclasses import asdict

from worker.app import app
from worker.dispatch.scheduler import Job

ASSESS_TASK = "lme_enrich.assess"
# Celery priority within the assess queue (0 first); the scheduler already chose the order, this only
# keeps a requeue ahead of tasks sent just before it.
CELERY_PRIORITY = {"requeue": 0, "critical": 1, "high": 3, "medium": 6, "low": 8, "backfill": 9}


def send_assessment(job: Job) -> None:
    """Send the assess task for ``job``, under the task id dispatch recorded for it (if any)."""
    meta = asdict(job)
    args = (meta.pop("index"), meta.pop("alert_id"), meta.pop("claim_id"))
    task_id = meta.pop("task_id") or None
    app.send_task(ASSESS_TASK, args=args, kwargs=meta, task_id=task_id, priority=CELERY_PRIORITY.get(job.level, 6))
