"""Celery settings derived from our settings: queues, routes, reliability and the beat schedule."""

from __future__ import annotations

from typing import Any

from kombu import Queue

from worker.settings import Settings

POLL_QUEUE = "lme-enrich.poll"
ASSESS_QUEUE = "lme-enrich.assess"


def build_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for ``settings``: reliability first, since an assessment takes minutes."""
    lease = int(settings.claim_lease.total_seconds())
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        # A message not acknowledged within this time is redelivered: it must outlast the longest task.
        "broker_transport_options": {"visibility_timeout": max(lease, 3600)},
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        "enable_utc": True,
        # Acknowledge after the work is done and requeue when a worker dies mid-task, so a killed
        # worker never loses an alert it had taken.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # The poll queue has its own consumer so it is never stuck behind slow LLM calls.
        "task_queues": (Queue(POLL_QUEUE), Queue(ASSESS_QUEUE)),
        "task_default_queue": ASSESS_QUEUE,
        "task_routes": {
            "lme_enrich.heartbeat": {"queue": POLL_QUEUE},
        },
        "beat_schedule": {
            "heartbeat": {
                "task": "lme_enrich.heartbeat",
                "schedule": min(settings.poll_interval.total_seconds(), 30.0),
            },
        },
        "worker_send_task_events": False,
    }

