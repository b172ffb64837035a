"""Beat's heartbeat: proves beat schedules and a poll-queue worker runs."""

from __future__ import annotations

from worker.app import app
from worker.dispatch import heartbeat
from worker.dispatch.redis_client import get_redis


@app.task(name="lme_enrich.heartbeat", ignore_result=True)
def beat_heartbeat() -> float:
    return heartbeat.record(get_redis(), "beat")
