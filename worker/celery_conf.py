"""Celery settings derived from our settings: queues, routes, reliability and the beat schedule."""

from __future__ import annotations

from typing import Any

from kombu import Queue

from worker.settings import Settings

POLL_QUEUE = "lme-enrich.poll"
ASSESS_QUEUE = "lme-enrich.assess"
# kombu's Redis transport keeps one list per priority step, named QUEUE, QUEUE:1 ... QUEUE:9.
PRIORITY_STEPS = list(range(10))
QUEUE_SEP = ":"


def queue_lists(queue: str) -> list[str]:
    """The Redis lists that hold ``queue``'s waiting messages, one per priority step (0 is the bare name)."""
    return [f"{queue}{QUEUE_SEP}{step}" if step else queue for step in PRIORITY_STEPS]


# Every role runs its tasks in threads of the worker's one process, not in a prefork pool: an assessment waits on
# the model for tens of seconds and uses ~15 ms of CPU, a poll waits on Elasticsearch and Redis, so a process per
# task only cost memory (~70 MiB each; issue 13). What prefork added, a hard time limit that kills a child, is
# replaced by bounds on everything a task waits for: the LLM client's deadline per call
# (``worker.assessing.llm``), Elasticsearch's request timeout, Redis's socket timeout, and the poll's budget.
POOL = "threads"


def worker_argv(queues: tuple[str, ...], concurrency: int, node: str) -> list[str]:
    """``celery worker`` arguments for a worker named ``node`` consuming ``queues``."""
    return ["worker", "-Q", ",".join(queues), "-c", str(concurrency), "-P", POOL, "-n", node, "--loglevel", "INFO"]


def build_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for ``settings``: reliability first, since an assessment takes minutes."""
    longest = settings.longest_assessment().total_seconds()
    # An unacknowledged message (a running task, or a retry waiting for its countdown) is redelivered
    # after this: it must outlast both, or one alert would be assessed twice. It does not decide how fast a
    # dead worker's tasks come back: worker.dispatch.recovery sends them again as soon as its heartbeat stops, and
    # drops the old copy if Redis redelivers it later.
    visibility = max(settings.claim_lease.total_seconds(), longest + settings.retry_backoff_max.total_seconds())
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": int(visibility) + 60,
            # Critical alerts first: kombu keeps one Redis list per priority step (0 is served first).
            "queue_order_strategy": "priority",
            "priority_steps": PRIORITY_STEPS,
            "sep": QUEUE_SEP,
        },
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
        # `lme-enrich worker` passes it too; here, a plain `celery -A worker worker` runs the same pool.
        "worker_pool": POOL,
        # The poll queue has its own consumer so it is never stuck behind slow LLM calls.
        "task_queues": (Queue(POLL_QUEUE), Queue(ASSESS_QUEUE)),
        "task_default_queue": ASSESS_QUEUE,
        "task_routes": {
            "lme_enrich.heartbeat": {"queue": POLL_QUEUE},
            "lme_enrich.poll": {"queue": POLL_QUEUE},
            "lme_enrich.assess": {"queue": ASSESS_QUEUE},
        },
        "beat_schedule": {
            "heartbeat": {
                "task": "lme_enrich.heartbeat",
                "schedule": min(settings.poll_interval.total_seconds(), 30.0),
                "options": {"expires": 60},
            },
            "poll": {
                "task": "lme_enrich.poll",
                "schedule": settings.poll_interval.total_seconds(),
                # A poll that could not run in time is dropped: the next one finds the same alerts.
                "options": {"expires": max(settings.poll_interval.total_seconds(), 5.0)},
            },
        },
        "worker_send_task_events": False,
    }
