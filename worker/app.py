"""The Celery application of lme-enrich."""

from __future__ import annotations

from celery import Celery

app = Celery("lme_enrich", include=["tasks.heartbeat", "tasks.poll", "tasks.assess", "worker.dispatch.lifecycle"])
app.config_from_object("worker.celeryconfig")
